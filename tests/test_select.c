/* Per-row top-k (sae_topk_row) and batch top-K (sae_batch_heap_*) against a brute-force
 * reference that sorts every (value, position) key: value descending, position ascending,
 * strictly positive values only (and allowed ones for a mask). Rows are drawn to reach each
 * path of the selection: continuous values (the column-maxima floor and the ranking),
 * heavy ties (the heap fallbacks), all-negative rows, rows with fewer than k positives (also
 * only subnormal ones, below where the column-maxima floor may rise), NaN
 * and infinities, lengths below 16 and not multiples of 16, k >= L, and large k. Release
 * builds on x86-64 with AVX2 run the AVX2 code; sanitiser builds run the portable code. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/sparse.h"

typedef struct {
    float v;
    int64_t p;
} key;

static int key_cmp(const void *a, const void *b)
{
    const key *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->p < y->p ? -1 : x->p > y->p;
}

static int pos_cmp(const void *a, const void *b)
{
    const key *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* The best `cap` keys of v[0..n) (allowed, > 0), sorted by position; returns how many. */
static int64_t reference(const float *v, int64_t n, const uint8_t *allow, int64_t cap, key *out)
{
    int64_t c = 0;
    for (int64_t e = 0; e < n; e++)
        if (v[e] > 0.0f && (allow == NULL || allow[e]))
            out[c].v = v[e], out[c].p = e, c++;
    qsort(out, (size_t)c, sizeof *out, key_cmp);
    c = c < cap ? c : cap;
    qsort(out, (size_t)c, sizeof *out, pos_cmp);
    return c;
}

static uint32_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

static float unif(uint64_t *s)
{
    return (float)lcg(s) / 2147483648.0f; /* [0, 1) */
}

/* Fill n values in one of several styles. */
static void fill(float *v, int64_t n, int style, uint64_t *s)
{
    for (int64_t e = 0; e < n; e++) {
        float u = unif(s);
        switch (style) {
        case 0: /* continuous, about half positive */
            v[e] = 2.0f * u - 1.0f;
            break;
        case 1: /* few distinct values: many exact ties */
            v[e] = (float)((int)(u * 9.0f) - 3) * 0.25f;
            break;
        case 2: /* all non-positive, with signed zeros */
            v[e] = e % 3 == 0 ? (e % 2 ? -0.0f : 0.0f) : -u;
            break;
        case 3: /* sparse positives: rows with fewer than k */
            v[e] = u < 0.03f ? u : -u;
            break;
        case 4: /* wide magnitudes, tiny and huge values, denormals, NaN and infinities */
            v[e] = (2.0f * u - 1.0f) * ldexpf(1.0f, (int)(lcg(s) % 200) - 140);
            if (lcg(s) % 97 == 0)
                v[e] = lcg(s) % 2 ? INFINITY : NAN;
            break;
        case 6: /* mostly negative, the positives all subnormal (below 2^-130) */
            v[e] = u < 0.1f ? u * 0x1p-130f : -u;
            break;
        default: /* narrow range: one histogram bin, many near-equal values */
            v[e] = 1.0f + (float)(lcg(s) % 64) * 0x1p-20f;
            break;
        }
    }
}

static void test_topk_row_matches_reference(void **state)
{
    (void)state;
    enum { LMAX = 5000 };
    float *row = malloc(LMAX * sizeof *row), *val = malloc(LMAX * sizeof *val);
    int32_t *idx = malloc(LMAX * sizeof *idx);
    uint8_t *allow = malloc(LMAX);
    key *ref = malloc(LMAX * sizeof *ref);
    assert_non_null(row), assert_non_null(val), assert_non_null(idx), assert_non_null(allow);
    assert_non_null(ref);
    static const int64_t lens[] = {1, 3, 15, 16, 17, 31, 64, 100, 128, 129, 1000, 4096, 4999};
    static const int64_t ks[] = {1, 2, 7, 8, 16, 33, 40, 128, 300};
    uint64_t s = 11;
    int64_t fast = 0; /* rows whose k best are all distinct continuous values */
    for (int trial = 0; trial < 3000; trial++) {
        int64_t l = lens[trial % 13], k = ks[(trial / 13) % 9];
        int64_t style = trial % 3 == 0 ? 0 : lcg(&s) % 7;
        if (trial % 5 == 0)
            k = l + (int64_t)(lcg(&s) % 3); /* k >= L */
        fill(row, l, style, &s);
        int density = (int)(lcg(&s) % 4); /* mask: none, sparse, half, dense */
        for (int64_t j = 0; j < l; j++)
            allow[j] = (uint8_t)(lcg(&s) % 8 < (uint32_t)(1 + 3 * density));
        const uint8_t *mask = density == 0 || trial % 2 == 0 ? NULL : allow;
        memset(idx, 0xff, (size_t)(k < LMAX ? k : LMAX) * sizeof *idx);
        int64_t cnt = sae_topk_row(row, l, k, mask, idx, val);
        int64_t want = reference(row, l, mask, k, ref);
        assert_int_equal(cnt, want);
        for (int64_t a = 0; a < cnt; a++) {
            assert_int_equal(idx[a], ref[a].p);
            assert_memory_equal(&val[a], &ref[a].v, sizeof(float));
        }
        fast += style == 0 && mask == NULL && k < l;
    }
    print_message("%lld fast rows\n", (long long)fast);
    assert_true(fast > 200);
    free(row), free(val), free(idx), free(allow), free(ref);
}

