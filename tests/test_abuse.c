/* Argument-validation matrix: every public function (enumerated from lib/sae.map at run
 * time) gets NULL pointers, bad sizes, ld < width, NaN/Inf, unknown keys and out-of-range
 * values. Each must return its specific status, record a message on the handle it was
 * given, and leave every handle observably unchanged (digests of parameters, tensors,
 * config values, samples, stats and metric results before and after each call). */
#include "rel_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SAE_MAP_PATH
#  error "SAE_MAP_PATH (path of lib/sae.map) must be defined by the build"
#endif

enum { H_NONE, H_CONFIG, H_TOY, H_MODEL, H_TRAINER, H_METRICS };
enum { NEED_TOY = 1, NEED_MODEL = 2, NEED_TRAINER = 4, NEED_METRICS = 8, IS_IO = 16 };

typedef struct abuse {
    rel_fixture f;
    uint64_t digest;    /* fixture digest that every bad call must preserve */
    const char *fn;     /* function under test */
    int64_t cases;      /* bad inputs tried */
    int64_t failures;   /* cases that did not behave */
} abuse;

/* ---- case checking ---------------------------------------------------------- */

static const char *errmsg_of(int kind, const void *h)
{
    switch (kind) {
    case H_CONFIG: return sae_config_errmsg(h);
    case H_TOY: return sae_toy_errmsg(h);
    case H_MODEL: return sae_model_errmsg(h);
    case H_TRAINER: return sae_trainer_errmsg(h);
    case H_METRICS: return sae_metrics_errmsg(h);
    default: return NULL;
    }
}

/* Leave a recognisable message on the handle so the case's own message can be told
 * apart from an older one (all of these are failing calls: no state changes). */
static void prime(int kind, const void *h, char *saved, size_t cap)
{
    int64_t i;
    double v;
    float buf[4];
    int32_t st = SAE_OK;
    switch (kind) {
    case H_CONFIG: st = sae_config_get_i64(h, 777, &i); break;
    case H_TOY: st = sae_toy_sample(h, 0, -777, buf, 4); break;
    case H_MODEL: st = sae_model_get_tensor(h, 777, buf, 4); break;
    case H_TRAINER: st = sae_trainer_stat(h, 777, &v); break;
    case H_METRICS: st = sae_metrics_get(h, 777, &v); break;
    default: break;
    }
    (void)st;
    const char *m = errmsg_of(kind, h);
    snprintf(saved, cap, "%s", m != NULL ? m : "");
}

static void report(abuse *a, const char *call, const char *fmt, const char *detail, int32_t got,
                   int32_t want)
{
    a->failures++;
    print_message("  FAIL %s: %s: ", a->fn, call);
    print_message(fmt, detail, (int)got, sae_status_str(got), (int)want, sae_status_str(want));
    print_message("\n");
}

static void check_case(abuse *a, const char *call, int32_t got, int32_t want, int kind,
                       const void *h, const char *primed)
{
    a->cases++;
    if (got != want) {
        report(a, call, "%sreturned %d (%s), expected %d (%s)", "", got, want);
        return;
    }
    if (kind != H_NONE && h != NULL) {
        const char *m = errmsg_of(kind, h);
        if (m == NULL || m[0] == '\0' || (primed[0] != '\0' && strcmp(m, primed) == 0))
            report(a, call, "%sno message recorded (status %d %s / %d %s)", "", got, want);
    }
    if (rel_digest_fixture(&a->f) != a->digest) {
        report(a, call, "%schanged a handle (status %d %s, expected %d %s)", "", got, want);
        a->digest = rel_digest_fixture(&a->f); /* report each change once */
    }
}

/* BAD(want, call): call with no handle. BADH(want, kind, handle, call): the failure must
 * record a new message on handle. */
#define BAD(want, call)                                                                  \
    do {                                                                                 \
        int32_t st_ = (call);                                                            \
        check_case(a, #call, st_, (want), H_NONE, NULL, "");                             \
    } while (0)
#define BADH(want, kind, handle, call)                                                   \
    do {                                                                                 \
        char primed_[SAE_ERRMSG_CAP_TEST];                                               \
        prime((kind), (handle), primed_, sizeof primed_);                                \
        int32_t st_ = (call);                                                            \
        check_case(a, #call, st_, (want), (kind), (handle), primed_);                    \
    } while (0)
#define SAE_ERRMSG_CAP_TEST 512
/* A check that is not a status (void / pointer-returning functions). */
#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        a->cases++;                                                                      \
        if (!(cond)) {                                                                   \
            a->failures++;                                                               \
            print_message("  FAIL %s: %s\n", a->fn, #cond);                              \
        }                                                                                \
        if (rel_digest_fixture(&a->f) != a->digest) {                                    \
            a->failures++;                                                               \
            print_message("  FAIL %s: %s changed a handle\n", a->fn, #cond);             \
            a->digest = rel_digest_fixture(&a->f);                                       \
        }                                                                                \
    } while (0)

static const int32_t unknown_keys[] = {0, -1, 1, 999, 777777, INT32_MAX, INT32_MIN};
#define N_UNKNOWN ((int)(sizeof unknown_keys / sizeof unknown_keys[0]))
static const int32_t kinds[] = {SAE_KIND_TOY, SAE_KIND_MODEL, SAE_KIND_TRAINER, SAE_KIND_METRICS};
static const int32_t bad_kinds[] = {0, -1, 5, 99, INT32_MAX, INT32_MIN};
#define N_BAD_KINDS ((int)(sizeof bad_kinds / sizeof bad_kinds[0]))
static const int32_t bad_ids[] = {0, -1, 99, INT32_MAX, INT32_MIN};
#define N_BAD_IDS ((int)(sizeof bad_ids / sizeof bad_ids[0]))

/* Sizes every (rows, ld) pair must reject with SAE_E_SIZE for a width of `cols`. */
typedef struct bad_shape {
    int64_t n, ld;
} bad_shape;

static int bad_shapes(int64_t cols, bad_shape *out)
{
    bad_shape s[] = {{0, cols},         {-1, cols},          {INT64_MIN, cols},
                     {4, cols - 1},     {4, 0},              {4, -1},
                     {INT64_MAX, cols}, {INT64_MAX / cols, cols}, {(INT64_C(1) << 62) / cols, cols}};
    int n = (int)(sizeof s / sizeof s[0]);
    memcpy(out, s, sizeof s);
    return n;
}

/* ---- per-kind parameter helpers ---------------------------------------------- */

typedef struct param {
    int32_t key, kind, type;
    double lo, hi;
    const char *name;
} param;

static int params_of(int32_t kind, param *out, int cap)
{
    int32_t count = 0;
    assert_ok(sae_param_count(kind, &count));
    int n = 0;
    for (int32_t i = 0; i < count && n < cap; i++) {
        param p;
        assert_ok(sae_param_key_at(kind, i, &p.key));
        assert_ok(sae_param_info(p.key, &p.kind, &p.type, &p.lo, &p.hi, NULL));
        p.name = sae_param_name(p.key);
        out[n++] = p;
    }
    return n;
}

static int32_t key_of_other_kind(int32_t kind)
{
    int32_t other = kind == SAE_KIND_TOY ? SAE_KIND_MODEL : SAE_KIND_TOY, key = 0;
    assert_ok(sae_param_key_at(other, 0, &key));
    return key;
}

/* ================================================================== core === */

static void abuse_status_str(abuse *a)
{
    int32_t codes[] = {1, 2, -19, -1000, 12345, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        EXPECT(sae_status_str(codes[i]) != NULL && strcmp(sae_status_str(codes[i]), sae_status_str(SAE_OK)) != 0);
}

static void abuse_version(abuse *a)
{
    char want[32];
    uint32_t v = sae_version_number();
    snprintf(want, sizeof want, "%u.%u.%u", v / 10000, v / 100 % 100, v % 100);
    EXPECT(strcmp(sae_version_string(), want) == 0);
    EXPECT(sae_build_info() != NULL && sae_build_info()[0] != '\0');
}

static void abuse_param_lookup(abuse *a)
{
    int32_t key = -42;
    BAD(SAE_E_NULL, sae_param_lookup(NULL, &key));
    BAD(SAE_E_NULL, sae_param_lookup("lr", NULL));
    BAD(SAE_E_UNKNOWN_KEY, sae_param_lookup("", &key));
    BAD(SAE_E_UNKNOWN_KEY, sae_param_lookup("no_such_parameter", &key));
    BAD(SAE_E_UNKNOWN_KEY, sae_param_lookup("LR", &key));
    BAD(SAE_E_UNKNOWN_KEY, sae_param_lookup("lr ", &key));
    EXPECT(key == -42);
}

static void abuse_param_name_doc(abuse *a)
{
    for (int i = 0; i < N_UNKNOWN; i++) {
        EXPECT(sae_param_name(unknown_keys[i]) == NULL);
        EXPECT(sae_param_doc(unknown_keys[i]) == NULL);
    }
}

static void abuse_param_info(abuse *a)
{
    int32_t kind, type;
    double lo, hi, dflt;
    for (int i = 0; i < N_UNKNOWN; i++)
        BAD(SAE_E_UNKNOWN_KEY, sae_param_info(unknown_keys[i], &kind, &type, &lo, &hi, &dflt));
}

static void abuse_param_count(abuse *a)
{
    int32_t count;
    BAD(SAE_E_NULL, sae_param_count(SAE_KIND_TOY, NULL));
    for (int i = 0; i < N_BAD_KINDS; i++)
        BAD(SAE_E_UNKNOWN_KEY, sae_param_count(bad_kinds[i], &count));
}

static void abuse_param_key_at(abuse *a)
{
    int32_t key, count;
    BAD(SAE_E_NULL, sae_param_key_at(SAE_KIND_TOY, 0, NULL));
    for (int i = 0; i < N_BAD_KINDS; i++)
        BAD(SAE_E_UNKNOWN_KEY, sae_param_key_at(bad_kinds[i], 0, &key));
    for (int k = 0; k < 4; k++) {
        assert_ok(sae_param_count(kinds[k], &count));
        BAD(SAE_E_RANGE, sae_param_key_at(kinds[k], -1, &key));
        BAD(SAE_E_RANGE, sae_param_key_at(kinds[k], count, &key));
        BAD(SAE_E_RANGE, sae_param_key_at(kinds[k], INT32_MAX, &key));
        BAD(SAE_E_RANGE, sae_param_key_at(kinds[k], INT32_MIN, &key));
    }
}

static void abuse_config_create(abuse *a)
{
    sae_config *sentinel = (sae_config *)(uintptr_t)0x1, *out = sentinel;
    BAD(SAE_E_NULL, sae_config_create(NULL, SAE_KIND_TOY, NULL));
    for (int i = 0; i < N_BAD_KINDS; i++) {
        BAD(SAE_E_UNKNOWN_KEY, sae_config_create(&out, bad_kinds[i], NULL));
        EXPECT(out == sentinel || out == NULL);
        out = sentinel;
    }
}

static void abuse_config_free(abuse *a)
{
    sae_config_free(NULL);
    EXPECT(sae_config_kind(NULL) == 0);
}

static void abuse_config_clone(abuse *a)
{
    sae_config *out = NULL;
    BAD(SAE_E_NULL, sae_config_clone(NULL, a->f.cfg[SAE_KIND_TOY]));
    BAD(SAE_E_NULL, sae_config_clone(&out, NULL));
    EXPECT(out == NULL);
}

static void abuse_config_errmsg(abuse *a) { EXPECT(sae_config_errmsg(NULL) != NULL); }

/* Scalar setters: NULL config, unknown keys, keys of another kind, wrong types, NaN/Inf,
 * and values just outside the registered bounds of every parameter of every kind. */
static void abuse_set_unknown(abuse *a, int32_t kind, sae_config *c)
{
    for (int i = 0; i < N_UNKNOWN; i++) {
        BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, sae_config_set_i64(c, unknown_keys[i], 1));
        BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, sae_config_set_f64(c, unknown_keys[i], 1.0));
    }
    int32_t other = key_of_other_kind(kind);
    BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, sae_config_set_i64(c, other, 1));
    BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, sae_config_set_f64(c, other, 1.0));
}

