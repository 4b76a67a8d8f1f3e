//go:build ignore
// (the line above keeps the Go tool from taking this C file as cgo source of the
// directory's Go test package; the Makefile builds it)

/*
 * flb-testhost: runs a Fluent Bit native filter plugin (flb-filter_<name>.so), or a
 * Go-proxy input plugin, without Fluent Bit. For a filter it loads the library as Fluent
 * Bit does (dlopen RTLD_LAZY, the registration structure named after the file, copied),
 * provides the host functions the plugin resolves at run time, and calls cb_init /
 * cb_filter / cb_exit with malloc/free ownership as Fluent Bit has it. For an input it
 * plays Fluent Bit 5.1.1's Go proxy (input.c).
 *
 *   flb-testhost filter -l LIB [-p key=value]... [-n RECORDS_PER_CHUNK] [FILE|-]
 *       audit log lines -> {"log": line} records -> filter -> JSON lines on stdout
 *   flb-testhost frames -l LIB [-p key=value]...
 *       stdin: frames (uint32 LE length + msgpack chunk); stdout per frame:
 *       uint32 LE return code, uint32 LE length, bytes (output if modified, else input)
 *   flb-testhost stress -l LIB [-p k=v]... --threads T --repeat R FILE
 *       FILE holds frames; T threads run them R times on one instance (after a
 *       warm-up of R/10 times) and compare every output with a single-threaded
 *       reference
 *   flb-testhost bench -l LIB [-p k=v]... [-n RECORDS_PER_CHUNK] [--seconds S] FILE
 *       one thread calls cb_filter (and frees the output) for S seconds
 *   flb-testhost input -l LIB [-p k=v]... [--interval-ms MS] [--out FILE] [--no-ctx]
 *                      [--pause-at-ms A --pause-ms P] [--exit-after-ms T]
 *                      [--drain-ms D] [--append-delay-ms W] [--stall-at-ms A --stall-ms S]
 *       LIB is a Go-proxy input (FLBPluginRegister, e.g. build/kubetrail.so), run as
 *       Fluent Bit runs a threaded input (input.c says which source each step follows):
 *       FLBPluginInit and, every MS (1000) ms, the input callback on the input's own
 *       thread ("flb-in-<name>-w0"); the append only copies the buffer into a ring of
 *       thread.ring_buffer.capacity (1024) slots and the cleanup callback follows
 *       whatever it returned; the engine thread ("flb-pipeline") moves ring entries
 *       into the "chunk", FILE (JSON lines, fsync()ed; default stdout), every D (250)
 *       ms unless the input is paused. With -p threaded=off everything runs on the
 *       engine thread and the append writes FILE before the cleanup callback.
 *       --no-ctx ignores the *Ctx callbacks (Fluent Bit < 4.1). Back-pressure at A ms
 *       for P ms (the engine stops draining; FLBPluginInputPause, later
 *       FLBPluginInputResume). W ms between a callback's return and its append (the
 *       input thread descheduled). The engine busy from A ms for S ms (no drains).
 *       Stops on SIGTERM/SIGINT or after T ms: pause (as Fluent Bit's shutdown), one
 *       second of drains, FLBPluginInputPreExit, FLBPluginExit, what the ring still
 *       holds freed (lost, as Fluent Bit's flb_input_instance_destroy), then
 *       FLBPluginUnregister; then one summary line on stderr: testhost input:
 *       callbacks=N batches=N records=N bytes=N malformed=N dropped=N (dropped: ring
 *       entries that never reached FILE)
 *
 * Exit codes: 0 ok, 1 usage, load or I/O error, 2 cb_init / FLBPluginInit failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "host.h"

struct opts {
    const char *mode;
    const char *lib;
    const char *file;
    const char *tag;
    const char **props;
    int nprops;
    long per_chunk;
    long threads;
    long repeat;
    double seconds;
    /* input mode */
    long interval_ms;
    const char *out;
    int no_ctx;
    long pause_at_ms;
    long pause_ms;
    long exit_after_ms;
    long drain_ms;
    long append_delay_ms;
    long stall_at_ms;
    long stall_ms;
};

