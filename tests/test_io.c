/* Serialisation: byte layer, configurations, toys, models (native format), the two-call
 * pattern, and refusal of damaged buffers (every byte flipped, every truncation, wrong
 * version, wrong byte order, oversized dimensions). White-box: reaches lib/io helpers to
 * re-seal deliberately edited buffers. */
#include "test_util.h"

#include "io/bytes.h"
#include "io/io_internal.h"
#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------- */

typedef int32_t (*ser_fn)(const void *obj, void *buf, size_t cap, size_t *written);

static int32_t ser_config(const void *o, void *b, size_t c, size_t *w) { return sae_config_serialize(o, b, c, w); }
static int32_t ser_toy(const void *o, void *b, size_t c, size_t *w) { return sae_toy_serialize(o, b, c, w); }
static int32_t ser_model(const void *o, void *b, size_t c, size_t *w) { return sae_model_serialize(o, b, c, w); }

/* Two-call serialisation into a fresh malloc'd buffer. */
static uint8_t *serialize(ser_fn fn, const void *obj, size_t *len)
{
    size_t need = 0;
    assert_ok(fn(obj, NULL, 0, &need));
    assert_true(need >= SAE_FMT_HEADER_SIZE);
    uint8_t *buf = malloc(need);
    assert_non_null(buf);
    size_t got = 0;
    assert_ok(fn(obj, buf, need, &got));
    assert_int_equal(got, need);
    *len = need;
    return buf;
}

/* Recompute both checksums after a deliberate edit. */
static void reseal(uint8_t *b, size_t len)
{
    sae_put_le64(b + 16, (uint64_t)(len - SAE_FMT_HEADER_SIZE));
    sae_put_le32(b + 24, sae_crc32(0, b + SAE_FMT_HEADER_SIZE, len - SAE_FMT_HEADER_SIZE));
    sae_put_le32(b + 28, sae_crc32(0, b, 28));
}

/* Offset of the value of scalar parameter `key` in the first configuration section. */
static size_t find_param(const uint8_t *b, size_t len, uint32_t key)
{
    size_t at = SAE_FMT_HEADER_SIZE + SAE_FMT_SECTION_HEADER + 8;
    while (at + 8 <= len) {
        uint32_t k = sae_le32(b + at);
        int type = b[at + 4];
        if (k == key)
            return at + 8;
        at += 8;
        at += (type == SAE_TYPE_F64_ARRAY || type == SAE_TYPE_I64_ARRAY) ? 8 + 8 * sae_le64(b + at) : 8;
    }
    fail_msg("parameter %u not found", (unsigned)key);
    return 0;
}

