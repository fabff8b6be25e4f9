/* Sparse activation kernels (see sparse.h). */
#include "model/sparse.h"

#include <string.h>

/* ---- per-row top-k ---------------------------------------------------------------------
 * A floor from column maxima, the candidates at or above it, ranked by counting; a min-heap
 * of the k best seen so far is the fallback (flat rows, many candidates). */

/* Swap entries a and b of the parallel (value, index) arrays. */
static inline void swap_entry(float *val, int32_t *idx, int64_t a, int64_t b)
{
    float tv = val[a];
    int32_t ti = idx[a];
    val[a] = val[b], idx[a] = idx[b];
    val[b] = tv, idx[b] = ti;
}

/* a is worse than b: smaller value, or equal value and larger index. */
static int worse(float va, int32_t ia, float vb, int32_t ib)
{
    return va < vb || (va == vb && ia > ib);
}

static void heap_sift_down(float *val, int32_t *idx, int64_t n, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(val[l], idx[l], val[w], idx[w]))
            w = l;
        if (r < n && worse(val[r], idx[r], val[w], idx[w]))
            w = r;
        if (w == i)
            return;
        swap_entry(val, idx, i, w);
        i = w;
    }
}

static void heap_sift_up(float *val, int32_t *idx, int64_t i)
{
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!worse(val[i], idx[i], val[p], idx[p]))
            return;
        swap_entry(val, idx, i, p);
        i = p;
    }
}

/* Max-heap on idx: restore the heap property below i among the first n entries. */
static void index_sift_down(int32_t *idx, float *val, int64_t n, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && idx[l] > idx[w])
            w = l;
        if (r < n && idx[r] > idx[w])
            w = r;
        if (w == i)
            return;
        swap_entry(val, idx, i, w);
        i = w;
    }
}

/* Sort parallel arrays by index ascending (heapsort: no allocation, O(k log k)). */
static void sort_by_index(int32_t *idx, float *val, int64_t n)
{
    for (int64_t start = n / 2 - 1; start >= 0; start--)
        index_sift_down(idx, val, n, start);
    for (int64_t end = n - 1; end > 0; end--) {
        swap_entry(val, idx, 0, end);
        index_sift_down(idx, val, end, 0);
    }
}

/* Offer row[j] to the heap of the k best (caller checked row[j] > *floor). */
static inline void topk_offer(float v, int32_t j, int64_t k, int32_t *idx, float *val, int64_t *n,
                              float *floor)
{
    if (*n < k) {
        val[*n] = v, idx[*n] = j;
        heap_sift_up(val, idx, *n);
        if (++*n == k)
            *floor = val[0];
    } else {
        val[0] = v, idx[0] = j;
        heap_sift_down(val, idx, *n, 0);
        *floor = val[0];
    }
}

#define TOPK_BLOCK 16
#define TOPK_COLS_MAX 512  /* column maxima kept on the stack */
#define TOPK_RANK_COLS 64  /* up to this many columns the floor is found by counting */
#define TOPK_CAND 512      /* candidates kept on the stack */
#define TOPK_RANK_CAND 64  /* up to this many candidates the k best are found by counting */

/* An AVX2 version of the screens and of the appends (left-packing the passing lanes with a
 * permutation), chosen at run time on x86-64; it only compares and copies, so it selects
 * the same entries as the portable code (which sanitiser builds test). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(SAE_NO_CLONES)
#  define SELECT_AVX2 1
#  include <immintrin.h>
#  define AVX2_FN __attribute__((target("avx2,popcnt")))

static int have_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
}

/* Lane numbers of the set bits of a 4-bit mask, in order. */
static const int32_t pack4[16][4] = {
    {0, 0, 0, 0}, {0, 0, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0},
    {2, 0, 0, 0}, {0, 2, 0, 0}, {1, 2, 0, 0}, {0, 1, 2, 0},
    {3, 0, 0, 0}, {0, 3, 0, 0}, {1, 3, 0, 0}, {0, 1, 3, 0},
    {2, 3, 0, 0}, {0, 2, 3, 0}, {1, 2, 3, 0}, {0, 1, 2, 3},
};

/* Bits of the lanes of x[0..8) that pass (allowed values > g, with g >= 0). */
AVX2_FN static inline uint32_t pass8(const float *x, __m256 vg, const uint8_t *allow)
{
    uint32_t m = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x), vg, _CMP_GT_OQ));
    if (allow != NULL) {
        int64_t a;
        memcpy(&a, allow, sizeof a);
        __m128i zero = _mm_cmpeq_epi8(_mm_cvtsi64_si128(a), _mm_setzero_si128());
        m &= ~(uint32_t)_mm_movemask_epi8(zero);
    }
    return m;
}