static void usage(void)
{
    fprintf(stderr,
        "usage:\n"
        "  flb-testhost filter -l LIB [-p key=value]... [-n RECORDS_PER_CHUNK] [FILE|-]\n"
        "  flb-testhost frames -l LIB [-p key=value]...\n"
        "  flb-testhost stress -l LIB [-p key=value]... --threads T --repeat R FILE\n"
        "  flb-testhost bench  -l LIB [-p key=value]... [-n RECORDS_PER_CHUNK] [--seconds S] FILE\n"
        "  flb-testhost input  -l LIB [-p key=value]... [--interval-ms MS] [--out FILE] [--no-ctx]\n"
        "                      [--pause-at-ms A --pause-ms P] [--exit-after-ms T]\n"
        "                      [--drain-ms D] [--append-delay-ms W] [--stall-at-ms A --stall-ms S]\n"
        "LIB is the plugin file as Fluent Bit loads it: build/flb-filter_k8s_audit.so for the\n"
        "filter modes, build/kubetrail.so (a Go-proxy input) for input.\n"
        "Other options: --tag TAG (default kube-audit).\n");
    exit(EXIT_USAGE);
}

static long parse_long(const char *flag, const char *s, long min)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min) {
        fprintf(stderr, "flb-testhost: %s needs an integer >= %ld, got '%s'\n", flag, min, s);
        exit(EXIT_USAGE);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->per_chunk = 256;
    o->threads = 4;
    o->repeat = 10;
    o->seconds = 5;
    o->interval_ms = 1000; /* PROXY_CALLBACK_TIME */
    o->pause_at_ms = -1;
    o->pause_ms = -1;
    o->exit_after_ms = -1;
    o->drain_ms = 250; /* FLB_DEV_RB_MS */
    o->stall_at_ms = -1;
    o->stall_ms = -1;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage();
    }
    o->mode = argv[1];
    o->props = calloc((size_t) argc, sizeof(char *));
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;

        if (strcmp(a, "-l") == 0 && has_next) {
            o->lib = argv[++i];
        }
        else if (strcmp(a, "-p") == 0 && has_next) {
            o->props[o->nprops++] = argv[++i];
        }
        else if (strcmp(a, "-n") == 0 && has_next) {
            o->per_chunk = parse_long("-n", argv[++i], 1);
        }
        else if (strcmp(a, "--threads") == 0 && has_next) {
            o->threads = parse_long("--threads", argv[++i], 1);
        }
        else if (strcmp(a, "--repeat") == 0 && has_next) {
            o->repeat = parse_long("--repeat", argv[++i], 1);
        }
        else if (strcmp(a, "--seconds") == 0 && has_next) {
            o->seconds = atof(argv[++i]);
            if (o->seconds <= 0) {
                fprintf(stderr, "flb-testhost: --seconds needs a positive number\n");
                exit(EXIT_USAGE);
            }
        }
        else if (strcmp(a, "--tag") == 0 && has_next) {
            o->tag = argv[++i];
        }
        else if (strcmp(a, "--interval-ms") == 0 && has_next) {
            o->interval_ms = parse_long("--interval-ms", argv[++i], 1);
        }
        else if (strcmp(a, "--out") == 0 && has_next) {
            o->out = argv[++i];
        }
        else if (strcmp(a, "--no-ctx") == 0) {
            o->no_ctx = 1;
        }
        else if (strcmp(a, "--pause-at-ms") == 0 && has_next) {
            o->pause_at_ms = parse_long("--pause-at-ms", argv[++i], 0);
        }
        else if (strcmp(a, "--pause-ms") == 0 && has_next) {
            o->pause_ms = parse_long("--pause-ms", argv[++i], 0);
        }
        else if (strcmp(a, "--exit-after-ms") == 0 && has_next) {
            o->exit_after_ms = parse_long("--exit-after-ms", argv[++i], 0);
        }
        else if (strcmp(a, "--drain-ms") == 0 && has_next) {
            o->drain_ms = parse_long("--drain-ms", argv[++i], 1);
        }
        else if (strcmp(a, "--append-delay-ms") == 0 && has_next) {
            o->append_delay_ms = parse_long("--append-delay-ms", argv[++i], 0);
        }
        else if (strcmp(a, "--stall-at-ms") == 0 && has_next) {
            o->stall_at_ms = parse_long("--stall-at-ms", argv[++i], 0);
        }
        else if (strcmp(a, "--stall-ms") == 0 && has_next) {
            o->stall_ms = parse_long("--stall-ms", argv[++i], 0);
        }
        else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "flb-testhost: unknown or incomplete option '%s'\n", a);
            usage();
        }
        else if (o->file == NULL) {
            o->file = a;
        }
        else {
            fprintf(stderr, "flb-testhost: unexpected argument '%s'\n", a);
            usage();
        }
    }
    if (o->lib == NULL) {
        fprintf(stderr, "flb-testhost: -l LIB is required\n");
        usage();
    }
}

