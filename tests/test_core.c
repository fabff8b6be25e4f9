/* Core: versions, status texts, parameter registry and configuration handles. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(sae_version_number(), SAE_VERSION_NUMBER);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SAE_VERSION_MAJOR, SAE_VERSION_MINOR, SAE_VERSION_PATCH);
    assert_string_equal(sae_version_string(), want);
    const char *info = sae_build_info();
    assert_non_null(strstr(info, "blas:"));
    assert_non_null(strstr(info, want));
}

static void test_status_strings(void **state)
{
    (void)state;
    /* pinned values: changing any of these breaks the ABI */
    assert_int_equal(SAE_E_NULL, -1);
    assert_int_equal(SAE_E_BUFFER_TOO_SMALL, -8);
    assert_int_equal(SAE_E_DIVERGED, -13);
    assert_int_equal(SAE_E_INVALID, -18);
    for (int32_t s = SAE_E_INVALID; s <= 0; s++) {
        const char *t = sae_status_str(s);
        assert_non_null(t);
        assert_string_not_equal(t, "unknown status code");
    }
    assert_string_equal(sae_status_str(-999), "unknown status code");
    assert_string_equal(sae_status_str(1), "unknown status code");
}

static void test_registry_unique(void **state)
{
    (void)state;
    int32_t kinds[] = {SAE_KIND_TOY, SAE_KIND_MODEL, SAE_KIND_TRAINER, SAE_KIND_METRICS};
    int32_t seen_keys[4096];
    const char *seen_names[4096];
    int n_seen = 0;
    for (int k = 0; k < 4; k++) {
        int32_t count;
        assert_ok(sae_param_count(kinds[k], &count));
        assert_true(count > 0);
        for (int32_t i = 0; i < count; i++) {
            int32_t key, kind, type;
            double lo, hi, dflt;
            assert_ok(sae_param_key_at(kinds[k], i, &key));
            assert_ok(sae_param_info(key, &kind, &type, &lo, &hi, &dflt));
            assert_int_equal(kind, kinds[k]);
            /* key ranges: kind k owns k*1000 .. k*1000+999 */
            assert_true(key >= kinds[k] * 1000 && key < kinds[k] * 1000 + 1000);
            assert_true(lo <= hi);
            if (type == SAE_TYPE_I64 || type == SAE_TYPE_F64)
                assert_true(dflt >= lo && dflt <= hi);
            const char *name = sae_param_name(key);
            assert_non_null(name);
            assert_non_null(sae_param_doc(key));
            int32_t back;
            assert_ok(sae_param_lookup(name, &back));
            assert_int_equal(back, key);
            for (int j = 0; j < n_seen; j++) {
                assert_int_not_equal(seen_keys[j], key);
                assert_string_not_equal(seen_names[j], name);
            }
            seen_keys[n_seen] = key;
            seen_names[n_seen++] = name;
        }
    }
    int32_t key;
    assert_status(sae_param_lookup("no_such_parameter", &key), SAE_E_UNKNOWN_KEY);
    assert_status(sae_param_lookup(NULL, &key), SAE_E_NULL);
    assert_null(sae_param_name(123456));
    assert_status(sae_param_count(99, &key), SAE_E_UNKNOWN_KEY);
    assert_status(sae_param_key_at(SAE_KIND_TOY, -1, &key), SAE_E_RANGE);
}

