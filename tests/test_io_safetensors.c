/* safetensors export/import in the SAELens layout: round trips for every architecture,
 * the SAELens cfg.json path, files written by hand (F16, BF16, F64, log_threshold, no
 * metadata), and refusal of malformed files (every truncation, every byte flipped, holes,
 * overlaps, unknown tensors and dtypes, shape mismatches). */
#include "test_util.h"

#include "io/bytes.h"
#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *export_st(const sae_model *m, size_t *len)
{
    size_t need = 0, got = 0;
    assert_ok(sae_model_export_safetensors(m, NULL, 0, &need));
    uint8_t *buf = malloc(need);
    assert_status(sae_model_export_safetensors(m, buf, need - 1, &got), SAE_E_BUFFER_TOO_SMALL);
    assert_int_equal(got, need);
    assert_ok(sae_model_export_safetensors(m, buf, need, &got));
    assert_int_equal(got, need);
    *len = need;
    return buf;
}

static char *export_cfg(const sae_model *m, size_t *len)
{
    size_t need = 0;
    assert_ok(sae_model_export_saelens_cfg(m, NULL, 0, &need));
    char *buf = malloc(need + 1);
    assert_ok(sae_model_export_saelens_cfg(m, buf, need, &need));
    buf[need] = '\0';
    *len = need;
    return buf;
}

static sae_model *make_model(int32_t arch, int tied, int64_t d, int64_t L)
{
    sae_config *c = test_config(SAE_KIND_MODEL, "arch", (double)arch, "d_in", (double)d,
                                "n_latents", (double)L, "tied", (double)tied, "k", 3.0,
                                "model_seed", 4.0, "pre_bias", (double)(arch != SAE_ARCH_GATED), NULL);
    if (arch == SAE_ARCH_MATRYOSHKA) {
        int64_t widths[2] = {L / 2, L};
        assert_ok(sae_config_set_i64_array(c, SAE_MODEL_MATRYOSHKA_WIDTHS, widths, 2));
    }
    sae_model *m;
    assert_ok(sae_model_create(&m, c, NULL));
    sae_config_free(c);
    for (int64_t i = 0; i < m->lay.total; i++) /* distinct from the initialisation */
        m->params[i] = (float)(0.5 * sin(1.3 * (double)i + 0.2));
    if (m->threshold != NULL)
        for (int64_t j = 0; j < L; j++)
            m->threshold[j] = fabsf(m->threshold[j]);
    if (sae_arch_is_batch(arch)) {
        m->batch_threshold = 0.375;
        m->batch_threshold_valid = 1;
    }
    return m;
}

static void assert_same_forward(const sae_model *a, const sae_model *b, int64_t d, int64_t L)
{
    float x[4 * 16], za[4 * 64], zb[4 * 64];
    for (int i = 0; i < 4 * d; i++)
        x[i] = (float)cos(0.7 * i);
    assert_ok(sae_model_encode(a, x, 4, d, za, L));
    assert_ok(sae_model_encode(b, x, 4, d, zb, L));
    assert_memory_equal(za, zb, sizeof(float) * (size_t)(4 * L));
}

static void test_roundtrip_all_archs(void **state)
{
    (void)state;
    const int32_t archs[] = {SAE_ARCH_RELU, SAE_ARCH_TOPK, SAE_ARCH_BATCHTOPK, SAE_ARCH_JUMPRELU,
                             SAE_ARCH_GATED, SAE_ARCH_MATRYOSHKA};
    for (size_t a = 0; a < 6; a++)
        for (int tied = 0; tied <= 1; tied++) {
            sae_model *m = make_model(archs[a], tied, 6, 10);
            size_t len;
            uint8_t *buf = export_st(m, &len);
            assert_int_equal(sae_le64(buf) % 8, 0); /* data 8-byte aligned */
            sae_model *back = NULL;
            char msg[256];
            int32_t st = sae_model_import_safetensors(&back, buf, len, NULL, 0, NULL, msg, sizeof msg);
            if (st != SAE_OK)
                fail_msg("arch %d tied %d: %s", (int)archs[a], tied, msg);
            /* libsae_config metadata: same architecture, same parameters, same bits */
            assert_int_equal(back->arch, m->arch);
            assert_int_equal(back->tied, m->tied);
            assert_memory_equal(back->params, m->params, sizeof(float) * (size_t)m->lay.total);
            assert_true(back->batch_threshold == m->batch_threshold);
            assert_int_equal(back->batch_threshold_valid, m->batch_threshold_valid);
            assert_same_forward(m, back, 6, 10);
            sae_model_free(back);
            free(buf);
            sae_model_free(m);
        }
}