/* Loads and initializes the plugin; exits on failure. */
static void start(struct host *h, const struct opts *o)
{
    int i;

    memset(h, 0, sizeof(*h));
    h->tag = o->tag;
    h->ins.log_level = 3; /* info, as Fluent Bit's default */
    for (i = 0; i < o->nprops; i++) {
        if (host_set_property(&h->ins, o->props[i]) != 0) {
            exit(EXIT_USAGE);
        }
    }
    if (host_load(h, o->lib) != 0) {
        exit(EXIT_USAGE);
    }
    if (host_init(h) != 0) {
        exit(EXIT_INIT);
    }
}

static double now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double now_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- packing ---- */

static void pack_record(msgpack_packer *pk, const char *line, size_t len)
{
    struct timespec ts;
    unsigned char t[8];

    clock_gettime(CLOCK_REALTIME, &ts);
    t[0] = (unsigned char) (ts.tv_sec >> 24);
    t[1] = (unsigned char) (ts.tv_sec >> 16);
    t[2] = (unsigned char) (ts.tv_sec >> 8);
    t[3] = (unsigned char) ts.tv_sec;
    t[4] = (unsigned char) (ts.tv_nsec >> 24);
    t[5] = (unsigned char) (ts.tv_nsec >> 16);
    t[6] = (unsigned char) (ts.tv_nsec >> 8);
    t[7] = (unsigned char) ts.tv_nsec;

    msgpack_pack_array(pk, 2);
    msgpack_pack_array(pk, 2);
    msgpack_pack_ext(pk, 8, 0);
    msgpack_pack_ext_body(pk, t, 8);
    msgpack_pack_map(pk, 0);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str(pk, 3);
    msgpack_pack_str_body(pk, "log", 3);
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, line, len);
}

/* Reads the next line without its newline; returns its length, -1 at end. Empty lines
 * are skipped, as in_tail does. */
static ssize_t next_line(FILE *f, char **line, size_t *cap)
{
    ssize_t n;

    while ((n = getline(line, cap, f)) >= 0) {
        if (n > 0 && (*line)[n - 1] == '\n') {
            n--;
        }
        if (n > 0) {
            return n;
        }
    }
    return -1;
}

static FILE *open_input(const char *file)
{
    FILE *f;

    if (file == NULL || strcmp(file, "-") == 0) {
        return stdin;
    }
    f = fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "flb-testhost: cannot read %s: %s\n", file, strerror(errno));
        exit(EXIT_USAGE);
    }
    return f;
}

