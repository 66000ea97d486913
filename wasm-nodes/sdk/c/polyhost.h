/*
 * polyhost.h: write a polyhost wasm node in C.
 *
 * A node is one function:
 *
 *     #include "polyhost.h"
 *
 *     int polyhost_node(const ph_input *in, ph_output *out) {
 *         char *text = ph_param_str(in, "text", NULL);
 *         if (text == NULL) return ph_fail(out, "bad_params", "`text` must be a string");
 *         ph_out_int(out, "length", (long long)strlen(text));
 *         free(text);
 *         return 0;
 *     }
 *
 * and the same source builds either way the host runs wasm nodes (see ../../ABI.md):
 *
 *   reactor (fast):  clang --target=wasm32-wasi -mexec-model=reactor -DPOLYHOST_REACTOR ...
 *                    exports polyhost_alloc and polyhost_run;
 *   command:         clang --target=wasm32-wasi -DPOLYHOST_COMMAND ...
 *                    a `main` that reads the input from stdin and writes the output to stdout.
 *
 * The JSON reader handles any valid JSON input, and looks values up one level deep: a node reads
 * its flat params by key, and may take the raw JSON text of a nested value (ph_param_raw) to walk
 * it itself. Strings come back decoded to UTF-8, escapes and surrogate pairs included.
 */
#ifndef POLYHOST_H
#define POLYHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A JSON text in the input: points into the input buffer, not NUL-terminated. */
typedef struct {
    const char *ptr;
    size_t len;
} ph_slice;

/* What the host passes: the node's resolved `with` and the call's context. */
typedef struct {
    ph_slice params;          /* the raw params object */
    char *run_id;             /* "" when absent */
    char *node_id;            /* "" when absent */
    char *idempotency_key;    /* the same for every attempt of this node in this run */
    long long attempt;        /* 1 for the first attempt */
} ph_input;

/* The output being built: fields of the `ok` object, or an error. Opaque. */
typedef struct ph_output ph_output;

/* The node: fill `out` and return 0, or return ph_fail(...). Written by the node author. */
int polyhost_node(const ph_input *in, ph_output *out);

/* ---- params: top-level keys of in->params ------------------------------------------------ */

/* Whether the key is present (with any value, null included). */
bool ph_param_has(const ph_input *in, const char *key);
/* The decoded string, malloc'd and NUL-terminated (free it); NULL if absent or not a string.
 * If len is not NULL it receives the length in bytes (the string may hold NUL bytes). */
char *ph_param_str(const ph_input *in, const char *key, size_t *len);
/* A number; false if absent or not a number. */
bool ph_param_num(const ph_input *in, const char *key, double *value);
/* An integer; false if absent, not a number, or not a whole number in range. */
bool ph_param_int(const ph_input *in, const char *key, long long *value);
/* A boolean; false if absent or not true/false. */
bool ph_param_bool(const ph_input *in, const char *key, bool *value);
/* The raw JSON text of any value (object, array, ...); false if absent. */
bool ph_param_raw(const ph_input *in, const char *key, ph_slice *value);

/* ---- walking raw JSON (for nested values) ------------------------------------------------ */

/* The value of `key` in the JSON object `object`; false if absent or `object` is not one. */
bool ph_json_get(ph_slice object, const char *key, ph_slice *value);
/* The next element of a JSON array: start with *cursor = 0; false when there are no more. */
bool ph_json_next(ph_slice array, size_t *cursor, ph_slice *element);
/* Decode a JSON string or number value. */
char *ph_json_str(ph_slice value, size_t *len);
bool ph_json_num(ph_slice value, double *number);

/* ---- output: fields of the `ok` object, in order --------------------------------------- */

void ph_out_str(ph_output *out, const char *key, const char *value); /* NULL writes null */
void ph_out_strn(ph_output *out, const char *key, const char *value, size_t len);
void ph_out_int(ph_output *out, const char *key, long long value);
void ph_out_num(ph_output *out, const char *key, double value); /* NaN and infinities: null */
void ph_out_bool(ph_output *out, const char *key, bool value);
void ph_out_null(ph_output *out, const char *key);
/* A value that is already JSON text (an object, an array, ...), written as it is. */
void ph_out_raw(ph_output *out, const char *key, const char *json, size_t len);

/* Fail the node with a snake_case code and a message; returns 1 so a node can
 * `return ph_fail(out, "bad_params", "...")`. Fields already written are dropped. */
int ph_fail(ph_output *out, const char *code, const char *message);

/* ---- logs and chunks --------------------------------------------------------------------- */

enum { PH_DEBUG = 0, PH_INFO = 1, PH_WARNING = 2, PH_ERROR = 3 };

/* A log line, printf-style. A reactor hands it to the host's polyhost.log import; a command
 * writes "LEVEL: text" to stderr. */
void ph_log(int level, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* A streamed chunk: one JSON value as text. Reactors only (polyhost.chunk); a command drops it. */
void ph_chunk(const char *json, size_t len);

/* ---- JSON text building (for ph_out_raw and ph_chunk) ------------------------------------ */

/* A growable byte buffer. Start from {0}; free(buf.data) when done. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} ph_buf;

void ph_buf_put(ph_buf *buf, const char *bytes, size_t len);
void ph_buf_quote(ph_buf *buf, const char *text, size_t len); /* a JSON string literal */
void ph_buf_num(ph_buf *buf, double value);

#ifdef __cplusplus
}
#endif

#endif /* POLYHOST_H */
