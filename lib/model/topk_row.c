/* Per-row top-k selection (see sparse.h). */
#include "model/select_kernels.h"

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
    if (f > 0.0f)
        g = sae_f32_from_bits(sae_f32_bits(f) - 1u);
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