static int read_all(const char *file, struct buf *b)
{
    FILE *f = open_input(file);
    char tmp[65536];
    size_t n;

    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        buf_append(b, tmp, n);
    }
    if (ferror(f)) {
        fprintf(stderr, "flb-testhost: error reading %s: %s\n", file, strerror(errno));
        exit(EXIT_USAGE);
    }
    if (f != stdin) {
        fclose(f);
    }
    return 0;
}

/* ---- filter ---- */

static int run_chunk_to_stdout(struct host *h, msgpack_sbuffer *sb, struct buf *json)
{
    void *out = NULL;
    size_t out_len = 0;
    int rc;
    long n;

    rc = host_filter(h, sb->data, sb->size, &out, &out_len);
    json->len = 0;
    if (rc == FLB_FILTER_MODIFIED) {
        n = out_len > 0 ? chunk_to_json_lines(out, out_len, json) : 0;
        free(out);
    }
    else {
        free(out);
        n = chunk_to_json_lines(sb->data, sb->size, json);
    }
    if (n < 0) {
        fprintf(stderr, "flb-testhost: the filter returned malformed msgpack\n");
        return -1;
    }
    fwrite(json->data, 1, json->len, stdout);
    return 0;
}

static int mode_filter(const struct opts *o)
{
    struct host h;
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long in_chunk = 0;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct buf json = {0};
    int ret = 0;

    f = open_input(o->file);
    start(&h, o);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    while ((n = next_line(f, &line, &cap)) >= 0) {
        pack_record(&pk, line, (size_t) n);
        if (++in_chunk == o->per_chunk) {
            if (run_chunk_to_stdout(&h, &sb, &json) != 0) {
                ret = 1;
            }
            msgpack_sbuffer_clear(&sb);
            in_chunk = 0;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "flb-testhost: error reading %s: %s\n", o->file ? o->file : "stdin",
                strerror(errno));
        ret = 1;
    }
    if (in_chunk > 0 && run_chunk_to_stdout(&h, &sb, &json) != 0) {
        ret = 1;
    }
    fflush(stdout);
    host_exit(&h);
    msgpack_sbuffer_destroy(&sb);
    buf_free(&json);
    free(line);
    return ret;
}

/* ---- frames ---- */

struct frames {
    char **data;
    size_t *len;
    size_t n;
};

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}

/* Splits a buffer of frames; each frame is copied into a malloc()ed buffer of its own
 * exact size, as Fluent Bit hands a filter a buffer it owns. */
static int parse_frames(const char *src, size_t len, const char *what, struct frames *fr)
{
    size_t off = 0;

    memset(fr, 0, sizeof(*fr));
    while (off < len) {
        uint32_t n;

        if (len - off < 4) {
            fprintf(stderr, "flb-testhost: %s: truncated frame header at byte %zu\n", what, off);
            return -1;
        }
        n = le32((const unsigned char *) src + off);
        off += 4;
        if (len - off < n) {
            fprintf(stderr, "flb-testhost: %s: frame of %u bytes at byte %zu is truncated\n",
                    what, n, off - 4);
            return -1;
        }
        fr->data = realloc(fr->data, sizeof(char *) * (fr->n + 1));
        fr->len = realloc(fr->len, sizeof(size_t) * (fr->n + 1));
        fr->data[fr->n] = malloc(n > 0 ? n : 1);
        memcpy(fr->data[fr->n], src + off, n);
        fr->len[fr->n] = n;
        fr->n++;
        off += n;
    }
    return 0;
}

static int read_frame(FILE *f, char **data, uint32_t *len)
{
    unsigned char hdr[4];
    size_t got = fread(hdr, 1, 4, f);

    if (got == 0 && feof(f)) {
        return 0;
    }
    if (got != 4) {
        fprintf(stderr, "flb-testhost: truncated frame header on stdin\n");
        return -1;
    }
    *len = le32(hdr);
    *data = malloc(*len > 0 ? *len : 1);
    if (*len > 0 && fread(*data, 1, *len, f) != *len) {
        fprintf(stderr, "flb-testhost: truncated frame of %u bytes on stdin\n", *len);
        free(*data);
        return -1;
    }
    return 1;
}

