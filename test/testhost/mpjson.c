//go:build ignore
// (the line above keeps the Go tool from taking this C file as cgo source of the
// directory's Go test package; the Makefile builds it)

/*
 * msgpack -> JSON, in the shape of Fluent Bit's stdout output with format json_lines
 * (src/flb_pack.c: msgpack2json): floats as %.16g (%.1f when integral), bin as a
 * string, ext as "\xNN..." except EventTime, which becomes float seconds.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "host.h"

static void put_str(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, start = 0;

    buf_putc(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        const char *esc = NULL;
        char u[6];

        switch (c) {
        case '"':  esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = hex[c >> 4]; u[5] = hex[c & 15];
                buf_append(b, s + start, i - start);
                buf_append(b, u, 6);
                start = i + 1;
            }
            continue;
        }
        buf_append(b, s + start, i - start);
        buf_append(b, esc, strlen(esc));
        start = i + 1;
    }
    buf_append(b, s + start, n - start);
    buf_putc(b, '"');
}

static void put_double(struct buf *b, double d)
{
    if (isnan(d) || isinf(d)) {
        buf_append(b, "null", 4);
    }
    else if (d == (double) (long long) d) {
        buf_printf(b, "%.1f", d);
    }
    else {
        buf_printf(b, "%.16g", d);
    }
}

static int is_event_time(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == 0 && o->via.ext.size == 8;
}

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *) p;
    return ((uint32_t) u[0] << 24) | ((uint32_t) u[1] << 16) | ((uint32_t) u[2] << 8) | u[3];
}

static double event_time_seconds(const msgpack_object *o)
{
    return (double) be32(o->via.ext.ptr) + (double) be32(o->via.ext.ptr + 4) / 1e9;
}

static void put_obj(struct buf *b, const msgpack_object *o);

static void put_key(struct buf *b, const msgpack_object *k)
{
    struct buf tmp = {0};

    if (k->type == MSGPACK_OBJECT_STR) {
        put_str(b, k->via.str.ptr, k->via.str.size);
        return;
    }
    if (k->type == MSGPACK_OBJECT_BIN) {
        put_str(b, k->via.bin.ptr, k->via.bin.size);
        return;
    }
    put_obj(&tmp, k);
    put_str(b, tmp.data ? tmp.data : "", tmp.len);
    buf_free(&tmp);
}

static void put_obj(struct buf *b, const msgpack_object *o)
{
    uint32_t i;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        buf_append(b, "null", 4);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        if (o->via.boolean) {
            buf_append(b, "true", 4);
        }
        else {
            buf_append(b, "false", 5);
        }
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        buf_printf(b, "%llu", (unsigned long long) o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        buf_printf(b, "%lld", (long long) o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        put_double(b, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        put_str(b, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        put_str(b, o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        if (is_event_time(o)) {
            put_double(b, event_time_seconds(o));
        }
        else {
            buf_putc(b, '"');
            for (i = 0; i < o->via.ext.size; i++) {
                buf_printf(b, "\\\\x%02x", (unsigned char) o->via.ext.ptr[i]);
            }
            buf_putc(b, '"');
        }
        break;
    case MSGPACK_OBJECT_ARRAY:
        buf_putc(b, '[');
        for (i = 0; i < o->via.array.size; i++) {
            if (i > 0) {
                buf_putc(b, ',');
            }
            put_obj(b, &o->via.array.ptr[i]);
        }
        buf_putc(b, ']');
        break;
    case MSGPACK_OBJECT_MAP:
        buf_putc(b, '{');
        for (i = 0; i < o->via.map.size; i++) {
            if (i > 0) {
                buf_putc(b, ',');
            }
            put_key(b, &o->via.map.ptr[i].key);
            buf_putc(b, ':');
            put_obj(b, &o->via.map.ptr[i].val);
        }
        buf_putc(b, '}');
        break;
    }
}

/* Decodes one event's timestamp; returns 1 for a normal record, 0 for a group marker
 * or an invalid event (skipped, as Fluent Bit's decoder does). */
