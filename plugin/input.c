/*
 * The k8s_events Go-proxy input: the C side of what Fluent Bit's Go proxy hands the
 * library (src/proxy/go/go.h: struct flbgo_input_plugin), for input.go. Nothing here
 * but glue.
 *
 * fluent-bit-go's input package reads properties through the same struct, but its
 * header declares the proxy context without coll_fd, so remote_context is set here,
 * with Fluent Bit's own layout.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "plugin.h"

/*
 * The layouts below are typed by hand from Fluent Bit's headers, checked field by
 * field against v3.2.10, v4.0.9, v4.1.0, v4.1.2, v5.0.0 and v5.1.1 (the tags in the
 * fluent/fluent-bit repository).
 *
 * include/fluent-bit/flb_plugin_proxy.h: remote_context exists from v4.1.0 on (v3.2 and
 * v4.0 have only coll_fd and proxy); it is written only when Fluent Bit calls
 * FLBPluginInitCtx-style callbacks, which it does from v4.1.0 on.
 */
struct kt_input_proxy_context {
    int coll_fd;
    void *remote_context;
    void *proxy;
};

/* include/fluent-bit/flb_api.h: the first six members, the same from v3.2.10 to v5.1.1
 * (v4.0 appended custom_get_property and custom_log_check after output_log_check). */
struct kt_flb_api {
    void *output_get_property;
    const char *(*input_get_property)(const char *key, void *ins);
    void *output_get_cmt_instance;
    void *input_get_cmt_instance;
    void (*log_print)(int type, const char *file, int line, const char *fmt, ...);
    int (*input_log_check)(void *ins, int level);
};

/* src/proxy/go/go.h: the first four members, the same from v3.2.10 to v5.1.1 (the
 * callbacks after them changed: v4.1.0 added cb_collect_ctx and cb_cleanup_ctx). */
struct kt_flbgo_input_plugin {
    char *name;
    struct kt_flb_api *api;
    void *i_ins;
    struct kt_input_proxy_context *context;
};

void *kt_input_ins(void *plugin)
{
    return plugin == NULL ? NULL : ((struct kt_flbgo_input_plugin *) plugin)->i_ins;
}

void *kt_input_api(void *plugin)
{
    return plugin == NULL ? NULL : ((struct kt_flbgo_input_plugin *) plugin)->api;
}

int kt_input_set_context(void *plugin, uintptr_t handle)
{
    struct kt_flbgo_input_plugin *p = plugin;

    if (p == NULL || p->context == NULL) {
        return -1;
    }
    p->context->remote_context = (void *) handle;
    return 0;
}

/*
 * Fluent Bit runs a Go-proxy input on a thread of its own (FLB_INPUT_THREADED), or,
 * with `threaded off`, on the engine thread, and calls FLBPluginInit, the callbacks,
 * FLBPluginInputPause/Resume and FLBPluginExit there. FLBPluginExit, Pause/Resume and
 * the callbacks of Fluent Bit < 4.1 carry no context, so the handles of the instances
 * a thread runs are kept per thread: the last one started answers the callbacks
 * without context, and FLBPluginExit ends them one by one (several `threaded off`
 * instances share the engine thread).
 */
#define KT_THREAD_HANDLES 16
static __thread uintptr_t thread_handles[KT_THREAD_HANDLES];
static __thread int thread_nhandles;

int kt_input_push_thread_handle(uintptr_t h)
{
    if (thread_nhandles == KT_THREAD_HANDLES) {
        return -1;
    }
    thread_handles[thread_nhandles++] = h;
    return 0;
}

uintptr_t kt_input_thread_handle(void)
{
    return thread_nhandles > 0 ? thread_handles[thread_nhandles - 1] : 0;
}

void kt_input_pop_thread_handle(void)
{
    if (thread_nhandles > 0) {
        thread_handles[--thread_nhandles] = 0;
    }
}

/*
 * Whether this is Fluent Bit's engine thread, which mk_utils_worker_rename names
 * "flb-pipeline" (src/flb_lib.c flb_lib_worker; the same in 3.2.10, 4.0.9, 4.1.2 and
 * 5.1.1). FLBPluginInit runs there only with `threaded off`; a threaded input's own
 * thread is renamed "flb-in-<name>-w<N>" before its cb_init (src/flb_input_thread.c
 * input_thread).
 */
int kt_input_on_engine_thread(void)
{
    char name[17] = {0};

    if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0) {
        return 0;
    }
    return strcmp(name, "flb-pipeline") == 0;
}

typedef const char *(*input_name_fn)(void *ins);
static pthread_once_t name_once = PTHREAD_ONCE_INIT;
static input_name_fn host_input_name;

static void resolve_input_name(void)
{
    host_input_name = (input_name_fn) dlsym(RTLD_DEFAULT, "flb_input_name");
}

const char *kt_input_name(void *ins)
{
    const char *name = NULL;

    pthread_once(&name_once, resolve_input_name);
    if (host_input_name != NULL && ins != NULL) {
        name = host_input_name(ins);
    }
    return name != NULL ? name : "k8s_events";
}

int kt_input_log_enabled(void *api, void *ins, int level)
{
    struct kt_flb_api *a = api;

    if (a == NULL || a->input_log_check == NULL || ins == NULL) {
        return level <= KT_LOG_INFO;
    }
    return a->input_log_check(ins, level);
}

/* Same prefix as the flb_plg_* macros: "[input:<plugin>:<alias or numbered name>] ". */
void kt_input_log(void *api, const char *name, int level, const char *msg)
{
    struct kt_flb_api *a = api;

    if (a != NULL && a->log_print != NULL) {
        a->log_print(level, NULL, 0, "[input:k8s_events:%s] %s", name, msg);
        return;
    }
    fprintf(stderr, "[input:k8s_events:%s] %s\n", name, msg);
}

/* client-go's own log lines (klog), which belong to no instance. */
typedef void (*log_print_fn)(int type, const char *file, int line, const char *fmt, ...);
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static log_print_fn host_log_print;

static void resolve_log_print(void)
{
    host_log_print = (log_print_fn) dlsym(RTLD_DEFAULT, "flb_log_print");
}

void kt_global_log(int level, const char *msg)
{
    pthread_once(&log_once, resolve_log_print);
    if (host_log_print != NULL) {
        host_log_print(level, NULL, 0, "[kubetrail] %s", msg);
        return;
    }
    fprintf(stderr, "[kubetrail] %s\n", msg);
}
