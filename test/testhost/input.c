//go:build ignore
// (the line above keeps the Go tool from taking this C file as cgo source of the
// directory's Go test package; the Makefile builds it)

/*
 * The `input` mode: runs a Go-proxy input plugin (FLBPluginRegister, FLBPluginInit,
 * FLBPluginInputCallback...) as Fluent Bit runs it (read at v3.2.10, v4.0.9, v4.1.2 and
 * v5.1.1; line numbers below are 5.1.1's):
 *
 * - threaded (the default: src/flb_plugin_proxy.c flb_proxy_register_input ORs in
 *   FLB_INPUT_THREADED): FLBPluginInit and the 1-second collector run on the input's own
 *   thread, renamed "flb-in-<name>-w<N>" before cb_init (src/flb_input_thread.c
 *   input_thread, :365). flb_proxy_input_cb_collect (src/flb_plugin_proxy.c:74) calls the
 *   callback, then flb_input_log_append, whose result it discards, then the cleanup
 *   callback. For a threaded instance the append only copies the buffer into the
 *   instance's ring (src/flb_input_chunk.c append_to_ring_buffer, :3679): when the ring
 *   is full it retries 10 times with usleep(100 ms), then logs "could not enqueue records
 *   into the ring buffer" and drops the copy. The engine thread ("flb-pipeline",
 *   src/flb_lib.c flb_lib_worker) moves ring entries into chunks every FLB_DEV_RB_MS
 *   (250 ms: src/flb_engine.c, flb_input_chunk_ring_buffer_collector, :3615), but not
 *   while the instance is paused (:3628): the entries wait.
 * - threaded off (the generic `threaded` property, src/flb_input.c:990): everything runs
 *   on the engine thread and the append writes the chunk before the cleanup callback
 *   (flb_input_chunk_append_raw -> input_chunk_append_raw, :3685).
 *
 * The "chunk" here is the --out file (JSON lines, fsync()ed): like a filesystem chunk
 * (a MAP_SHARED file, lib/chunkio), what was written survives kill -9; what the ring
 * holds does not. Shutdown follows src/flb_engine.c: STOP pauses the input (queued to
 * its thread), the engine keeps draining the ring through the shutdown tick (1 s), then
 * flb_engine_shutdown: the engine stops, the input thread runs FLBPluginInputPreExit
 * and FLBPluginExit, and flb_input_instance_destroy frees what the ring still holds
 * (src/flb_input.c:1336): lost. The main thread only handles signals and the
 * --pause-at-ms / --stall-at-ms / --exit-after-ms schedule.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

/* ---- the ABI: include/fluent-bit/flb_plugin_proxy.h, flb_api.h, src/proxy/go/go.h ---- */

#define FLB_PROXY_INPUT_PLUGIN 1
#define FLB_PROXY_GOLANG       11
#define FLB_LOG_ERROR          1
#define FLB_LOG_INFO           3

struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    void *config_map;
};

struct flb_plugin_input_proxy_context {
    int coll_fd;
    void *remote_context; /* set by the plugin in FLBPluginInit */
    void *proxy;          /* struct flb_plugin_proxy in Fluent Bit; opaque to the plugin */
};

struct flb_input_instance;

struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, struct flb_input_instance *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(struct flb_input_instance *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(struct flb_input_instance *, int);
    int (*output_log_check)(void *, int);
    const char *(*custom_get_property)(const char *, void *);
    int (*custom_log_check)(void *, int);
};

struct flbgo_input_plugin {
    char *name;
    void *api;
    void *i_ins;
    struct flb_plugin_input_proxy_context *context;

    int (*cb_init)(struct flbgo_input_plugin *);
    int (*cb_collect)(void **, size_t *);
    int (*cb_collect_ctx)(void *, void **, size_t *);
    int (*cb_cleanup)(void *);
    int (*cb_cleanup_ctx)(void *, void *);
    int (*cb_exit)(void);
};

/*
 * The instance, in the host's own layout: unlike a native filter, a Go input never
 * reads the instance; it hands the pointer back to flb_api and to the exported
 * functions below.
 */
