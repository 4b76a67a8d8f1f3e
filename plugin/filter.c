/*
 * The k8s_audit native filter: the registration structure Fluent Bit reads from
 * flb-filter_k8s_audit.so and the C side of its callbacks, which call the Go exports in
 * main.go. Nothing here but glue.
 *
 * Layout of struct flb_filter_plugin (include/fluent-bit/flb_filter.h), typed by hand and
 * checked identical in v3.2.10, v4.0.9, v4.1.2, v5.0.0 and v5.1.1. Fluent Bit copies sizeof(its struct) bytes from our symbol
 * (src/flb_plugin.c: flb_plugin_load), so the object carries zero padding after it for
 * a future Fluent Bit that appends fields.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "plugin.h"
#include "_cgo_export.h"

struct kt_mk_list {
    struct kt_mk_list *prev, *next;
};

struct kt_flb_filter_plugin {
    int event_type;
    int flags;
    char *name;
    char *description;
    void *config_map;
    int (*cb_pre_run)(void *ins, void *config, void *data);
    int (*cb_init)(void *ins, void *config, void *data);
    int (*cb_filter)(const void *data, size_t bytes,
                     const char *tag, int tag_len,
                     void **out_buf, size_t *out_bytes,
                     void *f_ins, void *i_ins,
                     void *filter_context, void *config);
    int (*cb_exit)(void *filter_context, void *config);
    int (*cb_notification)(void *ins, void *config, void *data);
    struct kt_mk_list _head;
};

#define FLB_FILTER_LOGS     1
#define FLB_FILTER_NOTOUCH  2

static int cb_init(void *ins, void *config, void *data)
{
    (void) config;
    (void) data;
    return ktFilterInit(ins);
}

static int cb_filter(const void *data, size_t bytes,
                     const char *tag, int tag_len,
                     void **out_buf, size_t *out_bytes,
                     void *f_ins, void *i_ins,
                     void *filter_context, void *config)
{
    (void) tag;
    (void) tag_len;
    (void) f_ins;
    (void) i_ins;
    (void) config;
    if (filter_context == NULL) {
        return FLB_FILTER_NOTOUCH;
    }
    return ktFilterDo((uintptr_t) filter_context, (void *) data, bytes,
                      out_buf, out_bytes);
}

static int cb_exit(void *filter_context, void *config)
{
    (void) config;
    if (filter_context == NULL) {
        return 0;
    }
    return ktFilterExit((uintptr_t) filter_context);
}

__attribute__((visibility("default")))
struct {
    struct kt_flb_filter_plugin plugin;
    unsigned char padding[256];
} filter_k8s_audit_plugin = {
    .plugin = {
        .event_type = FLB_FILTER_LOGS,
        .flags = 0,
        .name = "k8s_audit",
        .description = "Enrich Kubernetes API server audit events (kubetrail)",
        .config_map = NULL, /* any property is accepted; the Go side validates */
        .cb_pre_run = NULL,
        .cb_init = cb_init,
        .cb_filter = cb_filter,
        .cb_exit = cb_exit,
        .cb_notification = NULL,
    },
};

/* ---- host functions, resolved once with dlsym(RTLD_DEFAULT) ---- */

typedef const char *(*get_property_fn)(const char *key, void *ins);
typedef void (*set_context_fn)(void *ins, void *ctx);
typedef void (*log_print_fn)(int type, const char *file, int line, const char *fmt, ...);
typedef const char *(*filter_name_fn)(void *ins);

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static get_property_fn host_get_property;
static set_context_fn host_set_context;
static log_print_fn host_log_print;
static filter_name_fn host_filter_name;

static void resolve_host(void)
{
    host_get_property = (get_property_fn) dlsym(RTLD_DEFAULT, "flb_filter_get_property");
    host_set_context = (set_context_fn) dlsym(RTLD_DEFAULT, "flb_filter_set_context");
    host_log_print = (log_print_fn) dlsym(RTLD_DEFAULT, "flb_log_print");
    host_filter_name = (filter_name_fn) dlsym(RTLD_DEFAULT, "flb_filter_name");
}

const char *kt_get_property(void *ins, const char *key)
{
    pthread_once(&host_once, resolve_host);
    if (host_get_property == NULL || ins == NULL) {
        return NULL;
    }
    return host_get_property(key, ins);
}

int kt_set_context(void *ins, uintptr_t ctx)
{
    pthread_once(&host_once, resolve_host);
    if (host_set_context == NULL || ins == NULL) {
        return -1;
    }
    host_set_context(ins, (void *) ctx);
    return 0;
}

/*
 * struct flb_filter_instance starts with int event_type, int id, int log_level
 * (include/fluent-bit/flb_filter.h, since Fluent Bit 2.1; checked in v3.2.10, v4.0.9,
 * v4.1.2, v5.0.0 and v5.1.1). Fluent Bit sets log_level
 * (the instance's log_level property, else the service's) before cb_init
 * (src/flb_filter.c: flb_filter_init), and flb_log_print itself filters nothing: the
 * flb_plg_* macros check the level first, so do we.
 */
int kt_log_level(void *ins)
{
    int level;

    if (ins == NULL) {
        return KT_LOG_INFO;
    }
    level = ((const int *) ins)[2];
    if (level < 0 || level > 5) {
        return KT_LOG_INFO;
    }
    return level;
}

static const char *level_name(int type)
{
    switch (type) {
    case KT_LOG_ERROR: return "error";
    case KT_LOG_WARN:  return "warn";
    case KT_LOG_INFO:  return "info";
    case KT_LOG_DEBUG: return "debug";
    }
    return "trace";
}

/* Same prefix as the flb_plg_* macros (include/fluent-bit/flb_filter_plugin.h):
 * "[filter:<plugin>:<alias or numbered name>] ". */
void kt_log(void *ins, int type, const char *msg)
{
    const char *name = "k8s_audit";

    pthread_once(&host_once, resolve_host);
    if (host_filter_name != NULL && ins != NULL) {
        name = host_filter_name(ins);
    }
    if (host_log_print != NULL) {
        host_log_print(type, NULL, 0, "[filter:k8s_audit:%s] %s", name, msg);
        return;
    }
    fprintf(stderr, "[%s] [filter:k8s_audit:%s] %s\n", level_name(type), name, msg);
}