/* Appends the lanes of x[0..8) set in m, with indices j.., at cv/ci + c; returns the new c
 * (writes up to 8 entries past it). */
AVX2_FN static inline int64_t pack8(const float *x, int32_t j, uint32_t m, float *cv, int32_t *ci,
                                    int64_t c)
{
    __m256 v = _mm256_loadu_ps(x);
    __m256 iv = _mm256_castsi256_ps(
        _mm256_add_epi32(_mm256_set1_epi32(j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    for (int h = 0; h < 2; h++) {
        uint32_t mh = (m >> (4 * h)) & 15u;
        __m128i p = _mm_loadu_si128((const __m128i *)pack4[mh]);
        __m128 vh = h ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v);
        __m128 ih = h ? _mm256_extractf128_ps(iv, 1) : _mm256_castps256_ps128(iv);
        _mm_storeu_ps(cv + c, _mm_permutevar_ps(vh, p));
        _mm_storeu_si128((__m128i *)(ci + c), _mm_castps_si128(_mm_permutevar_ps(ih, p)));
        c += __builtin_popcount(mh);
    }
    return c;
}

/* Nonzero when a value of x[0..32) is > g. */
AVX2_FN static inline int any32(const float *x, __m256 vg)
{
    __m256 a = _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(x), vg, _CMP_GT_OQ),
                            _mm256_cmp_ps(_mm256_loadu_ps(x + 8), vg, _CMP_GT_OQ));
    __m256 b = _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + 16), vg, _CMP_GT_OQ),
                            _mm256_cmp_ps(_mm256_loadu_ps(x + 24), vg, _CMP_GT_OQ));
    return _mm256_movemask_ps(_mm256_or_ps(a, b));
}

/* The largest m[i] with at least k of m[0..nb) >= it (nb a multiple of 8, at most
 * TOPK_RANK_COLS): the counts of all i are kept in vectors, one broadcast m[j] at a time. */
AVX2_FN static inline float rank_floor_avx2(const float *m, int64_t nb, int64_t k)
{
    __m256i cnt[TOPK_RANK_COLS / 8];
    int64_t nv = nb / 8;
    for (int64_t v = 0; v < nv; v++)
        cnt[v] = _mm256_setzero_si256();
    for (int64_t j = 0; j < nb; j++) {
        __m256 b = _mm256_set1_ps(m[j]);
        for (int64_t v = 0; v < nv; v++) /* m[8v + lane] <= m[j]: subtract the -1 masks */
            cnt[v] = _mm256_sub_epi32(
                cnt[v], _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(m + 8 * v), b, _CMP_LE_OQ)));
    }
    __m256 best = _mm256_setzero_ps();
    __m256i km1 = _mm256_set1_epi32((int32_t)(k - 1));
    for (int64_t v = 0; v < nv; v++) {
        __m256 sel = _mm256_castsi256_ps(_mm256_cmpgt_epi32(cnt[v], km1));
        best = _mm256_max_ps(best, _mm256_and_ps(_mm256_loadu_ps(m + 8 * v), sel));
    }
    best = _mm256_max_ps(best, _mm256_permute2f128_ps(best, best, 1));
    best = _mm256_max_ps(best, _mm256_permute_ps(best, 0x4e));
    best = _mm256_max_ps(best, _mm256_permute_ps(best, 0xb1));
    return _mm256_cvtss_f32(best);
}

/* m[b] = max(0, row[j] with j mod nb == b) for b < nb (nb a multiple of 8). The new value
 * is the first operand of max, so a NaN never replaces the running maximum. */
AVX2_FN static inline void col_max_avx2(const float *row, int64_t l, int64_t nb, float *m)
{
    int64_t full = l / nb * nb;
    for (int64_t v = 0; v < nb; v += 8) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int64_t t = 0;
        for (; t + 2 * nb <= full; t += 2 * nb) {
            a0 = _mm256_max_ps(_mm256_loadu_ps(row + t + v), a0);
            a1 = _mm256_max_ps(_mm256_loadu_ps(row + t + nb + v), a1);
        }
        if (t < full)
            a0 = _mm256_max_ps(_mm256_loadu_ps(row + t + v), a0);
        _mm256_storeu_ps(m + v, _mm256_max_ps(a1, a0));
    }
    for (int64_t q = full; q < l; q++) {
        float x = row[q], *mb = m + (q - full);
        *mb = x > *mb ? x : *mb;
    }
}