static int bits_equal(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* ---- byte layer ------------------------------------------------------------------- */

static void test_bytes(void **state)
{
    (void)state;
    /* CRC-32 check value of the standard (zlib/PNG) polynomial */
    assert_int_equal(sae_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(sae_crc32(sae_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
    uint8_t buf[16];
    sae_wbuf w;
    sae_wbuf_init(&w, buf, sizeof buf);
    sae_wr_u16(&w, 0x0102);
    sae_wr_u32(&w, 0x03040506u);
    sae_wr_f64(&w, -2.5);
    assert_int_equal(w.pos, 14);
    assert_true(sae_wbuf_fits(&w));
    assert_int_equal(buf[0], 0x02);
    assert_int_equal(buf[2], 0x06);
    sae_wr_u32(&w, 7); /* does not fit: counted, not written */
    assert_int_equal(w.pos, 18);
    assert_false(sae_wbuf_fits(&w));
    sae_rbuf r;
    sae_rbuf_init(&r, buf, 14);
    assert_int_equal(sae_rd_u16(&r), 0x0102);
    assert_int_equal(sae_rd_u32(&r), 0x03040506u);
    assert_true(sae_rd_f64(&r) == -2.5);
    assert_false(r.bad);
    assert_int_equal(sae_rd_u8(&r), 0);
    assert_true(r.bad); /* past the end: zero and sticky */
    assert_null(sae_rd_bytes(&r, 0));
}

/* ---- configurations ----------------------------------------------------------------- */

static void assert_config_equal(const sae_config *a, const sae_config *b)
{
    int32_t kind = sae_config_kind(a), count;
    assert_int_equal(kind, sae_config_kind(b));
    assert_ok(sae_param_count(kind, &count));
    for (int32_t i = 0; i < count; i++) {
        int32_t key, type;
        assert_ok(sae_param_key_at(kind, i, &key));
        assert_ok(sae_param_info(key, NULL, &type, NULL, NULL, NULL));
        if (type == SAE_TYPE_I64) {
            int64_t x, y;
            assert_ok(sae_config_get_i64(a, key, &x));
            assert_ok(sae_config_get_i64(b, key, &y));
            assert_true(x == y);
        } else if (type == SAE_TYPE_F64) {
            double x, y;
            assert_ok(sae_config_get_f64(a, key, &x));
            assert_ok(sae_config_get_f64(b, key, &y));
            assert_true(bits_equal(&x, &y, sizeof x));
        } else {
            int64_t na, nb;
            double da[256], db[256];
            if (type == SAE_TYPE_F64_ARRAY) {
                assert_ok(sae_config_get_f64_array(a, key, da, 256, &na));
                assert_ok(sae_config_get_f64_array(b, key, db, 256, &nb));
            } else {
                assert_ok(sae_config_get_i64_array(a, key, (int64_t *)da, 256, &na));
                assert_ok(sae_config_get_i64_array(b, key, (int64_t *)db, 256, &nb));
            }
            assert_int_equal(na, nb);
            assert_true(bits_equal(da, db, (size_t)na * 8));
        }
        assert_int_equal(sae_cfg_is_set(a, key), sae_cfg_is_set(b, key));
    }
}

static void roundtrip_config(const sae_config *c)
{
    size_t len;
    uint8_t *buf = serialize(ser_config, c, &len);
    sae_config *back = NULL;
    char msg[256];
    assert_ok(sae_config_deserialize(&back, buf, len, NULL, msg, sizeof msg));
    assert_string_equal(msg, "");
    assert_config_equal(c, back);
    sae_config_free(back);
    free(buf);
}

static void test_config_roundtrip(void **state)
{
    (void)state;
    int32_t kinds[] = {SAE_KIND_TOY, SAE_KIND_MODEL, SAE_KIND_TRAINER, SAE_KIND_METRICS};
    for (int k = 0; k < 4; k++) {
        sae_config *c;
        assert_ok(sae_config_create(&c, kinds[k], NULL));
        roundtrip_config(c); /* all defaults */
        sae_config_free(c);
    }
    sae_config *toy = test_config(SAE_KIND_TOY, "n_features", 5.0, "d", 3.0, "seed", 9007199254740991.0,
                                  "mag_lo", 0.1, NULL);
    double probs[5] = {0.1, 1.0 / 3.0, 0.0, 1.0, 5e-324};
    assert_ok(sae_config_set_f64_array(toy, SAE_TOY_FIRE_PROBS, probs, 5));
    roundtrip_config(toy);
    sae_config_free(toy);
    sae_config *model = test_config(SAE_KIND_MODEL, "arch", (double)SAE_ARCH_MATRYOSHKA, "n_latents", 12.0,
                                    "d_in", 4.0, "k", 2.0, NULL);
    int64_t widths[3] = {3, 6, 12};
    assert_ok(sae_config_set_i64_array(model, SAE_MODEL_MATRYOSHKA_WIDTHS, widths, 3));
    roundtrip_config(model);
    sae_config_free(model);
    sae_config *tr = test_config(SAE_KIND_TRAINER, "lr", 3e-4, "l1_coefficient", 0.1, NULL);
    roundtrip_config(tr);
    sae_config_free(tr);
}

static void test_two_call(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TRAINER, "lr", 0.01, NULL);
    size_t need = 0, got = 0;
    assert_ok(sae_config_serialize(c, NULL, 0, &need));
    uint8_t *buf = malloc(need);
    assert_status(sae_config_serialize(c, buf, need - 1, &got), SAE_E_BUFFER_TOO_SMALL);
    assert_int_equal(got, need);
    assert_status(sae_config_serialize(c, buf, 1, &got), SAE_E_BUFFER_TOO_SMALL);
    assert_int_equal(got, need);
    assert_ok(sae_config_serialize(c, buf, need, &got));
    assert_status(sae_config_serialize(c, buf, need, NULL), SAE_E_NULL);
    assert_status(sae_config_serialize(NULL, buf, need, &got), SAE_E_NULL);
    /* the serialization is deterministic */
    uint8_t *again = malloc(need);
    assert_ok(sae_config_serialize(c, again, need, &got));
    assert_memory_equal(buf, again, need);
    int32_t object, major, minor;
    assert_ok(sae_io_inspect(buf, need, &object, &major, &minor, NULL, 0));
    assert_int_equal(object, SAE_OBJECT_CONFIG);
    assert_int_equal(major, SAE_FORMAT_MAJOR);
    assert_int_equal(minor, SAE_FORMAT_MINOR);
    sae_config *back = (sae_config *)&got; /* sentinel: must stay untouched */
    assert_status(sae_config_deserialize(NULL, buf, need, NULL, NULL, 0), SAE_E_NULL);
    assert_status(sae_config_deserialize(&back, NULL, need, NULL, NULL, 0), SAE_E_NULL);
    assert_true(back == (sae_config *)&got);
    free(again);
    free(buf);
    sae_config_free(c);
}

/* ---- toys ------------------------------------------------------------------------------ */

static void test_toy_roundtrip(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 40.0, "d", 12.0, "seed", 1234.0,
                                "fire_prob", 0.1, "mag_lo", 0.5, "mag_hi", 2.0, NULL);
    double probs[40];
    for (int j = 0; j < 40; j++)
        probs[j] = 0.02 + 0.01 * j;
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, probs, 40));
    sae_toy *toy;
    assert_ok(sae_toy_create(&toy, c, NULL));
    size_t len;
    uint8_t *buf = serialize(ser_toy, toy, &len);
    sae_toy *back = NULL, *back2 = NULL;
    char msg[256];
    assert_ok(sae_toy_deserialize(&back, buf, len, NULL, msg, sizeof msg));
    enum { N = 300, D = 12 };
    float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * D);
    assert_ok(sae_toy_sample(toy, 77777, N, x, D));
    assert_ok(sae_toy_sample(back, 77777, N, y, D));
    assert_memory_equal(x, y, sizeof(float) * N * D);
    float *dx = malloc(sizeof(float) * 40 * D), *dy = malloc(sizeof(float) * 40 * D);
    assert_ok(sae_toy_dictionary(toy, dx, D));
    assert_ok(sae_toy_dictionary(back, dy, D));
    assert_memory_equal(dx, dy, sizeof(float) * 40 * D);
    /* a toy buffer is not a model buffer, and vice versa */
    sae_model *m = NULL;
    assert_status(sae_model_deserialize(&m, buf, len, NULL, msg, sizeof msg), SAE_E_MISMATCH);
    assert_null(m);
    assert_non_null(strstr(msg, "toy"));
    /* the buffer ends with the generator version: another version is refused, and a
     * buffer without the section (written before it existed) is generator version 1 */
    double version = 0;
    assert_ok(sae_toy_info(toy, SAE_TOY_INFO_GENERATOR_VERSION, &version));
    assert_true(version == SAE_TOY_GENERATOR_VERSION);
    size_t gver = len - 4;
    assert_int_equal(sae_le32(buf + gver - SAE_FMT_SECTION_HEADER), SAE_TAG_GENERATOR);
    assert_int_equal(sae_le32(buf + gver), SAE_TOY_GENERATOR_VERSION);
    uint8_t *edit = malloc(len);
    memcpy(edit, buf, len);
    sae_put_le32(edit + gver, SAE_TOY_GENERATOR_VERSION + 1);
    reseal(edit, len);
    assert_status(sae_toy_deserialize(&back2, edit, len, NULL, msg, sizeof msg),
                  SAE_E_FORMAT_VERSION);
    assert_null(back2);
    assert_non_null(strstr(msg, "generator version"));
    size_t old_len = gver - SAE_FMT_SECTION_HEADER;
    reseal(edit, old_len);
    assert_ok(sae_toy_deserialize(&back2, edit, old_len, NULL, msg, sizeof msg));
    assert_ok(sae_toy_sample(back2, 77777, N, y, D));
    assert_memory_equal(x, y, sizeof(float) * N * D);
    sae_toy_free(back2);
    free(edit);
    free(dx);
    free(dy);
    free(x);
    free(y);
    free(buf);
    sae_toy_free(back);
    sae_toy_free(toy);
    sae_config_free(c);
}