/* The SAELens path: weights plus cfg.json, no libsae metadata used. */
static void test_saelens_cfg_path(void **state)
{
    (void)state;
    const int32_t archs[] = {SAE_ARCH_RELU, SAE_ARCH_TOPK, SAE_ARCH_JUMPRELU, SAE_ARCH_GATED,
                             SAE_ARCH_BATCHTOPK};
    const int32_t as_saelens[] = {SAE_ARCH_RELU, SAE_ARCH_TOPK, SAE_ARCH_JUMPRELU, SAE_ARCH_GATED,
                                  SAE_ARCH_JUMPRELU};
    for (size_t a = 0; a < 5; a++) {
        sae_model *m = make_model(archs[a], 0, 5, 8);
        size_t len, clen;
        uint8_t *buf = export_st(m, &len);
        char *cfg = export_cfg(m, &clen);
        assert_non_null(strstr(cfg, "\"d_sae\":8"));
        sae_model *back = NULL;
        char msg[256];
        int32_t st = sae_model_import_safetensors(&back, buf, len, cfg, clen, NULL, msg, sizeof msg);
        if (st != SAE_OK)
            fail_msg("arch %d: %s", (int)archs[a], msg);
        assert_int_equal(back->arch, as_saelens[a]);
        assert_int_equal(back->pre_bias, m->pre_bias);
        if (archs[a] == SAE_ARCH_TOPK)
            assert_int_equal(back->k, 3);
        if (archs[a] == SAE_ARCH_BATCHTOPK) {
            /* the inference form: JumpReLU with the learned threshold on every latent */
            for (int j = 0; j < 8; j++)
                assert_true(back->threshold[j] == 0.375f);
        } else {
            assert_same_forward(m, back, 5, 8);
        }
        sae_model_free(back);
        free(cfg);
        free(buf);
        sae_model_free(m);
    }
}

/* ---- files written by hand, from the format description ------------------------------ */

typedef struct tw {
    const char *name, *dtype;
    int rank;
    int64_t shape[2];
    const uint8_t *data;
    size_t bytes;
} tw;

/* header JSON + data; metadata_json is inserted verbatim (may be NULL). */
static uint8_t *write_st(const tw *t, int n, const char *metadata_json, size_t *len)
{
    char head[4096];
    int k = snprintf(head, sizeof head, "{");
    if (metadata_json != NULL)
        k += snprintf(head + k, sizeof head - (size_t)k, "\"__metadata__\":%s,", metadata_json);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        k += snprintf(head + k, sizeof head - (size_t)k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld",
                      i ? "," : "", t[i].name, t[i].dtype, (long long)t[i].shape[0]);
        if (t[i].rank == 2)
            k += snprintf(head + k, sizeof head - (size_t)k, ",%lld", (long long)t[i].shape[1]);
        k += snprintf(head + k, sizeof head - (size_t)k, "],\"data_offsets\":[%zu,%zu]}", at,
                      at + t[i].bytes);
        at += t[i].bytes;
    }
    k += snprintf(head + k, sizeof head - (size_t)k, "}");
    *len = 8 + (size_t)k + at;
    uint8_t *buf = malloc(*len);
    sae_put_le64(buf, (uint64_t)k);
    memcpy(buf + 8, head, (size_t)k);
    size_t pos = 8 + (size_t)k;
    for (int i = 0; i < n; i++) {
        memcpy(buf + pos, t[i].data, t[i].bytes);
        pos += t[i].bytes;
    }
    return buf;
}

static void put_f32(uint8_t *b, const float *v, int n)
{
    for (int i = 0; i < n; i++)
        sae_put_le32(b + 4 * i, sae_f32_bits(v[i]));
}

