//go:build ignore
// (the line above keeps the Go tool from taking this C file as cgo source of the
// directory's Go test package; the Makefile builds it)

/*
 * The host side: the functions the fluent-bit executable exports (this program is
 * linked with -rdynamic so that the plugin's dlsym(RTLD_DEFAULT, ...) finds them), and
 * loading a plugin as src/flb_plugin.c does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "host.h"

/* ---- exported host API (names and signatures as in Fluent Bit) ---- */

const char *flb_filter_get_property(const char *key, struct flb_filter_instance *ins)
{
    int i;

    if (ins == NULL || key == NULL) {
        return NULL;
    }
    /* flb_kv_get_key_value: first match, case-insensitive */
    for (i = 0; i < ins->nprops; i++) {
        if (strcasecmp(ins->keys[i], key) == 0) {
            return ins->vals[i];
        }
    }
    return NULL;
}

void flb_filter_set_context(struct flb_filter_instance *ins, void *context)
{
    ins->context = context;
}

const char *flb_filter_name(struct flb_filter_instance *ins)
{
    if (ins->alias) {
        return ins->alias;
    }
    return ins->name;
}

static const char *log_type_name(int type)
{
    switch (type) {
    case 1: return "error";
    case 2: return " warn";
    case 3: return " info";
    case 4: return "debug";
    case 5: return "trace";
    }
    return "  ???";
}

void flb_log_print(int type, const char *file, int line, const char *fmt, ...)
{
    struct buf b = {0};
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    char *msg = NULL;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y/%m/%d %H:%M:%S", &tm);

    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    /* file and line are dropped, as Fluent Bit's flb_log_construct does */
    (void) file;
    (void) line;
    buf_printf(&b, "[%s] [%s] ", stamp, log_type_name(type));
    buf_append(&b, msg, (size_t) n);
    buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, stderr); /* one write: lines from threads do not mix */
    fflush(stderr);
    free(msg);
    buf_free(&b);
}

/* ---- the fake instance ---- */

/* flb_log_get_level_str: a log_level name to its number, -1 if unknown. */
int host_log_level(const char *s)
{
    static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    int i;

    for (i = 0; i < 6; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            return i;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        return 2;
    }
    return -1;
}

/* Like flb_filter_set_property: alias and log_level are instance fields, the rest
 * become properties. */
int host_set_property(struct flb_filter_instance *ins, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char *key;
    int level;

    if (eq == NULL || eq == kv) {
        fprintf(stderr, "flb-testhost: property '%s' is not key=value\n", kv);
        return -1;
    }
    key = strndup(kv, (size_t) (eq - kv));
    if (strcasecmp(key, "log_level") == 0) {
        level = host_log_level(eq + 1);
        if (level < 0) {
            fprintf(stderr, "flb-testhost: invalid log_level '%s'\n", eq + 1);
            free(key);
            return -1;
        }
        ins->log_level = level;
        free(key);
        return 0;
    }
    if (strcasecmp(key, "alias") == 0) {
        free(ins->alias);
        ins->alias = strdup(eq + 1);
        free(key);
        return 0;
    }
    ins->keys = realloc(ins->keys, sizeof(char *) * (size_t) (ins->nprops + 1));
    ins->vals = realloc(ins->vals, sizeof(char *) * (size_t) (ins->nprops + 1));
    ins->keys[ins->nprops] = key;
    ins->vals[ins->nprops] = strdup(eq + 1);
    ins->nprops++;
    return 0;
}

/* ---- loading, as src/flb_plugin.c: flb_plugin_load ---- */

#define PLUGIN_PREFIX "flb-"
#define PLUGIN_EXTENSION ".so"