/* ---- models ------------------------------------------------------------------------- */

static sae_model *make_model(int32_t arch, int tied, int64_t d, int64_t L, uint64_t seed)
{
    sae_config *c = test_config(SAE_KIND_MODEL, "arch", (double)arch, "d_in", (double)d,
                                "n_latents", (double)L, "tied", (double)tied, "k", 2.0,
                                "model_seed", (double)seed, NULL);
    if (arch == SAE_ARCH_MATRYOSHKA) {
        int64_t widths[2] = {L / 2, L};
        assert_ok(sae_config_set_i64_array(c, SAE_MODEL_MATRYOSHKA_WIDTHS, widths, 2));
    }
    sae_model *m;
    assert_ok(sae_model_create(&m, c, NULL));
    sae_config_free(c);
    /* make every tensor distinct from its initial value, so a loader that re-initialises
     * instead of reading cannot pass */
    for (int32_t t = SAE_TENSOR_W_ENC; t <= SAE_TENSOR_B_MAG; t++) {
        int64_t rows, cols;
        if (sae_model_tensor_shape(m, t, &rows, &cols) != SAE_OK)
            continue;
        float *v = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++)
            v[i] = (float)sin(0.37 * (double)(i + 1) * (double)t + (double)seed);
        if (t == SAE_TENSOR_THRESHOLD)
            for (int64_t i = 0; i < rows * cols; i++)
                v[i] = fabsf(v[i]);
        int32_t st = sae_model_set_tensor(m, t, v, cols); /* read-only tensors refuse: fine */
        (void)st;
        free(v);
    }
    return m;
}

