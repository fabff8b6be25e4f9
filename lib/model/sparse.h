/* Sparse activation kernels: per-row top-k, streaming batch top-k, (index, value) codes in
 * compressed sparse rows, and the gather/scatter products that let TopK-family models
 * touch only the active latents (Gao et al. 2024; EleutherAI sparsify's sparse decoder). */
#ifndef SAE_LIB_MODEL_SPARSE_H
#define SAE_LIB_MODEL_SPARSE_H

#include <stdint.h>

/* Compressed sparse rows: row r's entries are [row_ptr[r], row_ptr[r+1]), indices ascending. */
typedef struct sae_codes {
    int64_t *row_ptr; /* rows + 1 */
    int32_t *idx;
    float *val;
    int64_t cap; /* capacity of idx/val */
} sae_codes;

/* The up to k largest strictly positive values of row[0..L) (ties: lower index wins),
 * restricted to latents with allow[j] != 0 when allow is not NULL. Writes them sorted by
 * index to idx/val and returns how many (<= k). */
int64_t sae_topk_row(const float *row, int64_t n_latents, int64_t k, const uint8_t *allow,
                     int32_t *idx, float *val);

/* Streaming top-K over a whole batch (BatchTopK): positions are row * n_latents + latent;
 * order is value descending, then position ascending. Only positive values enter.
 * Candidates above a floor are appended to a buffer of SAE_BATCH_FILL(K) entries. A
 * histogram of the buffered values by their top bits raises the floor as entries arrive
 * (to the lower edge of the highest bin with K entries at or above it); when the buffer
 * fills, the entries below that bin are dropped, and when too many remain the K best are
 * kept exactly (two finer histogram levels inside that bin find the cut, ties at the cut
 * go by position). Every step is a stable pass, so the buffer stays in position order.
 * val and pos must hold SAE_BATCH_ROOM(K) entries: pos's last SAE_BATCH_META hold the
 * histograms (val's are unused). */
#define SAE_BATCH_BINS 4096
#define SAE_BATCH_META (2 + 2 * SAE_BATCH_BINS)
#define SAE_BATCH_FILL(cap) (2 * (cap) + 64)
#define SAE_BATCH_ROOM(cap) (SAE_BATCH_FILL(cap) + SAE_BATCH_META)
typedef struct sae_batch_heap {
    int64_t cap, n; /* K kept at the end; entries in the buffer */
    float *val;     /* SAE_BATCH_ROOM(cap) entries each */
    int64_t *pos;
    float floor;    /* values <= floor can no longer enter */
} sae_batch_heap;

void sae_batch_heap_reset(sae_batch_heap *h, int64_t cap);
/* Offer a row of pre-activations (row index r of the batch). Rows arrive in order. */
void sae_batch_heap_offer_row(sae_batch_heap *h, const float *row, int64_t n_latents, int64_t r);
/* Offer rows r0 .. r0 + n_rows - 1, row i at rows + i * n_latents: the same as offering
 * them one by one, but the floor is first raised from the column maxima of these rows. */
void sae_batch_heap_offer_rows(sae_batch_heap *h, const float *rows, int64_t n_rows,
                               int64_t n_latents, int64_t r0);
/* The same for the values fl(rows[i][j] + sign * shift[i]) (sign +1 or -1: one float
 * addition each; shift NULL: 0), without writing them anywhere first. */
void sae_batch_heap_offer_rows_shifted(sae_batch_heap *h, const float *rows, int64_t n_rows,
                                       int64_t n_latents, int64_t r0, const float *shift,
                                       float sign);
/* Raise the floor from the column maxima of these rows (values as in
 * sae_batch_heap_offer_rows_shifted), as those offers do first: every value at or below it
 * is beaten by K others of these rows and the buffer. */
void sae_batch_heap_raise_floor(sae_batch_heap *h, const float *rows, int64_t n_rows,
                                int64_t n_latents, const float *shift, float sign);
/* Offer the values fl(rows[p] + sign * shift[p / n_latents]) at the batch positions
 * base + p, for p = pos[0..n) (increasing, after those offered before); rows are row-major. */
void sae_batch_heap_offer_at(sae_batch_heap *h, const float *rows, int64_t n_latents,
                             const int64_t *pos, int64_t n, const float *shift, float sign,
                             int64_t base);
/* Offer the values val[0..n) at the batch positions base + pos[e] (increasing, after those
 * offered before). */
void sae_batch_heap_offer_list(sae_batch_heap *h, const float *val, const int64_t *pos, int64_t n,
                               int64_t base);
/* The entries with fl(rows[r][j] + shift[r]) > floor (shift NULL: 0), in position order:
 * those values into val, r * n_latents + j into pos, and with low != NULL fl(rows[r][j] +
 * -shift[r]) into low (the lower bound as sae_batch_heap_offer_at forms it with sign -1).
 * Returns their count, or -1 when more than cap pass (the buffers then hold cap entries).
 * `sparse` (a hint, same result): few values pass, so groups of them are screened before
 * any is written. */
int64_t sae_batch_collect_above(const float *rows, int64_t n_rows, int64_t n_latents,
                                const float *shift, float floor, float *val, float *low,
                                int64_t *pos, int64_t cap, int sparse);
/* The heap (emptied first) becomes the K best positive values of val[0..n) at the batch
 * positions pos (increasing), exactly as offering them would leave it reduced. */
void sae_batch_heap_take_best(sae_batch_heap *h, const float *val, const int64_t *pos, int64_t n);
/* Smallest kept value (0 when empty); reduces the buffer to the K best first. */
float sae_batch_heap_min(sae_batch_heap *h);
/* Turn the kept entries into CSR codes for rows [0, n_rows) (reduces the buffer first). */
void sae_batch_heap_to_codes(sae_batch_heap *h, int64_t n_rows, int64_t n_latents, sae_codes *c);

/* out[0..d) += sum_a val[a] * w[idx[a] * d + .] for the entries of one row. */
void sae_gather_rows(const float *w, int64_t d, const int32_t *idx, const float *val, int64_t cnt,
                     float *out);

/* Column view of CSR codes: col_ptr (n_latents + 1) and, per latent in row order, the
 * entry numbers into the CSR arrays (ent) and their rows (erow), nnz entries each. */
void sae_codes_transpose(const int64_t *row_ptr, const int32_t *idx, int64_t n_rows,
                         int64_t n_latents, int64_t *col_ptr, int64_t *ent, int32_t *erow);

#endif