/* rk[a] = how many of cv[0..cpad) come before cv[a]: larger, or equal at a smaller place. */
AVX2_FN static inline void rank_avx2(const float *cv, int64_t c, int64_t cpad, int32_t *rk)
{
    for (int64_t a = 0; a < c; a++) {
        __m256 v = _mm256_set1_ps(cv[a]);
        int32_t r = 0;
        for (int64_t b = 0; b < cpad; b += 8) {
            __m256 x = _mm256_loadu_ps(cv + b);
            uint32_t gt = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(x, v, _CMP_GT_OQ));
            uint32_t eq = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(x, v, _CMP_EQ_OQ));
            int64_t below = a - b; /* lanes before a */
            uint32_t lo = below >= 8 ? 0xffu : below <= 0 ? 0u : (1u << below) - 1u;
            r += __builtin_popcount(gt | (eq & lo));
        }
        rk[a] = r;
    }
}
#endif

#if defined(__GNUC__)
#  define SELECT_INLINE static inline __attribute__((always_inline))
#else
#  define SELECT_INLINE static inline
#endif

/* The reference algorithm: one pass with the heap, blocks screened against its floor.
 * Latents arrive in ascending index order, so a newcomer equal to the heap's worst entry
 * loses the tie: only strictly larger values enter once the heap is full. */
static int64_t topk_heap_row(const float *row, int64_t n_latents, int64_t k, const uint8_t *allow,
                             int32_t *idx, float *val)
{
    int64_t n = 0, j = 0;
    float floor = 0.0f; /* only strictly positive values qualify */
    for (; j + TOPK_BLOCK <= n_latents; j += TOPK_BLOCK) {
        int any = 0;
        for (int i = 0; i < TOPK_BLOCK; i++)
            any |= row[j + i] > floor;
        if (!any)
            continue;
        for (int64_t q = j; q < j + TOPK_BLOCK; q++)
            if (row[q] > floor && (allow == NULL || allow[q]))
                topk_offer(row[q], (int32_t)q, k, idx, val, &n, &floor);
    }
    for (; j < n_latents; j++)
        if (row[j] > floor && (allow == NULL || allow[j]))
            topk_offer(row[j], (int32_t)j, k, idx, val, &n, &floor);
    sort_by_index(idx, val, n);
    return n;
}

/* k-th largest of m[0..n) (n >= k >= 1, values >= 0; m is reordered). Quickselect. */
static float kth_largest(float *m, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1, at = k - 1;
    while (hi > lo) {
        float p = m[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (m[i] > p)
                i++;
            while (m[j] < p)
                j--;
            if (i <= j) {
                float t = m[i];
                m[i++] = m[j], m[j--] = t;
            }
        }
        if (at <= j)
            hi = j;
        else if (at >= i)
            lo = i;
        else
            break;
    }
    return m[at];
}

/* m[b] = max(0, allowed row[j] with j mod nb == b) for b < nb. */
SELECT_INLINE void col_max(const float *row, int64_t l, const uint8_t *allow, int64_t nb, float *m)
{
    for (int64_t b = 0; b < nb; b++)
        m[b] = 0.0f;
    int64_t t = 0;
    for (; t + nb <= l; t += nb)
        for (int64_t b = 0; b < nb; b++) {
            float v = allow == NULL || allow[t + b] ? row[t + b] : 0.0f;
            m[b] = v > m[b] ? v : m[b];
        }
    for (int64_t b = 0; t + b < l; b++) {
        float v = allow == NULL || allow[t + b] ? row[t + b] : 0.0f;
        m[b] = v > m[b] ? v : m[b];
    }
}

/* col_max, with an AVX2 version for unmasked rows and nb a multiple of 8: 8 columns at a
 * time in registers (two accumulators), instead of maxima kept in memory. */
SELECT_INLINE void col_max_w(const float *row, int64_t l, const uint8_t *allow, int64_t nb,
                             float *m, int wide)
{
#ifdef SELECT_AVX2
    if (wide && allow == NULL && nb % 8 == 0) {
        col_max_avx2(row, l, nb, m);
        return;
    }
#else
    (void)wide;
#endif
    col_max(row, l, allow, nb, m);
}

/* A value f such that at least k allowed values of the row are >= f (0 when no such bound
 * was found): the row is split into nb interleaved columns (latent j in column j mod nb),
 * and the k-th largest column maximum is such a bound, as k columns each hold a value at
 * least that large. With nb about 2k, only about 1.4k values of a row reach it. */