/* Batch top-K over rows offered in order (one by one, in blocks, or in blocks with per-row
 * shifts added as they are read); the codes, row by row sorted by latent, and the
 * smallest kept value equal the reference. Several K per batch size so the buffer is
 * reduced many times, by the histogram floor and by the exact selection. */
static void test_batch_topk_matches_reference(void **state)
{
    (void)state;
    enum { NMAX = 60000 };
    float *v = malloc(NMAX * sizeof *v), *cval = malloc(NMAX * sizeof *cval);
    float *vs = malloc(NMAX * sizeof *vs), *shift = malloc(1000 * sizeof *shift);
    float *shift2 = malloc(1000 * sizeof *shift2), *lval = malloc(NMAX * sizeof *lval);
    float *llow = malloc(NMAX * sizeof *llow);
    int64_t *lpos = malloc(NMAX * sizeof *lpos);
    assert_non_null(shift2), assert_non_null(lval), assert_non_null(lpos), assert_non_null(llow);
    int32_t *cidx = malloc(NMAX * sizeof *cidx);
    key *ref = malloc(NMAX * sizeof *ref);
    int64_t *row_ptr = malloc(1001 * sizeof *row_ptr);
    float *hval = malloc((size_t)SAE_BATCH_ROOM(NMAX + 2000) * sizeof *hval);
    int64_t *hpos = malloc((size_t)SAE_BATCH_ROOM(NMAX + 2000) * sizeof *hpos);
    assert_non_null(v), assert_non_null(cval), assert_non_null(cidx), assert_non_null(ref);
    assert_non_null(row_ptr), assert_non_null(hval), assert_non_null(hpos);
    assert_non_null(vs), assert_non_null(shift);
    static const int64_t lens[] = {1, 5, 16, 37, 128, 300};
    uint64_t s = 5;
    for (int trial = 0; trial < 294; trial++) {
        int64_t l = lens[trial % 6], rows = 1 + (int64_t)(lcg(&s) % (NMAX / l < 1000 ? NMAX / l : 1000));
        int64_t n = rows * l, style = (trial / 6) % 7;
        int64_t k = 1 + (int64_t)(lcg(&s) % 12);
        if (trial % 7 == 0)
            k = l + 2; /* more than a row */
        int64_t cap = rows * k;
        fill(v, n, style, &s);
        if (trial % 11 == 0) /* magnitudes growing down the batch: the floor keeps rising */
            for (int64_t e = 0; e < n; e++)
                v[e] *= (float)(1 + e / l);
        sae_batch_heap h = {0, 0, hval, hpos, 0.0f};
        sae_batch_heap_reset(&h, cap);
        const float *sel = v; /* the values the selection is on */
        if (trial % 4 == 3) { /* blocks of rows plus per-row shifts (the bounds of select.c) */
            float sign = trial % 8 == 3 ? 1.0f : -1.0f;
            for (int64_t r = 0; r < rows; r++) {
                uint64_t u = lcg(&s) % 5;
                shift[r] = u == 0 ? 0.0f : ((float)u - 2.5f) * 0.37f;
                for (int64_t j = 0; j < l; j++)
                    vs[r * l + j] = v[r * l + j] + sign * shift[r];
            }
            int64_t step = 1 + (int64_t)(lcg(&s) % (uint32_t)rows);
            for (int64_t r = 0; r < rows; r += step)
                sae_batch_heap_offer_rows_shifted(&h, v + r * l, rows - r < step ? rows - r : step,
                                                  l, r, shift + r, sign);
            sel = vs;
        } else if (trial % 8 == 1) { /* the one-block path of select.c: floor, list, offers */
            float sign = trial % 16 == 1 ? 1.0f : -1.0f;
            for (int64_t r = 0; r < rows; r++) {
                shift[r] = (float)(lcg(&s) % 5) * 0.21f;
                for (int64_t j = 0; j < l; j++)
                    vs[r * l + j] = v[r * l + j] + sign * shift[r];
            }
            sae_batch_heap_raise_floor(&h, v, rows, l, shift, sign);
            for (int64_t r = 0; r < rows; r++)
                shift2[r] = sign * shift[r];
            int sparse = trial % 32 == 1; /* a hint: the same list either way */
            float *low = trial % 3 != 0 ? llow : NULL; /* lower bounds: x + -shift */
            int64_t got = sae_batch_collect_above(v, rows, l, shift2, h.floor, lval, low, lpos,
                                                  NMAX, sparse);
            int64_t m = 0;
            for (int64_t e = 0; e < n; e++) {
                if (!(vs[e] > h.floor))
                    continue;
                assert_true(m < got);
                assert_int_equal(lpos[m], e);
                assert_memory_equal(&lval[m], &vs[e], sizeof(float));
                float want_low = v[e] + -shift2[e / l];
                if (low != NULL)
                    assert_memory_equal(&low[m], &want_low, sizeof(float));
                m++;
            }
            assert_int_equal(got, m);
            if (m > 0) /* one short: the list overflows */
                assert_int_equal(sae_batch_collect_above(v, rows, l, shift2, h.floor, lval, low, lpos,
                                                         m - 1, sparse), -1);
            sae_batch_heap_offer_at(&h, v, l, lpos, m, shift, sign, 0);
            sel = vs;
        } else if (trial % 2 == 0) {
            for (int64_t r = 0; r < rows; r++)
                sae_batch_heap_offer_row(&h, v + r * l, l, r);
        } else { /* in blocks of rows, the first raising the floor from column maxima */
            int64_t step = 1 + (int64_t)(lcg(&s) % (uint32_t)rows);
            for (int64_t r = 0; r < rows; r += step)
                sae_batch_heap_offer_rows(&h, v + r * l, rows - r < step ? rows - r : step, l, r);
        }
        float lo = sae_batch_heap_min(&h);
        sae_codes c = {row_ptr, cidx, cval, NMAX};
        sae_batch_heap_to_codes(&h, rows, l, &c);
        int64_t want = reference(sel, n, NULL, cap, ref);
        assert_int_equal(row_ptr[rows], want);
        float worst = 0.0f;
        for (int64_t a = 0; a < want; a++) {
            int64_t r = ref[a].p / l;
            assert_true(a >= row_ptr[r] && a < row_ptr[r + 1]);
            assert_int_equal(cidx[a], ref[a].p - r * l);
            assert_memory_equal(&cval[a], &ref[a].v, sizeof(float));
            worst = a == 0 || ref[a].v < worst ? ref[a].v : worst;
        }
        assert_memory_equal(&lo, &worst, sizeof(float));
    }
    free(v), free(cval), free(cidx), free(ref), free(row_ptr), free(hval), free(hpos);
    free(vs), free(shift), free(shift2), free(lval), free(lpos), free(llow);
}

