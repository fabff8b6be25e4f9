/* Trainer scratch: sized once for `cap` rows so that a step never allocates. */
#include "train/trainer_internal.h"

#include "linalg/bf16.h"
#include "train/regularisers.h"
#include "train/relu_fused.h"

#include <string.h>

void sae_train_ws_free(sae_trainer *t)
{
    sae_train_ws *w = &t->ws;
    const sae_alloc *al = &t->al;
    void *bufs[] = {w->x, w->xc, w->r, w->go, w->pre, w->z, w->gz, w->gate, w->ggate, w->xaux,
                    w->gaux, w->row_loss, w->row_sp, w->row_aux, w->lsum, w->dec_norm,
                    w->colsum, w->dacc, w->dacc2, w->fired, w->dead, w->codes.row_ptr,
                    w->codes.idx, w->codes.val, w->gval, w->ent, w->col_ptr, w->erow,
                    w->heap.val, w->heap.pos, w->aux.row_ptr, w->aux.idx, w->aux.val,
                    w->aux_gval, w->aux_ent, w->aux_col_ptr, w->aux_erow, w->ga,
                    w->ortho_work, w->lowact_work, w->dvec, w->bf_rows, w->bf_enc, w->heap_hi.val,
                    w->heap_hi.pos, w->margin, w->bf_resid_rows, w->bf_resid_cols,
                    w->bf_scale_rows, w->bf_scale_cols, w->list_val, w->list_low, w->list_pos, w->fused};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        sae_free(al, bufs[i]);
    memset(w, 0, sizeof *w);
}

/* Allocation bookkeeping: every request goes through one helper that records failure. */
typedef struct ws_alloc {
    const sae_alloc *al;
    int failed;
} ws_alloc;

static void *get(ws_alloc *a, int64_t count, size_t elem)
{
    size_t bytes;
    if (count < 1)
        count = 1;
    if (!sae_mul_size((size_t)count, elem, &bytes)) {
        a->failed = 1;
        return NULL;
    }
    void *p = sae_malloc(a->al, bytes);
    if (p == NULL)
        a->failed = 1;
    return p;
}

/* Codes of `rows` rows with room for nnz entries, their gradients and column view. */
typedef struct codes_bufs {
    sae_codes *c;
    float **gval;
    int64_t **ent, **col_ptr;
    int32_t **erow;
} codes_bufs;

static void alloc_codes(ws_alloc *a, codes_bufs b, int64_t rows, int64_t nnz, int64_t l)
{
    b.c->row_ptr = get(a, rows + 1, sizeof(int64_t));
    b.c->idx = get(a, nnz, sizeof(int32_t));
    b.c->val = get(a, nnz, sizeof(float));
    b.c->cap = nnz;
    *b.gval = get(a, nnz, sizeof(float));
    *b.ent = get(a, nnz, sizeof(int64_t));
    *b.erow = get(a, nnz, sizeof(int32_t));
    *b.col_ptr = get(a, l + 1, sizeof(int64_t));
}

static codes_bufs main_codes(sae_train_ws *w)
{
    codes_bufs b = {&w->codes, &w->gval, &w->ent, &w->col_ptr, &w->erow};
    return b;
}

/* The low-precision encoder product's buffers (bf16_scores), where it pays and runs. */
static void alloc_low_precision(sae_trainer *t, ws_alloc *a, int64_t chunk)
{
    sae_train_ws *w = &t->ws;
    int64_t l = t->model->n_latents, d = t->model->d;
    /* small products: the float product is already cheap, and the wider bfloat16 margin
     * means more candidates to rescore (tiny, d 32 x 128 latents: 25 % slower) */
    int bf16_pays = d >= 64 && d * l >= (INT64_C(1) << 16);
    if (t->o.bf16 && bf16_pays && sae_bf16_available()) {
        w->bf_rows = get(a, sae_bf16_rows_words(chunk, d), 4);
        w->bf_enc = get(a, sae_bf16_cols_words(l, d), 4);
        w->bf_resid_rows = get(a, chunk, sizeof(double));
        w->bf_resid_cols = get(a, l, sizeof(double));
        w->bf_scale_rows = get(a, chunk, sizeof(float));
        w->bf_scale_cols = get(a, l, sizeof(float));
    }
}

static void alloc_sparse(sae_trainer *t, ws_alloc *a, int64_t cap, int64_t chunk)
{
    sae_train_ws *w = &t->ws;
    const sae_model *m = t->model;
    int64_t nnz = cap * m->k, l = m->n_latents, d = m->d;
    w->go = get(a, cap * m->n_widths * d, sizeof(float));
    alloc_codes(a, main_codes(w), cap, nnz, l);
    if (sae_arch_is_batch(m->arch)) {
        w->heap.val = get(a, SAE_BATCH_ROOM(nnz), sizeof(float));
        w->heap.pos = get(a, SAE_BATCH_ROOM(nnz), sizeof(int64_t));
        w->heap.cap = nnz;
        /* upper bounds (lib/train/select.c) and the bounds' margins of one block */
        int64_t hi = SAE_BATCH_HI_MULT * nnz;
        w->heap_hi.val = get(a, SAE_BATCH_ROOM(hi), sizeof(float));
        w->heap_hi.pos = get(a, SAE_BATCH_ROOM(hi), sizeof(int64_t));
        w->heap_hi.cap = hi;
        w->margin = get(a, chunk, sizeof(float));
        if (cap > chunk) { /* an eighth of a block: more goes row by row (select.c) */
            int halves = t->o.threads > 1 ? 2 : 1;
            w->list_cap = SAE_MAX(chunk * l / 8, 64 * 64);
            w->list_val = get(a, halves * w->list_cap, sizeof(float));
            w->list_low = get(a, halves * w->list_cap, sizeof(float));
            w->list_pos = get(a, halves * w->list_cap, sizeof(int64_t));
        }
    }
    alloc_low_precision(t, a, chunk);
    if (t->o.aux_coef > 0.0) {
        codes_bufs b = {&w->aux, &w->aux_gval, &w->aux_ent, &w->aux_col_ptr, &w->aux_erow};
        alloc_codes(a, b, cap, cap * t->aux_k, l);
        w->ga = get(a, cap * d, sizeof(float));
    }
}