SELECT_INLINE float topk_floor(const float *row, int64_t l, int64_t k, const uint8_t *allow,
                               int wide)
{
    float m[TOPK_COLS_MAX];
    int64_t nb = (2 * k + 7) / 8 * 8;
    nb = nb < l ? nb : l;
    nb = nb < TOPK_COLS_MAX ? nb : TOPK_COLS_MAX;
    if (nb < k)
        return 0.0f;
    col_max_w(row, l, allow, nb, m, wide);
    if (nb > TOPK_RANK_COLS)
        return kth_largest(m, nb, k);
#ifdef SELECT_AVX2
    if (wide && nb % 8 == 0)
        return rank_floor_avx2(m, nb, k);
#else
    (void)wide;
#endif
    /* the largest m[i] with at least k column maxima >= it */
    float f = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int32_t c = 0;
        for (int64_t j = 0; j < nb; j++)
            c += m[j] >= m[i];
        float cand = c >= k ? m[i] : 0.0f;
        f = cand > f ? cand : f;
    }
    return f;
}

/* Heap selection over a candidate list in ascending index order. */
static int64_t topk_heap_list(const float *cv, const int32_t *ci, int64_t c, int64_t k,
                              int32_t *idx, float *val)
{
    int64_t n = 0;
    float floor = 0.0f;
    for (int64_t a = 0; a < c; a++)
        if (cv[a] > floor)
            topk_offer(cv[a], ci[a], k, idx, val, &n, &floor);
    sort_by_index(idx, val, n);
    return n;
}

/* The allowed values > g (g >= 0) of a row, in index order, appended to cv/ci (blocks are
 * screened first, then appended branch-free); returns how many, or -1 when more than
 * TOPK_CAND - TOPK_BLOCK would be needed. */
SELECT_INLINE int64_t collect(const float *row, int64_t l, float g, const uint8_t *allow,
                              float *cv, int32_t *ci)
{
    int64_t c = 0;
    for (int64_t j = 0; j < l; j += TOPK_BLOCK) {
        int64_t end = j + TOPK_BLOCK < l ? j + TOPK_BLOCK : l;
        int any = 0;
        if (end - j == TOPK_BLOCK) {
            for (int i = 0; i < TOPK_BLOCK; i++) /* a count: GCC vectorises it */
                any += row[j + i] > g;
        } else {
            any = 1;
        }
        if (!any)
            continue;
        if (c > TOPK_CAND - TOPK_BLOCK)
            return -1;
        for (int64_t q = j; q < end; q++) {
            float v = row[q];
            cv[c] = v, ci[c] = (int32_t)q;
            c += (v > g) & (allow == NULL || allow[q] != 0);
        }
    }
    return c;
}

#ifdef SELECT_AVX2
/* collect() with 32-value screens and packed appends of 8 lanes. */
AVX2_FN static inline int64_t collect_avx2(const float *row, int64_t l, float g,
                                           const uint8_t *allow, float *cv, int32_t *ci)
{
    __m256 vf = _mm256_set1_ps(g);
    int64_t c = 0, j = 0;
    for (; j + 32 <= l; j += 32) {
        if (!any32(row + j, vf))
            continue;
        if (c > TOPK_CAND - 32)
            return -1;
        for (int64_t q = j; q < j + 32; q += 8)
            c = pack8(row + q, (int32_t)q, pass8(row + q, vf, allow == NULL ? NULL : allow + q),
                      cv, ci, c);
    }
    int64_t rest = collect(row + j, l - j, g, allow == NULL ? NULL : allow + j, cv + c, ci + c);
    if (rest < 0 || c + rest > TOPK_CAND)
        return -1;
    for (int64_t a = c; a < c + rest; a++)
        ci[a] += (int32_t)j;
    return c + rest;
}
#endif

