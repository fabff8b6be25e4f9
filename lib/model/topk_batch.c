/* Batch top-K selection (see sparse.h). */
#include "model/select_kernels.h"

/* ---- batch top-K: buffer and select, keyed by (value, batch position) ------------------ */

/* Histogram of the buffer by the top bits of the values (positive floats order like their
 * bit patterns): bin b holds values with bits >> BIN_SHIFT == b. */
#define BIN_SHIFT 19

static inline int64_t bin_of(float v) { return (int64_t)(sae_f32_bits(v) >> BIN_SHIFT); }

/* The largest float below bin b's lower edge (b >= 1): the floor once bin b is needed. */
static inline float below_bin(int64_t b) { return sae_f32_from_bits(((uint32_t)b << BIN_SHIFT) - 1u); }

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
    float edge = below_bin(fb); /* fb >= 1 */
    h->floor = edge > h->floor ? edge : h->floor;
}

/* The `need`-th largest of the low bits (u >> shift) & mask of the entries whose bits
 * agree with `hi` above bit `top`; *need becomes how many of that value are still needed. */
static uint32_t radix_level(const sae_batch_heap *h, int64_t *cnt, uint32_t hi, int top, int shift,
                            int64_t *need)
{
    uint32_t mask = (1u << (top - shift)) - 1u;
    memset(cnt, 0, (size_t)(mask + 1) * sizeof *cnt);
    for (int64_t e = 0; e < h->n; e++) {
        uint32_t u = sae_f32_bits(h->val[e]);
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
        uint32_t u = sae_f32_bits(v);
        int eq = u == cutu;
        h->val[n] = v, h->pos[n] = p;
        n += (u > cutu) | (eq & (taken < need));
        taken += eq;
    }
    h->n = n;
    float worst = sae_f32_from_bits(cutu);
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
static void offer_tail(sae_batch_heap *h, const float *x, int64_t len, int64_t base, float shift)
{
    int64_t *meta = bmeta(h), fill = SAE_BATCH_FILL(h->cap);
    for (int64_t j = 0; j < len; j += TOPK_BLOCK) {
        int64_t end = j + TOPK_BLOCK < len ? j + TOPK_BLOCK : len;
        float fl = h->floor;
        int any = 0;
        if (end - j == TOPK_BLOCK) {
            for (int i = 0; i < TOPK_BLOCK; i++) /* a count: GCC vectorises it */
                any += x[j + i] + shift > fl;
        } else {
            for (int64_t q = j; q < end; q++)
                any |= x[q] + shift > fl;
        }
        if (!any)
            continue;
        if (h->n + BATCH_STEP > fill) {
            bcompact(h, h->cap + h->cap / 2);
            fl = h->floor;
        }
        int64_t n = h->n, n0 = n;
        for (int64_t q = j; q < end; q++) {
            float v = x[q] + shift;
            h->val[n] = v, h->pos[n] = base + q;
            n += v > fl;
        }
        h->n = n;
        bcount(h, meta, n0);
    }
}

#ifdef SELECT_AVX2
/* any32 on the values plus the shift (the same float additions as the packing's). */
AVX2_FN static inline int any32_shifted(const float *x, __m256 vs, __m256 vg)
{
    __m256 a = _mm256_or_ps(
        _mm256_cmp_ps(_mm256_add_ps(_mm256_loadu_ps(x), vs), vg, _CMP_GT_OQ),
        _mm256_cmp_ps(_mm256_add_ps(_mm256_loadu_ps(x + 8), vs), vg, _CMP_GT_OQ));
    __m256 b = _mm256_or_ps(
        _mm256_cmp_ps(_mm256_add_ps(_mm256_loadu_ps(x + 16), vs), vg, _CMP_GT_OQ),
        _mm256_cmp_ps(_mm256_add_ps(_mm256_loadu_ps(x + 24), vs), vg, _CMP_GT_OQ));
    return _mm256_movemask_ps(_mm256_or_ps(a, b));
}

/* Appends the lanes of v that are > g at val/pos + n, with positions base + q.. (and with
 * low != NULL the same lanes of lv at low + n); returns the new count (writes up to 8
 * entries past it). */
AVX2_FN static inline __attribute__((always_inline)) int64_t
pack8_low(__m256 v, __m256 lv, __m256 vg, int32_t q, __m256i base, float *val, float *low,
          int64_t *pos, int64_t n)
{
    __m256i iv = _mm256_add_epi32(_mm256_set1_epi32(q), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    uint32_t m = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(v, vg, _CMP_GT_OQ));
    for (int half = 0; half < 2; half++) {
        uint32_t mh = (m >> (4 * half)) & 15u;
        __m128i p = _mm_loadu_si128((const __m128i *)pack4[mh]);
        __m128 vh = half ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v);
        __m128i ih = half ? _mm256_extracti128_si256(iv, 1) : _mm256_castsi256_si128(iv);
        __m128i pi = _mm_castps_si128(_mm_permutevar_ps(_mm_castsi128_ps(ih), p));
        _mm_storeu_ps(val + n, _mm_permutevar_ps(vh, p));
        if (low != NULL) {
            __m128 lh = half ? _mm256_extractf128_ps(lv, 1) : _mm256_castps256_ps128(lv);
            _mm_storeu_ps(low + n, _mm_permutevar_ps(lh, p));
        }
        _mm256_storeu_si256((__m256i *)(pos + n),
                            _mm256_add_epi64(base, _mm256_cvtepi32_epi64(pi)));
        n += __builtin_popcount(mh);
    }
    return n;
}