/* path_to_plugin_name: flb-filter_k8s_audit.so -> filter_k8s_audit_plugin */
static char *symbol_name(const char *path)
{
    const char *base = strrchr(path, '/');
    size_t len, o_len;
    char *name;

    base = base ? base + 1 : path;
    len = strlen(base);
    if (len < strlen(PLUGIN_PREFIX) + strlen(PLUGIN_EXTENSION) ||
        strncmp(base, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) != 0 ||
        strcmp(base + len - strlen(PLUGIN_EXTENSION), PLUGIN_EXTENSION) != 0) {
        fprintf(stderr, "flb-testhost: '%s': a native plugin file is named "
                "flb-<type>_<name>.so (as Fluent Bit requires)\n", base);
        return NULL;
    }
    o_len = len - strlen(PLUGIN_PREFIX) - strlen(PLUGIN_EXTENSION);
    if (o_len < 7 || strncmp(base + strlen(PLUGIN_PREFIX), "filter_", 7) != 0) {
        fprintf(stderr, "flb-testhost: '%s' is not a filter plugin (flb-filter_<name>.so)\n",
                base);
        return NULL;
    }
    name = malloc(o_len + sizeof("_plugin"));
    memcpy(name, base + strlen(PLUGIN_PREFIX), o_len);
    strcpy(name + o_len, "_plugin");
    return name;
}

int host_load(struct host *h, const char *path)
{
    char *sym_name;
    void *sym;
    const char *err;
    FILE *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "flb-testhost: cannot open library %s: %s\n", path, strerror(errno));
        return -1;
    }
    fclose(f);
    sym_name = symbol_name(path);
    if (sym_name == NULL) {
        return -1;
    }
    h->dso = dlopen(path, RTLD_LAZY);
    if (h->dso == NULL) {
        fprintf(stderr, "flb-testhost: dlopen() %s\n", dlerror());
        free(sym_name);
        return -1;
    }
    dlerror();
    sym = dlsym(h->dso, sym_name);
    err = dlerror();
    if (sym == NULL || err != NULL) {
        fprintf(stderr, "flb-testhost: cannot load plugin '%s', registration structure "
                "is missing '%s'\n", path, sym_name);
        free(sym_name);
        return -1;
    }
    free(sym_name);
    memcpy(&h->plugin, sym, sizeof(struct flb_filter_plugin));
    if (h->plugin.cb_filter == NULL) {
        fprintf(stderr, "flb-testhost: plugin '%s' has no cb_filter\n", path);
        return -1;
    }
    if (h->plugin.event_type != 0 && (h->plugin.event_type & 1) == 0) {
        fprintf(stderr, "flb-testhost: plugin '%s' does not filter logs\n", path);
        return -1;
    }
    h->ins.p = &h->plugin;
    h->ins.event_type = 1;
    h->ins.id = 0;
    snprintf(h->ins.name, sizeof(h->ins.name), "%s.%d", h->plugin.name, h->ins.id);
    if (h->tag == NULL) {
        h->tag = "kube-audit";
    }
    return 0;
}

/* As src/flb_filter.c: flb_filter_init: pre_run, then init; non-zero fails. */
int host_init(struct host *h)
{
    int ret;

    if (h->plugin.cb_pre_run) {
        ret = h->plugin.cb_pre_run(&h->ins, NULL, NULL);
        if (ret != 0) {
            fprintf(stderr, "flb-testhost: Failed pre_run callback on filter %s\n", h->ins.name);
            return -1;
        }
    }
    if (h->plugin.cb_init) {
        ret = h->plugin.cb_init(&h->ins, NULL, NULL);
        if (ret != 0) {
            fprintf(stderr, "flb-testhost: Failed initialize filter %s\n", h->ins.name);
            return -1;
        }
    }
    return 0;
}

int host_filter(struct host *h, const void *data, size_t len, void **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    return h->plugin.cb_filter(data, len, h->tag, (int) strlen(h->tag), out, out_len,
                               &h->ins, NULL, h->ins.context, NULL);
}

/* As flb_filter_instance_exit: cb_exit only with a context. */
void host_exit(struct host *h)
{
    if (h->plugin.cb_exit && h->ins.context) {
        h->plugin.cb_exit(h->ins.context, NULL);
    }
    h->ins.context = NULL;
}

long host_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* ---- buf ---- */

void buf_append(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->data = realloc(b->data, cap);
        if (b->data == NULL) {
            fprintf(stderr, "flb-testhost: out of memory\n");
            exit(1);
        }
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_putc(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t) n < sizeof(tmp)) {
        buf_append(b, tmp, (size_t) n);
        return;
    }
    {
        char *big = malloc((size_t) n + 1);
        va_start(ap, fmt);
        vsnprintf(big, (size_t) n + 1, fmt, ap);
        va_end(ap);
        buf_append(b, big, (size_t) n);
        free(big);
    }
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