/* d = 2, L = 3 JumpReLU SAE in mixed dtypes, no configuration: inferred from tensors. */
static void test_handwritten_dtypes(void **state)
{
    (void)state;
    float wenc[6] = {1, -2, 0.5f, 0.25f, 3, -1}, wdec[6] = {0.5f, 1.5f, -0.75f, 2, 1, 0};
    uint8_t benc_f64[24], wenc_b[24], bdec_f16[4], wdec_bf16[12], thr[12];
    double benc[3] = {0.1, -0.2, 1e-3};
    for (int i = 0; i < 3; i++) {
        uint64_t u;
        memcpy(&u, &benc[i], 8);
        sae_put_le64(benc_f64 + 8 * i, u);
    }
    put_f32(wenc_b, wenc, 6);
    /* f16: 1.5 = 0x3E00, -0.125 = 0xB000 */
    bdec_f16[0] = 0x00, bdec_f16[1] = 0x3E, bdec_f16[2] = 0x00, bdec_f16[3] = 0xB0;
    for (int i = 0; i < 6; i++) { /* bf16 = upper half of the f32 (all exact here) */
        uint32_t u = sae_f32_bits(wdec[i]) >> 16;
        wdec_bf16[2 * i] = (uint8_t)u, wdec_bf16[2 * i + 1] = (uint8_t)(u >> 8);
    }
    float lt[3] = {logf(0.5f), logf(0.25f), logf(2.0f)};
    put_f32(thr, lt, 3);
    tw t[5] = {
        {"W_enc", "F32", 2, {2, 3}, wenc_b, 24},     {"b_enc", "F64", 1, {3, 0}, benc_f64, 24},
        {"W_dec", "BF16", 2, {3, 2}, wdec_bf16, 12}, {"b_dec", "F16", 1, {2, 0}, bdec_f16, 4},
        {"log_threshold", "F32", 1, {3, 0}, thr, 12},
    };
    size_t len;
    uint8_t *buf = write_st(t, 5, NULL, &len);
    sae_model *m = NULL;
    char msg[256];
    int32_t st = sae_model_import_safetensors(&m, buf, len, NULL, 0, NULL, msg, sizeof msg);
    if (st != SAE_OK)
        fail_msg("%s", msg);
    assert_int_equal(m->arch, SAE_ARCH_JUMPRELU);
    assert_int_equal(m->pre_bias, 1);
    float got[6];
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_ENC, got, 3));
    assert_memory_equal(got, wenc, sizeof wenc);
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, got, 2));
    assert_memory_equal(got, wdec, sizeof wdec);
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_B_ENC, got, 3));
    for (int i = 0; i < 3; i++)
        assert_true(got[i] == (float)benc[i]);
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_B_DEC, got, 2));
    assert_true(got[0] == 1.5f && got[1] == -0.125f);
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_THRESHOLD, got, 3));
    for (int i = 0; i < 3; i++)
        assert_close(got[i], expf(lt[i]), 1e-6);
    sae_model_free(m);
    free(buf);

    /* the same tensors with a SAELens cfg in the metadata that disagrees on d_sae */
    buf = write_st(t, 5, "{\"cfg\":\"{\\\"architecture\\\":\\\"jumprelu\\\",\\\"d_in\\\":2,\\\"d_sae\\\":4}\"}", &len);
    m = NULL;
    assert_status(sae_model_import_safetensors(&m, buf, len, NULL, 0, NULL, msg, sizeof msg), SAE_E_CORRUPT);
    assert_non_null(strstr(msg, "shape"));
    assert_null(m);
    free(buf);
    /* ...and one that agrees, with apply_b_dec_to_input false */
    buf = write_st(t, 5, "{\"format\":\"pt\",\"cfg\":\"{\\\"architecture\\\":\\\"jumprelu\\\",\\\"d_in\\\":2,"
                         "\\\"d_sae\\\":3,\\\"apply_b_dec_to_input\\\":false,\\\"metadata\\\":{\\\"x\\\":[1,2.5e3,null]}}\"}",
                   &len);
    assert_ok(sae_model_import_safetensors(&m, buf, len, NULL, 0, NULL, msg, sizeof msg));
    assert_int_equal(m->pre_bias, 0);
    sae_model_free(m);
    free(buf);
}