AVX2_FN static inline int64_t pack8_pos(__m256 v, __m256 vg, int32_t q, __m256i base, float *val,
                                        int64_t *pos, int64_t n)
{
    return pack8_low(v, v, vg, q, base, val, NULL, pos, n);
}

/* Offering row + shift with 32-value screens; the passing lanes of a block are packed into
 * the buffer 8 at a time. */
AVX2_FN static void offer_row_avx2(sae_batch_heap *h, const float *row, int64_t l, int64_t r,
                                   float shift)
{
    int64_t *meta = bmeta(h), base = r * l, fill = SAE_BATCH_FILL(h->cap), j = 0;
    __m256 vs = _mm256_set1_ps(shift);
    for (; j + 32 <= l; j += 32) {
        __m256 vg = _mm256_set1_ps(h->floor);
        if (!any32_shifted(row + j, vs, vg))
            continue;
        if (h->n + BATCH_STEP > fill) {
            bcompact(h, h->cap + h->cap / 2);
            vg = _mm256_set1_ps(h->floor);
        }
        int64_t n0 = h->n, n = n0;
        __m256i b = _mm256_set1_epi64x(base);
        for (int64_t q = j; q < j + 32; q += 8)
            n = pack8_pos(_mm256_add_ps(_mm256_loadu_ps(row + q), vs), vg, (int32_t)q, b, h->val,
                          h->pos, n);
        h->n = n;
        bcount(h, meta, n0);
    }
    offer_tail(h, row + j, l - j, base + j, shift);
}
#endif

static void offer_row_shifted(sae_batch_heap *h, const float *row, int64_t n_latents, int64_t r,
                              float shift)
{
    /* rows arrive in order, so positions only grow: a newcomer equal to the floor (the
     * worst kept value after an exact reduction) loses the tie */
    if (h->cap == 0)
        return;
#ifdef SELECT_AVX2
    if (have_avx2()) {
        offer_row_avx2(h, row, n_latents, r, shift);
        return;
    }
#endif
    offer_tail(h, row, n_latents, r * n_latents, shift);
}

void sae_batch_heap_offer_row(sae_batch_heap *h, const float *row, int64_t n_latents, int64_t r)
{
    offer_row_shifted(h, row, n_latents, r, 0.0f);
}

/* The maxima that count nowhere go to bins below PREFLOOR_LOW (spread over several, so
 * that their increments do not form one chain), which the floor never uses: it stays below
 * 2^-127 (a subnormal) when it would have to rise to one of them. */
#define PREFLOOR_LOW 8