static void assert_models_equal(const sae_model *a, const sae_model *b)
{
    int64_t da, la, db, lb;
    assert_ok(sae_model_dims(a, &da, &la));
    assert_ok(sae_model_dims(b, &db, &lb));
    assert_int_equal(da, db);
    assert_int_equal(la, lb);
    int32_t count;
    assert_ok(sae_param_count(SAE_KIND_MODEL, &count));
    for (int32_t i = 0; i < count; i++) {
        int32_t key, type;
        assert_ok(sae_param_key_at(SAE_KIND_MODEL, i, &key));
        assert_ok(sae_param_info(key, NULL, &type, NULL, NULL, NULL));
        if (type == SAE_TYPE_I64) {
            int64_t x, y;
            assert_ok(sae_model_get_i64(a, key, &x));
            assert_ok(sae_model_get_i64(b, key, &y));
            assert_true(x == y);
        }
    }
    const struct sae_model *ia = a, *ib = b;
    assert_int_equal(ia->lay.total, ib->lay.total);
    assert_memory_equal(ia->params, ib->params, sizeof(float) * (size_t)ia->lay.total);
    assert_true(bits_equal(&ia->batch_threshold, &ib->batch_threshold, sizeof(double)));
    assert_int_equal(ia->batch_threshold_valid, ib->batch_threshold_valid);
    assert_config_equal(ia->cfg, ib->cfg);
}

static void test_model_roundtrip(void **state)
{
    (void)state;
    int32_t archs[] = {SAE_ARCH_RELU, SAE_ARCH_TOPK, SAE_ARCH_BATCHTOPK, SAE_ARCH_JUMPRELU,
                       SAE_ARCH_GATED, SAE_ARCH_MATRYOSHKA};
    for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++)
        for (int tied = 0; tied <= 1; tied++) {
            sae_model *m = make_model(archs[a], tied, 7, 10, 3 + a);
            ((struct sae_model *)m)->batch_threshold = 0.125 * (double)a;
            ((struct sae_model *)m)->batch_threshold_valid = (int32_t)(a & 1);
            size_t len;
            uint8_t *buf = serialize(ser_model, m, &len);
            sae_model *back = NULL;
            char msg[256];
            int32_t st = sae_model_deserialize(&back, buf, len, NULL, msg, sizeof msg);
            if (st != SAE_OK)
                fail_msg("arch %d tied %d: %s (%s)", (int)archs[a], tied, sae_status_str(st), msg);
            assert_models_equal(m, back);
            /* the public view agrees too */
            float x[3 * 7], za[3 * 10], zb[3 * 10];
            for (int i = 0; i < 3 * 7; i++)
                x[i] = (float)cos(0.3 * i);
            if (archs[a] != SAE_ARCH_BATCHTOPK && archs[a] != SAE_ARCH_MATRYOSHKA) {
                assert_ok(sae_model_encode(m, x, 3, 7, za, 10));
                assert_ok(sae_model_encode(back, x, 3, 7, zb, 10));
                assert_memory_equal(za, zb, sizeof za);
            }
            sae_model_free(back);
            sae_model_free(m);
            free(buf);
        }
}

