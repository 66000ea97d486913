/*
 * polyhost.c: the JSON reader and writer, the log and chunk wrappers, and the entry points of
 * a polyhost wasm node (see polyhost.h). Build with -DPOLYHOST_REACTOR or -DPOLYHOST_COMMAND.
 */
#include "polyhost.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(POLYHOST_REACTOR) == defined(POLYHOST_COMMAND)
#error "define exactly one of POLYHOST_REACTOR and POLYHOST_COMMAND"
#endif

/* Deeper nesting than this is refused rather than risking the guest's small stack. */
#define MAX_DEPTH 256

struct ph_output {
    ph_buf fields; /* `"key":value` pairs joined by commas */
    bool failed;
    char *code;
    char *message;
};

/* ---- buffers ------------------------------------------------------------------------------ */

static void out_of_memory(void) {
    /* Nothing sensible is left to do; a trap tells the host the guest failed. */
    __builtin_trap();
}

void ph_buf_put(ph_buf *buf, const char *bytes, size_t len) {
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < buf->len + len + 1) cap *= 2;
        char *data = realloc(buf->data, cap);
        if (data == NULL) out_of_memory();
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

static void buf_puts(ph_buf *buf, const char *text) { ph_buf_put(buf, text, strlen(text)); }

void ph_buf_quote(ph_buf *buf, const char *text, size_t len) {
    static const char hex[] = "0123456789abcdef";
    ph_buf_put(buf, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed in one call */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        const char *escape = NULL;
        char code[7];
        if (c == '"') escape = "\\\"";
        else if (c == '\\') escape = "\\\\";
        else if (c == '\n') escape = "\\n";
        else if (c == '\r') escape = "\\r";
        else if (c == '\t') escape = "\\t";
        else if (c < 0x20) {
            memcpy(code, "\\u00", 4);
            code[4] = hex[c >> 4];
            code[5] = hex[c & 15];
            code[6] = '\0';
            escape = code;
        }
        if (escape != NULL) {
            ph_buf_put(buf, text + i - run, run);
            run = 0;
            buf_puts(buf, escape);
        } else {
            run++;
        }
    }
    ph_buf_put(buf, text + len - run, run);
    ph_buf_put(buf, "\"", 1);
}

void ph_buf_num(ph_buf *buf, double value) {
    char text[32];
    if (!isfinite(value)) {
        buf_puts(buf, "null");
        return;
    }
    if (value == floor(value) && fabs(value) < 9007199254740992.0) {
        snprintf(text, sizeof text, "%.0f", value);
    } else {
        /* The shortest of these that reads back as the same double (17 digits always do). */
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(text, sizeof text, "%.*g", digits, value);
            if (strtod(text, NULL) == value) break;
        }
    }
    buf_puts(buf, text);
}

/* ---- reading JSON ------------------------------------------------------------------------- */

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static const char *skip_string(const char *p, const char *end) {
    if (p >= end || *p != '"') return NULL;
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            if (++p >= end) return NULL;
            if (*p == 'u') {
                for (int i = 0; i < 4; i++) {
                    if (++p >= end || *p == '\0' || !strchr("0123456789abcdefABCDEF", *p)) return NULL;
                }
            } else if (*p == '\0' || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *skip_number(const char *p, const char *end) {
    if (p < end && *p == '-') p++;
    if (p >= end || !is_digit(*p)) return NULL;
    if (*p == '0') p++;
    else while (p < end && is_digit(*p)) p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p)) return NULL;
        while (p < end && is_digit(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !is_digit(*p)) return NULL;
        while (p < end && is_digit(*p)) p++;
    }
    return p;
}

static const char *skip_literal(const char *p, const char *end, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) return NULL;
    return p + n;
}

/* Past one JSON value starting at p (no leading space), or NULL if it is not valid JSON. */
static const char *skip_value(const char *p, const char *end, int depth) {
    if (p >= end || depth > MAX_DEPTH) return NULL;
    switch (*p) {
    case '"': return skip_string(p, end);
    case 't': return skip_literal(p, end, "true");
    case 'f': return skip_literal(p, end, "false");
    case 'n': return skip_literal(p, end, "null");
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                p = skip_string(p, end);
                if (p == NULL) return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p = skip_ws(p + 1, end);
            }
            p = skip_value(p, end, depth + 1);
            if (p == NULL) return NULL;
            p = skip_ws(p, end);
            if (p >= end) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p = skip_ws(p + 1, end);
        }
    }
    default: return skip_number(p, end);
    }
}