SELECT_INLINE int64_t topk_select(const float *row, int64_t l, int64_t k, const uint8_t *allow,
                                  int32_t *idx, float *val, int wide)
{
    /* the strict form of the floor: v > g iff v >= f and v > 0 (g is the float below f) */
    float f = topk_floor(row, l, k, allow, wide), g = 0.0f;
    if (f > 0.0f) {
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        u--;
        memcpy(&g, &u, sizeof g);
    }
    /* candidates: allowed values > g, in index order (blocks screened first, then
     * appended branch-free); every value of the top k is among them */
    float cv[TOPK_CAND + 32];
    int32_t ci[TOPK_CAND + 32], rk[TOPK_RANK_CAND];
    int64_t c = 0;
#ifdef SELECT_AVX2
    if (wide)
        c = collect_avx2(row, l, g, allow, cv, ci);
    else
#endif
        c = collect(row, l, g, allow, cv, ci);
    if (c < 0) /* a flat row (ties at the floor): no shortcut */
        return topk_heap_row(row, l, k, allow, idx, val);
    if (c > TOPK_RANK_CAND)
        return topk_heap_list(cv, ci, c, k, idx, val);
    if (c > k) {
        /* rank = candidates before it: larger, or equal with a smaller index; keep rank < k.
         * Zeros pad to a multiple of 8 (never larger than a candidate, never equal). */
        int64_t cpad = (c + 7) / 8 * 8;
        for (int64_t a = c; a < cpad; a++)
            cv[a] = 0.0f;
#ifdef SELECT_AVX2
        if (wide)
            rank_avx2(cv, c, cpad, rk);
        else
#endif
            for (int64_t a = 0; a < c; a++) {
                float v = cv[a];
                int32_t r = 0;
                for (int64_t b = 0; b < cpad; b++)
                    r += cv[b] > v;
                for (int64_t b = 0; b < a; b++)
                    r += cv[b] == v;
                rk[a] = r;
            }
        int64_t n = 0;
        for (int64_t a = 0; a < c; a++) {
            cv[n] = cv[a], ci[n] = ci[a];
            n += rk[a] < k;
        }
        c = n;
    }
    memcpy(idx, ci, (size_t)c * sizeof *idx);
    memcpy(val, cv, (size_t)c * sizeof *val);
    return c;
}

#ifdef SELECT_AVX2
AVX2_FN static int64_t topk_row_avx2(const float *row, int64_t l, int64_t k, const uint8_t *allow,
                                     int32_t *idx, float *val)
{
    if (allow == NULL)
        return topk_select(row, l, k, NULL, idx, val, 1);
    return topk_select(row, l, k, allow, idx, val, 1);
}
#endif

int64_t sae_topk_row(const float *row, int64_t n_latents, int64_t k, const uint8_t *allow,
                     int32_t *idx, float *val)
{
    /* A floor from column maxima leaves about 1.4k candidates, which are ranked by counting
     * (no heap, no sort: they are already in index order). */
    if (k <= 0)
        return 0;
#ifdef SELECT_AVX2
    if (have_avx2())
        return topk_row_avx2(row, n_latents, k, allow, idx, val);
#endif
    if (allow == NULL)
        return topk_select(row, n_latents, k, NULL, idx, val, 0);
    return topk_select(row, n_latents, k, allow, idx, val, 0);
}

/* ---- batch top-K: buffer and select, keyed by (value, batch position) ------------------ */

/* Histogram of the buffer by the top bits of the values (positive floats order like their
 * bit patterns): bin b holds values with bits >> BIN_SHIFT == b. */
#define BIN_SHIFT 19

static inline int64_t bin_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (int64_t)(u >> BIN_SHIFT);
}

/* Bookkeeping behind the buffer in pos: [0] the lowest bin still accepted, [1] how many
 * buffer entries are in bins >= it, then SAE_BATCH_BINS counts. */
static inline int64_t *bmeta(const sae_batch_heap *h)
{
    return h->pos + SAE_BATCH_FILL(h->cap);
}

/* Raise the accepted bin while the bins above it hold K entries: every value below such a
 * bin is beaten by K larger ones, so the floor moves to just under the bin's lower edge. */
static void braise(sae_batch_heap *h, int64_t *meta)
{
    int64_t fb = meta[0], above = meta[1], *hist = meta + 2;
    if (above - hist[fb] < h->cap)
        return;
    do {
        above -= hist[fb++];
    } while (above - hist[fb] >= h->cap);
    meta[0] = fb, meta[1] = above;
    uint32_t below = ((uint32_t)fb << BIN_SHIFT) - 1u; /* fb >= 1 */
    float edge;
    memcpy(&edge, &below, sizeof edge);
    h->floor = edge > h->floor ? edge : h->floor;
}

static inline uint32_t bits_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* The `need`-th largest of the low bits (u >> shift) & mask of the entries whose bits
 * agree with `hi` above bit `top`; *need becomes how many of that value are still needed. */