static int record_time(const msgpack_object *ts, double *out)
{
    switch (ts->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double) ts->via.u64;
        return 1;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = ts->via.f64;
        return 1;
    case MSGPACK_OBJECT_EXT:
        if (!is_event_time(ts)) {
            return 0;
        }
        if (be32(ts->via.ext.ptr + 4) == 0 &&
            (be32(ts->via.ext.ptr) == 0xFFFFFFFFu || be32(ts->via.ext.ptr) == 0xFFFFFFFEu)) {
            return 0;
        }
        *out = event_time_seconds(ts);
        return 1;
    default:
        return 0;
    }
}

/* What Fluent Bit's log event decoder rejects in an event that chunk_to_json_lines lets
 * through (src/flb_log_event_decoder.c: flb_event_decoder_decode_object and
 * flb_log_event_decoder_decode_timestamp); NULL when it decodes. */
static const char *decoder_reject(const msgpack_object *root)
{
    const msgpack_object *ts = &root->via.array.ptr[0];

    if (ts->type == MSGPACK_OBJECT_ARRAY) {
        if (ts->via.array.size == 2 && ts->via.array.ptr[1].type != MSGPACK_OBJECT_MAP) {
            return "event metadata is not a map";
        }
        ts = &ts->via.array.ptr[0];
    }
    switch (ts->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return NULL;
    case MSGPACK_OBJECT_EXT:
        if (!is_event_time(ts)) {
            return "event timestamp is an ext that is not an EventTime (type 0, 8 bytes)";
        }
        if (be32(ts->via.ext.ptr) >= 0xFFFFFFFEu && be32(ts->via.ext.ptr + 4) != 0) {
            return "group marker EventTime with non-zero nanoseconds";
        }
        return NULL;
    default:
        return "event timestamp is not an unsigned integer, a float or an EventTime";
    }
}

static long convert(const char *data, size_t len, struct buf *out, int strict, const char **why)
{
    msgpack_unpacked result;
    size_t off = 0;
    long n = 0;
    msgpack_unpack_return ret;

    *why = NULL;
    msgpack_unpacked_init(&result);
    while ((ret = msgpack_unpack_next(&result, data, len, &off)) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *root = &result.data;
        const msgpack_object *ts, *body;
        double t;
        uint32_t i;

        if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 2) {
            *why = "event is not a 2-element array";
            n = -1;
            break;
        }
        ts = &root->via.array.ptr[0];
        if (ts->type == MSGPACK_OBJECT_ARRAY) {
            if (ts->via.array.size != 2) {
                *why = "event header is not a 2-element array";
                n = -1;
                break;
            }
            ts = &ts->via.array.ptr[0];
        }
        body = &root->via.array.ptr[1];
        if (body->type != MSGPACK_OBJECT_MAP) {
            *why = "event body is not a map";
            n = -1;
            break;
        }
        if (strict && (*why = decoder_reject(root)) != NULL) {
            n = -1;
            break;
        }
        if (!record_time(ts, &t)) {
            continue;
        }
        buf_append(out, "{\"date\":", 8);
        put_double(out, t);
        for (i = 0; i < body->via.map.size; i++) {
            buf_putc(out, ',');
            put_key(out, &body->via.map.ptr[i].key);
            buf_putc(out, ':');
            put_obj(out, &body->via.map.ptr[i].val);
        }
        buf_append(out, "}\n", 2);
        n++;
    }
    if (n >= 0 && off != len) {
        *why = "invalid or truncated msgpack";
        n = -1;
    }
    msgpack_unpacked_destroy(&result);
    return n;
}

long chunk_to_json_lines(const char *data, size_t len, struct buf *out)
{
    const char *why;

    return convert(data, len, out, 0, &why);
}

long events_to_json_lines(const char *data, size_t len, struct buf *out, const char **why)
{
    return convert(data, len, out, 1, why);
}