static void test_config_scalars(void **state)
{
    (void)state;
    sae_config *c;
    assert_status(sae_config_create(NULL, SAE_KIND_TOY, NULL), SAE_E_NULL);
    assert_status(sae_config_create(&c, 42, NULL), SAE_E_UNKNOWN_KEY);
    assert_ok(sae_config_create(&c, SAE_KIND_TOY, NULL));
    assert_int_equal(sae_config_kind(c), SAE_KIND_TOY);

    int64_t v;
    assert_ok(sae_config_set_i64(c, SAE_TOY_N_FEATURES, 100));
    assert_ok(sae_config_get_i64(c, SAE_TOY_N_FEATURES, &v));
    assert_int_equal(v, 100);

    /* out of range, wrong type, wrong kind, NaN: refused, value unchanged, message set */
    assert_status(sae_config_set_i64(c, SAE_TOY_N_FEATURES, 0), SAE_E_RANGE);
    assert_non_null(strstr(sae_config_errmsg(c), "n_features"));
    assert_status(sae_config_set_f64(c, SAE_TOY_N_FEATURES, 3.0), SAE_E_TYPE);
    assert_status(sae_config_set_i64(c, SAE_MODEL_D_IN, 3), SAE_E_UNKNOWN_KEY);
    assert_status(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, NAN), SAE_E_NONFINITE);
    assert_status(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, INFINITY), SAE_E_NONFINITE);
    assert_status(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, 1.5), SAE_E_RANGE);
    assert_ok(sae_config_get_i64(c, SAE_TOY_N_FEATURES, &v));
    assert_int_equal(v, 100);
    double p;
    assert_ok(sae_config_get_f64(c, SAE_TOY_FIRE_PROB, &p));
    assert_close(p, 0.05, 0);

    /* by name: integers must be whole */
    assert_ok(sae_config_set_by_name(c, "d", 16.0));
    assert_ok(sae_config_get_i64(c, SAE_TOY_D, &v));
    assert_int_equal(v, 16);
    assert_status(sae_config_set_by_name(c, "d", 16.5), SAE_E_TYPE);
    assert_status(sae_config_set_by_name(c, "bogus", 1.0), SAE_E_UNKNOWN_KEY);
    assert_status(sae_config_set_by_name(c, "fire_probs", 1.0), SAE_E_TYPE);

    assert_ok(sae_config_reset(c, SAE_TOY_D));
    assert_ok(sae_config_get_i64(c, SAE_TOY_D, &v));
    assert_int_equal(v, 64);
    assert_status(sae_config_set_i64(NULL, SAE_TOY_D, 1), SAE_E_NULL);
    assert_status(sae_config_get_i64(c, SAE_TOY_D, NULL), SAE_E_NULL);
    sae_config_free(c);
    sae_config_free(NULL);
}

static void test_config_arrays_and_clone(void **state)
{
    (void)state;
    sae_config *c, *d;
    assert_ok(sae_config_create(&c, SAE_KIND_TOY, NULL));
    assert_ok(sae_config_set_i64(c, SAE_TOY_N_FEATURES, 3));
    double probs[3] = {0.1, 0.2, 0.3}, bad[3] = {0.1, NAN, 0.3}, out[3];
    int64_t n;
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, probs, 3));
    assert_status(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, bad, 3), SAE_E_NONFINITE);
    assert_status(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, NULL, 3), SAE_E_NULL);
    assert_status(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, probs, -1), SAE_E_SIZE);
    assert_status(sae_config_get_f64_array(c, SAE_TOY_FIRE_PROBS, out, 2, &n), SAE_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 3);
    assert_ok(sae_config_clone(&d, c));
    sae_config_free(c); /* the clone owns its own copy */
    assert_ok(sae_config_get_f64_array(d, SAE_TOY_FIRE_PROBS, out, 3, &n));
    assert_int_equal(n, 3);
    assert_close(out[2], 0.3, 0);
    char msg[128];
    assert_ok(sae_config_validate(d, msg, sizeof msg));
    assert_ok(sae_config_set_i64(d, SAE_TOY_N_FEATURES, 4));
    assert_status(sae_config_validate(d, msg, sizeof msg), SAE_E_CONFIG);
    assert_non_null(strstr(msg, "fire_probs"));
    sae_config_free(d);
}

static void test_allocator_hook(void **state)
{
    (void)state;
    test_alloc st = {0, 0, 0};
    sae_allocator a = test_alloc_hook(&st);
    sae_config *c;
    assert_ok(sae_config_create(&c, SAE_KIND_TRAINER, &a));
    assert_true(st.calls >= 1);
    sae_config_free(c);
    assert_int_equal(st.live, 0);
    /* failing each allocation of create and clone returns NOMEM and leaks nothing */
    for (int64_t k = 1; k <= 2; k++) {
        test_alloc f = {0, 0, k};
        sae_allocator fa = test_alloc_hook(&f);
        c = NULL;
        assert_status(sae_config_create(&c, SAE_KIND_TOY, &fa), SAE_E_NOMEM);
        assert_null(c);
        assert_int_equal(f.live, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_registry_unique),
        cmocka_unit_test(test_config_scalars),
        cmocka_unit_test(test_config_arrays_and_clone),
        cmocka_unit_test(test_allocator_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