static uint32_t radix_level(const sae_batch_heap *h, int64_t *cnt, uint32_t hi, int top, int shift,
                            int64_t *need)
{
    uint32_t mask = (1u << (top - shift)) - 1u;
    memset(cnt, 0, (size_t)(mask + 1) * sizeof *cnt);
    for (int64_t e = 0; e < h->n; e++) {
        uint32_t u = bits_of(h->val[e]);
        cnt[(u >> top) == hi ? (u >> shift) & mask : 0] += (u >> top) == hi;
    }
    uint32_t d = mask;
    while (cnt[d] < *need) /* the counts of the digits reach need at the latest at 0 */
        *need -= cnt[d--];
    return d;
}

/* Keeps exactly the K best entries, in buffer (= position) order: those of bins above the
 * accepted bin fb all belong to them (fewer than K, braise keeps it so); inside bin fb the
 * cut value is found on the 19 low bits with two more histogram levels, and of the entries
 * equal to the cut the first ones in position order are kept. */
static void breduce(sae_batch_heap *h, int64_t *meta)
{
    int64_t fb = meta[0], *hist = meta + 2, *cnt = hist + SAE_BATCH_BINS;
    int64_t need = h->cap - (meta[1] - hist[fb]); /* >= 1 */
    uint32_t d1 = radix_level(h, cnt, (uint32_t)fb, BIN_SHIFT, 9, &need);
    uint32_t d2 = radix_level(h, cnt, ((uint32_t)fb << 10) | d1, 9, 0, &need);
    uint32_t cutu = ((uint32_t)fb << BIN_SHIFT) | (d1 << 9) | d2;
    int64_t n = 0, taken = 0;
    for (int64_t e = 0; e < h->n; e++) {
        float v = h->val[e];
        int64_t p = h->pos[e];
        uint32_t u = bits_of(v);
        int eq = u == cutu;
        h->val[n] = v, h->pos[n] = p;
        n += (u > cutu) | (eq & (taken < need));
        taken += eq;
    }
    h->n = n;
    float worst;
    memcpy(&worst, &cutu, sizeof worst);
    h->floor = worst > h->floor ? worst : h->floor;
}

/* Drops the entries below the accepted bin (stable); if more than `limit` remain, keeps
 * exactly the K best. Then recounts the histogram. */
static void bcompact(sae_batch_heap *h, int64_t limit)
{
    /* with at most K entries none is below the accepted bin (the K entries that raised it,
     * or the K best of them, are still there) */
    if (h->n <= h->cap)
        return;
    int64_t *meta = bmeta(h), *hist = meta + 2, fb = meta[0], n = 0;
    for (int64_t e = 0; e < h->n; e++) {
        float v = h->val[e];
        int64_t p = h->pos[e];
        h->val[n] = v, h->pos[n] = p;
        n += bin_of(v) >= fb;
    }
    h->n = n;
    if (n > limit && n > h->cap)
        breduce(h, meta);
    memset(hist, 0, SAE_BATCH_BINS * sizeof *hist);
    for (int64_t e = 0; e < h->n; e++)
        hist[bin_of(h->val[e])]++;
    meta[1] = h->n; /* every entry is in a bin >= fb */
    braise(h, meta);
}

void sae_batch_heap_reset(sae_batch_heap *h, int64_t cap)
{
    h->cap = cap;
    h->n = 0;
    h->floor = 0.0f;
    int64_t *meta = bmeta(h);
    meta[0] = 0, meta[1] = 0;
    memset(meta + 2, 0, SAE_BATCH_BINS * sizeof *meta);
}

#define BATCH_STEP 48 /* free buffer entries needed before a block is appended */

/* Counts the appended entries [n0, h->n) and raises the floor. */
static inline void bcount(sae_batch_heap *h, int64_t *meta, int64_t n0)
{
    int64_t *hist = meta + 2, n = h->n;
    const float *val = h->val;
    for (int64_t e = n0; e < n; e++)
        hist[bin_of(val[e])]++;
    meta[1] += n - n0;
    braise(h, meta);
}

/* Offers x[0..len) at positions base..: blocks of TOPK_BLOCK values are screened against
 * the floor, and the values of a block that passes are appended branch-free. */
static void offer_tail(sae_batch_heap *h, const float *x, int64_t len, int64_t base)
{
    int64_t *meta = bmeta(h), fill = SAE_BATCH_FILL(h->cap);
    for (int64_t j = 0; j < len; j += TOPK_BLOCK) {
        int64_t end = j + TOPK_BLOCK < len ? j + TOPK_BLOCK : len;
        float fl = h->floor;
        int any = 0;
        if (end - j == TOPK_BLOCK) {
            for (int i = 0; i < TOPK_BLOCK; i++) /* a count: GCC vectorises it */
                any += x[j + i] > fl;
        } else {
            for (int64_t q = j; q < end; q++)
                any |= x[q] > fl;
        }
        if (!any)
            continue;
        if (h->n + BATCH_STEP > fill) {
            bcompact(h, h->cap + h->cap / 2);
            fl = h->floor;
        }
        int64_t n = h->n, n0 = n;
        for (int64_t q = j; q < end; q++) {
            float v = x[q];
            h->val[n] = v, h->pos[n] = base + q;
            n += v > fl;
        }
        h->n = n;
        bcount(h, meta, n0);
    }
}