static void abuse_config_set_i64(abuse *a)
{
    BAD(SAE_E_NULL, sae_config_set_i64(NULL, SAE_TOY_D, 4));
    param ps[128];
    for (int k = 0; k < 4; k++) {
        sae_config *c = a->f.cfg[kinds[k]];
        abuse_set_unknown(a, kinds[k], c);
        int n = params_of(kinds[k], ps, 128);
        for (int p = 0; p < n; p++) {
            if (ps[p].type != SAE_TYPE_I64) {
                BADH(SAE_E_TYPE, H_CONFIG, c, sae_config_set_i64(c, ps[p].key, 0));
                continue;
            }
            if (ps[p].lo > -9e15)
                BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_i64(c, ps[p].key, (int64_t)ps[p].lo - 1));
            if (ps[p].hi < 9e15)
                BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_i64(c, ps[p].key, (int64_t)ps[p].hi + 1));
            BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_i64(c, ps[p].key, INT64_MIN));
            BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_i64(c, ps[p].key, INT64_MAX));
        }
    }
}

static void abuse_config_set_f64(abuse *a)
{
    BAD(SAE_E_NULL, sae_config_set_f64(NULL, SAE_TRAINER_LR, 0.1));
    param ps[128];
    for (int k = 0; k < 4; k++) {
        sae_config *c = a->f.cfg[kinds[k]];
        int n = params_of(kinds[k], ps, 128);
        for (int p = 0; p < n; p++) {
            if (ps[p].type != SAE_TYPE_F64) {
                BADH(SAE_E_TYPE, H_CONFIG, c, sae_config_set_f64(c, ps[p].key, 0.0));
                continue;
            }
            BADH(SAE_E_NONFINITE, H_CONFIG, c, sae_config_set_f64(c, ps[p].key, NAN));
            BADH(SAE_E_NONFINITE, H_CONFIG, c, sae_config_set_f64(c, ps[p].key, INFINITY));
            BADH(SAE_E_NONFINITE, H_CONFIG, c, sae_config_set_f64(c, ps[p].key, -INFINITY));
            if (ps[p].lo > -DBL_MAX)
                BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_f64(c, ps[p].key, nextafter(ps[p].lo, -INFINITY)));
            if (ps[p].hi < DBL_MAX)
                BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_f64(c, ps[p].key, nextafter(ps[p].hi, INFINITY)));
        }
    }
}

static void abuse_config_get_scalar(abuse *a, int i64)
{
    int64_t iv;
    double fv;
    param ps[128];
    if (i64) {
        BAD(SAE_E_NULL, sae_config_get_i64(NULL, SAE_TOY_D, &iv));
        BADH(SAE_E_NULL, H_CONFIG, a->f.cfg[SAE_KIND_TOY], sae_config_get_i64(a->f.cfg[SAE_KIND_TOY], SAE_TOY_D, NULL));
    } else {
        BAD(SAE_E_NULL, sae_config_get_f64(NULL, SAE_TRAINER_LR, &fv));
        BADH(SAE_E_NULL, H_CONFIG, a->f.cfg[SAE_KIND_TRAINER], sae_config_get_f64(a->f.cfg[SAE_KIND_TRAINER], SAE_TRAINER_LR, NULL));
    }
    for (int k = 0; k < 4; k++) {
        sae_config *c = a->f.cfg[kinds[k]];
        int32_t other = key_of_other_kind(kinds[k]);
        for (int i = 0; i < N_UNKNOWN; i++)
            BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c,
                 i64 ? sae_config_get_i64(c, unknown_keys[i], &iv) : sae_config_get_f64(c, unknown_keys[i], &fv));
        BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, i64 ? sae_config_get_i64(c, other, &iv) : sae_config_get_f64(c, other, &fv));
        int n = params_of(kinds[k], ps, 128);
        for (int p = 0; p < n; p++)
            if (ps[p].type != (i64 ? SAE_TYPE_I64 : SAE_TYPE_F64))
                BADH(SAE_E_TYPE, H_CONFIG, c,
                     i64 ? sae_config_get_i64(c, ps[p].key, &iv) : sae_config_get_f64(c, ps[p].key, &fv));
    }
}

static void abuse_config_get_i64(abuse *a) { abuse_config_get_scalar(a, 1); }
static void abuse_config_get_f64(abuse *a) { abuse_config_get_scalar(a, 0); }

static void abuse_set_array_param(abuse *a, sae_config *c, const param *p, int is_f64)
{
    double dv[2] = {p->lo, NAN};
    int64_t iv[2] = {(int64_t)p->lo, (int64_t)p->lo};
    const void *vals = is_f64 ? (const void *)dv : (const void *)iv;
#define SET_ARR(v, n) (is_f64 ? sae_config_set_f64_array(c, p->key, (const double *)(v), (n)) \
                              : sae_config_set_i64_array(c, p->key, (const int64_t *)(v), (n)))
    BADH(SAE_E_SIZE, H_CONFIG, c, SET_ARR(vals, -1));
    BADH(SAE_E_SIZE, H_CONFIG, c, SET_ARR(vals, INT64_MIN));
    BADH(SAE_E_SIZE, H_CONFIG, c, SET_ARR(vals, INT64_MAX));
    BADH(SAE_E_NULL, H_CONFIG, c, SET_ARR(NULL, 2));
    if (is_f64) {
        BADH(SAE_E_NONFINITE, H_CONFIG, c, SET_ARR(dv, 2));
        dv[1] = INFINITY;
        BADH(SAE_E_NONFINITE, H_CONFIG, c, SET_ARR(dv, 2));
        dv[1] = nextafter(p->hi, INFINITY);
        BADH(SAE_E_RANGE, H_CONFIG, c, SET_ARR(dv, 2));
        dv[1] = nextafter(p->lo, -INFINITY);
        BADH(SAE_E_RANGE, H_CONFIG, c, SET_ARR(dv, 2));
    } else {
        iv[1] = INT64_MIN;
        BADH(SAE_E_RANGE, H_CONFIG, c, SET_ARR(iv, 2));
        iv[1] = INT64_MAX;
        BADH(SAE_E_RANGE, H_CONFIG, c, SET_ARR(iv, 2));
    }
#undef SET_ARR
}

static void abuse_config_set_array(abuse *a, int is_f64)
{
    int32_t want_type = is_f64 ? SAE_TYPE_F64_ARRAY : SAE_TYPE_I64_ARRAY;
    double dv[1] = {0};
    int64_t iv[1] = {0};
    if (is_f64)
        BAD(SAE_E_NULL, sae_config_set_f64_array(NULL, SAE_TOY_FIRE_PROBS, dv, 1));
    else
        BAD(SAE_E_NULL, sae_config_set_i64_array(NULL, SAE_TOY_FIRE_PROBS, iv, 1));
    param ps[128];
    for (int k = 0; k < 4; k++) {
        sae_config *c = a->f.cfg[kinds[k]];
        for (int i = 0; i < N_UNKNOWN; i++)
            BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c,
                 is_f64 ? sae_config_set_f64_array(c, unknown_keys[i], dv, 1)
                        : sae_config_set_i64_array(c, unknown_keys[i], iv, 1));
        int n = params_of(kinds[k], ps, 128);
        for (int p = 0; p < n; p++) {
            if (ps[p].type == want_type)
                abuse_set_array_param(a, c, &ps[p], is_f64);
            else
                BADH(SAE_E_TYPE, H_CONFIG, c,
                     is_f64 ? sae_config_set_f64_array(c, ps[p].key, dv, 1)
                            : sae_config_set_i64_array(c, ps[p].key, iv, 1));
        }
    }
}

static void abuse_config_set_f64_array(abuse *a) { abuse_config_set_array(a, 1); }
static void abuse_config_set_i64_array(abuse *a) { abuse_config_set_array(a, 0); }