static int mode_frames(const struct opts *o)
{
    struct host h;
    char *data;
    uint32_t len;
    int r;

    if (o->file != NULL) {
        fprintf(stderr, "flb-testhost: frames reads stdin only\n");
        return EXIT_USAGE;
    }
    start(&h, o);
    while ((r = read_frame(stdin, &data, &len)) > 0) {
        void *out = NULL;
        size_t out_len = 0;
        unsigned char hdr[8];
        int rc = host_filter(&h, data, len, &out, &out_len);

        put_le32(hdr, (uint32_t) rc);
        if (rc == FLB_FILTER_MODIFIED) {
            put_le32(hdr + 4, (uint32_t) out_len);
            fwrite(hdr, 1, 8, stdout);
            if (out_len > 0) {
                fwrite(out, 1, out_len, stdout);
            }
        }
        else {
            put_le32(hdr + 4, len);
            fwrite(hdr, 1, 8, stdout);
            fwrite(data, 1, len, stdout);
        }
        free(out);
        free(data);
        fflush(stdout);
    }
    host_exit(&h);
    return r < 0 ? 1 : 0;
}

/* ---- stress ---- */

struct stress {
    struct host *h;
    struct frames *fr;
    int *ref_rc;
    char **ref;
    size_t *ref_len;
    long repeat;
    unsigned long calls;
    unsigned long mismatches;
};

static int one_call(struct host *h, const char *data, size_t len, int *rc, char **res, size_t *res_len)
{
    void *out = NULL;
    size_t out_len = 0;

    *rc = host_filter(h, data, len, &out, &out_len);
    if (*rc == FLB_FILTER_MODIFIED) {
        *res = out;
        *res_len = out_len;
    }
    else {
        free(out);
        *res = NULL;
        *res_len = 0;
    }
    return 0;
}

static void *stress_thread(void *arg)
{
    struct stress *s = arg;
    long r;
    size_t i;

    for (r = 0; r < s->repeat; r++) {
        for (i = 0; i < s->fr->n; i++) {
            int rc;
            char *res;
            size_t res_len;

            one_call(s->h, s->fr->data[i], s->fr->len[i], &rc, &res, &res_len);
            __atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
            if (rc != s->ref_rc[i] || res_len != s->ref_len[i] ||
                (res_len > 0 && memcmp(res, s->ref[i], res_len) != 0)) {
                __atomic_fetch_add(&s->mismatches, 1, __ATOMIC_RELAXED);
            }
            free(res);
        }
    }
    return NULL;
}

static void run_threads(struct stress *s, long threads, long repeat)
{
    pthread_t *tids = calloc((size_t) threads, sizeof(pthread_t));
    long t;

    s->repeat = repeat;
    for (t = 0; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, stress_thread, s) != 0) {
            fprintf(stderr, "flb-testhost: pthread_create failed\n");
            exit(1);
        }
    }
    for (t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
    }
    free(tids);
}