/* ---- damaged buffers ------------------------------------------------------------------ */

static int is_clean_refusal(int32_t st)
{
    return st == SAE_E_CORRUPT || st == SAE_E_FORMAT_VERSION || st == SAE_E_NOT_SUPPORTED ||
           st == SAE_E_MISMATCH || st == SAE_E_CONFIG || st == SAE_E_NONFINITE;
}

static void test_flip_every_byte(void **state)
{
    (void)state;
    sae_model *m = make_model(SAE_ARCH_JUMPRELU, 0, 3, 4, 11);
    size_t len;
    uint8_t *buf = serialize(ser_model, m, &len);
    uint8_t *bad = malloc(len);
    int64_t refused = 0, equal = 0;
    for (size_t i = 0; i < len; i++)
        for (int flip = 0; flip < 2; flip++) {
            memcpy(bad, buf, len);
            bad[i] ^= flip ? 0xFF : 0x01;
            sae_model *back = (sae_model *)bad; /* sentinel */
            char msg[256] = "";
            int32_t st = sae_model_deserialize(&back, bad, len, NULL, msg, sizeof msg);
            if (st == SAE_OK) {
                assert_models_equal(m, back);
                sae_model_free(back);
                equal++;
            } else {
                if (!is_clean_refusal(st))
                    fail_msg("byte %zu: status %d", i, (int)st);
                assert_true(back == (sae_model *)bad);
                assert_true(strlen(msg) > 0);
                refused++;
            }
        }
    assert_int_equal(refused + equal, 2 * (int64_t)len);
    /* CRC-32 detects every burst of up to 32 bits: nothing slips through */
    assert_int_equal(equal, 0);
    for (size_t n = 0; n < len; n++) {
        sae_model *back = NULL;
        char msg[256];
        assert_status(sae_model_deserialize(&back, buf, n, NULL, msg, sizeof msg), SAE_E_CORRUPT);
        assert_null(back);
    }
    /* a trailing byte is refused too */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    sae_model *back = NULL;
    assert_status(sae_model_deserialize(&back, longer, len + 1, NULL, NULL, 0), SAE_E_CORRUPT);
    free(longer);
    free(bad);
    free(buf);
    sae_model_free(m);
}