static void abuse_config_get_array(abuse *a, int is_f64)
{
    int32_t want_type = is_f64 ? SAE_TYPE_F64_ARRAY : SAE_TYPE_I64_ARRAY;
    double dv[1];
    int64_t iv[1], n = -5;
#define GET_ARR(c, key, dst, cap, np) (is_f64 ? sae_config_get_f64_array((c), (key), (double *)(dst), (cap), (np)) \
                                              : sae_config_get_i64_array((c), (key), (int64_t *)(dst), (cap), (np)))
    void *dst = is_f64 ? (void *)dv : (void *)iv;
    BAD(SAE_E_NULL, GET_ARR(NULL, SAE_TOY_FIRE_PROBS, dst, 1, &n));
    param ps[128];
    for (int k = 0; k < 4; k++) {
        sae_config *c = a->f.cfg[kinds[k]];
        for (int i = 0; i < N_UNKNOWN; i++)
            BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, GET_ARR(c, unknown_keys[i], dst, 1, &n));
        int np = params_of(kinds[k], ps, 128);
        for (int p = 0; p < np; p++) {
            if (ps[p].type != want_type) {
                BADH(SAE_E_TYPE, H_CONFIG, c, GET_ARR(c, ps[p].key, dst, 1, &n));
                continue;
            }
            BADH(SAE_E_NULL, H_CONFIG, c, GET_ARR(c, ps[p].key, dst, 1, NULL));
        }
    }
    if (is_f64) { /* the fixture's fire_probs holds REL_N values */
        sae_config *c = a->f.cfg[SAE_KIND_TOY];
        n = -5;
        BADH(SAE_E_BUFFER_TOO_SMALL, H_CONFIG, c, sae_config_get_f64_array(c, SAE_TOY_FIRE_PROBS, dv, 1, &n));
        EXPECT(n == REL_N);
        BADH(SAE_E_BUFFER_TOO_SMALL, H_CONFIG, c, sae_config_get_f64_array(c, SAE_TOY_FIRE_PROBS, NULL, 0, &n));
        BADH(SAE_E_SIZE, H_CONFIG, c, sae_config_get_f64_array(c, SAE_TOY_FIRE_PROBS, dv, -1, &n));
        BADH(SAE_E_NULL, H_CONFIG, c, sae_config_get_f64_array(c, SAE_TOY_FIRE_PROBS, NULL, 100, &n));
    }
#undef GET_ARR
}

static void abuse_config_get_f64_array(abuse *a) { abuse_config_get_array(a, 1); }
static void abuse_config_get_i64_array(abuse *a) { abuse_config_get_array(a, 0); }

static void abuse_config_set_by_name(abuse *a)
{
    sae_config *t = a->f.cfg[SAE_KIND_TOY];
    BAD(SAE_E_NULL, sae_config_set_by_name(NULL, "d", 4));
    BADH(SAE_E_NULL, H_CONFIG, t, sae_config_set_by_name(t, NULL, 4));
    BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, t, sae_config_set_by_name(t, "", 4));
    BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, t, sae_config_set_by_name(t, "no_such", 4));
    param ps[128];
    for (int k = 0; k < 4; k++) {
        sae_config *c = a->f.cfg[kinds[k]];
        BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, sae_config_set_by_name(c, sae_param_name(key_of_other_kind(kinds[k])), 1));
        int n = params_of(kinds[k], ps, 128);
        for (int p = 0; p < n; p++) {
            const char *nm = ps[p].name;
            if (ps[p].type == SAE_TYPE_F64) {
                BADH(SAE_E_NONFINITE, H_CONFIG, c, sae_config_set_by_name(c, nm, NAN));
                BADH(SAE_E_NONFINITE, H_CONFIG, c, sae_config_set_by_name(c, nm, -INFINITY));
                BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_by_name(c, nm, nextafter(ps[p].hi, INFINITY)));
                BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_by_name(c, nm, nextafter(ps[p].lo, -INFINITY)));
            } else if (ps[p].type == SAE_TYPE_I64) {
                /* integers must be exact whole numbers: NaN, Inf and 0.5 are type errors */
                BADH(SAE_E_TYPE, H_CONFIG, c, sae_config_set_by_name(c, nm, NAN));
                BADH(SAE_E_TYPE, H_CONFIG, c, sae_config_set_by_name(c, nm, INFINITY));
                BADH(SAE_E_TYPE, H_CONFIG, c, sae_config_set_by_name(c, nm, ps[p].lo + 0.5));
                BADH(SAE_E_TYPE, H_CONFIG, c, sae_config_set_by_name(c, nm, 1e300));
                BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_by_name(c, nm, ps[p].lo - 1));
                if (ps[p].hi < 9e15)
                    BADH(SAE_E_RANGE, H_CONFIG, c, sae_config_set_by_name(c, nm, ps[p].hi + 1));
            } else {
                BADH(SAE_E_TYPE, H_CONFIG, c, sae_config_set_by_name(c, nm, 0));
            }
        }
    }
}

static void abuse_config_reset(abuse *a)
{
    BAD(SAE_E_NULL, sae_config_reset(NULL, SAE_TOY_D));
    for (int k = 0; k < 4; k++) {
        sae_config *c = a->f.cfg[kinds[k]];
        for (int i = 0; i < N_UNKNOWN; i++)
            BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, sae_config_reset(c, unknown_keys[i]));
        BADH(SAE_E_UNKNOWN_KEY, H_CONFIG, c, sae_config_reset(c, key_of_other_kind(kinds[k])));
    }
}

static void abuse_config_validate(abuse *a)
{
    char msg[128] = "x";
    BAD(SAE_E_NULL, sae_config_validate(NULL, msg, sizeof msg));
    EXPECT(msg[0] != '\0' && strcmp(msg, "x") != 0);
    BAD(SAE_E_NULL, sae_config_validate(NULL, NULL, 0));
    /* inconsistent copies of the fixture configs */
    sae_config *c = NULL;
    assert_ok(sae_config_clone(&c, a->f.cfg[SAE_KIND_TOY]));
    assert_ok(sae_config_set_f64(c, SAE_TOY_MAG_LO, 0.9));
    assert_ok(sae_config_set_f64(c, SAE_TOY_MAG_HI, 0.1));
    BAD(SAE_E_CONFIG, sae_config_validate(c, msg, sizeof msg));
    EXPECT(msg[0] != '\0');
    BAD(SAE_E_CONFIG, sae_config_validate(c, msg, 1));
    EXPECT(msg[0] == '\0');
    BAD(SAE_E_CONFIG, sae_config_validate(c, NULL, 100));
    assert_ok(sae_config_set_f64(c, SAE_TOY_MAG_LO, 0.0));
    assert_ok(sae_config_set_i64(c, SAE_TOY_N_FEATURES, REL_N + 1)); /* fire_probs has REL_N */
    BAD(SAE_E_CONFIG, sae_config_validate(c, msg, sizeof msg));
    sae_config_free(c);
}

/* free(NULL) is a no-op and errmsg(NULL) a text, for every handle kind; clone rejects NULL. */
#define HANDLE_BASICS(kind)                                                                \
    static void abuse_##kind##_free(abuse *a)                                              \
    {                                                                                      \
        sae_##kind##_free(NULL);                                                           \
        EXPECT(1);                                                                         \
    }                                                                                      \
    static void abuse_##kind##_errmsg(abuse *a) { EXPECT(sae_##kind##_errmsg(NULL) != NULL); }
#define HANDLE_CLONE(kind)                                                                 \
    static void abuse_##kind##_clone(abuse *a)                                             \
    {                                                                                      \
        sae_##kind *out = NULL;                                                            \
        BAD(SAE_E_NULL, sae_##kind##_clone(NULL, a->f.kind));                              \
        BAD(SAE_E_NULL, sae_##kind##_clone(&out, NULL));                                   \
        EXPECT(out == NULL);                                                               \
    }

/* =================================================================== toy === */

static sae_config *bad_toy_config(void)
{
    sae_config *c = test_config(SAE_KIND_TOY, "mag_lo", 0.8, "mag_hi", 0.2, NULL);
    return c;
}

static void abuse_toy_create(abuse *a)
{
    sae_toy *sentinel = (sae_toy *)(uintptr_t)0x1, *out = sentinel;
    BAD(SAE_E_NULL, sae_toy_create(NULL, a->f.cfg[SAE_KIND_TOY], NULL));
    BAD(SAE_E_NULL, sae_toy_create(&out, NULL, NULL));
    EXPECT(out == sentinel || out == NULL);
    out = sentinel;
    BAD(SAE_E_CONFIG, sae_toy_create(&out, a->f.cfg[SAE_KIND_MODEL], NULL));
    EXPECT(out == sentinel || out == NULL);
    out = sentinel;
    sae_config *c = bad_toy_config();
    BAD(SAE_E_CONFIG, sae_toy_create(&out, c, NULL));
    EXPECT(out == sentinel || out == NULL);
    sae_config_free(c);
}

HANDLE_BASICS(toy)
HANDLE_CLONE(toy)

static void abuse_toy_dims(abuse *a)
{
    int64_t n, d;
    sae_toy *t = a->f.toy;
    BAD(SAE_E_NULL, sae_toy_dims(NULL, &n, &d));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_dims(t, NULL, NULL));
    n = d = -1; /* one output may be NULL, as with sae_model_dims */
    assert_ok(sae_toy_dims(t, NULL, &d));
    assert_ok(sae_toy_dims(t, &n, NULL));
    assert_int_equal(n, REL_N);
    assert_int_equal(d, REL_D);
}

static void abuse_toy_sample(abuse *a)
{
    sae_toy *t = a->f.toy;
    float x[8 * REL_D];
    bad_shape s[16];
    BAD(SAE_E_NULL, sae_toy_sample(NULL, 0, 4, x, REL_D));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_sample(t, 0, 4, NULL, REL_D));
    int ns = bad_shapes(REL_D, s);
    for (int i = 0; i < ns; i++)
        BADH(SAE_E_SIZE, H_TOY, t, sae_toy_sample(t, 0, s[i].n, x, s[i].ld));
    /* sample indices first .. first+n-1 must not wrap around */
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_sample(t, UINT64_MAX - 1, 4, x, REL_D));
}