struct flb_input_instance {
    char name[64];     /* "<plugin name>.0", as flb_input_new numbers instances */
    char *alias;
    int log_level;
    int nprops;
    char **keys;
    char **vals;       /* NULL for an empty value, as flb_input_set_property stores it */
};

/* ---- exported host API (names and signatures as in Fluent Bit) ---- */

/* flb_input_get_property -> flb_kv_get_key_value: first match, case-insensitive. */
const char *flb_input_get_property(const char *key, struct flb_input_instance *ins)
{
    int i;

    if (ins == NULL || key == NULL || key[0] == '\0') {
        return NULL;
    }
    for (i = 0; i < ins->nprops; i++) {
        if (strcasecmp(ins->keys[i], key) == 0) {
            return ins->vals[i];
        }
    }
    return NULL;
}

const char *flb_input_name(struct flb_input_instance *ins)
{
    return ins->alias ? ins->alias : ins->name;
}

int flb_input_log_check(struct flb_input_instance *ins, int level)
{
    return level <= ins->log_level;
}

/* The flb_api members an input plugin has no business calling. */
static const char *no_property(const char *key, void *ins)
{
    (void) key;
    (void) ins;
    return NULL;
}

static void *no_cmt(void *ins)
{
    (void) ins;
    return NULL;
}

/* Fluent Bit returns the instance's cmetrics context: the host has none. */
static void *no_input_cmt(struct flb_input_instance *ins)
{
    (void) ins;
    return NULL;
}

static int no_log_check(void *ins, int level)
{
    (void) ins;
    (void) level;
    return 0;
}

static void fill_api(struct flb_api *api)
{
    api->output_get_property = no_property;
    api->input_get_property = flb_input_get_property;
    api->output_get_cmt_instance = no_cmt;
    api->input_get_cmt_instance = no_input_cmt;
    api->log_print = flb_log_print;
    api->input_log_check = flb_input_log_check;
    api->output_log_check = no_log_check;
    api->custom_get_property = no_property;
    api->custom_log_check = no_log_check;
}

/* ---- properties, as src/flb_input.c: flb_input_set_property ---- */

/* Keys flb_input_set_property keeps in instance fields (or, empty, stores with a NULL
 * value): flb_input_get_property, hence FLBPluginConfigKey, never returns them. */