#ifdef SELECT_AVX2
/* sae_batch_heap_offer_row with 32-value screens; the passing lanes of a block are packed
 * into the buffer 8 at a time. */
AVX2_FN static void offer_row_avx2(sae_batch_heap *h, const float *row, int64_t l, int64_t r)
{
    int64_t *meta = bmeta(h), base = r * l, fill = SAE_BATCH_FILL(h->cap), j = 0;
    for (; j + 32 <= l; j += 32) {
        __m256 vg = _mm256_set1_ps(h->floor);
        if (!any32(row + j, vg))
            continue;
        if (h->n + BATCH_STEP > fill) {
            bcompact(h, h->cap + h->cap / 2);
            vg = _mm256_set1_ps(h->floor);
        }
        int64_t n0 = h->n, n = n0;
        __m256i b = _mm256_set1_epi64x(base);
        for (int64_t q = j; q < j + 32; q += 8) { /* pack8 with 64-bit positions */
            __m256 v = _mm256_loadu_ps(row + q);
            __m256i iv = _mm256_add_epi32(_mm256_set1_epi32((int32_t)q),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            uint32_t m = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(v, vg, _CMP_GT_OQ));
            for (int half = 0; half < 2; half++) {
                uint32_t mh = (m >> (4 * half)) & 15u;
                __m128i p = _mm_loadu_si128((const __m128i *)pack4[mh]);
                __m128 vh = half ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v);
                __m128i ih = half ? _mm256_extracti128_si256(iv, 1) : _mm256_castsi256_si128(iv);
                __m128i pi = _mm_castps_si128(_mm_permutevar_ps(_mm_castsi128_ps(ih), p));
                _mm_storeu_ps(h->val + n, _mm_permutevar_ps(vh, p));
                _mm256_storeu_si256((__m256i *)(h->pos + n),
                                    _mm256_add_epi64(b, _mm256_cvtepi32_epi64(pi)));
                n += __builtin_popcount(mh);
            }
        }
        h->n = n;
        bcount(h, meta, n0);
    }
    offer_tail(h, row + j, l - j, base + j);
}
#endif

void sae_batch_heap_offer_row(sae_batch_heap *h, const float *row, int64_t n_latents, int64_t r)
{
    /* rows arrive in order, so positions only grow: a newcomer equal to the floor (the
     * worst kept value after an exact reduction) loses the tie */
    if (h->cap == 0)
        return;
#ifdef SELECT_AVX2
    if (have_avx2()) {
        offer_row_avx2(h, row, n_latents, r);
        return;
    }
#endif
    offer_tail(h, row, n_latents, r * n_latents);
}

/* Before rows r0.. are offered: the column maxima of each row (nb columns as in
 * sae_topk_row) are distinct values of the batch, so if the buffer and the maxima together
 * hold K values in bins >= b, no value below bin b can be kept: the floor rises to just
 * under bin b at once instead of following the buffer up from 0. */
SELECT_INLINE void batch_prefloor(sae_batch_heap *h, const float *rows, int64_t n_rows, int64_t l,
                                  int wide)
{
    int64_t *meta = bmeta(h), *hist = meta + 2, *mh = hist + SAE_BATCH_BINS;
    int64_t need = h->cap - meta[1];
    if (need <= 0 || h->floor > 0.0f)
        return; /* the buffer's own floor is already up */
    int64_t nb = (2 * need + n_rows - 1) / n_rows;
    nb = (nb + 7) / 8 * 8;
    if (nb > TOPK_COLS_MAX || 2 * nb > l)
        return; /* columns too short to save work */
    float m[TOPK_COLS_MAX];
    memset(mh, 0, SAE_BATCH_BINS * sizeof *mh);
    for (int64_t r = 0; r < n_rows; r++) {
        col_max_w(rows + r * l, l, NULL, nb, m, wide);
        for (int64_t b = 0; b < nb; b++) /* zeros land in bin 0, which is never counted */
            mh[bin_of(m[b])]++;
    }
    int64_t total = 0, b = SAE_BATCH_BINS;
    while (b > 1 && total < h->cap) {
        b--;
        total += hist[b] + mh[b];
    }
    if (total < h->cap)
        return;
    uint32_t below = ((uint32_t)b << BIN_SHIFT) - 1u;
    float edge;
    memcpy(&edge, &below, sizeof edge);
    h->floor = edge > h->floor ? edge : h->floor;
}