/* sae_batch_heap_take_best: the K best positive entries of a list with increasing (gapped)
 * positions, for lists shorter than K, up to 64 longer (the sorted drop list), longer, and
 * longer than the buffer; continuous values, ties and non-positive ones. */
static void test_take_best_matches_reference(void **state)
{
    (void)state;
    enum { NMAX = 5000 };
    float *v = malloc(NMAX * sizeof *v), *dense = malloc(4 * NMAX * sizeof *dense);
    int64_t *pos = malloc(NMAX * sizeof *pos);
    key *ref = malloc(4 * NMAX * sizeof *ref);
    float *hval = malloc((size_t)SAE_BATCH_ROOM(NMAX) * sizeof *hval);
    int64_t *hpos = malloc((size_t)SAE_BATCH_ROOM(NMAX) * sizeof *hpos);
    assert_non_null(v), assert_non_null(dense), assert_non_null(pos), assert_non_null(ref);
    assert_non_null(hval), assert_non_null(hpos);
    uint64_t s = 11;
    static const int64_t extra[] = {-7, 0, 1, 5, 64, 65, 300, 3000};
    for (int trial = 0; trial < 96; trial++) {
        int64_t cap = 1 + (int64_t)(lcg(&s) % 900), n = cap + extra[trial % 8];
        if (n < 0 || n > NMAX)
            n = cap;
        fill(v, n, trial / 8 % 2 ? 1 : 0, &s);
        if (trial % 3 == 0) /* positive values only */
            for (int64_t e = 0; e < n; e++)
                v[e] = fabsf(v[e]) + 0x1p-10f;
        for (int64_t e = 0, p = 0; e < n; e++)
            pos[e] = p += 1 + (int64_t)(lcg(&s) % 3);
        int64_t span = n > 0 ? pos[n - 1] + 1 : 0;
        for (int64_t p = 0; p < span; p++)
            dense[p] = 0.0f;
        for (int64_t e = 0; e < n; e++)
            dense[pos[e]] = v[e];
        sae_batch_heap h = {0, 0, hval, hpos, 0.0f};
        sae_batch_heap_reset(&h, cap);
        sae_batch_heap_take_best(&h, v, pos, n);
        int64_t want = reference(dense, span, NULL, cap, ref);
        assert_int_equal(h.n, want);
        for (int64_t a = 0; a < want; a++) {
            assert_int_equal(h.pos[a], ref[a].p);
            assert_memory_equal(&h.val[a], &ref[a].v, sizeof(float));
        }
    }
    free(v), free(dense), free(pos), free(ref), free(hval), free(hpos);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topk_row_matches_reference),
        cmocka_unit_test(test_batch_topk_matches_reference),
        cmocka_unit_test(test_take_best_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