static int instance_key(const char *key)
{
    static const char *keys[] = {
        "tag", "log_level", "log_suppress_interval", "routable", "alias", "mem_buf_limit",
        "listen", "host", "port", "ipv6", "tls", "tls.verify", "tls.verify_client_cert",
        "tls.verify_hostname", "tls.debug", "tls.vhost", "tls.ca_path", "tls.ca_file",
        "tls.crt_file", "tls.key_file", "tls.key_passwd", "tls.min_version",
        "tls.max_version", "tls.ciphers", "storage.type", "threaded",
        "thread.ring_buffer.capacity", "thread.ring_buffer.window", "rate_window",
        "rate_gate", "rate_gate.max_bytes", "rate_gate.max_records",
        "rate_gate.backpressure", "rate_gate.resume_ratio",
        "storage.pause_on_chunks_overlimit",
    };
    size_t i;

    if (strncasecmp(key, "net.", 4) == 0 || strncasecmp(key, "oauth2", 6) == 0) {
        return 1;
    }
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcasecmp(key, keys[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void add_property(struct flb_input_instance *ins, char *key, const char *val)
{
    ins->keys = realloc(ins->keys, sizeof(char *) * (size_t) (ins->nprops + 1));
    ins->vals = realloc(ins->vals, sizeof(char *) * (size_t) (ins->nprops + 1));
    ins->keys[ins->nprops] = key;
    ins->vals[ins->nprops] = val[0] != '\0' && !instance_key(key) ? strdup(val) : NULL;
    ins->nprops++;
}

/* flb_utils_bool */
static int parse_bool(const char *v)
{
    if (strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
        strcmp(v, "1") == 0) {
        return 1;
    }
    if (strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 ||
        strcmp(v, "0") == 0) {
        return 0;
    }
    return -1;
}

/* The instance fields the host itself acts on (flb_input_set_property keeps them in
 * struct flb_input_instance, so the plugin never reads them). */
static int threaded_prop = 1;
static long ring_capacity = 1024; /* FLB_INPUT_RING_BUFFER_CAPACITY, src/flb_input.c:130 */

static int set_property(struct flb_input_instance *ins, const char *kv)
{
    const char *eq = strchr(kv, '=');
    const char *val;
    char *key;

    if (eq == NULL || eq == kv) {
        fprintf(stderr, "flb-testhost: property '%s' is not key=value\n", kv);
        return -1;
    }
    key = strndup(kv, (size_t) (eq - kv));
    val = eq + 1;
    if (val[0] != '\0' && strcasecmp(key, "log_level") == 0) {
        ins->log_level = host_log_level(val);
        free(key);
        if (ins->log_level < 0) {
            fprintf(stderr, "flb-testhost: invalid log_level '%s'\n", val);
            return -1;
        }
        return 0;
    }
    if (val[0] != '\0' && strcasecmp(key, "threaded") == 0) {
        threaded_prop = parse_bool(val);
        free(key);
        if (threaded_prop < 0) {
            fprintf(stderr, "flb-testhost: invalid threaded '%s'\n", val);
            return -1;
        }
        return 0;
    }
    if (val[0] != '\0' && strcasecmp(key, "thread.ring_buffer.capacity") == 0) {
        ring_capacity = strtol(val, NULL, 10);
        free(key);
        if (ring_capacity < 1) {
            fprintf(stderr, "flb-testhost: invalid thread.ring_buffer.capacity '%s'\n", val);
            return -1;
        }
        return 0;
    }
    if (val[0] != '\0' && strcasecmp(key, "alias") == 0) {
        free(ins->alias);
        ins->alias = strdup(val);
        free(key);
        return 0;
    }
    add_property(ins, key, val);
    return 0;
}

/* ---- the host ---- */

enum { CMD_PAUSE = 'p', CMD_RESUME = 'r', CMD_STOP = 's', CMD_EXIT = 'x' };

struct input_stats {
    unsigned long callbacks, batches, records, malformed, dropped;
    unsigned long long bytes;
};

/* The instance's ring of appended buffers (lwrb of pointers in Fluent Bit). */
struct ring_entry {
    void *data;
    size_t len;
};

struct ring {
    pthread_mutex_t mu;
    struct ring_entry *slots;
    size_t cap, head, count;
};

struct input_host {
    void *dso;
    struct flb_plugin_proxy_def *def;
    struct flb_api api;
    struct flb_input_instance ins;
    struct flb_plugin_input_proxy_context ctx;
    struct flbgo_input_plugin plugin;
    int (*cb_pre_run)(int);
    void (*cb_pause)(void);
    void (*cb_resume)(void);
    void (*cb_pre_exit)(int);
    void (*cb_unregister)(struct flb_plugin_proxy_def *);

    long interval_ms;
    long append_delay_ms;
    long drain_ms;
    long long stall_from, stall_to; /* the engine is busy (no drains) in [from, to) */
    int threaded;
    struct ring ring;
    int buf_paused;      /* back-pressure: the engine skips the ring (atomic) */
    int engine_stop;     /* atomic */
    pthread_mutex_t out_mu; /* the "chunk" and the stats it feeds */
    int out_fd;
    int cmd[2];          /* main -> instance thread: CMD_* */
    int init_status[2];  /* instance thread -> main: FLBPluginInit's verdict */
    int paused;          /* instance thread only */
    int failed;          /* the output could not be written: no more collects */
    struct buf json;
    struct input_stats st;
};

/* Written by the signal handler and by the instance thread on a fatal error; the main
 * thread polls it. */
static int wake_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    char c = 's';

    (void) sig;
    if (write(wake_pipe[1], &c, 1) < 0) {
        /* the pipe is full: a wake-up is pending anyway */
    }
    errno = saved;
}

static int install_signals(void)
{
    struct sigaction sa;

    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        perror("flb-testhost: pipe");
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    return 0;
}

static void send_byte(int fd, char c)
{
    while (write(fd, &c, 1) < 0 && errno == EINTR) {
    }
}

static char recv_byte(int fd)
{
    char c = 0;

    while (read(fd, &c, 1) < 0 && errno == EINTR) {
    }
    return c;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_until(long long deadline)
{
    long long d = deadline - now_ms();

    return d < 0 ? 0 : (int) d;
}

/* flb_plugin_proxy_symbol: NULL when absent. */
static void *proxy_symbol(struct input_host *h, const char *name)
{
    void *s;

    dlerror();
    s = dlsym(h->dso, name);
    return dlerror() != NULL ? NULL : s;
}

/* ---- loading: flb_plugin_proxy_create, flb_plugin_proxy_register,
 *      proxy_go_input_register ---- */

static int register_plugin(struct input_host *h, const char *lib)
{
    int (*cb_pre_register)(int);
    int (*cb_register)(struct flb_plugin_proxy_def *);

    cb_pre_register = proxy_symbol(h, "FLBPluginPreRegister");
    if (cb_pre_register != NULL && cb_pre_register(0) == -1) {
        fprintf(stderr, "flb-testhost: %s: FLBPluginPreRegister returned -1\n", lib);
        return -1;
    }
    cb_register = proxy_symbol(h, "FLBPluginRegister");
    if (cb_register == NULL) {
        fprintf(stderr, "flb-testhost: %s has no FLBPluginRegister: not a Go proxy plugin\n", lib);
        return -1;
    }
    h->def = calloc(1, sizeof(*h->def));
    if (cb_register(h->def) == -1) {
        fprintf(stderr, "flb-testhost: %s: FLBPluginRegister returned -1\n", lib);
        return -1;
    }
    if (h->def->proxy != FLB_PROXY_GOLANG || h->def->type != FLB_PROXY_INPUT_PLUGIN) {
        fprintf(stderr, "flb-testhost: %s registers type=%d proxy=%d; an input of the Go "
                "proxy is type=%d proxy=%d\n", lib, h->def->type, h->def->proxy,
                FLB_PROXY_INPUT_PLUGIN, FLB_PROXY_GOLANG);
        return -1;
    }
    if (h->def->name == NULL || h->def->name[0] == '\0') {
        fprintf(stderr, "flb-testhost: %s registers no plugin name\n", lib);
        return -1;
    }
    return 0;
}

static int resolve_callbacks(struct input_host *h, int no_ctx)
{
    struct flbgo_input_plugin *p = &h->plugin;

    p->cb_init = proxy_symbol(h, "FLBPluginInit");
    if (p->cb_init == NULL) {
        flb_log_print(FLB_LOG_ERROR, NULL, 0, "[go proxy]: could not load FLBPluginInit symbol");
        return -1;
    }
    p->cb_collect = proxy_symbol(h, "FLBPluginInputCallback");
    p->cb_cleanup = proxy_symbol(h, "FLBPluginInputCleanupCallback");
    if (!no_ctx) {
        p->cb_collect_ctx = proxy_symbol(h, "FLBPluginInputCallbackCtx");
        p->cb_cleanup_ctx = proxy_symbol(h, "FLBPluginInputCleanupCallbackCtx");
    }
    p->cb_exit = proxy_symbol(h, "FLBPluginExit");
    if (p->cb_collect == NULL && p->cb_collect_ctx == NULL) {
        /* Fluent Bit would call a NULL pointer on the first collect */
        fprintf(stderr, "flb-testhost: the plugin exports no FLBPluginInputCallback%s\n",
                no_ctx ? "" : " nor FLBPluginInputCallbackCtx");
        return -1;
    }
    /* looked up at each use by flb_plugin_proxy.c; once here, to the same effect */
    h->cb_pre_run = proxy_symbol(h, "FLBPluginInputPreRun");
    h->cb_pause = proxy_symbol(h, "FLBPluginInputPause");
    h->cb_resume = proxy_symbol(h, "FLBPluginInputResume");
    h->cb_pre_exit = proxy_symbol(h, "FLBPluginInputPreExit");
    h->cb_unregister = proxy_symbol(h, "FLBPluginUnregister");
    return 0;
}

static int load_plugin(struct input_host *h, const struct input_opts *o)
{
    h->dso = dlopen(o->lib, RTLD_LAZY);
    if (h->dso == NULL) {
        fprintf(stderr, "flb-testhost: dlopen() %s\n", dlerror());
        return -1;
    }
    if (register_plugin(h, o->lib) != 0 || resolve_callbacks(h, o->no_ctx) != 0) {
        return -1;
    }
    snprintf(h->ins.name, sizeof(h->ins.name), "%s.0", h->def->name);
    fill_api(&h->api);
    h->ctx.proxy = h;
    h->plugin.name = strdup(h->def->name);
    h->plugin.api = &h->api;
    h->plugin.i_ins = &h->ins;
    h->plugin.context = &h->ctx;
    return 0;
}

/* ---- one collect: flb_proxy_input_cb_collect ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Writes a buffer into the "chunk" (the --out file, fsync()ed): input_chunk_append_raw's
 * cio_chunk_write. Once it returns 0 a kill -9 cannot lose the records. A malformed
 * buffer is reported and dropped, not fatal: Fluent Bit appends it unchecked and its
 * outputs then fail to decode it. -1 only when the output cannot be written. */
static int write_chunk(struct input_host *h, const void *data, size_t len)
{
    const char *why = "NULL data with a non-zero size";
    long n = -1;
    int ret = 0;

    pthread_mutex_lock(&h->out_mu);
    h->json.len = 0;
    if (data != NULL) {
        n = events_to_json_lines(data, len, &h->json, &why);
    }
    if (n < 0) {
        h->st.malformed++;
        flb_log_print(FLB_LOG_ERROR, NULL, 0, "[flb-testhost] malformed buffer of %zu bytes "
                      "from the input callback: %s", len, why);
    }
    else if (write_all(h->out_fd, h->json.data, h->json.len) != 0 ||
             (fsync(h->out_fd) != 0 && errno != EINVAL && errno != ENOTSUP)) {
        perror("flb-testhost: writing the records");
        ret = -1;
    }
    else {
        h->st.records += (unsigned long) n;
    }
    pthread_mutex_unlock(&h->out_mu);
    return ret;
}

static void host_failed(struct input_host *h)
{
    __atomic_store_n(&h->failed, 1, __ATOMIC_SEQ_CST);
    send_byte(wake_pipe[1], 'f');
}

/* append_to_ring_buffer: a copy into the ring; full: 10 tries 100 ms apart, then the
 * copy is dropped (src/flb_input_chunk.c:3555-3584). */
static int ring_push(struct input_host *h, const void *data, size_t len)
{
    void *copy = malloc(len);
    int tries;

    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, data, len);
    for (tries = 0;; tries++) {
        if (tries >= 10) {
            flb_log_print(FLB_LOG_ERROR, NULL, 0, "[input:%s:%s] could not enqueue records "
                          "into the ring buffer", h->def->name, h->ins.name);
            free(copy);
            pthread_mutex_lock(&h->out_mu);
            h->st.dropped++;
            pthread_mutex_unlock(&h->out_mu);
            return -1;
        }
        pthread_mutex_lock(&h->ring.mu);
        if (h->ring.count < h->ring.cap) {
            size_t i = (h->ring.head + h->ring.count) % h->ring.cap;

            h->ring.slots[i].data = copy;
            h->ring.slots[i].len = len;
            h->ring.count++;
            pthread_mutex_unlock(&h->ring.mu);
            return 0;
        }
        pthread_mutex_unlock(&h->ring.mu);
        usleep(100000);
    }
}

static int ring_pop(struct input_host *h, struct ring_entry *e)
{
    int ok = 0;

    pthread_mutex_lock(&h->ring.mu);
    if (h->ring.count > 0) {
        *e = h->ring.slots[h->ring.head];
        h->ring.head = (h->ring.head + 1) % h->ring.cap;
        h->ring.count--;
        ok = 1;
    }
    pthread_mutex_unlock(&h->ring.mu);
    return ok;
}

/* flb_input_chunk_ring_buffer_collector, for the one instance: nothing while paused;
 * else every entry into the chunk. */
static void ring_drain(struct input_host *h)
{
    struct ring_entry e;

    while (!__atomic_load_n(&h->buf_paused, __ATOMIC_SEQ_CST) && ring_pop(h, &e)) {
        if (write_chunk(h, e.data, e.len) != 0) {
            host_failed(h);
        }
        free(e.data);
    }
}

/* flb_input_instance_destroy -> flb_input_chunk_ring_buffer_cleanup: freed, not written. */
static void ring_discard(struct input_host *h)
{
    struct ring_entry e;

    while (ring_pop(h, &e)) {
        free(e.data);
        h->st.dropped++;
    }
}

/* flb_input_log_append: threaded, a copy into the ring; threaded off, the chunk write. */
static int append(struct input_host *h, const void *data, size_t len)
{
    if (h->threaded) {
        return ring_push(h, data, len);
    }
    if (write_chunk(h, data, len) != 0) {
        host_failed(h);
        return -1;
    }
    return 0;
}

/* proxy_go_input_cleanup */
static void cleanup(struct input_host *h, void *data)
{
    if (h->plugin.cb_cleanup_ctx) {
        h->plugin.cb_cleanup_ctx(h->ctx.remote_context, data);
    }
    else if (h->plugin.cb_cleanup) {
        h->plugin.cb_cleanup(data);
    }
    else {
        free(data);
    }
}

static void collect_once(struct input_host *h)
{
    void *data = NULL;
    size_t len = 0;
    int ret;

    h->st.callbacks++;
    if (h->plugin.cb_collect_ctx) {
        ret = h->plugin.cb_collect_ctx(h->ctx.remote_context, &data, &len);
    }
    else {
        ret = h->plugin.cb_collect(&data, &len);
    }
    if (len == 0) {
        return; /* "No logs are ingested": no append, no cleanup, nothing freed */
    }
    if (ret == -1) {
        /* Fluent Bit returns here too: the buffer is neither appended nor released */
        flb_log_print(FLB_LOG_ERROR, NULL, 0, "[flb-testhost] the input callback returned "
                      "-1 with %zu bytes: not appended, no cleanup (as Fluent Bit)", len);
        return;
    }
    h->st.batches++;
    h->st.bytes += len;
    if (h->append_delay_ms > 0) {
        usleep((useconds_t) h->append_delay_ms * 1000);
    }
    /* the append's result is discarded and the cleanup callback runs whatever it was
     * (flb_plugin_proxy.c:97-99) */
    (void) append(h, data, len);
    cleanup(h, data);
}

/* ---- the instance thread: input_thread in src/flb_input_thread.c ---- */

/* flb_proxy_input_cb_pause / _resume: the plugin first, then the collector. */
static void pause_instance(struct input_host *h)
{
    if (h->cb_pause) {
        h->cb_pause();
    }
    h->paused = 1;
}

static void resume_instance(struct input_host *h)
{
    if (h->cb_resume) {
        h->cb_resume();
    }
    h->paused = 0;
}

/* Handles one command; returns 1 on CMD_EXIT. A resumed collector timer starts a
 * new period, as flb_input_collector_resume re-arms it. */
static int handle_command(struct input_host *h, long long *next)
{
    switch (recv_byte(h->cmd[0])) {
    case CMD_PAUSE:
        if (!h->paused) {
            pause_instance(h);
        }
        return 0;
    case CMD_RESUME:
        if (h->paused) {
            resume_instance(h);
            *next = now_ms() + h->interval_ms;
        }
        return 0;
    case CMD_STOP:
        /* Fluent Bit's shutdown pauses every input that back-pressure has not paused,
         * twice: flb_engine_stop_ingestion, then flb_engine_shutdown (a threaded
         * input's pause is asynchronous and sets no status that the second call's
         * already-paused check would see). Observed with 5.1.1: Pause, Pause, PreExit,
         * Exit. It sets no buffer pause: the ring keeps draining. */
        if (!h->paused) {
            pause_instance(h);
            pause_instance(h);
        }
        return 0;
    case CMD_EXIT:
        return 1;
    }
    return 0;
}

/* The collector timer (PROXY_CALLBACK_TIME) and the commands, one at a time on this
 * thread, so a command never lands in the middle of a callback and its cleanup. */
static void collect_loop(struct input_host *h)
{
    long long next = now_ms() + h->interval_ms;

    for (;;) {
        struct pollfd p = {.fd = h->cmd[0], .events = POLLIN};
        int idle = h->paused || __atomic_load_n(&h->failed, __ATOMIC_SEQ_CST);
        int r = poll(&p, 1, idle ? -1 : ms_until(next));

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r > 0) {
            if (handle_command(h, &next)) {
                return;
            }
            continue;
        }
        if (!idle) {
            collect_once(h);
            /* a periodic timer: late ticks fire once, then the period restarts */
            next += h->interval_ms;
            if (next < now_ms()) {
                next = now_ms();
            }
        }
    }
}

static void *instance_thread(void *arg)
{
    struct input_host *h = arg;
    char name[96];
    char ok;
    int ret;

    /* mk_utils_worker_rename (prctl: 15 characters kept) */
    if (h->threaded) {
        snprintf(name, sizeof(name), "flb-in-%s-w0", h->ins.name);
    }
    else {
        snprintf(name, sizeof(name), "flb-pipeline");
    }
    prctl(PR_SET_NAME, name, 0, 0, 0);

    /* proxy_go_input_init */
    ret = h->plugin.cb_init(&h->plugin);
    if (ret <= 0) {
        flb_log_print(FLB_LOG_ERROR, NULL, 0, "[go proxy]: plugin '%s' failed to initialize",
                      h->plugin.name);
    }
    ok = ret > 0 ? 'y' : 'n';
    send_byte(h->init_status[1], ok);
    if (ret <= 0) {
        return NULL;
    }
    /* flb_proxy_input_cb_pre_run: after the collector is armed, with enable_hot_reload */
    if (h->cb_pre_run) {
        h->cb_pre_run(0);
    }
    collect_loop(h);
    /* flb_proxy_input_cb_exit, with shutdown_by_hot_reloading */
    if (h->cb_pre_exit) {
        h->cb_pre_exit(0);
    }
    if (h->plugin.cb_exit) {
        h->plugin.cb_exit();
    }
    return NULL;
}

/* ---- the engine thread (threaded instances only) ---- */

static void *engine_thread(void *arg)
{
    struct input_host *h = arg;

    prctl(PR_SET_NAME, "flb-pipeline", 0, 0, 0);
    while (!__atomic_load_n(&h->engine_stop, __ATOMIC_SEQ_CST)) {
        long long t;

        usleep((useconds_t) h->drain_ms * 1000);
        t = now_ms();
        if (t >= h->stall_from && t < h->stall_to) {
            continue; /* busy elsewhere: a filter, a flush, a backlog */
        }
        ring_drain(h);
    }
    return NULL;
}

/* ---- the main thread ---- */

/* Waits for a signal, a fatal error or --exit-after-ms, sending the --pause-at-ms
 * pause and resume on the way. Times count from the end of FLBPluginInit, when
 * Fluent Bit arms the collector. */
static void run_schedule(struct input_host *h, const struct input_opts *o)
{
    long long t0 = now_ms();
    long long pause_at = o->pause_at_ms >= 0 ? t0 + o->pause_at_ms : -1;
    long long resume_at = o->pause_at_ms >= 0 ? pause_at + o->pause_ms : -1;
    long long exit_at = o->exit_after_ms >= 0 ? t0 + o->exit_after_ms : -1;

    if (o->stall_at_ms >= 0) {
        h->stall_to = t0 + o->stall_at_ms + o->stall_ms;
        __atomic_store_n(&h->stall_from, t0 + o->stall_at_ms, __ATOMIC_SEQ_CST);
    }

    for (;;) {
        long long due = exit_at;
        struct pollfd p = {.fd = wake_pipe[0], .events = POLLIN};

        if (pause_at >= 0 && (due < 0 || pause_at < due)) {
            due = pause_at;
        }
        else if (resume_at >= 0 && (due < 0 || resume_at < due)) {
            due = resume_at;
        }
        if (poll(&p, 1, due < 0 ? -1 : ms_until(due)) > 0) {
            return; /* SIGTERM, SIGINT or a failed write */
        }
        if (exit_at >= 0 && now_ms() >= exit_at) {
            return;
        }
        /* back-pressure (flb_input_chunk_protect -> flb_input_pause): the status first,
         * which stops the engine's drain, then the pause queued to the input thread */
        if (pause_at >= 0 && now_ms() >= pause_at) {
            __atomic_store_n(&h->buf_paused, 1, __ATOMIC_SEQ_CST);
            send_byte(h->cmd[1], CMD_PAUSE);
            pause_at = -1;
        }
        else if (resume_at >= 0 && now_ms() >= resume_at) {
            __atomic_store_n(&h->buf_paused, 0, __ATOMIC_SEQ_CST);
            send_byte(h->cmd[1], CMD_RESUME);
            resume_at = -1;
        }
    }
}

static int open_output(const char *path)
{
    int fd;

    if (path == NULL || strcmp(path, "-") == 0) {
        return STDOUT_FILENO;
    }
    /* appended to: a run restarted after a kill -9 adds to what the killed one wrote,
     * as a restarted Fluent Bit adds chunks */
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "flb-testhost: cannot open %s: %s\n", path, strerror(errno));
    }
    return fd;
}