static void abuse_toy_sample_codes(abuse *a)
{
    sae_toy *t = a->f.toy;
    float x[8 * REL_D], mag[8 * REL_N];
    int64_t rp[9], needed = -1;
    int32_t feat[8 * REL_N];
    int64_t cap = 8 * REL_N;
    bad_shape s[16];
    BAD(SAE_E_NULL, sae_toy_sample_codes(NULL, 0, 4, x, REL_D, rp, feat, mag, cap, &needed));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_sample_codes(t, 0, 4, x, REL_D, NULL, feat, mag, cap, &needed));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_sample_codes(t, 0, 4, x, REL_D, rp, NULL, mag, cap, &needed));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_sample_codes(t, 0, 4, x, REL_D, rp, feat, NULL, cap, &needed));
    int ns = bad_shapes(REL_D, s);
    for (int i = 0; i < ns; i++)
        BADH(SAE_E_SIZE, H_TOY, t, sae_toy_sample_codes(t, 0, s[i].n, x, s[i].ld, rp, feat, mag, cap, &needed));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_sample_codes(t, 0, 4, x, REL_D, rp, feat, mag, -1, &needed));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_sample_codes(t, 0, 4, x, REL_D, rp, feat, mag, INT64_MIN, &needed));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_sample_codes(t, UINT64_MAX, 4, x, REL_D, rp, feat, mag, cap, &needed));
    /* too small: the needed count is reported, nothing written */
    needed = -1;
    BADH(SAE_E_BUFFER_TOO_SMALL, H_TOY, t, sae_toy_sample_codes(t, 0, 8, x, REL_D, rp, feat, mag, 0, &needed));
    EXPECT(needed > 0 && needed <= 8 * REL_N);
    int64_t big = needed;
    BADH(SAE_E_BUFFER_TOO_SMALL, H_TOY, t, sae_toy_sample_codes(t, 0, 8, x, REL_D, rp, feat, mag, big - 1, &needed));
    EXPECT(needed == big);
}

static void abuse_toy_dictionary(abuse *a)
{
    sae_toy *t = a->f.toy;
    float dict[REL_N * (REL_D + 2)];
    BAD(SAE_E_NULL, sae_toy_dictionary(NULL, dict, REL_D));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_dictionary(t, NULL, REL_D));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_dictionary(t, dict, REL_D - 1));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_dictionary(t, dict, 0));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_dictionary(t, dict, -1));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_dictionary(t, dict, INT64_MIN));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_dictionary(t, dict, INT64_MAX));
}

static void abuse_toy_fire_probs(abuse *a)
{
    sae_toy *t = a->f.toy;
    double p[REL_N];
    BAD(SAE_E_NULL, sae_toy_fire_probs(NULL, p, REL_N));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_fire_probs(t, NULL, REL_N));
    BADH(SAE_E_BUFFER_TOO_SMALL, H_TOY, t, sae_toy_fire_probs(t, p, REL_N - 1));
    BADH(SAE_E_BUFFER_TOO_SMALL, H_TOY, t, sae_toy_fire_probs(t, p, 0));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_fire_probs(t, p, -1));
    BADH(SAE_E_SIZE, H_TOY, t, sae_toy_fire_probs(t, p, INT64_MIN));
}

static void abuse_toy_get_config(abuse *a)
{
    sae_toy *t = a->f.toy;
    sae_config *out = NULL;
    BAD(SAE_E_NULL, sae_toy_get_config(NULL, &out));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_get_config(t, NULL));
    EXPECT(out == NULL);
}

static void abuse_toy_info(abuse *a)
{
    sae_toy *t = a->f.toy;
    double v;
    BAD(SAE_E_NULL, sae_toy_info(NULL, SAE_TOY_INFO_SCALE, &v));
    BADH(SAE_E_NULL, H_TOY, t, sae_toy_info(t, SAE_TOY_INFO_SCALE, NULL));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_TOY, t, sae_toy_info(t, bad_ids[i], &v));
}

/* ================================================================= model === */

static void abuse_model_create(abuse *a)
{
    sae_model *sentinel = (sae_model *)(uintptr_t)0x1, *out = sentinel;
    BAD(SAE_E_NULL, sae_model_create(NULL, a->f.cfg[SAE_KIND_MODEL], NULL));
    BAD(SAE_E_NULL, sae_model_create(&out, NULL, NULL));
    EXPECT(out == sentinel || out == NULL);
    out = sentinel;
    BAD(SAE_E_CONFIG, sae_model_create(&out, a->f.cfg[SAE_KIND_TOY], NULL));
    EXPECT(out == sentinel || out == NULL);
    out = sentinel;
    sae_config *c = test_config(SAE_KIND_MODEL, "d_in", 1048576.0, "n_latents", 16777216.0, NULL);
    BAD(SAE_E_CONFIG, sae_model_create(&out, c, NULL));
    EXPECT(out == sentinel || out == NULL);
    sae_config_free(c);
}

HANDLE_BASICS(model)
HANDLE_CLONE(model)

static void abuse_model_dims(abuse *a)
{
    int64_t d, l;
    sae_model *m = a->f.model;
    BAD(SAE_E_NULL, sae_model_dims(NULL, &d, &l));
    /* model.c lets either output be NULL (not both); toy_dims requires both */
    BADH(SAE_E_NULL, H_MODEL, m, sae_model_dims(m, NULL, NULL));
    (void)d;
    (void)l;
}

static void abuse_model_get_scalar(abuse *a, int i64)
{
    sae_model *m = a->f.model;
    int64_t iv;
    double fv;
    if (i64) {
        BAD(SAE_E_NULL, sae_model_get_i64(NULL, SAE_MODEL_D_IN, &iv));
        BADH(SAE_E_NULL, H_MODEL, m, sae_model_get_i64(m, SAE_MODEL_D_IN, NULL));
    } else {
        BAD(SAE_E_NULL, sae_model_get_f64(NULL, SAE_MODEL_D_IN, &fv));
        BADH(SAE_E_NULL, H_MODEL, m, sae_model_get_f64(m, SAE_MODEL_D_IN, NULL));
    }
    for (int i = 0; i < N_UNKNOWN; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_MODEL, m,
             i64 ? sae_model_get_i64(m, unknown_keys[i], &iv) : sae_model_get_f64(m, unknown_keys[i], &fv));
    BADH(SAE_E_UNKNOWN_KEY, H_MODEL, m,
         i64 ? sae_model_get_i64(m, SAE_TOY_D, &iv) : sae_model_get_f64(m, SAE_TRAINER_LR, &fv));
    param ps[128];
    int n = params_of(SAE_KIND_MODEL, ps, 128);
    for (int p = 0; p < n; p++)
        if (ps[p].type != (i64 ? SAE_TYPE_I64 : SAE_TYPE_F64))
            BADH(SAE_E_TYPE, H_MODEL, m,
                 i64 ? sae_model_get_i64(m, ps[p].key, &iv) : sae_model_get_f64(m, ps[p].key, &fv));
}

static void abuse_model_get_i64(abuse *a) { abuse_model_get_scalar(a, 1); }
static void abuse_model_get_f64(abuse *a) { abuse_model_get_scalar(a, 0); }

/* encode (x: n x D -> z: n x L) or decode (z -> x) */
static void abuse_model_forward(abuse *a, int enc)
{
    sae_model *m = a->f.model;
    int64_t in_w = enc ? REL_D : REL_L, out_w = enc ? REL_L : REL_D;
    float in[4 * REL_L], out[4 * REL_L];
    bad_shape s[16];
    rel_fill(in, 4, in_w, in_w, 1.0f, 3);
#define FWD(mm, x, n, ldx, y, ldy) (enc ? sae_model_encode((mm), (x), (n), (ldx), (y), (ldy)) \
                                        : sae_model_decode((mm), (x), (n), (ldx), (y), (ldy)))
    BAD(SAE_E_NULL, FWD(NULL, in, 4, in_w, out, out_w));
    BADH(SAE_E_NULL, H_MODEL, m, FWD(m, NULL, 4, in_w, out, out_w));
    BADH(SAE_E_NULL, H_MODEL, m, FWD(m, in, 4, in_w, NULL, out_w));
    int ns = bad_shapes(in_w, s);
    for (int i = 0; i < ns; i++)
        BADH(SAE_E_SIZE, H_MODEL, m, FWD(m, in, s[i].n, s[i].ld, out, out_w));
    BADH(SAE_E_SIZE, H_MODEL, m, FWD(m, in, 4, in_w, out, out_w - 1));
    BADH(SAE_E_SIZE, H_MODEL, m, FWD(m, in, 4, in_w, out, 0));
    BADH(SAE_E_SIZE, H_MODEL, m, FWD(m, in, 4, in_w, out, INT64_MIN));
    float specials[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        float saved = in[3 * in_w + in_w - 1];
        in[3 * in_w + in_w - 1] = specials[k]; /* the very last element */
        BADH(SAE_E_NONFINITE, H_MODEL, m, FWD(m, in, 4, in_w, out, out_w));
        in[3 * in_w + in_w - 1] = saved;
    }
#undef FWD
}

static void abuse_model_encode(abuse *a) { abuse_model_forward(a, 1); }
static void abuse_model_decode(abuse *a) { abuse_model_forward(a, 0); }

static int64_t arch_of(const sae_model *m)
{
    int64_t arch = 0;
    assert_ok(sae_model_get_i64(m, SAE_MODEL_ARCH, &arch));
    return arch;
}

/* Whether the model's architecture has the optional tensor w (include/sae/model.h). */
static int has_tensor(const sae_model *m, int32_t w)
{
    int64_t arch = arch_of(m);
    if (w == SAE_TENSOR_THRESHOLD)
        return arch == SAE_ARCH_JUMPRELU || arch == SAE_ARCH_BATCHTOPK || arch == SAE_ARCH_MATRYOSHKA;
    if (w == SAE_TENSOR_R_MAG || w == SAE_TENSOR_B_MAG)
        return arch == SAE_ARCH_GATED;
    return 1;
}

static void abuse_model_tensor_shape(abuse *a)
{
    sae_model *m = a->f.model;
    int64_t r, c;
    BAD(SAE_E_NULL, sae_model_tensor_shape(NULL, SAE_TENSOR_W_ENC, &r, &c));
    BADH(SAE_E_NULL, H_MODEL, m, sae_model_tensor_shape(m, SAE_TENSOR_W_ENC, NULL, &c));
    BADH(SAE_E_NULL, H_MODEL, m, sae_model_tensor_shape(m, SAE_TENSOR_W_ENC, &r, NULL));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_MODEL, m, sae_model_tensor_shape(m, bad_ids[i], &r, &c));
    float t[4 * REL_L];
    for (int32_t w = SAE_TENSOR_THRESHOLD; w <= SAE_TENSOR_B_MAG; w++)
        if (!has_tensor(m, w)) {
            BADH(SAE_E_NOT_SUPPORTED, H_MODEL, m, sae_model_tensor_shape(m, w, &r, &c));
            BADH(SAE_E_NOT_SUPPORTED, H_MODEL, m, sae_model_get_tensor(m, w, t, REL_L));
            BADH(SAE_E_NOT_SUPPORTED, H_MODEL, m, sae_model_set_tensor(m, w, t, REL_L));
        }
}

