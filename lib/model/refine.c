/* Exact per-row top-k from approximate scores. The scores that define the selection are
 * e_j = fl(sae_dotf_lanes(x, W_enc,j) + b_enc,j); an approximation a_j with |a_j - e_j| <= err
 * for every j (a bfloat16 product, or any float BLAS product) narrows the row to the
 * candidates that can still be in the top k, and only those are rescored. Proof of the
 * candidate rule: docs/training.md, "Exact selection from approximate scores". */
#include "model/refine.h"

#include "linalg/lanes.h"
#include "linalg/linalg.h"
#include "model/select_kernels.h"
#include "model/sparse.h"

#include <math.h>

/* Unit roundoff of float. */
#define U_F32 5.9604644775390625e-08 /* 2^-24 */

double sae_score_err(int bf16, int64_t d, double xnorm, double wmax, double bmax, double exnorm,
                     double ewmax)
{
    double gamma = 3.0 * (double)d * U_F32; /* both products' sums, with slack */
    double s = xnorm * wmax * (1.0 + 1e-6);  /* >= sum |x_i w_ji| (Cauchy-Schwarz) */
    double err = (gamma + 4.0 * U_F32) * s + 4.0 * U_F32 * bmax; /* + the bias additions */
    if (bf16) {
        /* the kernel sums products of the rounded operands x + dx, w + dw (exact in float):
         * |sum x w - sum (x + dx)(w + dw)| <= |x| |dw| + |dx| |w + dw|, and its own sum and
         * bias addition err on sum |(x + dx)(w + dw)| <= sb */
        double sb = (xnorm + exnorm) * (wmax + ewmax) * (1.0 + 1e-6);
        double quant = (xnorm * ewmax + exnorm * (wmax + ewmax)) * (1.0 + 1e-6);
        /* subnormal inputs and sums are flushed to zero by the bfloat16 kernels */
        double flush = 1e-30 * (1.0 + xnorm + wmax) * (1.0 + (double)d);
        err = (gamma + 4.0 * U_F32) * sb + quant + 4.0 * U_F32 * bmax + flush;
    }
    return (double)d * U_F32 < 1e-3 && s < 1e36 && isfinite(err) ? err : INFINITY;
}

void sae_score_scales(const float *w, const float *b, int64_t l, int64_t d, double *wmax,
                      double *bmax)
{
    double wm = 0.0, bm = 0.0;
    for (int64_t j = 0; j < l; j++) {
        wm = fmax(wm, sae_norm_f64(w + j * d, d));
        bm = fmax(bm, fabs((double)b[j]));
    }
    *wmax = wm, *bmax = bm;
}

#define COL(c) (cand != NULL ? (int64_t)cand[c] : (c))

SAE_LANES_CLONES
void sae_scores_exact(const float *x, const float *w, const float *bias, int64_t d,
                      const int32_t *cand, int64_t n, float *out)
{
    int64_t c = 0;
#if SAE_HAVE_V8
    for (; c + 8 <= n; c += 8) {
        const float *rows[8];
        for (int64_t q = 0; q < 8; q++)
            rows[q] = w + COL(c + q) * d;
        sae_dotf8_lanes(x, rows, d, out + c);
    }
    for (; c + 4 <= n; c += 4) {
        const float *rows[4];
        for (int64_t q = 0; q < 4; q++)
            rows[q] = w + COL(c + q) * d;
        sae_dotf4_lanes(x, rows, d, out + c);
    }
#endif
    for (; c < n; c++)
        out[c] = sae_dotf_lanes(x, w + COL(c) * d, d);
    for (c = 0; c < n; c++)
        out[c] += bias[COL(c)];
}

/* Indices of the allowed row[j] > g into cand, in order; stops once more than
 * SAE_REFINE_CAND pass. cand and cv (scratch) hold SAE_REFINE_CAND + 8 entries. */