static int setup(struct input_host *h, const struct input_opts *o)
{
    int i;

    h->ins.log_level = FLB_LOG_INFO;
    for (i = 0; i < o->nprops; i++) {
        if (set_property(&h->ins, o->props[i]) != 0) {
            return -1;
        }
    }
    h->interval_ms = o->interval_ms;
    h->append_delay_ms = o->append_delay_ms;
    h->drain_ms = o->drain_ms > 0 ? o->drain_ms : 250;
    h->stall_from = h->stall_to = -1;
    h->threaded = threaded_prop;
    h->ring.cap = (size_t) ring_capacity;
    h->ring.slots = calloc(h->ring.cap, sizeof(struct ring_entry));
    pthread_mutex_init(&h->ring.mu, NULL);
    pthread_mutex_init(&h->out_mu, NULL);
    h->out_fd = open_output(o->out);
    if (h->out_fd < 0 || install_signals() != 0 ||
        pipe2(h->cmd, O_CLOEXEC) != 0 || pipe2(h->init_status, O_CLOEXEC) != 0) {
        return -1;
    }
    return 0;
}

/* The shutdown tick (src/flb_engine.c:1456): the engine decides to shut down at the
 * first one with nothing pending, 1 s after STOP. */
#define SHUTDOWN_TICK_MS 1000