static bool is_string(ph_slice v) { return v.len > 0 && v.ptr[0] == '"'; }
static bool is_object(ph_slice v) { return v.len > 0 && v.ptr[0] == '{'; }

static void put_utf8(ph_buf *buf, uint32_t cp) {
    char b[4];
    size_t n;
    if (cp < 0x80) { b[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { b[0] = (char)(0xC0 | cp >> 6); b[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    ph_buf_put(buf, b, n);
}

static uint32_t hex4(const char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Decode a JSON string already checked by skip_string. */
static char *decode_string(ph_slice v, size_t *len) {
    ph_buf buf = {0};
    ph_buf_put(&buf, "", 0); /* a valid empty string even when nothing is appended */
    const char *p = v.ptr + 1, *end = v.ptr + v.len - 1;
    while (p < end) {
        const char *start = p;
        while (p < end && *p != '\\') p++;
        ph_buf_put(&buf, start, (size_t)(p - start));
        if (p >= end) break;
        char e = p[1];
        p += 2;
        switch (e) {
        case 'b': ph_buf_put(&buf, "\b", 1); break;
        case 'f': ph_buf_put(&buf, "\f", 1); break;
        case 'n': ph_buf_put(&buf, "\n", 1); break;
        case 'r': ph_buf_put(&buf, "\r", 1); break;
        case 't': ph_buf_put(&buf, "\t", 1); break;
        case 'u': {
            uint32_t cp = hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                uint32_t low = hex4(p + 2);
                if (low >= 0xDC00 && low < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* a lone surrogate */
            put_utf8(&buf, cp);
            break;
        }
        default: ph_buf_put(&buf, &e, 1); break; /* " \ / */
        }
    }
    if (len != NULL) *len = buf.len;
    return buf.data;
}

bool ph_json_get(ph_slice object, const char *key, ph_slice *value) {
    if (!is_object(object)) return false;
    const char *end = object.ptr + object.len;
    const char *p = skip_ws(object.ptr + 1, end);
    size_t key_len = strlen(key);
    while (p < end && *p == '"') {
        const char *key_end = skip_string(p, end);
        if (key_end == NULL) return false;
        ph_slice name = {p, (size_t)(key_end - p)};
        p = skip_ws(key_end, end);
        if (p >= end || *p != ':') return false;
        p = skip_ws(p + 1, end);
        const char *value_end = skip_value(p, end, 1);
        if (value_end == NULL) return false;
        /* Keys without escapes compare in place; others are decoded first. */
        bool match;
        if (memchr(name.ptr, '\\', name.len) == NULL) {
            match = name.len - 2 == key_len && memcmp(name.ptr + 1, key, key_len) == 0;
        } else {
            size_t n;
            char *decoded = decode_string(name, &n);
            match = n == key_len && memcmp(decoded, key, n) == 0;
            free(decoded);
        }
        if (match) {
            value->ptr = p;
            value->len = (size_t)(value_end - p);
            return true;
        }
        p = skip_ws(value_end, end);
        if (p < end && *p == ',') p = skip_ws(p + 1, end);
    }
    return false;
}

bool ph_json_next(ph_slice array, size_t *cursor, ph_slice *element) {
    if (array.len == 0 || array.ptr[0] != '[') return false;
    const char *end = array.ptr + array.len;
    const char *p = skip_ws(array.ptr + (*cursor ? *cursor : 1), end);
    if (p < end && *p == ',') p = skip_ws(p + 1, end);
    if (p >= end || *p == ']') return false;
    const char *value_end = skip_value(p, end, 1);
    if (value_end == NULL) return false;
    element->ptr = p;
    element->len = (size_t)(value_end - p);
    *cursor = (size_t)(value_end - array.ptr);
    return true;
}

char *ph_json_str(ph_slice value, size_t *len) {
    return is_string(value) ? decode_string(value, len) : NULL;
}

bool ph_json_num(ph_slice value, double *number) {
    char text[64];
    if (value.len == 0 || value.len >= sizeof text) return false;
    if (!(value.ptr[0] == '-' || is_digit(value.ptr[0]))) return false;
    memcpy(text, value.ptr, value.len);
    text[value.len] = '\0';
    *number = strtod(text, NULL);
    return true;
}

bool ph_param_has(const ph_input *in, const char *key) {
    ph_slice v;
    return ph_json_get(in->params, key, &v);
}

bool ph_param_raw(const ph_input *in, const char *key, ph_slice *value) {
    return ph_json_get(in->params, key, value);
}

char *ph_param_str(const ph_input *in, const char *key, size_t *len) {
    ph_slice v;
    return ph_json_get(in->params, key, &v) ? ph_json_str(v, len) : NULL;
}

bool ph_param_num(const ph_input *in, const char *key, double *value) {
    ph_slice v;
    return ph_json_get(in->params, key, &v) && ph_json_num(v, value);
}

bool ph_param_int(const ph_input *in, const char *key, long long *value) {
    double d;
    if (!ph_param_num(in, key, &d) || d != floor(d) || fabs(d) > 9007199254740992.0) return false;
    *value = (long long)d;
    return true;
}

bool ph_param_bool(const ph_input *in, const char *key, bool *value) {
    ph_slice v;
    if (!ph_json_get(in->params, key, &v)) return false;
    if (v.len == 4 && memcmp(v.ptr, "true", 4) == 0) *value = true;
    else if (v.len == 5 && memcmp(v.ptr, "false", 5) == 0) *value = false;
    else return false;
    return true;
}

/* ---- writing the output ------------------------------------------------------------------ */

static void out_key(ph_output *out, const char *key) {
    if (out->fields.len > 0) ph_buf_put(&out->fields, ",", 1);
    ph_buf_quote(&out->fields, key, strlen(key));
    ph_buf_put(&out->fields, ":", 1);
}

void ph_out_strn(ph_output *out, const char *key, const char *value, size_t len) {
    out_key(out, key);
    ph_buf_quote(&out->fields, value, len);
}

void ph_out_str(ph_output *out, const char *key, const char *value) {
    if (value == NULL) ph_out_null(out, key);
    else ph_out_strn(out, key, value, strlen(value));
}

void ph_out_int(ph_output *out, const char *key, long long value) {
    char text[24];
    snprintf(text, sizeof text, "%lld", value);
    out_key(out, key);
    buf_puts(&out->fields, text);
}

void ph_out_num(ph_output *out, const char *key, double value) {
    out_key(out, key);
    ph_buf_num(&out->fields, value);
}

void ph_out_bool(ph_output *out, const char *key, bool value) {
    out_key(out, key);
    buf_puts(&out->fields, value ? "true" : "false");
}

void ph_out_null(ph_output *out, const char *key) {
    out_key(out, key);
    buf_puts(&out->fields, "null");
}

void ph_out_raw(ph_output *out, const char *key, const char *json, size_t len) {
    out_key(out, key);
    ph_buf_put(&out->fields, json, len);
}

int ph_fail(ph_output *out, const char *code, const char *message) {
    out->failed = true;
    free(out->code);
    free(out->message);
    out->code = strdup(code);
    out->message = strdup(message);
    return 1;
}

/* ---- running a call ---------------------------------------------------------------------- */

static char *ctx_str(ph_slice ctx, const char *key) {
    ph_slice v;
    char *s = ph_json_get(ctx, key, &v) ? ph_json_str(v, NULL) : NULL;
    return s != NULL ? s : strdup("");
}

/* Parse the input JSON and run the node; `wrap_ok` selects the reactor's {"ok": ...} framing
 * over a command's bare object. Returns the output JSON. */
static ph_buf run_node(const char *json, size_t len, bool wrap_ok) {
    ph_output out = {0};
    ph_input in = {0};
    const char *end = json + len;
    const char *start = skip_ws(json, end);
    const char *stop = skip_value(start, end, 0);
    ph_slice whole = {start, stop ? (size_t)(stop - start) : 0};
    if (stop == NULL || skip_ws(stop, end) != end || !is_object(whole)) {
        ph_fail(&out, "bad_input", "the input is not a JSON object");
    } else {
        ph_slice ctx = {"{}", 2};
        if (!ph_json_get(whole, "params", &in.params) || !is_object(in.params)) {
            in.params = (ph_slice){"{}", 2};
        }
        ph_json_get(whole, "ctx", &ctx);
        in.run_id = ctx_str(ctx, "run_id");
        in.node_id = ctx_str(ctx, "node_id");
        in.idempotency_key = ctx_str(ctx, "idempotency_key");
        ph_slice attempt;
        double n = 1;
        if (ph_json_get(ctx, "attempt", &attempt)) ph_json_num(attempt, &n);
        in.attempt = (long long)n;
        int status = polyhost_node(&in, &out);
        if (status != 0 && !out.failed) {
            char message[64];
            snprintf(message, sizeof message, "the node returned %d", status);
            ph_fail(&out, "node_failed", message);
        }
    }
    ph_buf result = {0};
    if (out.failed) {
        buf_puts(&result, "{\"error\":{\"code\":");
        ph_buf_quote(&result, out.code, strlen(out.code));
        buf_puts(&result, ",\"message\":");
        ph_buf_quote(&result, out.message, strlen(out.message));
        buf_puts(&result, "}}");
    } else {
        buf_puts(&result, wrap_ok ? "{\"ok\":{" : "{");
        if (out.fields.len > 0) ph_buf_put(&result, out.fields.data, out.fields.len);
        buf_puts(&result, wrap_ok ? "}}" : "}");
    }
    /* A fresh instance serves each call, so what the node allocated is not worth freeing. */
    return result;
}

#ifdef POLYHOST_REACTOR

void ph__host_log(int32_t level, const char *ptr, int32_t len)
    __attribute__((import_module("polyhost"), import_name("log")));
void ph__host_chunk(const char *ptr, int32_t len)
    __attribute__((import_module("polyhost"), import_name("chunk")));

static void emit_log(int level, const char *text, size_t len) {
    ph__host_log(level, text, (int32_t)len);
}

void ph_chunk(const char *json, size_t len) { ph__host_chunk(json, (int32_t)len); }

__attribute__((export_name("polyhost_alloc"))) int32_t polyhost_alloc(int32_t size) {
    void *p = malloc(size > 0 ? (size_t)size : 1);
    if (p == NULL) out_of_memory();
    return (int32_t)(uintptr_t)p;
}

__attribute__((export_name("polyhost_run"))) int64_t polyhost_run(int32_t ptr, int32_t len) {
    ph_buf result = run_node((const char *)(uintptr_t)ptr, (size_t)len, true);
    return (int64_t)((uint64_t)(uintptr_t)result.data << 32 | (uint64_t)(uint32_t)result.len);
}

#else /* POLYHOST_COMMAND */

static const char *const level_names[] = {"debug", "info", "warning", "error"};

static void emit_log(int level, const char *text, size_t len) {
    fprintf(stderr, "%s: %.*s\n", level_names[level], (int)len, text);
}

void ph_chunk(const char *json, size_t len) {
    /* A command has no channel for chunks: its stdout is the output alone. */
    (void)json;
    (void)len;
}

int main(void) {
    ph_buf input = {0};
    static char block[65536]; /* static: larger than a small guest stack should carry */
    size_t n;
    while ((n = fread(block, 1, sizeof block, stdin)) > 0) ph_buf_put(&input, block, n);
    if (ferror(stdin)) {
        fputs("cannot read the input from stdin\n", stderr);
        return 2;
    }
    ph_buf result = run_node(input.data ? input.data : "", input.len, false);
    fwrite(result.data, 1, result.len, stdout);
    return fflush(stdout) == 0 ? 0 : 2;
}

#endif

void ph_log(int level, const char *format, ...) {
    char small[256];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n < 0) return;
    if (level < PH_DEBUG || level > PH_ERROR) level = PH_INFO;
    if ((size_t)n < sizeof small) {
        emit_log(level, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) return;
    va_start(args, format);
    vsnprintf(big, (size_t)n + 1, format, args);
    va_end(args);
    emit_log(level, big, (size_t)n);
    free(big);
}