static void abuse_model_get_tensor(abuse *a)
{
    sae_model *m = a->f.model;
    float t[REL_D * REL_L + REL_L];
    BAD(SAE_E_NULL, sae_model_get_tensor(NULL, SAE_TENSOR_W_DEC, t, REL_D));
    BADH(SAE_E_NULL, H_MODEL, m, sae_model_get_tensor(m, SAE_TENSOR_W_DEC, NULL, REL_D));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_MODEL, m, sae_model_get_tensor(m, bad_ids[i], t, REL_L));
    int64_t lds[] = {REL_D - 1, 0, -1, INT64_MIN};
    for (int i = 0; i < 4; i++)
        BADH(SAE_E_SIZE, H_MODEL, m, sae_model_get_tensor(m, SAE_TENSOR_W_DEC, t, lds[i]));
    BADH(SAE_E_SIZE, H_MODEL, m, sae_model_get_tensor(m, SAE_TENSOR_W_ENC, t, REL_L - 1));
    BADH(SAE_E_SIZE, H_MODEL, m, sae_model_get_tensor(m, SAE_TENSOR_B_ENC, t, REL_L - 1));
    BADH(SAE_E_SIZE, H_MODEL, m, sae_model_get_tensor(m, SAE_TENSOR_W_DEC, t, INT64_MAX));
}

static void abuse_model_set_tensor(abuse *a)
{
    sae_model *m = a->f.model;
    float t[REL_D * REL_L];
    int32_t which[8];
    int n_which = 0;
    int64_t arch = arch_of(m);
    for (int32_t w = SAE_TENSOR_W_ENC; w <= SAE_TENSOR_B_MAG; w++) /* every writable tensor */
        if (has_tensor(m, w) && !(w == SAE_TENSOR_THRESHOLD && arch != SAE_ARCH_JUMPRELU))
            which[n_which++] = w;
    BAD(SAE_E_NULL, sae_model_set_tensor(NULL, SAE_TENSOR_W_DEC, t, REL_D));
    for (int w = 0; w < n_which; w++) {
        int64_t rows, cols;
        assert_ok(sae_model_tensor_shape(m, which[w], &rows, &cols));
        assert_ok(sae_model_get_tensor(m, which[w], t, cols));
        BADH(SAE_E_NULL, H_MODEL, m, sae_model_set_tensor(m, which[w], NULL, cols));
        BADH(SAE_E_SIZE, H_MODEL, m, sae_model_set_tensor(m, which[w], t, cols - 1));
        BADH(SAE_E_SIZE, H_MODEL, m, sae_model_set_tensor(m, which[w], t, 0));
        BADH(SAE_E_SIZE, H_MODEL, m, sae_model_set_tensor(m, which[w], t, INT64_MIN));
        BADH(SAE_E_SIZE, H_MODEL, m, sae_model_set_tensor(m, which[w], t, INT64_MAX));
        float specials[] = {NAN, INFINITY, -INFINITY};
        for (int k = 0; k < 3; k++) {
            float saved = t[rows * cols - 1];
            t[rows * cols - 1] = specials[k];
            BADH(SAE_E_NONFINITE, H_MODEL, m, sae_model_set_tensor(m, which[w], t, cols));
            t[rows * cols - 1] = saved;
        }
    }
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_MODEL, m, sae_model_set_tensor(m, bad_ids[i], t, REL_L));
    for (int j = 0; j < REL_L; j++)
        t[j] = -0.5f;
    if (arch == SAE_ARCH_JUMPRELU) /* thresholds are >= 0 */
        BADH(SAE_E_RANGE, H_MODEL, m, sae_model_set_tensor(m, SAE_TENSOR_THRESHOLD, t, REL_L));
    if (arch == SAE_ARCH_BATCHTOPK || arch == SAE_ARCH_MATRYOSHKA) /* learned by the trainer */
        BADH(SAE_E_NOT_SUPPORTED, H_MODEL, m, sae_model_set_tensor(m, SAE_TENSOR_THRESHOLD, t, REL_L));
}

/* =============================================================== trainer === */

static void abuse_trainer_create(abuse *a)
{
    sae_trainer *sentinel = (sae_trainer *)(uintptr_t)0x1, *out = sentinel;
    sae_model *m = a->f.model;
    const sae_config *tc = a->f.cfg[SAE_KIND_TRAINER];
    BAD(SAE_E_NULL, sae_trainer_create(NULL, m, tc, NULL));
    BAD(SAE_E_NULL, sae_trainer_create(&out, NULL, tc, NULL));
    EXPECT(out == sentinel || out == NULL);
    out = sentinel;
    BAD(SAE_E_NULL, sae_trainer_create(&out, m, NULL, NULL));
    EXPECT(out == sentinel || out == NULL);
    out = sentinel;
    BAD(SAE_E_CONFIG, sae_trainer_create(&out, m, a->f.cfg[SAE_KIND_MODEL], NULL));
    EXPECT(out == sentinel || out == NULL);
}

HANDLE_BASICS(trainer)

static void abuse_trainer_model(abuse *a) { EXPECT(sae_trainer_model(NULL) == NULL); }


static int32_t never_called_progress(void *user, int64_t step, int64_t total, double value)
{
    (void)step; (void)total; (void)value;
    ++*(int *)user;
    return 0;
}

static void abuse_trainer_set_callbacks(abuse *a)
{
    int calls = 0;
    BAD(SAE_E_NULL, sae_trainer_set_callbacks(NULL, NULL, never_called_progress, &calls));
    EXPECT(calls == 0);
}

static void abuse_trainer_step(abuse *a)
{
    sae_trainer *t = a->f.trainer;
    float x[4 * REL_D];
    bad_shape s[16];
    rel_fill(x, 4, REL_D, REL_D, 1.0f, 5);
    BAD(SAE_E_NULL, sae_trainer_step(NULL, x, 4, REL_D));
    BADH(SAE_E_NULL, H_TRAINER, t, sae_trainer_step(t, NULL, 4, REL_D));
    int ns = bad_shapes(REL_D, s);
    for (int i = 0; i < ns; i++)
        BADH(SAE_E_SIZE, H_TRAINER, t, sae_trainer_step(t, x, s[i].n, s[i].ld));
    float specials[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        x[4 * REL_D - 1] = specials[k];
        BADH(SAE_E_NONFINITE, H_TRAINER, t, sae_trainer_step(t, x, 4, REL_D));
    }
}

static void abuse_trainer_train_data(abuse *a)
{
    sae_trainer *t = a->f.trainer;
    enum { ROWS = 3 * REL_BATCH };
    static float x[ROWS * REL_D];
    bad_shape s[16];
    rel_fill(x, ROWS, REL_D, REL_D, 1.0f, 6);
    BAD(SAE_E_NULL, sae_trainer_train_data(NULL, x, ROWS, REL_D, 2));
    BADH(SAE_E_NULL, H_TRAINER, t, sae_trainer_train_data(t, NULL, ROWS, REL_D, 2));
    int ns = bad_shapes(REL_D, s);
    for (int i = 0; i < ns; i++)
        BADH(SAE_E_SIZE, H_TRAINER, t, sae_trainer_train_data(t, x, s[i].n, s[i].ld, 2));
    BADH(SAE_E_SIZE, H_TRAINER, t, sae_trainer_train_data(t, x, ROWS, REL_D, -1));
    BADH(SAE_E_SIZE, H_TRAINER, t, sae_trainer_train_data(t, x, ROWS, REL_D, INT64_MIN));
    /* a bad value in the LAST row must be found before the first step changes anything */
    float specials[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        x[ROWS * REL_D - 1] = specials[k];
        BADH(SAE_E_NONFINITE, H_TRAINER, t, sae_trainer_train_data(t, x, ROWS, REL_D, 5));
    }
}

static void abuse_trainer_train_toy(abuse *a)
{
    sae_trainer *t = a->f.trainer;
    BAD(SAE_E_NULL, sae_trainer_train_toy(NULL, a->f.toy, 1));
    BADH(SAE_E_NULL, H_TRAINER, t, sae_trainer_train_toy(t, NULL, 1));
    BADH(SAE_E_SIZE, H_TRAINER, t, sae_trainer_train_toy(t, a->f.toy, -1));
    BADH(SAE_E_SIZE, H_TRAINER, t, sae_trainer_train_toy(t, a->f.toy, INT64_MIN));
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", (double)REL_N, "d", REL_D + 1.0, NULL);
    sae_toy *wide = NULL;
    assert_ok(sae_toy_create(&wide, c, NULL));
    BADH(SAE_E_MISMATCH, H_TRAINER, t, sae_trainer_train_toy(t, wide, 1));
    sae_toy_free(wide);
    sae_config_free(c);
}

static void abuse_trainer_stat(abuse *a)
{
    sae_trainer *t = a->f.trainer;
    double v;
    BAD(SAE_E_NULL, sae_trainer_stat(NULL, SAE_STAT_LOSS, &v));
    BADH(SAE_E_NULL, H_TRAINER, t, sae_trainer_stat(t, SAE_STAT_LOSS, NULL));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_TRAINER, t, sae_trainer_stat(t, bad_ids[i], &v));
}