#ifdef SELECT_AVX2
/* The whole blocks of 32 (returns how far it got in *j). */
AVX2_FN static int64_t screen_avx2(const float *row, int64_t l, const uint8_t *allow, float g,
                                   int32_t *cand, float *cv, int64_t *j)
{
    __m256 vg = _mm256_set1_ps(g);
    int64_t nc = 0, b = 0;
    for (; b + 32 <= l && nc <= SAE_REFINE_CAND; b += 32) {
        if (!any32(row + b, vg))
            continue;
        for (int64_t q = b; q < b + 32 && nc <= SAE_REFINE_CAND; q += 8) {
            uint32_t m = pass8(row + q, vg, allow != NULL ? allow + q : NULL);
            if (m != 0)
                nc = pack8(row + q, (int32_t)q, m, cv, cand, nc);
        }
    }
    *j = b;
    return nc;
}
#endif

static int64_t screen(const float *row, int64_t l, const uint8_t *allow, float g, int32_t *cand,
                      float *cv)
{
    int64_t nc = 0, j = 0;
#ifdef SELECT_AVX2
    if (have_avx2())
        nc = screen_avx2(row, l, allow, g, cand, cv, &j);
#endif
    (void)cv;
    for (; j < l && nc <= SAE_REFINE_CAND; j++)
        if (row[j] > g && (allow == NULL || allow[j])) {
            if (nc < SAE_REFINE_CAND)
                cand[nc] = (int32_t)j;
            nc++;
        }
    return nc;
}

#ifdef SELECT_AVX2
/* The whole groups of 8 (returns how far it got in *j), without a branch per group: a
 * group is packed with a permutation while the room holds all eight. */
AVX2_FN static int64_t relu_candidates_avx2(const float *a, int64_t l, float lo, int32_t *idx,
                                            int64_t room, int64_t *j)
{
    __m256 vlo = _mm256_set1_ps(lo);
    int64_t n = 0, q = 0;
    for (; q + 8 <= l; q += 8) {
        /* not (a <= lo): NaN scores are candidates too */
        uint32_t m = (uint32_t)_mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_loadu_ps(a + q), vlo, _CMP_NLE_UQ));
        if (n + 8 <= room) {
            n = pack_idx8((int32_t)q, m, idx, n);
            continue;
        }
        for (int c = 0; c < 8; c++) { /* never past the room: rows are filled side by side */
            if (n < room && (m >> c & 1u))
                idx[n] = (int32_t)(q + c);
            n += m >> c & 1u;
        }
    }
    *j = q;
    return n;
}

/* The same with AVX-512F: sixteen lanes compressed in a register and stored whole. */
#  define AVX512_FN __attribute__((target("avx512f,popcnt")))
AVX512_FN static int64_t relu_candidates_avx512(const float *a, int64_t l, float lo,
                                                int32_t *idx, int64_t room, int64_t *j)
{
    __m512 vlo = _mm512_set1_ps(lo);
    __m512i iv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    int64_t n = 0, q = 0;
    for (; q + 16 <= l && n + 16 <= room; q += 16, iv = _mm512_add_epi32(iv, step)) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(a + q), vlo, _CMP_NLE_UQ);
        _mm512_storeu_si512(idx + n, _mm512_maskz_compress_epi32(m, iv));
        n += __builtin_popcount(m);
    }
    for (; q + 16 <= l; q += 16) { /* the room is nearly full: list what fits, count all */
        uint32_t m = _mm512_cmp_ps_mask(_mm512_loadu_ps(a + q), vlo, _CMP_NLE_UQ);
        for (int c = 0; c < 16 && n < room; c++)
            if (m >> c & 1u)
                idx[n++] = (int32_t)(q + c), m &= ~(1u << c);
        n += __builtin_popcount(m);
    }
    *j = q;
    return n;
}
#endif

int64_t sae_relu_candidates_at(int level, const float *a, int64_t l, double err, int32_t *idx,
                               int64_t room)
{
    float lo = err < INFINITY ? nextafterf(-(float)err, -INFINITY) /* <= -err, rounded */
                              : -INFINITY; /* no bound: every latent */
    int64_t n = 0, j = 0;
#ifdef SELECT_AVX2
    if (level >= 2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("popcnt"))
        n = relu_candidates_avx512(a, l, lo, idx, room, &j);
    else if (level >= 1 && have_avx2())
        n = relu_candidates_avx2(a, l, lo, idx, room, &j);
#else
    (void)level;
#endif
    for (; j < l; j++) {
        if (n < room)
            idx[n] = (int32_t)j;
        n += !(a[j] <= lo);
    }
    return n;
}