int input_run(const struct input_opts *o)
{
    static struct input_host h;
    pthread_t tid, engine;
    int ok, engine_started = 0;

    if (setup(&h, o) != 0 || load_plugin(&h, o) != 0) {
        return EXIT_USAGE;
    }
    if (pthread_create(&tid, NULL, instance_thread, &h) != 0) {
        fprintf(stderr, "flb-testhost: pthread_create failed\n");
        return EXIT_USAGE;
    }
    ok = recv_byte(h.init_status[0]) == 'y';
    if (ok && h.threaded) {
        if (pthread_create(&engine, NULL, engine_thread, &h) != 0) {
            fprintf(stderr, "flb-testhost: pthread_create failed\n");
            return EXIT_USAGE;
        }
        engine_started = 1;
    }
    if (ok) {
        run_schedule(&h, o);
        send_byte(h.cmd[1], CMD_STOP);
        usleep(SHUTDOWN_TICK_MS * 1000);
        /* flb_engine_shutdown: no more drains, then the input thread exits */
        if (engine_started) {
            __atomic_store_n(&h.engine_stop, 1, __ATOMIC_SEQ_CST);
            pthread_join(engine, NULL);
        }
        send_byte(h.cmd[1], CMD_EXIT);
    }
    pthread_join(tid, NULL);
    ring_discard(&h);
    /* flb_proxy_input_cb_destroy, on the main thread, also after a failed init (then
     * without PreExit and Exit, as Fluent Bit 5.1.1) */
    if (h.cb_unregister) {
        h.cb_unregister(h.def);
    }
    if (!ok) {
        return EXIT_INIT;
    }
    fprintf(stderr, "testhost input: callbacks=%lu batches=%lu records=%lu bytes=%llu "
            "malformed=%lu dropped=%lu\n", h.st.callbacks, h.st.batches, h.st.records,
            h.st.bytes, h.st.malformed, h.st.dropped);
    buf_free(&h.json);
    return h.failed ? 1 : 0;
}