static void abuse_trainer_train_toy_many(abuse *a)
{
    sae_trainer *t = a->f.trainer;
    sae_trainer *one[1] = {t}, *with_null[2] = {t, NULL};
    BAD(SAE_E_NULL, sae_trainer_train_toy_many(NULL, 1, a->f.toy, 1));
    BAD(SAE_E_SIZE, sae_trainer_train_toy_many(one, 0, a->f.toy, 1));
    BAD(SAE_E_SIZE, sae_trainer_train_toy_many(one, -1, a->f.toy, 1));
    BAD(SAE_E_SIZE, sae_trainer_train_toy_many(one, INT64_MIN, a->f.toy, 1));
    BAD(SAE_E_NULL, sae_trainer_train_toy_many(with_null, 2, a->f.toy, 1));
    sae_trainer *twice[2] = {t, t};
    BAD(SAE_E_INVALID, sae_trainer_train_toy_many(twice, 2, a->f.toy, 1));
    BADH(SAE_E_NULL, H_TRAINER, t, sae_trainer_train_toy_many(one, 1, NULL, 1));
    BADH(SAE_E_SIZE, H_TRAINER, t, sae_trainer_train_toy_many(one, 1, a->f.toy, -1));
    /* a partner with another batch size cannot share the stream */
    sae_config *c = NULL;
    sae_model *m = NULL;
    sae_trainer *other = NULL;
    assert_ok(sae_config_clone(&c, a->f.cfg[SAE_KIND_TRAINER]));
    assert_ok(sae_config_set_i64(c, SAE_TRAINER_BATCH_SIZE, REL_BATCH / 2));
    assert_ok(sae_model_create(&m, a->f.cfg[SAE_KIND_MODEL], NULL));
    assert_ok(sae_trainer_create(&other, m, c, NULL));
    sae_trainer *pair[2] = {t, other};
    BAD(SAE_E_MISMATCH, sae_trainer_train_toy_many(pair, 2, a->f.toy, 1));
    sae_trainer_free(other);
    sae_model_free(m);
    sae_config_free(c);
}

/* =============================================================== metrics === */

static void abuse_metrics_create(abuse *a)
{
    sae_metrics *sentinel = (sae_metrics *)(uintptr_t)0x1, *out = sentinel;
    BAD(SAE_E_NULL, sae_metrics_create(NULL, a->f.cfg[SAE_KIND_METRICS], NULL));
    BAD(SAE_E_NULL, sae_metrics_create(&out, NULL, NULL));
    EXPECT(out == sentinel || out == NULL);
    out = sentinel;
    BAD(SAE_E_CONFIG, sae_metrics_create(&out, a->f.cfg[SAE_KIND_TOY], NULL));
    EXPECT(out == sentinel || out == NULL);
}

HANDLE_BASICS(metrics)

static void abuse_metrics_compute(abuse *a)
{
    sae_metrics *mt = a->f.metrics;
    BAD(SAE_E_NULL, sae_metrics_compute(NULL, a->f.model, a->f.toy));
    BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_compute(mt, NULL, a->f.toy));
    BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_compute(mt, a->f.model, NULL));
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", (double)REL_N, "d", REL_D + 1.0, NULL);
    sae_toy *wide = NULL;
    assert_ok(sae_toy_create(&wide, c, NULL));
    BADH(SAE_E_MISMATCH, H_METRICS, mt, sae_metrics_compute(mt, a->f.model, wide));
    sae_toy_free(wide);
    sae_config_free(c);
}

/* A metrics handle that has computed nothing yet: its results are not there. */
static sae_metrics *fresh_metrics(abuse *a)
{
    sae_metrics *m = NULL;
    assert_ok(sae_metrics_create(&m, a->f.cfg[SAE_KIND_METRICS], NULL));
    return m;
}

static void abuse_metrics_get(abuse *a)
{
    sae_metrics *mt = a->f.metrics, *fresh = fresh_metrics(a);
    double v;
    BAD(SAE_E_NULL, sae_metrics_get(NULL, SAE_METRIC_MMCS_TRUE, &v));
    BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_get(mt, SAE_METRIC_MMCS_TRUE, NULL));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_METRICS, mt, sae_metrics_get(mt, bad_ids[i], &v));
    BADH(SAE_E_STATE, H_METRICS, fresh, sae_metrics_get(fresh, SAE_METRIC_MMCS_TRUE, &v));
    sae_metrics_free(fresh);
}

static void abuse_metrics_array_shape(abuse *a)
{
    sae_metrics *mt = a->f.metrics, *fresh = fresh_metrics(a);
    int64_t r, c;
    BAD(SAE_E_NULL, sae_metrics_array_shape(NULL, SAE_ARRAY_COSINE, &r, &c));
    BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_array_shape(mt, SAE_ARRAY_COSINE, NULL, &c));
    BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_array_shape(mt, SAE_ARRAY_COSINE, &r, NULL));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_METRICS, mt, sae_metrics_array_shape(mt, bad_ids[i], &r, &c));
    BADH(SAE_E_STATE, H_METRICS, fresh, sae_metrics_array_shape(fresh, SAE_ARRAY_COSINE, &r, &c));
    sae_metrics_free(fresh);
}

static void abuse_metrics_copy_array(abuse *a)
{
    sae_metrics *mt = a->f.metrics, *fresh = fresh_metrics(a);
    float buf[REL_N * REL_L];
    BAD(SAE_E_NULL, sae_metrics_copy_array(NULL, SAE_ARRAY_COSINE, buf, REL_L));
    BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_copy_array(mt, SAE_ARRAY_COSINE, NULL, REL_L));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_METRICS, mt, sae_metrics_copy_array(mt, bad_ids[i], buf, REL_L));
    int64_t lds[] = {REL_L - 1, 0, -1, INT64_MIN, INT64_MAX};
    for (int i = 0; i < 5; i++)
        BADH(SAE_E_SIZE, H_METRICS, mt, sae_metrics_copy_array(mt, SAE_ARRAY_COSINE, buf, lds[i]));
    BADH(SAE_E_STATE, H_METRICS, fresh, sae_metrics_copy_array(fresh, SAE_ARRAY_COSINE, buf, REL_L));
    sae_metrics_free(fresh);
}

/* ==================================================================== io === */

/* Statuses a reader may give for a bad buffer (include/sae/io.h). */
static int reader_status(int32_t st)
{
    return st == SAE_E_CORRUPT || st == SAE_E_FORMAT_VERSION || st == SAE_E_NOT_SUPPORTED ||
           st == SAE_E_MISMATCH || st == SAE_E_CONFIG;
}

/* Writers: NULL handle, NULL written, short buffers (the needed size is reported). */
#define ABUSE_WRITER(wfn, kind, h)                                                          \
    do {                                                                                   \
        size_t need_ = 0, w_ = 0;                                                          \
        assert_ok(wfn((h), NULL, 0, &need_));                                              \
        unsigned char *buf_ = malloc(need_ + 1);                                           \
        assert_non_null(buf_);                                                             \
        BAD(SAE_E_NULL, wfn(NULL, buf_, need_, &w_));                                       \
        BADH(SAE_E_NULL, kind, (h), wfn((h), buf_, need_, NULL));                           \
        BADH(SAE_E_BUFFER_TOO_SMALL, kind, (h), wfn((h), buf_, need_ - 1, &w_));            \
        EXPECT(w_ == need_);                                                               \
        BADH(SAE_E_BUFFER_TOO_SMALL, kind, (h), wfn((h), buf_, 0, &w_));                    \
        BADH(SAE_E_BUFFER_TOO_SMALL, kind, (h), wfn((h), buf_, 1, &w_));                    \
        free(buf_);                                                                        \
    } while (0)

/* One bad buffer for a reader: a specific status, a message, *out untouched. */
#define READER_CASE(rfn, type, buf, len)                                                    \
    do {                                                                                   \
        type *out_ = (type *)(uintptr_t)0x1;                                               \
        char msg_[256] = "";                                                               \
        int32_t st_ = rfn(&out_, (buf), (len), NULL, msg_, sizeof msg_);                    \
        a->cases++;                                                                        \
        if (st_ == SAE_OK)                                                                 \
            a->failures++, print_message("  FAIL %s: accepted a bad buffer (len %zu)\n",   \
                                         a->fn, (size_t)(len));                            \
        else if (!reader_status(st_) || msg_[0] == '\0' || out_ != (type *)(uintptr_t)0x1) \
            a->failures++, print_message("  FAIL %s: bad buffer (len %zu): status %d (%s), " \
                                         "message '%s', out %s\n", a->fn, (size_t)(len),   \
                                         (int)st_, sae_status_str(st_), msg_,              \
                                         out_ == (type *)(uintptr_t)0x1 ? "untouched" : "SET"); \
    } while (0)

/* Readers: NULL out / buffer, every truncation of a good buffer, every byte flipped,
 * and the good buffer of another object kind. */
#define ABUSE_READER(rfn, type, good, len, other, other_len)                                \
    do {                                                                                   \
        type *o_ = NULL;                                                                   \
        char m_[64];                                                                       \
        BAD(SAE_E_NULL, rfn(NULL, (good), (len), NULL, m_, sizeof m_));                     \
        BAD(SAE_E_NULL, rfn(&o_, NULL, (len), NULL, m_, sizeof m_));                        \
        EXPECT(o_ == NULL);                                                                \
        for (size_t cut_ = 0; cut_ < (len); cut_++)                                        \
            READER_CASE(rfn, type, (good), cut_);                                           \
        unsigned char *flip_ = malloc(len);                                                \
        assert_non_null(flip_);                                                            \
        for (size_t at_ = 0; at_ < (len); at_++) {                                         \
            memcpy(flip_, (good), (len));                                                  \
            flip_[at_] ^= 0x5a;                                                            \
            READER_CASE(rfn, type, flip_, (len));                                           \
        }                                                                                  \
        free(flip_);                                                                       \
        READER_CASE(rfn, type, (other), (other_len));                                       \
    } while (0)

/* Good native buffers of the fixture's objects. */
typedef struct blobs {
    unsigned char *cfg, *toy, *model, *trainer;
    size_t cfg_len, toy_len, model_len, trainer_len;
} blobs;

#define WRITE_BLOB(fn, h, ptr, len)                                                        \
    do {                                                                                   \
        (ptr) = NULL;                                                                      \
        (len) = 0;                                                                         \
        if (REL_HAVE(fn) && (h) != NULL) {                                                 \
            assert_ok(fn((h), NULL, 0, &(len)));                                           \
            (ptr) = malloc(len);                                                           \
            assert_non_null(ptr);                                                          \
            assert_ok(fn((h), (ptr), (len), &(len)));                                      \
        }                                                                                  \
    } while (0)

static void make_blobs(abuse *a, blobs *b)
{
    WRITE_BLOB(sae_config_serialize, a->f.cfg[SAE_KIND_TOY], b->cfg, b->cfg_len);
    WRITE_BLOB(sae_toy_serialize, a->f.toy, b->toy, b->toy_len);
    WRITE_BLOB(sae_model_serialize, a->f.model, b->model, b->model_len);
    WRITE_BLOB(sae_trainer_serialize, a->f.trainer, b->trainer, b->trainer_len);
}

static void free_blobs(blobs *b)
{
    free(b->cfg);
    free(b->toy);
    free(b->model);
    free(b->trainer);
}