static void alloc_dense(sae_trainer *t, ws_alloc *a, int64_t cap, int64_t chunk)
{
    sae_train_ws *w = &t->ws;
    const sae_model *m = t->model;
    int64_t l = m->n_latents, d = m->d;
    int relu_codes = m->arch == SAE_ARCH_RELU && !t->o.lowact_on;
    /* ReLU: sparse blocks keep their rows' output gradients until their latents' pass */
    w->go = get(a, (relu_codes ? cap : chunk) * d, sizeof(float));
    w->z = get(a, chunk * l, sizeof(float));
    if (m->arch != SAE_ARCH_RELU || t->o.lowact_on) /* ReLU reuses pre (dense.c) */
        w->gz = get(a, chunk * l, sizeof(float));
    if (relu_codes) { /* blocks sparse enough go sparse: room for one block's codes after
                         fewer than L pending ones (dense.c) */
        w->block_room = chunk * l / t->sparse_div + 1;
        alloc_codes(a, main_codes(w), cap, w->block_room + l, l);
        alloc_low_precision(t, a, chunk); /* and are screened (select.c) */
        if (w->bf_enc != NULL)
            w->margin = get(a, chunk, sizeof(float));
        if (l <= SAE_RELU_FUSED_MAX_L && sae_relu_fused_available(d))
            w->fused = get(a, (int64_t)sae_relu_fused_floats(d, l), sizeof(float));
    }
    if (m->arch == SAE_ARCH_GATED) {
        w->gate = get(a, chunk * l, sizeof(float));
        w->ggate = get(a, chunk * l, sizeof(float));
        w->xaux = get(a, chunk * d, sizeof(float));
        w->gaux = get(a, chunk * d, sizeof(float));
    }
}

int32_t sae_train_ws_reserve(sae_trainer *t, int64_t n)
{
    if (n <= t->ws.cap)
        return SAE_OK;
    sae_train_ws_free(t);
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t l = m->n_latents, d = m->d;
    /* the low-activation penalty averages over the rows it sees: give it the whole batch */
    int64_t chunk = t->o.chunk_rows;
    if (chunk == 0) { /* auto: a block of about 1M floats (4 MB) per n x L buffer, but at
                         least 256 rows for dense products: with fewer the BLAS repacks W
                         too often (d 768 x 16,384 latents: 64-row blocks cost 30 %); for
                         the TopK family's scores too while a block stays within 4M floats
                         (the packed encoder is read once per block: 64-row blocks made the
                         large encoder phase 15 % slower) */
        int64_t least = sae_arch_is_sparse(m->arch)
                            ? SAE_MIN(256, SAE_MAX(64, (INT64_C(1) << 22) / l))
                            : 256;
        chunk = SAE_MAX(least, SAE_MIN(1024, (INT64_C(1) << 20) / l));
    }
    chunk = t->o.lowact_on ? n : SAE_MIN(chunk, n);
    ws_alloc a = {&t->al, 0};
    /* centred rows are needed one block at a time; so are dense-path residuals */
    int64_t rows = sae_arch_is_sparse(m->arch) ? n : chunk;
    w->x = get(&a, n * d, sizeof(float));
    w->xc = get(&a, chunk * d, sizeof(float));
    if (!sae_arch_is_sparse(m->arch) || m->n_widths > 1) /* else the residual lives in go */
        w->r = get(&a, rows * d, sizeof(float));
    w->pre = get(&a, chunk * l, sizeof(float));
    w->row_loss = get(&a, n, sizeof(double));
    w->row_sp = get(&a, n, sizeof(double));
    w->row_aux = get(&a, n, sizeof(double));
    w->lsum = get(&a, l, sizeof(double));
    w->colsum = get(&a, l, sizeof(double));
    w->dec_norm = get(&a, l, sizeof(float));
    w->fired = get(&a, l, sizeof(uint8_t));
    w->dead = get(&a, l, sizeof(uint8_t));
    w->dacc = get(&a, d, sizeof(double));
    w->dacc2 = get(&a, d, sizeof(double));
    w->dvec = get(&a, d, sizeof(float));
    size_t of = sae_reg_ortho_work_floats(t->cfg, l, d);
    size_t lf = sae_reg_lowact_work_floats(t->cfg, n, l, d);
    w->ortho_work = get(&a, (int64_t)of, sizeof(float));
    w->lowact_work = get(&a, (int64_t)lf, sizeof(float));
    if (sae_arch_is_sparse(m->arch))
        alloc_sparse(t, &a, n, chunk);
    else
        alloc_dense(t, &a, n, chunk);
    if (a.failed) {
        sae_train_ws_free(t);
        return SAE_E_NOMEM;
    }
    w->cap = n;
    w->chunk = chunk;
    return SAE_OK;
}