static int mode_stress(const struct opts *o)
{
    struct host h;
    struct buf file = {0};
    struct frames fr;
    struct stress s;
    size_t i;
    long rss_start, rss_warm, rss_end, warm;
    double t0;

    if (o->file == NULL) {
        fprintf(stderr, "flb-testhost: stress needs a FILE of frames\n");
        return EXIT_USAGE;
    }
    read_all(o->file, &file);
    if (parse_frames(file.data, file.len, o->file, &fr) != 0) {
        return 1;
    }
    if (fr.n == 0) {
        fprintf(stderr, "flb-testhost: %s holds no frames\n", o->file);
        return 1;
    }
    start(&h, o);
    rss_start = host_rss_kb();

    memset(&s, 0, sizeof(s));
    s.h = &h;
    s.fr = &fr;
    s.ref_rc = calloc(fr.n, sizeof(int));
    s.ref = calloc(fr.n, sizeof(char *));
    s.ref_len = calloc(fr.n, sizeof(size_t));
    for (i = 0; i < fr.n; i++) {
        one_call(&h, fr.data[i], fr.len[i], &s.ref_rc[i], &s.ref[i], &s.ref_len[i]);
    }
    /* warm-up: every thread runs every frame repeat/10 times (at least once), so that
     * the Go heap reaches its steady size before RSS is taken */
    warm = o->repeat / 10 > 0 ? o->repeat / 10 : 1;
    run_threads(&s, o->threads, warm);
    rss_warm = host_rss_kb();
    t0 = now_wall();
    run_threads(&s, o->threads, o->repeat);
    rss_end = host_rss_kb();

    printf("{\"threads\":%ld,\"repeat\":%ld,\"warmup_repeat\":%ld,\"frames\":%zu,\"calls\":%lu,\"mismatches\":%lu,"
           "\"rss_kb_start\":%ld,\"rss_kb_warm\":%ld,\"rss_kb_end\":%ld,\"seconds\":%.3f}\n",
           o->threads, o->repeat, warm, fr.n, s.calls, s.mismatches,
           rss_start, rss_warm, rss_end, now_wall() - t0);
    fflush(stdout);
    host_exit(&h);
    for (i = 0; i < fr.n; i++) {
        free(fr.data[i]);
        free(s.ref[i]);
    }
    return s.mismatches == 0 ? 0 : 1;
}

/* ---- bench ---- */

