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

#endif