/* Edits that keep the checksums valid: the semantic checks must catch them. */
static void test_resealed_edits(void **state)
{
    (void)state;
    sae_model *m = make_model(SAE_ARCH_RELU, 0, 3, 4, 5);
    size_t len;
    uint8_t *buf = serialize(ser_model, m, &len);
    uint8_t *b = malloc(len);
    sae_model *back = NULL;
    char msg[256];

    memcpy(b, buf, len); /* a newer major version */
    b[4] = 2;
    reseal(b, len);
    assert_status(sae_model_deserialize(&back, b, len, NULL, msg, sizeof msg), SAE_E_FORMAT_VERSION);
    assert_non_null(strstr(msg, "2.0"));

    memcpy(b, buf, len); /* a newer minor version is read */
    b[6] = 7;
    reseal(b, len);
    assert_ok(sae_model_deserialize(&back, b, len, NULL, msg, sizeof msg));
    sae_model_free(back);
    back = NULL;

    memcpy(b, buf, len); /* big-endian writer */
    sae_put_le32(b + 8, SAE_FMT_BOM_SWAPPED);
    reseal(b, len);
    assert_status(sae_model_deserialize(&back, b, len, NULL, msg, sizeof msg), SAE_E_NOT_SUPPORTED);
    assert_non_null(strstr(msg, "big-endian"));

    memcpy(b, buf, len); /* oversized dimensions with a small tensor section: no allocation */
    sae_put_le64(b + find_param(b, len, SAE_MODEL_N_LATENTS), 1 << 24);
    sae_put_le64(b + find_param(b, len, SAE_MODEL_D_IN), 1 << 10);
    reseal(b, len);
    test_alloc ta = {0, 0, 0};
    sae_allocator al = test_alloc_hook(&ta);
    assert_status(sae_model_deserialize(&back, b, len, &al, msg, sizeof msg), SAE_E_CORRUPT);
    assert_non_null(strstr(msg, "tensor section"));
    assert_int_equal(ta.live, 0);

    memcpy(b, buf, len); /* a parameter out of its bounds */
    sae_put_le64(b + find_param(b, len, SAE_MODEL_ARCH), 99);
    reseal(b, len);
    assert_status(sae_model_deserialize(&back, b, len, NULL, msg, sizeof msg), SAE_E_CORRUPT);
    assert_non_null(strstr(msg, "arch"));

    memcpy(b, buf, len); /* an inconsistent configuration (k > n_latents for topk) */
    sae_put_le64(b + find_param(b, len, SAE_MODEL_ARCH), SAE_ARCH_TOPK);
    sae_put_le64(b + find_param(b, len, SAE_MODEL_K), 100);
    reseal(b, len);
    assert_status(sae_model_deserialize(&back, b, len, NULL, msg, sizeof msg), SAE_E_CONFIG);

    memcpy(b, buf, len); /* dims consistent with each other but not with the tensors */
    sae_put_le64(b + find_param(b, len, SAE_MODEL_D_IN), 4);
    reseal(b, len);
    assert_status(sae_model_deserialize(&back, b, len, NULL, msg, sizeof msg), SAE_E_CORRUPT);

    memcpy(b, buf, len); /* a NaN weight */
    size_t tens = len - (SAE_FMT_SECTION_HEADER + 16) - 4 * 3 - 24 - 4 * 4;
    sae_put_le32(b + tens, 0x7fc00000u);
    reseal(b, len);
    assert_status(sae_model_deserialize(&back, b, len, NULL, msg, sizeof msg), SAE_E_NONFINITE);

    memcpy(b, buf, len); /* an unknown critical section is a newer format */
    uint8_t *ext = malloc(len + 16);
    memcpy(ext, buf, len);
    sae_put_le32(ext + len, SAE_TAG('X', 'T', 'R', 'A'));
    sae_put_le32(ext + len + 4, 0);
    sae_put_le64(ext + len + 8, 0);
    reseal(ext, len + 16);
    assert_status(sae_model_deserialize(&back, ext, len + 16, NULL, msg, sizeof msg), SAE_E_FORMAT_VERSION);
    ext[len] = 'x'; /* ...an unknown ancillary one is skipped */
    reseal(ext, len + 16);
    assert_ok(sae_model_deserialize(&back, ext, len + 16, NULL, msg, sizeof msg));
    assert_models_equal(m, back);
    sae_model_free(back);
    free(ext);
    free(b);
    free(buf);
    sae_model_free(m);
}

/* Every allocation failure during loading is reported and leaks nothing. */
static void test_load_nomem(void **state)
{
    (void)state;
    sae_model *m = make_model(SAE_ARCH_GATED, 0, 5, 6, 2);
    size_t len;
    uint8_t *buf = serialize(ser_model, m, &len);
    for (int64_t k = 1; k < 64; k++) {
        test_alloc ta = {0, 0, k};
        sae_allocator al = test_alloc_hook(&ta);
        sae_model *back = NULL;
        int32_t st = sae_model_deserialize(&back, buf, len, &al, NULL, 0);
        if (st == SAE_OK) {
            sae_model_free(back);
            assert_int_equal(ta.live, 0);
            break;
        }
        assert_status(st, SAE_E_NOMEM);
        assert_int_equal(ta.live, 0);
    }
    free(buf);
    sae_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_config_roundtrip),
        cmocka_unit_test(test_two_call),
        cmocka_unit_test(test_toy_roundtrip),
        cmocka_unit_test(test_model_roundtrip),
        cmocka_unit_test(test_flip_every_byte),
        cmocka_unit_test(test_resealed_edits),
        cmocka_unit_test(test_load_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