static int mode_bench(const struct opts *o)
{
    struct host h;
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long in_chunk = 0, total_records = 0, chunks = 0;
    char **lines = NULL;
    size_t *line_len = NULL, nlines = 0, nchunks, c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct frames fr = {0};
    long *per = NULL;
    size_t i;
    double w0, c0, p0, wall, cpu, pcpu;
    unsigned long long in_bytes = 0;

    if (o->file == NULL) {
        fprintf(stderr, "flb-testhost: bench needs a FILE of audit log lines\n");
        return EXIT_USAGE;
    }
    /* Read the corpus, then fill chunks of per_chunk records by cycling through it
     * (a tail input fills its chunks the same way from a busy log), so that the
     * figure is the per-record cost at a realistic chunk size whatever the corpus
     * length. Every line is packed at least once. */
    f = open_input(o->file);
    while ((n = next_line(f, &line, &cap)) >= 0) {
        lines = realloc(lines, sizeof(char *) * (nlines + 1));
        line_len = realloc(line_len, sizeof(size_t) * (nlines + 1));
        lines[nlines] = malloc((size_t) n + 1);
        memcpy(lines[nlines], line, (size_t) n);
        line_len[nlines] = (size_t) n;
        nlines++;
    }
    if (f != stdin) {
        fclose(f);
    }
    if (nlines == 0) {
        fprintf(stderr, "flb-testhost: %s has no lines\n", o->file);
        return 1;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    nchunks = (nlines + (size_t) o->per_chunk - 1) / (size_t) o->per_chunk;
    for (c = 0; c < nchunks; c++) {
        for (in_chunk = 0; in_chunk < o->per_chunk; in_chunk++) {
            size_t idx = (c * (size_t) o->per_chunk + (size_t) in_chunk) % nlines;
            pack_record(&pk, lines[idx], line_len[idx]);
        }
        fr.data = realloc(fr.data, sizeof(char *) * (fr.n + 1));
        fr.len = realloc(fr.len, sizeof(size_t) * (fr.n + 1));
        per = realloc(per, sizeof(long) * (fr.n + 1));
        fr.data[fr.n] = malloc(sb.size);
        memcpy(fr.data[fr.n], sb.data, sb.size);
        fr.len[fr.n] = sb.size;
        per[fr.n] = in_chunk;
        fr.n++;
        msgpack_sbuffer_clear(&sb);
    }
    start(&h, o);

    w0 = now_wall();
    c0 = now_clock(CLOCK_THREAD_CPUTIME_ID);
    p0 = now_clock(CLOCK_PROCESS_CPUTIME_ID);
    do {
        for (i = 0; i < fr.n; i++) {
            void *out = NULL;
            size_t out_len = 0;

            host_filter(&h, fr.data[i], fr.len[i], &out, &out_len);
            free(out);
            total_records += per[i];
            in_bytes += fr.len[i];
            chunks++;
        }
    } while (now_wall() - w0 < o->seconds);
    wall = now_wall() - w0;
    cpu = now_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
    pcpu = now_clock(CLOCK_PROCESS_CPUTIME_ID) - p0;

    printf("{\"records\":%ld,\"chunks\":%ld,\"records_per_chunk\":%ld,"
           "\"input_bytes\":%llu,\"wall_seconds\":%.3f,\"cpu_seconds\":%.3f,"
           "\"process_cpu_seconds\":%.3f,\"records_per_sec\":%.0f,\"ns_per_record\":%.0f,"
           "\"cpu_ns_per_record\":%.0f,\"bytes_per_sec\":%.0f,\"rss_kb\":%ld}\n",
           total_records, chunks, o->per_chunk, in_bytes, wall, cpu, pcpu,
           (double) total_records / wall, wall * 1e9 / (double) total_records,
           cpu * 1e9 / (double) total_records, (double) in_bytes / wall, host_rss_kb());
    fflush(stdout);
    host_exit(&h);
    msgpack_sbuffer_destroy(&sb);
    for (i = 0; i < nlines; i++) {
        free(lines[i]);
    }
    free(lines);
    free(line_len);
    free(line);
    return 0;
}

/* ---- input ---- */

static int mode_input(const struct opts *o)
{
    struct input_opts io;

    if (o->file != NULL) {
        fprintf(stderr, "flb-testhost: input takes no FILE argument (see --out)\n");
        return EXIT_USAGE;
    }
    if ((o->pause_at_ms < 0) != (o->pause_ms < 0)) {
        fprintf(stderr, "flb-testhost: --pause-at-ms and --pause-ms go together\n");
        return EXIT_USAGE;
    }
    if ((o->stall_at_ms < 0) != (o->stall_ms < 0)) {
        fprintf(stderr, "flb-testhost: --stall-at-ms and --stall-ms go together\n");
        return EXIT_USAGE;
    }
    memset(&io, 0, sizeof(io));
    io.lib = o->lib;
    io.props = o->props;
    io.nprops = o->nprops;
    io.interval_ms = o->interval_ms;
    io.out = o->out;
    io.no_ctx = o->no_ctx;
    io.pause_at_ms = o->pause_at_ms;
    io.pause_ms = o->pause_ms;
    io.exit_after_ms = o->exit_after_ms;
    io.drain_ms = o->drain_ms;
    io.append_delay_ms = o->append_delay_ms;
    io.stall_at_ms = o->stall_at_ms;
    io.stall_ms = o->stall_ms;
    return input_run(&io);
}

int main(int argc, char **argv)
{
    struct opts o;

    parse_args(argc, argv, &o);
    if (strcmp(o.mode, "filter") == 0) {
        return mode_filter(&o);
    }
    if (strcmp(o.mode, "frames") == 0) {
        return mode_frames(&o);
    }
    if (strcmp(o.mode, "stress") == 0) {
        return mode_stress(&o);
    }
    if (strcmp(o.mode, "bench") == 0) {
        return mode_bench(&o);
    }
    if (strcmp(o.mode, "input") == 0) {
        return mode_input(&o);
    }
    fprintf(stderr, "flb-testhost: unknown mode '%s'\n", o.mode);
    usage();
    return EXIT_USAGE;
}