int64_t sae_relu_candidates(const float *a, int64_t l, double err, int32_t *idx, int64_t room)
{
    return sae_relu_candidates_at(2, a, l, err, idx, room);
}

/* The whole row rescored into row, then selected. */
static int64_t whole_row(float *row, int64_t l, int64_t k, const uint8_t *allow, const float *x,
                         const float *w, const float *bias, int64_t d, int32_t *idx, float *val)
{
    sae_scores_exact(x, w, bias, d, NULL, l, row);
    return sae_topk_row(row, l, k, allow, idx, val);
}

/* The k-th and (k+1)-th largest of the k + 1 values v, and the place of the latter (the
 * smallest; among equal ones the last in index order, which the top-k ordering drops). */
static void last_two(const float *v, int64_t n, float *kth, float *next, int64_t *at)
{
    int64_t m = 0;
    for (int64_t a = 1; a < n; a++)
        if (v[a] <= v[m])
            m = a;
    float second = INFINITY;
    for (int64_t a = 0; a < n; a++)
        if (a != m && v[a] < second)
            second = v[a];
    *kth = second, *next = v[m], *at = m;
}

int64_t sae_topk_refine_row(float *row, int64_t l, int64_t k, const uint8_t *allow, double err,
                            const float *x, const float *w, const float *bias, int64_t d,
                            int32_t *idx, float *val)
{
    if (err == 0.0)
        return sae_topk_row(row, l, k, allow, idx, val);
    if (!(err < INFINITY) || k >= SAE_REFINE_CAND)
        return whole_row(row, l, k, allow, x, w, bias, d, idx, val);
    int32_t cand[SAE_REFINE_CAND + 8];
    float cval[SAE_REFINE_CAND + 8];
    /* the k + 1 largest approximations: the k-th sets the bound, and when the (k+1)-th is
     * already out of reach the top k are the only candidates */
    int64_t cnt = sae_topk_row(row, l, k + 1, allow, cand, cval), nc;
    double lo = -err; /* a positive e_j needs a_j > -err */
    if (cnt == k + 1) {
        float kth, next;
        int64_t drop;
        last_two(cval, cnt, &kth, &next, &drop);
        lo = fmax(lo, (double)kth - 2.0 * err); /* the k-th e is >= kth - err */
        if ((double)next < lo) {
            memmove(cand + drop, cand + drop + 1, (size_t)(k - drop) * sizeof *cand);
            nc = k;
        } else {
            nc = -1;
        }
    } else {
        nc = -1; /* fewer than k + 1 positive: entries in (-err, 0] may still be */
        if (cnt == k) {
            float kth = cval[0];
            for (int64_t a = 1; a < cnt; a++)
                kth = cval[a] < kth ? cval[a] : kth;
            lo = fmax(lo, (double)kth - 2.0 * err);
        }
    }
    if (nc < 0) {
        /* a float g below lo: row[j] > g keeps every row[j] >= lo (and possibly more) */
        float g = nextafterf((float)lo, -INFINITY);
        if ((double)g >= lo)
            g = nextafterf(g, -INFINITY);
        nc = screen(row, l, allow, g, cand, cval);
        if (nc > SAE_REFINE_CAND) /* too close to call */
            return whole_row(row, l, k, allow, x, w, bias, d, idx, val);
    }
    sae_scores_exact(x, w, bias, d, cand, nc, cval);
    if (nc <= k) { /* the candidates are the top k, less those that are not positive */
        cnt = 0;
        for (int64_t c = 0; c < nc; c++)
            if (cval[c] > 0.0f) {
                idx[cnt] = cand[c];
                val[cnt++] = cval[c];
            }
        return cnt;
    }
    int32_t at[SAE_REFINE_CAND];
    cnt = sae_topk_row(cval, nc, k, NULL, at, val); /* candidates ascend, so ties keep order */
    for (int64_t a = 0; a < cnt; a++)
        idx[a] = cand[at[a]];
    return cnt;
}