/* Before rows r0.. are offered: the column maxima of each row (nb columns as in
 * sae_topk_row) are distinct values of the batch, so if the buffer and the maxima together
 * hold K values in bins >= b, no value below bin b can be kept: the floor rises to just
 * under bin b at once instead of following the buffer up from 0. */
SELECT_INLINE void batch_prefloor(sae_batch_heap *h, const float *rows, int64_t n_rows, int64_t l,
                                  const float *shift, float sign, int wide)
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
    int32_t bins[TOPK_COLS_MAX];
    memset(mh, 0, SAE_BATCH_BINS * sizeof *mh);
    for (int64_t r = 0; r < n_rows; r++) {
        col_max_w(rows + r * l, l, NULL, nb, m, wide);
        float sh = shift != NULL ? sign * shift[r] : 0.0f;
        for (int64_t b = 0; b < nb; b++) { /* m[b] = 0: maybe no such value */
            float v = m[b] + sh;
            int ok = (m[b] > 0.0f) & (v > 0.0f); /* about half: no branch (they mispredict) */
            bins[b] = ok ? (int32_t)(sae_f32_bits(v) >> BIN_SHIFT) : (int32_t)(b % PREFLOOR_LOW);
        }
        for (int64_t b = 0; b < nb; b++)
            mh[bins[b]]++;
    }
    int64_t total = 0, b = SAE_BATCH_BINS;
    while (b > PREFLOOR_LOW && total < h->cap) {
        b--;
        total += hist[b] + mh[b];
    }
    if (total < h->cap)
        return;
    float edge = below_bin(b);
    h->floor = edge > h->floor ? edge : h->floor;
}

#ifdef SELECT_AVX2
AVX2_FN static void prefloor_avx2(sae_batch_heap *h, const float *rows, int64_t n_rows, int64_t l,
                                  const float *shift, float sign)
{
    batch_prefloor(h, rows, n_rows, l, shift, sign, 1);
}
#endif

void sae_batch_heap_raise_floor(sae_batch_heap *h, const float *rows, int64_t n_rows,
                                int64_t n_latents, const float *shift, float sign)
{
    if (h->cap == 0 || n_rows <= 0)
        return;
#ifdef SELECT_AVX2
    if (have_avx2())
        prefloor_avx2(h, rows, n_rows, n_latents, shift, sign);
    else
#endif
        batch_prefloor(h, rows, n_rows, n_latents, shift, sign, 0);
}

void sae_batch_heap_offer_rows_shifted(sae_batch_heap *h, const float *rows, int64_t n_rows,
                                       int64_t n_latents, int64_t r0, const float *shift,
                                       float sign)
{
    if (h->cap == 0 || n_rows <= 0)
        return;
    sae_batch_heap_raise_floor(h, rows, n_rows, n_latents, shift, sign);
    for (int64_t r = 0; r < n_rows; r++)
        offer_row_shifted(h, rows + r * n_latents, n_latents, r0 + r,
                          shift != NULL ? sign * shift[r] : 0.0f);
}

void sae_batch_heap_offer_rows(sae_batch_heap *h, const float *rows, int64_t n_rows,
                               int64_t n_latents, int64_t r0)
{
    sae_batch_heap_offer_rows_shifted(h, rows, n_rows, n_latents, r0, NULL, 1.0f);
}

/* Offers the n <= BATCH_STEP values v at the positions base + pos[..]. */
static inline void offer_group(sae_batch_heap *h, int64_t *meta, const float *v,
                               const int64_t *pos, int64_t n, int64_t base)
{
    if (h->n + BATCH_STEP > SAE_BATCH_FILL(h->cap))
        bcompact(h, h->cap + h->cap / 2);
    int64_t m = h->n, m0 = m;
    float fl = h->floor;
    for (int64_t e = 0; e < n; e++) {
        h->val[m] = v[e], h->pos[m] = base + pos[e];
        m += v[e] > fl;
    }
    h->n = m;
    bcount(h, meta, m0);
}