static void abuse_config_serialize(abuse *a)
{
    for (int k = 0; k < 4; k++)
        ABUSE_WRITER(sae_config_serialize, H_CONFIG, a->f.cfg[kinds[k]]);
}

static void abuse_toy_serialize(abuse *a) { ABUSE_WRITER(sae_toy_serialize, H_TOY, a->f.toy); }
static void abuse_model_serialize(abuse *a) { ABUSE_WRITER(sae_model_serialize, H_MODEL, a->f.model); }
static void abuse_trainer_serialize(abuse *a) { ABUSE_WRITER(sae_trainer_serialize, H_TRAINER, a->f.trainer); }
static void abuse_export_safetensors(abuse *a) { ABUSE_WRITER(sae_model_export_safetensors, H_MODEL, a->f.model); }
static void abuse_export_saelens_cfg(abuse *a) { ABUSE_WRITER(sae_model_export_saelens_cfg, H_MODEL, a->f.model); }

/* abuse_<kind>_deserialize: the reader of <kind> on the fixture's buffers. */
#define READER_ENTRY(kind, good, other)                                                    \
    static void abuse_##kind##_deserialize(abuse *a)                                       \
    {                                                                                      \
        blobs b;                                                                           \
        make_blobs(a, &b);                                                                 \
        ABUSE_READER(sae_##kind##_deserialize, sae_##kind, b.good, b.good##_len, b.other,  \
                     b.other##_len);                                                       \
        free_blobs(&b);                                                                    \
    }
READER_ENTRY(config, cfg, model)
READER_ENTRY(toy, toy, model)
READER_ENTRY(model, model, toy)
READER_ENTRY(trainer, trainer, model)

static void abuse_io_inspect(abuse *a)
{
    blobs b;
    make_blobs(a, &b);
    int32_t object, major, minor;
    char msg[128];
    BAD(SAE_E_NULL, sae_io_inspect(NULL, 16, &object, &major, &minor, msg, sizeof msg));
    for (size_t cut = 0; cut < 24 && cut < b.model_len; cut++)
        BAD(SAE_E_CORRUPT, sae_io_inspect(b.model, cut, &object, &major, &minor, msg, sizeof msg));
    unsigned char junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    BAD(SAE_E_CORRUPT, sae_io_inspect(junk, sizeof junk, &object, &major, &minor, msg, sizeof msg));
    free_blobs(&b);
}

/* A model read back from a (possibly damaged) safetensors buffer: rejected, or finite. */
static void import_case(abuse *a, const unsigned char *buf, size_t len, const char *cfg,
                        size_t cfg_len)
{
    sae_model *m = (sae_model *)(uintptr_t)0x1;
    char msg[256] = "";
    int32_t st = sae_model_import_safetensors(&m, buf, len, cfg, cfg_len, NULL, msg, sizeof msg);
    a->cases++;
    if (st == SAE_OK) {
        float t[4096];
        int64_t r, c;
        int finite = 1;
        for (int32_t w = 1; w <= 16; w++)
            if (sae_model_tensor_shape(m, w, &r, &c) == SAE_OK && r * c <= 4096 &&
                sae_model_get_tensor(m, w, t, c) == SAE_OK)
                finite &= rel_all_finite(t, r * c);
        if (!finite)
            a->failures++, print_message("  FAIL %s: imported NaN/Inf parameters (len %zu)\n", a->fn, len);
        sae_model_free(m);
    } else if (!reader_status(st) || msg[0] == '\0' || m != (sae_model *)(uintptr_t)0x1) {
        a->failures++;
        print_message("  FAIL %s: len %zu: status %d (%s), message '%s'\n", a->fn, len, (int)st,
                      sae_status_str(st), msg);
    }
}

static void abuse_import_safetensors(abuse *a)
{
    size_t len = 0;
    assert_ok(sae_model_export_safetensors(a->f.model, NULL, 0, &len));
    unsigned char *good = malloc(len), *bad = malloc(len);
    assert_non_null(good);
    assert_non_null(bad);
    assert_ok(sae_model_export_safetensors(a->f.model, good, len, &len));
    sae_model *m = NULL;
    char msg[64];
    BAD(SAE_E_NULL, sae_model_import_safetensors(NULL, good, len, NULL, 0, NULL, msg, sizeof msg));
    BAD(SAE_E_NULL, sae_model_import_safetensors(&m, NULL, len, NULL, 0, NULL, msg, sizeof msg));
    EXPECT(m == NULL);
    for (size_t cut = 0; cut < len; cut++) {
        sae_model *o = (sae_model *)(uintptr_t)0x1;
        char mm[256] = "";
        int32_t st = sae_model_import_safetensors(&o, good, cut, NULL, 0, NULL, mm, sizeof mm);
        a->cases++;
        if (!reader_status(st) || mm[0] == '\0' || o != (sae_model *)(uintptr_t)0x1) {
            a->failures++;
            print_message("  FAIL %s: truncated to %zu: status %d (%s)\n", a->fn, cut, (int)st,
                          sae_status_str(st));
            if (st == SAE_OK)
                sae_model_free(o);
        }
    }
    for (size_t at = 0; at < len; at++) {
        memcpy(bad, good, len);
        bad[at] ^= 0x5a;
        import_case(a, bad, len, NULL, 0);
    }
    static const char *const cfgs[] = {"{", "[]", "{\"d_in\": -1}", "{\"d_in\": 1e400}",
                                       "{\"architecture\": \"nonsense\"}", "\xff\xfe"};
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        import_case(a, good, len, cfgs[i], strlen(cfgs[i]));
    free(good);
    free(bad);
}

static void abuse_metrics_list_size(abuse *a)
{
    sae_metrics *mt = a->f.metrics, *fresh = fresh_metrics(a);
    int64_t n;
    BAD(SAE_E_NULL, sae_metrics_list_size(NULL, SAE_LIST_DEAD, &n));
    BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_list_size(mt, SAE_LIST_DEAD, NULL));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_METRICS, mt, sae_metrics_list_size(mt, bad_ids[i], &n));
    BADH(SAE_E_STATE, H_METRICS, fresh, sae_metrics_list_size(fresh, SAE_LIST_DEAD, &n));
    sae_metrics_free(fresh);
}

/* A list the fixture's metrics hold with at least one entry (-1: none). */
static int32_t nonempty_list(const sae_metrics *mt, int64_t *len)
{
    for (int32_t which = 1; which <= 64; which++)
        if (sae_metrics_list_size(mt, which, len) == SAE_OK && *len > 0)
            return which;
    return -1;
}

static void abuse_metrics_copy_list(abuse *a)
{
    sae_metrics *mt = a->f.metrics, *fresh = fresh_metrics(a);
    int64_t buf[256], n = -5, len = 0;
    BAD(SAE_E_NULL, sae_metrics_copy_list(NULL, SAE_LIST_DEAD, buf, 256, &n));
    BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_copy_list(mt, SAE_LIST_DEAD, buf, 256, NULL));
    for (int i = 0; i < N_BAD_IDS; i++)
        BADH(SAE_E_UNKNOWN_KEY, H_METRICS, mt, sae_metrics_copy_list(mt, bad_ids[i], buf, 256, &n));
    BADH(SAE_E_STATE, H_METRICS, fresh, sae_metrics_copy_list(fresh, SAE_LIST_DEAD, buf, 256, &n));
    int32_t which = nonempty_list(mt, &len);
    if (which > 0 && len <= 256) {
        n = -5;
        BADH(SAE_E_BUFFER_TOO_SMALL, H_METRICS, mt, sae_metrics_copy_list(mt, which, buf, len - 1, &n));
        EXPECT(n == len);
        BADH(SAE_E_SIZE, H_METRICS, mt, sae_metrics_copy_list(mt, which, buf, -1, &n)); /* negative: SIZE everywhere */
        BADH(SAE_E_NULL, H_METRICS, mt, sae_metrics_copy_list(mt, which, NULL, 256, &n));
    } else {
        print_message("  note: no non-empty metric list in the fixture; short-buffer cases not run\n");
    }
    sae_metrics_free(fresh);
}

/* ================================================================= table === */

typedef void (*any_fn)(void);
typedef struct entry {
    const char *name;
    any_fn fn; /* NULL: not in this build of the library yet */
    int needs;
    void (*run)(abuse *a);
} entry;

#define E(name, needs, run) {#name, (any_fn)(name), (needs), (run)}

