/* Host (Fluent Bit) access for the k8s_audit native filter: the few functions the
 * fluent-bit executable exports, resolved at run time so that the library also loads
 * in a host that lacks them. Implemented in filter.c. */
#ifndef KUBETRAIL_PLUGIN_H
#define KUBETRAIL_PLUGIN_H

#include <stdint.h>
#include <stddef.h>

/* Fluent Bit log levels (flb_log.h). */
#define KT_LOG_ERROR 1
#define KT_LOG_WARN  2
#define KT_LOG_INFO  3
#define KT_LOG_DEBUG 4

/* Property of the instance (flb_filter_get_property); NULL when unset or when the host
 * has no such function. */
const char *kt_get_property(void *ins, const char *key);

/* Stores ctx as the instance's filter context (flb_filter_set_context). Returns 0, or
 * -1 when the host has no flb_filter_set_context. */
int kt_set_context(void *ins, uintptr_t ctx);

/* The instance's log level (struct flb_filter_instance.log_level). */
int kt_log_level(void *ins);

/* Writes one message, prefixed "[filter:k8s_audit:<instance name>] ", through
 * flb_log_print, or to stderr when the host has none. */
void kt_log(void *ins, int type, const char *msg);

/* ---- k8s_events Go-proxy input (input.c) ---- */

/* Fields of struct flbgo_input_plugin (src/proxy/go/go.h). */
void *kt_input_ins(void *plugin);
void *kt_input_api(void *plugin);

/* Sets the proxy context's remote_context, which Fluent Bit passes to the *Ctx
 * callbacks. Returns -1 when the plugin struct has no context. */
int kt_input_set_context(void *plugin, uintptr_t handle);

/* The handles of the instances this thread runs: push at init (-1: too many), the
 * last pushed (0: none), pop at exit. */
int kt_input_push_thread_handle(uintptr_t h);
uintptr_t kt_input_thread_handle(void);
void kt_input_pop_thread_handle(void);

/* 1 on Fluent Bit's engine thread ("flb-pipeline"): the input runs with threaded off. */
int kt_input_on_engine_thread(void);

/* The instance's alias or numbered name (flb_input_name), "k8s_events" without one. */
const char *kt_input_name(void *ins);

/* Whether level is enabled for the instance (api->input_log_check). */
int kt_input_log_enabled(void *api, void *ins, int level);

/* Writes "[input:k8s_events:<name>] msg" through api->log_print, else to stderr. */
void kt_input_log(void *api, const char *name, int level, const char *msg);

/* Writes "[kubetrail] msg" through flb_log_print, else to stderr (client-go's logs). */
void kt_global_log(int level, const char *msg);

#endif