void sae_batch_heap_offer_at(sae_batch_heap *h, const float *rows, int64_t n_latents,
                             const int64_t *pos, int64_t n, const float *shift, float sign,
                             int64_t base)
{
    if (h->cap == 0)
        return;
    int64_t *meta = bmeta(h), r = 0, next = n_latents;
    float v[BATCH_STEP];
    for (int64_t e0 = 0; e0 < n; e0 += BATCH_STEP) {
        int64_t g = SAE_MIN(BATCH_STEP, n - e0);
        for (int64_t e = 0; e < g; e++) {
            int64_t p = pos[e0 + e];
            if (p >= next) { /* the row of p, without a division (positions only grow) */
                r = p / n_latents;
                next = (r + 1) * n_latents;
            }
            v[e] = rows[p] + (shift != NULL ? sign * shift[r] : 0.0f);
        }
        offer_group(h, meta, v, pos + e0, g, base);
    }
}

void sae_batch_heap_offer_list(sae_batch_heap *h, const float *val, const int64_t *pos, int64_t n,
                               int64_t base)
{
    if (h->cap == 0)
        return;
    int64_t *meta = bmeta(h);
    for (int64_t e0 = 0; e0 < n; e0 += BATCH_STEP)
        offer_group(h, meta, val + e0, pos + e0, SAE_MIN(BATCH_STEP, n - e0), base);
}

/* Whether entry (v, p) ranks below (w, q): a smaller value, or an equal one later. */
static inline int worse(float v, int64_t p, float w, int64_t q)
{
    return v < w || (v == w && p > q);
}

#define DROP_MAX 64 /* take_best drops up to this many entries with a sorted list */

/* Drops the r <= DROP_MAX worst of the buffer's entries, keeping the order of the rest. */
static void drop_worst(sae_batch_heap *h, int64_t r)
{
    float wv[DROP_MAX]; /* the worst so far, best first: (wv[0], wp[0]) is the one to beat */
    int64_t wp[DROP_MAX], c = 0;
    for (int64_t e = 0; e < h->n; e++) {
        float v = h->val[e];
        int64_t p = h->pos[e], a;
        if (c == r && (v > wv[0] || !worse(v, p, wv[0], wp[0])))
            continue;
        if (c == r) { /* the best of the worst set leaves it */
            c--;
            memmove(wv, wv + 1, (size_t)c * sizeof *wv);
            memmove(wp, wp + 1, (size_t)c * sizeof *wp);
        }
        for (a = c; a > 0 && worse(wv[a - 1], wp[a - 1], v, p); a--)
            wv[a] = wv[a - 1], wp[a] = wp[a - 1];
        wv[a] = v, wp[a] = p, c++;
    }
    float cv = wv[0];
    int64_t cp = wp[0], n = 0;
    for (int64_t e = 0; e < h->n; e++) { /* those above the cut entry (cv, cp) */
        float v = h->val[e];
        int64_t p = h->pos[e];
        h->val[n] = v, h->pos[n] = p;
        n += (v > cv) | ((v == cv) & (p < cp));
    }
    h->n = n;
}

void sae_batch_heap_take_best(sae_batch_heap *h, const float *val, const int64_t *pos, int64_t n)
{
    sae_batch_heap_reset(h, h->cap);
    if (n <= SAE_BATCH_FILL(h->cap)) { /* the positive ones into the buffer */
        int64_t np = 0;
        for (int64_t e = 0; e < n; e++) {
            h->val[np] = val[e], h->pos[np] = pos[e];
            np += val[e] > 0.0f;
        }
        h->n = np;
        if (np <= h->cap)
            return;
        if (np - h->cap <= DROP_MAX) {
            drop_worst(h, np - h->cap);
            return;
        }
        sae_batch_heap_reset(h, h->cap);
    }
    /* as one row of values: buffer positions follow the list, then become pos[] */
    sae_batch_heap_offer_row(h, val, n, 0);
    sae_batch_heap_min(h);
    for (int64_t e = 0; e < h->n; e++)
        h->pos[e] = pos[h->pos[e]];
}

/* ---- collecting the entries above a floor ----------------------------------------------- */

