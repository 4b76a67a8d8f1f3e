/*
 * flb-testhost: loads a Fluent Bit native filter plugin, or a Go-proxy input plugin, the
 * way Fluent Bit does and plays the host: the exported functions the plugin resolves at
 * run time and a fake filter or input instance.
 */
#ifndef FLB_TESTHOST_H
#define FLB_TESTHOST_H

#include <stddef.h>
#include <stdint.h>

#define FLB_FILTER_MODIFIED 1
#define FLB_FILTER_NOTOUCH  2

struct mk_list {
    struct mk_list *prev, *next;
};

/* include/fluent-bit/flb_filter.h, Fluent Bit >= 3.2 */
struct flb_filter_plugin {
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
    struct mk_list _head;
};

/*
 * The fake instance. Its first fields are laid out as Fluent Bit's struct
 * flb_filter_instance (the plugin reads log_level at the same offset); the rest is the
 * test host's own.
 */
struct flb_filter_instance {
    int event_type;
    int id;
    int log_level;
    int log_suppress_interval;
    char name[32];
    char *alias;
    /* test host only */
    int nprops;
    char **keys;
    char **vals;
    void *context;
    struct flb_filter_plugin *p;
};

struct host {
    void *dso;
    struct flb_filter_plugin plugin;
    struct flb_filter_instance ins;
    const char *tag;
};

/* Exit codes. */
#define EXIT_USAGE 1
#define EXIT_INIT  2

/* host.c */
void flb_log_print(int type, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int host_log_level(const char *name);
int host_set_property(struct flb_filter_instance *ins, const char *kv);
int host_load(struct host *h, const char *path);
int host_init(struct host *h);
int host_filter(struct host *h, const void *data, size_t len, void **out, size_t *out_len);
void host_exit(struct host *h);
long host_rss_kb(void);

/* A growing byte buffer. */
struct buf {
    char *data;
    size_t len, cap;
};
void buf_append(struct buf *b, const void *p, size_t n);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...);
void buf_free(struct buf *b);

/* mpjson.c: prints every record of a chunk as one JSON line, as Fluent Bit's stdout
 * output does with format json_lines: {"date":<seconds>, ...body}. Group markers are
 * skipped. Returns the number of records printed, -1 on malformed data. */
long chunk_to_json_lines(const char *data, size_t len, struct buf *out);

/* The same with the checks of Fluent Bit's log event decoder (src/flb_log_event_decoder.c:
 * metadata must be a map, the timestamp an unsigned integer, a float or an EventTime;
 * chunk_to_json_lines lets these pass or skips the event). On -1, *why says what is
 * wrong. For what an input hands Fluent Bit, which its outputs decode that way. */
long events_to_json_lines(const char *data, size_t len, struct buf *out, const char **why);

/* input.c: the `input` mode. */
struct input_opts {
    const char *lib;
    const char **props;
    int nprops;
    long interval_ms;   /* collector period */
    const char *out;    /* NULL: stdout */
    int no_ctx;         /* ignore the *Ctx callbacks (Fluent Bit < 4.1) */
    long pause_at_ms;   /* < 0: no pause */
    long pause_ms;
    long exit_after_ms; /* < 0: run until SIGTERM/SIGINT */
    long drain_ms;        /* the engine's ring-buffer drain period (FLB_DEV_RB_MS) */
    long append_delay_ms; /* between a callback's return and its append */
    long stall_at_ms;     /* < 0: the engine never stalls */
    long stall_ms;
};
int input_run(const struct input_opts *o);

#endif
