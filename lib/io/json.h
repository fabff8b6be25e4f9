/* A small strict JSON reader and writer for the safetensors header and SAELens cfg.json.
 * Reads never leave [p, p + len), nesting is bounded, numbers are parsed without the C
 * locale (no strtod), and strings are decoded into caller buffers of fixed capacity. */
#ifndef SAE_LIB_IO_JSON_H
#define SAE_LIB_IO_JSON_H

#include "io/bytes.h"

#include <stddef.h>
#include <stdint.h>

#define SAE_JSON_MAX_DEPTH 32

typedef struct sae_json {
    const char *p;
    size_t len, pos;
    int depth;
} sae_json;

void sae_json_init(sae_json *j, const char *p, size_t len);
/* Next non-blank character without consuming it, or -1 at the end. */
int sae_json_peek(sae_json *j);
/* Consume character c (after blanks); 0 if it is not there. */
int sae_json_eat(sae_json *j, char c);
/* A string into dst (NUL-terminated, escapes decoded to UTF-8). dst == NULL skips it.
 * Fails (0) on malformed input or when it does not fit in cap - 1 bytes. *n = length. */
int sae_json_string(sae_json *j, char *dst, size_t cap, size_t *n);
/* An integer without fraction or exponent, |v| < 2^63. */
int sae_json_int(sae_json *j, int64_t *v);
/* Any number; the value is exact for integers up to 2^53 and approximate otherwise. */
int sae_json_number(sae_json *j, double *v);
/* true / false. */
int sae_json_bool(sae_json *j, int *v);
/* Skip one value of any type. */
int sae_json_skip(sae_json *j);
/* Object iteration: call with *state = 0 after '{' is expected; returns 1 with the next
 * key in key (cap bytes) and the ':' consumed, 0 at the closing '}', -1 on error. */
int sae_json_member(sae_json *j, int *state, char *key, size_t cap);
/* Array iteration: returns 1 before each element, 0 at the closing ']', -1 on error. */
int sae_json_element(sae_json *j, int *state);
/* Whether only blanks remain. */
int sae_json_at_end(sae_json *j);

/* Writing: a JSON string literal (quotes and escapes) of n bytes of src. */
void sae_json_put_string(sae_wbuf *w, const char *src, size_t n);
/* Plain ASCII text, unquoted (keys and punctuation assembled by the caller). */
void sae_json_put_raw(sae_wbuf *w, const char *text);
void sae_json_put_int(sae_wbuf *w, int64_t v);

#endif