#ifdef SELECT_AVX2
AVX2_FN static void prefloor_avx2(sae_batch_heap *h, const float *rows, int64_t n_rows, int64_t l)
{
    batch_prefloor(h, rows, n_rows, l, 1);
}
#endif

void sae_batch_heap_offer_rows(sae_batch_heap *h, const float *rows, int64_t n_rows,
                               int64_t n_latents, int64_t r0)
{
    if (h->cap == 0 || n_rows <= 0)
        return;
#ifdef SELECT_AVX2
    if (have_avx2())
        prefloor_avx2(h, rows, n_rows, n_latents);
    else
#endif
        batch_prefloor(h, rows, n_rows, n_latents, 0);
    for (int64_t r = 0; r < n_rows; r++)
        sae_batch_heap_offer_row(h, rows + r * n_latents, n_latents, r0 + r);
}

float sae_batch_heap_min(sae_batch_heap *h)
{
    bcompact(h, h->cap);
    float lo = h->n > 0 ? h->val[0] : 0.0f;
    for (int64_t e = 1; e < h->n; e++)
        lo = h->val[e] < lo ? h->val[e] : lo;
    return lo;
}

void sae_batch_heap_to_codes(sae_batch_heap *h, int64_t n_rows, int64_t n_latents, sae_codes *c)
{
    bcompact(h, h->cap);
    /* the buffer is in position order (appends in order, stable filters): count the rows
     * and copy */
    memset(c->row_ptr, 0, (size_t)(n_rows + 1) * sizeof *c->row_ptr);
    for (int64_t e = 0; e < h->n; e++) {
        int64_t r = h->pos[e] / n_latents;
        c->row_ptr[r + 1]++;
        c->idx[e] = (int32_t)(h->pos[e] - r * n_latents);
        c->val[e] = h->val[e];
    }
    for (int64_t r = 0; r < n_rows; r++)
        c->row_ptr[r + 1] += c->row_ptr[r];
}

/* ---- gather / transpose --------------------------------------------------------------- */

void sae_gather_rows(const float *w, int64_t d, const int32_t *idx, const float *val, int64_t cnt,
                     float *restrict out) /* out never overlaps the rows it sums */
{
    /* four rows per pass (one load and store of out for four rows); the additions keep the
     * order of one row at a time, so the bits do not depend on the grouping */
    int64_t a = 0;
    for (; a + 4 <= cnt; a += 4) {
        const float *w0 = w + (int64_t)idx[a] * d, *w1 = w + (int64_t)idx[a + 1] * d;
        const float *w2 = w + (int64_t)idx[a + 2] * d, *w3 = w + (int64_t)idx[a + 3] * d;
        float v0 = val[a], v1 = val[a + 1], v2 = val[a + 2], v3 = val[a + 3];
        for (int64_t i = 0; i < d; i++)
            out[i] = out[i] + v0 * w0[i] + v1 * w1[i] + v2 * w2[i] + v3 * w3[i];
    }
    for (; a < cnt; a++) {
        const float *wr = w + (int64_t)idx[a] * d;
        float v = val[a];
        for (int64_t i = 0; i < d; i++)
            out[i] += v * wr[i];
    }
}

void sae_codes_transpose(const int64_t *row_ptr, const int32_t *idx, int64_t n_rows,
                         int64_t n_latents, int64_t *col_ptr, int64_t *ent, int32_t *erow)
{
    memset(col_ptr, 0, (size_t)(n_latents + 1) * sizeof *col_ptr);
    int64_t nnz = row_ptr[n_rows];
    for (int64_t e = 0; e < nnz; e++)
        col_ptr[idx[e] + 1]++;
    for (int64_t j = 0; j < n_latents; j++)
        col_ptr[j + 1] += col_ptr[j];
    /* fill in row order so each column lists its rows ascending; col_ptr doubles as cursor */
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t e = row_ptr[r]; e < row_ptr[r + 1]; e++) {
            int64_t at = col_ptr[idx[e]]++;
            ent[at] = e;
            erow[at] = (int32_t)r;
        }
    }
    for (int64_t j = n_latents; j > 0; j--)
        col_ptr[j] = col_ptr[j - 1];
    col_ptr[0] = 0;
}
