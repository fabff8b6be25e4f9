/* Sparse activation kernels (see sparse.h). */
#include "model/sparse.h"

#include <string.h>

/* ---- per-row top-k: a min-heap of the k best seen so far ---------------------------- */

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

int64_t sae_topk_row(const float *row, int64_t n_latents, int64_t k, const uint8_t *allow,
                     int32_t *idx, float *val)
{
    /* Latents arrive in ascending index order, so a newcomer equal to the heap's worst
     * entry loses the tie: only strictly larger values enter once the heap is full. Blocks
     * of TOPK_BLOCK values are first tested against `floor` with a branch-free (vectorisable)
     * reduction, so most of a row costs one comparison per value. */
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

/* ---- batch top-K: buffer and select, keyed by (value, batch position) ------------------ */

/* a comes before b: larger value, then smaller position (keys are distinct). */
static inline int bbetter(float va, int64_t pa, float vb, int64_t pb)
{
    return va > vb || (va == vb && pa < pb);
}

static void bswap(sae_batch_heap *h, int64_t a, int64_t b)
{
    float tv = h->val[a];
    int64_t tp = h->pos[a];
    h->val[a] = h->val[b], h->pos[a] = h->pos[b];
    h->val[b] = tv, h->pos[b] = tp;
}

/* Moves the entries of [lo, hi] (inclusive) so that those before `at` are all better than
 * those from `at` on. Quickselect with a median-of-three pivot, deterministic. */
static void bselect(sae_batch_heap *h, int64_t lo, int64_t hi, int64_t at)
{
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        /* median of three into mid */
        if (bbetter(h->val[mid], h->pos[mid], h->val[lo], h->pos[lo]))
            bswap(h, mid, lo);
        if (bbetter(h->val[hi], h->pos[hi], h->val[lo], h->pos[lo]))
            bswap(h, hi, lo);
        if (bbetter(h->val[hi], h->pos[hi], h->val[mid], h->pos[mid]))
            bswap(h, hi, mid);
        float pv = h->val[mid];
        int64_t pp = h->pos[mid];
        int64_t i = lo, j = hi;
        while (i <= j) { /* Hoare partition around the pivot key */
            while (bbetter(h->val[i], h->pos[i], pv, pp))
                i++;
            while (bbetter(pv, pp, h->val[j], h->pos[j]))
                j--;
            if (i <= j)
                bswap(h, i++, j--);
        }
        if (at <= j)
            hi = j;
        else if (at >= i)
            lo = i;
        else
            return;
    }
}

/* Keeps the K best entries of the buffer and raises the floor to the worst of them. */
static void bcompact(sae_batch_heap *h)
{
    if (h->n <= h->cap)
        return;
    bselect(h, 0, h->n - 1, h->cap);
    h->n = h->cap;
    float worst = h->val[0];
    for (int64_t e = 1; e < h->n; e++)
        worst = h->val[e] < worst ? h->val[e] : worst;
    h->floor = worst;
}

void sae_batch_heap_reset(sae_batch_heap *h, int64_t cap)
{
    h->cap = cap;
    h->n = 0;
    h->floor = 0.0f;
}

void sae_batch_heap_offer_row(sae_batch_heap *h, const float *row, int64_t n_latents, int64_t r)
{
    /* rows arrive in order, so positions only grow: once the buffer has been reduced, a
     * newcomer must beat the worst kept value strictly; blocks are screened as in
     * sae_topk_row */
    if (h->cap == 0)
        return;
    int64_t base = r * n_latents, room = SAE_BATCH_ROOM(h->cap);
    for (int64_t j = 0; j < n_latents; j += TOPK_BLOCK) {
        int64_t end = j + TOPK_BLOCK < n_latents ? j + TOPK_BLOCK : n_latents;
        int any = 0;
        for (int64_t q = j; q < end; q++)
            any |= row[q] > h->floor;
        if (!any)
            continue;
        for (int64_t q = j; q < end; q++)
            if (row[q] > h->floor) {
                h->val[h->n] = row[q], h->pos[h->n] = base + q;
                if (++h->n == room)
                    bcompact(h);
            }
    }
}

float sae_batch_heap_min(sae_batch_heap *h)
{
    bcompact(h);
    float lo = h->n > 0 ? h->val[0] : 0.0f;
    for (int64_t e = 1; e < h->n; e++)
        lo = h->val[e] < lo ? h->val[e] : lo;
    return lo;
}

void sae_batch_heap_to_codes(sae_batch_heap *h, int64_t n_rows, int64_t n_latents, sae_codes *c)
{
    bcompact(h);
    /* counting sort by row, then by latent inside a row via the position order */
    memset(c->row_ptr, 0, (size_t)(n_rows + 1) * sizeof *c->row_ptr);
    for (int64_t e = 0; e < h->n; e++)
        c->row_ptr[h->pos[e] / n_latents + 1]++;
    for (int64_t r = 0; r < n_rows; r++)
        c->row_ptr[r + 1] += c->row_ptr[r];
    /* place, then sort each row by index (rows are short) */
    int64_t *fill = c->row_ptr; /* reuse: fill[r] advances, restored after */
    for (int64_t e = 0; e < h->n; e++) {
        int64_t r = h->pos[e] / n_latents;
        int64_t at = fill[r]++;
        c->idx[at] = (int32_t)(h->pos[e] - r * n_latents);
        c->val[at] = h->val[e];
    }
    for (int64_t r = n_rows; r > 0; r--)
        fill[r] = fill[r - 1];
    fill[0] = 0;
    for (int64_t r = 0; r < n_rows; r++)
        sort_by_index(c->idx + c->row_ptr[r], c->val + c->row_ptr[r],
                      c->row_ptr[r + 1] - c->row_ptr[r]);
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
