/* Strict, bounded JSON (RFC 8259) for the safetensors header and SAELens cfg.json. */
#include "io/json.h"

#include <string.h>

void sae_json_init(sae_json *j, const char *p, size_t len)
{
    j->p = p;
    j->len = p ? len : 0;
    j->pos = 0;
    j->depth = 0;
}

static void skip_blanks(sae_json *j)
{
    while (j->pos < j->len) {
        char c = j->p[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        j->pos++;
    }
}

int sae_json_peek(sae_json *j)
{
    skip_blanks(j);
    return j->pos < j->len ? (unsigned char)j->p[j->pos] : -1;
}

int sae_json_eat(sae_json *j, char c)
{
    if (sae_json_peek(j) != (unsigned char)c)
        return 0;
    j->pos++;
    return 1;
}

int sae_json_at_end(sae_json *j) { return sae_json_peek(j) == -1; }

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_hex4(sae_json *j, uint32_t *u)
{
    if (j->len - j->pos < 4)
        return 0;
    *u = 0;
    for (int k = 0; k < 4; k++) {
        int h = hex_digit((unsigned char)j->p[j->pos++]);
        if (h < 0)
            return 0;
        *u = *u << 4 | (uint32_t)h;
    }
    return 1;
}

/* Append bytes to the (optional) destination, keeping room for the NUL. */
static int emit(char *dst, size_t cap, size_t *n, const char *b, size_t k)
{
    if (dst != NULL) {
        if (cap == 0 || k > cap - 1 - *n)
            return 0;
        memcpy(dst + *n, b, k);
    }
    *n += k;
    return 1;
}

static int emit_utf8(char *dst, size_t cap, size_t *n, uint32_t u)
{
    char b[4];
    size_t k;
    if (u < 0x80) {
        b[0] = (char)u, k = 1;
    } else if (u < 0x800) {
        b[0] = (char)(0xC0 | u >> 6), b[1] = (char)(0x80 | (u & 0x3F)), k = 2;
    } else if (u < 0x10000) {
        b[0] = (char)(0xE0 | u >> 12), b[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        b[2] = (char)(0x80 | (u & 0x3F)), k = 3;
    } else {
        b[0] = (char)(0xF0 | u >> 18), b[1] = (char)(0x80 | ((u >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((u >> 6) & 0x3F)), b[3] = (char)(0x80 | (u & 0x3F)), k = 4;
    }
    return emit(dst, cap, n, b, k);
}

/* One escape sequence after the backslash. */
static int read_escape(sae_json *j, char *dst, size_t cap, size_t *n)
{
    if (j->pos >= j->len)
        return 0;
    char c = j->p[j->pos++];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *hit = c != 'u' ? strchr(from, c) : NULL;
    if (hit != NULL && c != '\0')
        return emit(dst, cap, n, &to[hit - from], 1);
    if (c != 'u')
        return 0;
    uint32_t u, lo;
    if (!read_hex4(j, &u))
        return 0;
    if (u >= 0xD800 && u <= 0xDBFF) { /* surrogate pair */
        if (j->len - j->pos < 2 || j->p[j->pos] != '\\' || j->p[j->pos + 1] != 'u')
            return 0;
        j->pos += 2;
        if (!read_hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return 0;
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
        return 0;
    }
    return emit_utf8(dst, cap, n, u);
}

int sae_json_string(sae_json *j, char *dst, size_t cap, size_t *n)
{
    size_t k = 0;
    if (!sae_json_eat(j, '"'))
        return 0;
    while (j->pos < j->len) {
        unsigned char c = (unsigned char)j->p[j->pos++];
        if (c == '"') {
            if (dst != NULL)
                dst[k] = '\0';
            if (n)
                *n = k;
            return 1;
        }
        if (c < 0x20)
            return 0; /* control characters must be escaped */
        if (c == '\\') {
            if (!read_escape(j, dst, cap, &k))
                return 0;
        } else if (!emit(dst, cap, &k, (const char *)&c, 1)) {
            return 0;
        }
    }
    return 0;
}

/* Digits of a number: [-] int [frac] [exp]. Collects an exact integer when it can. */
typedef struct num {
    int neg, is_int, overflow;
    uint64_t mant;  /* all significant digits, up to 19 */
    int32_t exp10;  /* value = mant * 10^exp10 */
} num;

static int lex_number(sae_json *j, num *v)
{
    memset(v, 0, sizeof *v);
    v->is_int = 1;
    skip_blanks(j);
    if (j->pos < j->len && j->p[j->pos] == '-')
        v->neg = 1, j->pos++;
    size_t start = j->pos;
    int digits = 0;
    while (j->pos < j->len && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') {
        int dgt = j->p[j->pos++] - '0';
        if (v->mant <= (UINT64_MAX - 9) / 10)
            v->mant = v->mant * 10 + (uint64_t)dgt;
        else
            v->exp10++, v->overflow = 1;
        digits++;
    }
    if (digits == 0 || (digits > 1 && j->p[start] == '0'))
        return 0;
    if (j->pos < j->len && j->p[j->pos] == '.') {
        j->pos++;
        v->is_int = 0;
        int frac = 0;
        while (j->pos < j->len && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') {
            int dgt = j->p[j->pos++] - '0';
            if (v->mant <= (UINT64_MAX - 9) / 10)
                v->mant = v->mant * 10 + (uint64_t)dgt, v->exp10--;
            frac++;
        }
        if (frac == 0)
            return 0;
    }
    if (j->pos < j->len && (j->p[j->pos] == 'e' || j->p[j->pos] == 'E')) {
        j->pos++;
        v->is_int = 0;
        int eneg = 0, edig = 0;
        int32_t e = 0;
        if (j->pos < j->len && (j->p[j->pos] == '+' || j->p[j->pos] == '-'))
            eneg = j->p[j->pos++] == '-';
        while (j->pos < j->len && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') {
            if (e < 100000)
                e = e * 10 + (j->p[j->pos] - '0');
            j->pos++, edig++;
        }
        if (edig == 0)
            return 0;
        v->exp10 += eneg ? -e : e;
    }
    return 1;
}

int sae_json_int(sae_json *j, int64_t *out)
{
    num v;
    if (!lex_number(j, &v) || !v.is_int || v.overflow || v.mant > (uint64_t)INT64_MAX)
        return 0;
    *out = v.neg ? -(int64_t)v.mant : (int64_t)v.mant;
    return 1;
}

int sae_json_number(sae_json *j, double *out)
{
    num v;
    if (!lex_number(j, &v))
        return 0;
    double x = (double)v.mant;
    int32_t e = v.exp10 < -400 ? -400 : v.exp10 > 400 ? 400 : v.exp10;
    for (; e > 0; e--)
        x *= 10.0;
    for (; e < 0; e++)
        x /= 10.0;
    *out = v.neg ? -x : x;
    return 1;
}

static int eat_word(sae_json *j, const char *w)
{
    size_t n = strlen(w);
    skip_blanks(j);
    if (j->len - j->pos < n || memcmp(j->p + j->pos, w, n) != 0)
        return 0;
    j->pos += n;
    return 1;
}

int sae_json_bool(sae_json *j, int *v)
{
    if (eat_word(j, "true"))
        return *v = 1, 1;
    if (eat_word(j, "false"))
        return *v = 0, 1;
    return 0;
}

int sae_json_member(sae_json *j, int *state, char *key, size_t cap)
{
    if (*state == 0) {
        if (!sae_json_eat(j, '{') || ++j->depth > SAE_JSON_MAX_DEPTH)
            return -1;
        *state = 1;
        if (sae_json_eat(j, '}'))
            return j->depth--, 0;
    } else {
        if (sae_json_eat(j, '}'))
            return j->depth--, 0;
        if (!sae_json_eat(j, ','))
            return -1;
    }
    if (!sae_json_string(j, key, cap, NULL) || !sae_json_eat(j, ':'))
        return -1;
    return 1;
}

int sae_json_element(sae_json *j, int *state)
{
    if (*state == 0) {
        if (!sae_json_eat(j, '[') || ++j->depth > SAE_JSON_MAX_DEPTH)
            return -1;
        *state = 1;
        if (sae_json_eat(j, ']'))
            return j->depth--, 0;
        return 1;
    }
    if (sae_json_eat(j, ']'))
        return j->depth--, 0;
    return sae_json_eat(j, ',') ? 1 : -1;
}

int sae_json_skip(sae_json *j)
{
    int c = sae_json_peek(j), state = 0, r;
    double d;
    int b;
    switch (c) {
    case '"': return sae_json_string(j, NULL, 0, NULL);
    case '{':
        while ((r = sae_json_member(j, &state, NULL, 0)) == 1)
            if (!sae_json_skip(j))
                return 0;
        return r == 0;
    case '[':
        while ((r = sae_json_element(j, &state)) == 1)
            if (!sae_json_skip(j))
                return 0;
        return r == 0;
    case 't':
    case 'f': return sae_json_bool(j, &b);
    case 'n': return eat_word(j, "null");
    default: return sae_json_number(j, &d);
    }
}

/* ---- writing --------------------------------------------------------------------- */

void sae_json_put_raw(sae_wbuf *w, const char *text) { sae_wr_bytes(w, text, strlen(text)); }

void sae_json_put_string(sae_wbuf *w, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sae_wr_u8(w, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sae_wr_bytes(w, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sae_wr_bytes(w, e, 6);
        } else {
            sae_wr_u8(w, c);
        }
    }
    sae_wr_u8(w, '"');
}

void sae_json_put_int(sae_wbuf *w, int64_t v)
{
    char b[24];
    int k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        b[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        b[k++] = '-';
    while (k > 0)
        sae_wr_u8(w, (uint8_t)b[--k]);
}