/* Appends the entries of row r's x[j0..l) (plus s) that are > fl (low != NULL: and
 * x[j] + -s); -1 past cap. */
static int64_t collect_tail(const float *x, int64_t j0, int64_t l, int64_t r, float s, float fl,
                            float *val, float *low, int64_t *pos, int64_t c, int64_t cap)
{
    for (int64_t j = j0; j < l; j++) {
        float v = x[j] + s;
        if (!(v > fl))
            continue;
        if (c == cap)
            return -1;
        if (low != NULL)
            low[c] = x[j] + -s;
        val[c] = v, pos[c++] = r * l + j;
    }
    return c;
}

#ifdef SELECT_AVX2
/* Eight values of x at q into the buffers (with low: and their lower bounds x + -s). */
AVX2_FN static inline __attribute__((always_inline)) int64_t
collect8(const float *x, int64_t q, __m256 vs, __m256 vg, __m256i b, float *val, float *low,
         int64_t *pos, int64_t c)
{
    __m256 xv = _mm256_loadu_ps(x + q);
    __m256 lv = low != NULL ? _mm256_add_ps(xv, _mm256_xor_ps(vs, _mm256_set1_ps(-0.0f))) : xv;
    return pack8_low(_mm256_add_ps(xv, vs), lv, vg, (int32_t)q, b, val, low, pos, c);
}

/* Eight lanes at a time, the passing ones left-packed with a permutation (about half the
 * blocks of a batch cut have one, too irregular for a branch); up to 8 entries are written
 * past the count, so blocks near cap take the checked tail instead. With `sparse`, groups
 * of 32 without a passing value are skipped first. */
AVX2_FN static inline __attribute__((always_inline)) int64_t
collect_rows(const float *rows, int64_t n_rows, int64_t l, const float *shift, float fl,
             float *val, float *low, int64_t *pos, int64_t cap, int sparse)
{
    __m256 vg = _mm256_set1_ps(fl);
    int64_t c = 0;
    for (int64_t r = 0; r < n_rows && c >= 0; r++) {
        const float *x = rows + r * l;
        float s = shift != NULL ? shift[r] : 0.0f;
        __m256 vs = _mm256_set1_ps(s);
        __m256i b = _mm256_set1_epi64x(r * l);
        int64_t j = 0;
        for (; sparse && j + 32 <= l && c + 32 <= cap; j += 32) {
            if (!any32_shifted(x + j, vs, vg))
                continue;
            for (int64_t q = j; q < j + 32; q += 8)
                c = collect8(x, q, vs, vg, b, val, low, pos, c);
        }
        for (; j + 8 <= l && c + 8 <= cap; j += 8)
            c = collect8(x, j, vs, vg, b, val, low, pos, c);
        c = collect_tail(x, j, l, r, s, fl, val, low, pos, c, cap);
    }
    return c;
}

/* collect_rows with and without the lower bounds (each a branch-free loop). */
AVX2_FN static int64_t collect_avx2(const float *rows, int64_t n_rows, int64_t l,
                                    const float *shift, float fl, float *val, float *low,
                                    int64_t *pos, int64_t cap, int sparse)
{
    if (low != NULL)
        return collect_rows(rows, n_rows, l, shift, fl, val, low, pos, cap, sparse);
    return collect_rows(rows, n_rows, l, shift, fl, val, NULL, pos, cap, sparse);
}
#endif

int64_t sae_batch_collect_above(const float *rows, int64_t n_rows, int64_t n_latents,
                                const float *shift, float floor, float *val, float *low,
                                int64_t *pos, int64_t cap, int sparse)
{
#ifdef SELECT_AVX2
    if (have_avx2())
        return collect_avx2(rows, n_rows, n_latents, shift, floor, val, low, pos, cap, sparse);
#endif
    (void)sparse;
    int64_t c = 0;
    for (int64_t r = 0; r < n_rows && c >= 0; r++)
        c = collect_tail(rows + r * n_latents, 0, n_latents, r,
                         shift != NULL ? shift[r] : 0.0f, floor, val, low, pos, c, cap);
    return c;
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