static const entry table[] = {
    /* core */
    E(sae_build_info, 0, abuse_version),
    E(sae_config_clone, 0, abuse_config_clone),
    E(sae_config_create, 0, abuse_config_create),
    E(sae_config_errmsg, 0, abuse_config_errmsg),
    E(sae_config_free, 0, abuse_config_free),
    E(sae_config_get_f64, 0, abuse_config_get_f64),
    E(sae_config_get_f64_array, 0, abuse_config_get_f64_array),
    E(sae_config_get_i64, 0, abuse_config_get_i64),
    E(sae_config_get_i64_array, 0, abuse_config_get_i64_array),
    E(sae_config_kind, 0, abuse_config_free),
    E(sae_config_reset, 0, abuse_config_reset),
    E(sae_config_set_by_name, 0, abuse_config_set_by_name),
    E(sae_config_set_f64, 0, abuse_config_set_f64),
    E(sae_config_set_f64_array, 0, abuse_config_set_f64_array),
    E(sae_config_set_i64, 0, abuse_config_set_i64),
    E(sae_config_set_i64_array, 0, abuse_config_set_i64_array),
    E(sae_config_validate, 0, abuse_config_validate),
    E(sae_param_count, 0, abuse_param_count),
    E(sae_param_doc, 0, abuse_param_name_doc),
    E(sae_param_info, 0, abuse_param_info),
    E(sae_param_key_at, 0, abuse_param_key_at),
    E(sae_param_lookup, 0, abuse_param_lookup),
    E(sae_param_name, 0, abuse_param_name_doc),
    E(sae_status_str, 0, abuse_status_str),
    E(sae_version_number, 0, abuse_version),
    E(sae_version_string, 0, abuse_version),
    /* toy */
    E(sae_toy_clone, NEED_TOY, abuse_toy_clone),
    E(sae_toy_create, NEED_TOY, abuse_toy_create),
    E(sae_toy_dictionary, NEED_TOY, abuse_toy_dictionary),
    E(sae_toy_dims, NEED_TOY, abuse_toy_dims),
    E(sae_toy_errmsg, NEED_TOY, abuse_toy_errmsg),
    E(sae_toy_fire_probs, NEED_TOY, abuse_toy_fire_probs),
    E(sae_toy_free, NEED_TOY, abuse_toy_free),
    E(sae_toy_sample, NEED_TOY, abuse_toy_sample),
    E(sae_toy_sample_codes, NEED_TOY, abuse_toy_sample_codes),
    E(sae_toy_get_config, NEED_TOY, abuse_toy_get_config),
    E(sae_toy_info, NEED_TOY, abuse_toy_info),
    /* model */
    E(sae_model_clone, NEED_MODEL, abuse_model_clone),
    E(sae_model_create, NEED_MODEL, abuse_model_create),
    E(sae_model_decode, NEED_MODEL, abuse_model_decode),
    E(sae_model_dims, NEED_MODEL, abuse_model_dims),
    E(sae_model_encode, NEED_MODEL, abuse_model_encode),
    E(sae_model_errmsg, NEED_MODEL, abuse_model_errmsg),
    E(sae_model_free, NEED_MODEL, abuse_model_free),
    E(sae_model_get_f64, NEED_MODEL, abuse_model_get_f64),
    E(sae_model_get_i64, NEED_MODEL, abuse_model_get_i64),
    E(sae_model_get_tensor, NEED_MODEL, abuse_model_get_tensor),
    E(sae_model_set_tensor, NEED_MODEL, abuse_model_set_tensor),
    E(sae_model_tensor_shape, NEED_MODEL, abuse_model_tensor_shape),
    /* train */
    E(sae_trainer_create, NEED_MODEL | NEED_TRAINER, abuse_trainer_create),
    E(sae_trainer_errmsg, NEED_TRAINER, abuse_trainer_errmsg),
    E(sae_trainer_free, NEED_TRAINER, abuse_trainer_free),
    E(sae_trainer_model, NEED_TRAINER, abuse_trainer_model),
    E(sae_trainer_set_callbacks, NEED_TRAINER, abuse_trainer_set_callbacks),
    E(sae_trainer_stat, NEED_TRAINER, abuse_trainer_stat),
    E(sae_trainer_step, NEED_TRAINER, abuse_trainer_step),
    E(sae_trainer_train_data, NEED_TRAINER, abuse_trainer_train_data),
    E(sae_trainer_train_toy, NEED_TRAINER | NEED_TOY, abuse_trainer_train_toy),
    E(sae_trainer_train_toy_many, NEED_TRAINER | NEED_TOY, abuse_trainer_train_toy_many),
    /* metrics */
    E(sae_metrics_array_shape, NEED_METRICS, abuse_metrics_array_shape),
    E(sae_metrics_compute, NEED_METRICS, abuse_metrics_compute),
    E(sae_metrics_copy_array, NEED_METRICS, abuse_metrics_copy_array),
    E(sae_metrics_create, NEED_METRICS, abuse_metrics_create),
    E(sae_metrics_errmsg, NEED_METRICS, abuse_metrics_errmsg),
    E(sae_metrics_free, NEED_METRICS, abuse_metrics_free),
    E(sae_metrics_get, NEED_METRICS, abuse_metrics_get),
    E(sae_metrics_list_size, NEED_METRICS, abuse_metrics_list_size),
    E(sae_metrics_copy_list, NEED_METRICS, abuse_metrics_copy_list),
    /* io */
    E(sae_io_inspect, NEED_MODEL | IS_IO, abuse_io_inspect),
    E(sae_config_serialize, 0 | IS_IO, abuse_config_serialize),
    E(sae_config_deserialize, NEED_MODEL | IS_IO, abuse_config_deserialize),
    E(sae_toy_serialize, NEED_TOY | IS_IO, abuse_toy_serialize),
    E(sae_toy_deserialize, NEED_TOY | NEED_MODEL | IS_IO, abuse_toy_deserialize),
    E(sae_model_serialize, NEED_MODEL | IS_IO, abuse_model_serialize),
    E(sae_model_deserialize, NEED_MODEL | NEED_TOY | IS_IO, abuse_model_deserialize),
    E(sae_trainer_serialize, NEED_TRAINER | IS_IO, abuse_trainer_serialize),
    E(sae_trainer_deserialize, NEED_TRAINER | NEED_MODEL | IS_IO, abuse_trainer_deserialize),
    E(sae_model_export_safetensors, NEED_MODEL | IS_IO, abuse_export_safetensors),
    E(sae_model_export_saelens_cfg, NEED_MODEL | IS_IO, abuse_export_saelens_cfg),
    E(sae_model_import_safetensors, NEED_MODEL | IS_IO, abuse_import_safetensors),
};
#define N_TABLE ((int)(sizeof table / sizeof table[0]))

/* ---- the symbol list ---------------------------------------------------------- */

/* Names listed in lib/sae.map (identifiers followed by ';' outside comments). */
static int read_map(char names[][64], int cap)
{
    FILE *fp = fopen(SAE_MAP_PATH, "r");
    if (fp == NULL)
        fail_msg("cannot open %s", SAE_MAP_PATH);
    int n = 0, in_comment = 0, c, prev = 0;
    char word[64];
    size_t len = 0;
    while ((c = fgetc(fp)) != EOF) {
        if (in_comment) {
            if (prev == '*' && c == '/')
                in_comment = 0;
        } else if (prev == '/' && c == '*') {
            in_comment = 1;
            len = 0;
        } else if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            if (len < sizeof word - 1)
                word[len++] = (char)c;
        } else {
            if (c == ';' && len > 0 && n < cap) {
                word[len] = '\0';
                memcpy(names[n++], word, len + 1);
            }
            len = 0;
        }
        prev = (in_comment && c == '*') ? '*' : (in_comment ? 0 : c);
    }
    fclose(fp);
    return n;
}

static const entry *find_entry(const char *name)
{
    for (int i = 0; i < N_TABLE; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

static int fixture_has(const rel_fixture *f, int needs)
{
    return !((needs & NEED_TOY) && f->toy == NULL) && !((needs & NEED_MODEL) && f->model == NULL) &&
           !((needs & NEED_TRAINER) && f->trainer == NULL) &&
           !((needs & NEED_METRICS) && f->metrics == NULL);
}

static void test_every_symbol_has_an_entry(void **state)
{
    (void)state;
    static char names[1024][64];
    int n = read_map(names, 1024), missing = 0;
    assert_true(n >= 20);
    for (int i = 0; i < n; i++)
        if (find_entry(names[i]) == NULL) {
            print_message("  no abuse entry for %s (listed in sae.map)\n", names[i]);
            missing++;
        }
    for (int i = 0; i < N_TABLE; i++) {
        int listed = 0;
        for (int j = 0; j < n; j++)
            listed |= strcmp(names[j], table[i].name) == 0;
        if (!listed) {
            print_message("  abuse entry %s is not in sae.map\n", table[i].name);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

static void run_matrix(abuse *a, char names[][64], int n, int *ran, int *skipped)
{
    for (int i = 0; i < n; i++) {
        const entry *e = find_entry(names[i]);
        if (e == NULL)
            continue; /* reported by test_every_symbol_has_an_entry */
        if (e->fn == NULL || !fixture_has(&a->f, e->needs)) {
            print_message("  skipped %s: not in this build of the library yet\n", e->name);
            ++*skipped;
            continue;
        }
        a->fn = e->name;
        int64_t before = a->cases;
        e->run(a);
        if (a->cases == before)
            print_message("  %s: no cases run\n", e->name);
        else if (a->cases - before >= 200) /* the big ones: registry sweeps, damaged buffers */
            print_message("  %s: %lld bad inputs\n", e->name, (long long)(a->cases - before));
        ++*ran;
    }
}

/* Handles that only saw failing calls behave exactly like twins that saw none. */
static void check_twin(abuse *a, const rel_variant *v)
{
    rel_fixture twin;
    assert_true(rel_fixture_init_variant(&twin, NULL, v));
    assert_true(rel_digest_fixture(&twin) == rel_digest_fixture(&a->f));
    if (a->f.trainer != NULL) {
        assert_ok(sae_trainer_step(a->f.trainer, a->f.batch, REL_BATCH, REL_D));
        assert_ok(sae_trainer_step(twin.trainer, twin.batch, REL_BATCH, REL_D));
        assert_true(rel_digest_trainer(twin.trainer) == rel_digest_trainer(a->f.trainer));
    }
    rel_fixture_free(&twin);
}

/* The model and trainer functions (not serialisation) again for every other model variant. */
static int per_variant(const entry *e)
{
    return !(e->needs & IS_IO) &&
           (strncmp(e->name, "sae_model_", 10) == 0 || strncmp(e->name, "sae_trainer_", 12) == 0);
}

static void test_matrix(void **state)
{
    (void)state;
    static char names[1024][64], model_names[1024][64];
    static abuse a;
    int n = read_map(names, 1024), ran = 0, skipped = 0, n_model = 0;
    for (int v = 0; v < rel_n_variants; v++) {
        if (!rel_fixture_init_variant(&a.f, NULL, &rel_variants[v])) {
            rel_fixture_free(&a.f);
            continue;
        }
        a.digest = rel_digest_fixture(&a.f);
        int64_t cases = a.cases;
        if (v == 0) {
            run_matrix(&a, names, n, &ran, &skipped);
            for (int i = 0; i < n; i++)
                if (find_entry(names[i]) != NULL && per_variant(find_entry(names[i])))
                    memcpy(model_names[n_model++], names[i], sizeof names[i]);
        } else {
            int ran_v = 0, skipped_v = 0;
            run_matrix(&a, model_names, n_model, &ran_v, &skipped_v);
        }
        print_message("  [%s] %lld bad inputs\n", rel_variants[v].name, (long long)(a.cases - cases));
        check_twin(&a, &rel_variants[v]);
        rel_fixture_free(&a.f);
    }
    print_message("  abuse matrix: %d functions checked (%d model/trainer ones per model variant), "
                  "%d skipped, %lld bad inputs, %lld failures\n",
                  ran, n_model, skipped, (long long)a.cases, (long long)a.failures);
    assert_int_equal(a.failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_symbol_has_an_entry),
        cmocka_unit_test(test_matrix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