static void expect_refusal(const uint8_t *buf, size_t len, const char *cfg, int32_t want, const char *needle)
{
    sae_model *m = (sae_model *)&len;
    char msg[256] = "";
    int32_t st = sae_model_import_safetensors(&m, buf, len, cfg, cfg ? strlen(cfg) : 0, NULL, msg, sizeof msg);
    if (st != want)
        fail_msg("status %d (%s), expected %d; message: %s", (int)st, sae_status_str(st), (int)want, msg);
    assert_true(m == (sae_model *)&len);
    if (needle != NULL && strstr(msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", msg, needle);
}

static void test_malformed(void **state)
{
    (void)state;
    float v[6] = {1, 2, 3, 4, 5, 6};
    uint8_t w[24], b3[12], b2[8];
    put_f32(w, v, 6);
    put_f32(b3, v, 3);
    put_f32(b2, v, 2);
    tw ok[4] = {{"W_enc", "F32", 2, {2, 3}, w, 24}, {"b_enc", "F32", 1, {3, 0}, b3, 12},
                {"W_dec", "F32", 2, {3, 2}, w, 24}, {"b_dec", "F32", 1, {2, 0}, b2, 8}};
    size_t len;
    uint8_t *buf = write_st(ok, 4, NULL, &len);
    sae_model *m = NULL;
    assert_ok(sae_model_import_safetensors(&m, buf, len, NULL, 0, NULL, NULL, 0));
    assert_int_equal(m->arch, SAE_ARCH_RELU);
    sae_model_free(m);

    uint8_t *b = malloc(len + 8);
    memcpy(b, buf, len);
    sae_put_le64(b, len); /* header longer than the buffer */
    expect_refusal(b, len, NULL, SAE_E_CORRUPT, "header length");
    sae_put_le64(b, UINT64_MAX);
    expect_refusal(b, len, NULL, SAE_E_CORRUPT, "header length");
    memcpy(b, buf, len);
    b[8] = '[';
    expect_refusal(b, len, NULL, SAE_E_CORRUPT, "'{'");
    memcpy(b, buf, len);
    b[len] = 0; /* one stray data byte: a hole at the end */
    expect_refusal(b, len + 1, NULL, SAE_E_CORRUPT, "tile");
    expect_refusal(buf, len, "{\"architecture\":\"standard\",\"d_in\":2,\"d_sae\":3,"
                             "\"normalize_activations\":\"layer_norm\"}", SAE_E_NOT_SUPPORTED, "layer_norm");
    expect_refusal(buf, len, "{\"architecture\":\"gated\",\"d_in\":2,\"d_sae\":3,\"normalize_decoder\":true}",
                   SAE_E_NOT_SUPPORTED, "normalize_decoder");
    expect_refusal(buf, len, "{\"architecture\":\"transcoder\",\"d_in\":2,\"d_sae\":3}",
                   SAE_E_NOT_SUPPORTED, "transcoder");
    expect_refusal(buf, len, "{\"architecture\":\"topk\",\"d_in\":2,\"d_sae\":3,\"k\":2.5}",
                   SAE_E_NOT_SUPPORTED, "k");
    expect_refusal(buf, len, "{\"architecture\":\"topk\",\"d_in\":2,\"d_sae\":3,\"k\":4}", SAE_E_CONFIG, NULL);
    expect_refusal(buf, len, "{\"architecture\":\"standard\",\"d_in\":2}", SAE_E_CORRUPT, "d_sae");
    expect_refusal(buf, len, "{\"architecture\":\"standard\",\"d_in\":2,\"d_sae\":3", SAE_E_CORRUPT, NULL);
    expect_refusal(buf, len, "{\"architecture\":\"jumprelu\",\"d_in\":2,\"d_sae\":3}", SAE_E_CORRUPT,
                   "threshold");
    free(buf);

    tw extra[5] = {ok[0], ok[1], ok[2], ok[3], {"scaling_factor", "F32", 1, {3, 0}, b3, 12}};
    buf = write_st(extra, 5, NULL, &len);
    expect_refusal(buf, len, NULL, SAE_E_NOT_SUPPORTED, "scaling_factor");
    free(buf);
    tw unused[5] = {ok[0], ok[1], ok[2], ok[3], {"r_mag", "F32", 1, {3, 0}, b3, 12}};
    buf = write_st(unused, 5, "{\"cfg\":\"{\\\"architecture\\\":\\\"standard\\\",\\\"d_in\\\":2,\\\"d_sae\\\":3}\"}", &len);
    expect_refusal(buf, len, NULL, SAE_E_NOT_SUPPORTED, "r_mag");
    free(buf);
    tw dup[5] = {ok[0], ok[1], ok[2], ok[3], ok[3]};
    buf = write_st(dup, 5, NULL, &len);
    expect_refusal(buf, len, NULL, SAE_E_CORRUPT, "twice");
    free(buf);
    tw i32[4] = {ok[0], ok[1], ok[2], {"b_dec", "I32", 1, {2, 0}, b2, 8}};
    buf = write_st(i32, 4, NULL, &len);
    expect_refusal(buf, len, NULL, SAE_E_NOT_SUPPORTED, "I32");
    free(buf);
    tw shape[4] = {ok[0], ok[1], ok[2], {"b_dec", "F32", 2, {1, 2}, b2, 8}};
    buf = write_st(shape, 4, NULL, &len);
    expect_refusal(buf, len, NULL, SAE_E_CORRUPT, "b_dec");
    free(buf);
    tw nbytes[4] = {ok[0], ok[1], ok[2], {"b_dec", "F32", 1, {3, 0}, b2, 8}};
    buf = write_st(nbytes, 4, NULL, &len);
    expect_refusal(buf, len, NULL, SAE_E_CORRUPT, "bytes");
    free(buf);
    float nan[2] = {NAN, 1};
    uint8_t bn[8];
    put_f32(bn, nan, 2);
    tw nonfinite[4] = {ok[0], ok[1], ok[2], {"b_dec", "F32", 1, {2, 0}, bn, 8}};
    buf = write_st(nonfinite, 4, NULL, &len);
    expect_refusal(buf, len, NULL, SAE_E_NONFINITE, "b_dec");
    free(buf);
    free(b);
}

/* Overlapping data ranges and holes, written directly. */
static void test_overlap(void **state)
{
    (void)state;
    const char *head = "{\"W_enc\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
                       "\"b_enc\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"W_dec\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[4,8]},"
                       "\"b_dec\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    size_t h = strlen(head), len = 8 + h + 16;
    uint8_t *buf = calloc(1, len);
    sae_put_le64(buf, h);
    memcpy(buf + 8, head, h);
    expect_refusal(buf, len, NULL, SAE_E_CORRUPT, "tile");
    expect_refusal(buf, len - 4, NULL, SAE_E_CORRUPT, "tile");
    free(buf);
}

/* Never a crash, never a read outside the buffer (ASan), always a clean status. */
static void test_truncate_and_flip(void **state)
{
    (void)state;
    sae_model *m = make_model(SAE_ARCH_GATED, 0, 2, 3);
    size_t len;
    uint8_t *buf = export_st(m, &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* exact-size copy: ASan sees any overread */
        memcpy(cut, buf, n);
        sae_model *out = NULL;
        int32_t st = sae_model_import_safetensors(&out, cut, n, NULL, 0, NULL, NULL, 0);
        assert_true(st < 0);
        assert_null(out);
        free(cut);
    }
    uint8_t *bad = malloc(len);
    int64_t accepted = 0;
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= 0x20;
        sae_model *out = NULL;
        char msg[256];
        int32_t st = sae_model_import_safetensors(&out, bad, len, NULL, 0, NULL, msg, sizeof msg);
        if (st == SAE_OK) {
            accepted++; /* e.g. a flipped mantissa bit or a blank in the header */
            sae_model_free(out);
        } else {
            assert_true(st == SAE_E_CORRUPT || st == SAE_E_NOT_SUPPORTED || st == SAE_E_NONFINITE ||
                        st == SAE_E_CONFIG || st == SAE_E_RANGE || st == SAE_E_MISMATCH ||
                        st == SAE_E_FORMAT_VERSION);
            assert_null(out);
        }
    }
    assert_true(accepted > 0 && accepted < (int64_t)len);
    free(bad);
    free(buf);
    sae_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_archs), cmocka_unit_test(test_saelens_cfg_path),
        cmocka_unit_test(test_handwritten_dtypes),  cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_overlap),             cmocka_unit_test(test_truncate_and_flip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
