/* The trainer handle's layout, shared with lib/io (checkpoints resume bit-exactly: save
 * the model's params, adam_m, adam_v, step, sample_pos, since_fired, b_dec_done and the
 * model's batch threshold; everything else is derived or scratch). Not installed. */
#ifndef SAE_LIB_TRAIN_TRAINER_INTERNAL_H
#define SAE_LIB_TRAIN_TRAINER_INTERNAL_H

#include <stdint.h>

#include "core/core.h"
#include "model/model_internal.h"
#include "model/sparse.h"

#include <sae/train.h>

/* A ReLU block whose codes have at most 1/sparse_div non-zeros (default below) is decoded
 * and differentiated on (index, value) codes instead of with three more dense products
 * (medium, one thread: break-even near a quarter; at 8-21 % the codes took 197 ms of a
 * step's decode and backward against 321 ms for the products). */
#define SAE_SPARSE_BLOCK_DIV 4
/* The BatchTopK upper-bound heap keeps this many times K entries: enough for the
 * candidates within the bounds' margin of the cut (lib/train/select.c). */
#define SAE_BATCH_HI_MULT 16

/* Options read once from the configuration at creation. */
typedef struct sae_train_opts {
    double lr, lr_end, l1, beta1, beta2, eps, grad_clip, aux_coef, bandwidth, thr_lr;
    int64_t batch, threads, l1_warmup, lr_warmup, lr_decay_steps, aux_k, dead_steps,
        resample_every, chunk_rows, thread_min_work;
    uint64_t first_sample, seed;
    int32_t lr_schedule, renorm, l1_dec_norm, b_dec_init;
    int32_t ortho_on, lowact_on, bf16;
} sae_train_opts;

/* Loss parts and counters of the last step (SAE_STAT_*). */
/* Phases of a step timed for sae_trainer_stat (SAE_STAT_TIME_* in this order). */
enum { SAE_PHASE_GENERATE, SAE_PHASE_ENCODE, SAE_PHASE_ACTIVATE, SAE_PHASE_DECODE,
       SAE_PHASE_BACKWARD, SAE_PHASE_OPTIMISE, SAE_PHASE_CONSTRAIN, SAE_N_PHASES };

typedef struct sae_train_stats {
    double loss, mse, sparsity, aux, reg, l0, lr, coeff, grad_norm;
    int64_t dead;
} sae_train_stats;

/* BatchTopK family: one block's list (lib/train/select.c), made by the threads side by
 * side: share p holds got[p] entries of the block's rows from nc * p / parts on, positions
 * from that row. */
#define SAE_LIST_PARTS 64
typedef struct sae_block_list {
    int64_t parts, share, r0, nc; /* shares, entries each, the block's first row and rows */
    int64_t got[SAE_LIST_PARTS];
} sae_block_list;

/* Scratch preallocated for `cap` rows; a step never allocates once it fits. */
typedef struct sae_train_ws {
    int64_t cap;       /* rows */
    int64_t chunk;     /* rows per dense block */
    float *x, *xc, *r; /* batch (cap x d); centred rows of one block (chunk x d); residuals
                          xhat - x: cap x d on the sparse path (only for Matryoshka: one group
                          keeps (2/n) r in go), chunk x d on the dense path */
    float *go;         /* sparse: cap x n_widths x d (dLoss/dxhat of each prefix, suffix-summed);
                          dense: chunk x d */
    float *pre, *z, *gz;   /* chunk x L: pre-activations (Gated: raw scores), codes, dLoss/dz */
    float *gate, *ggate;   /* Gated, chunk x L: ReLU(pi_gate) and dLoss/dpi_gate */
    float *xaux, *gaux;    /* Gated, chunk x d: gate-path reconstruction and its gradient */
    double *row_loss;      /* cap: reconstruction error of each row (resampling weights) */
    double *row_sp, *row_aux; /* cap: sparsity penalty and auxiliary loss of each row */
    double *lsum;          /* L: per latent sum of its activation (decoder-norm L1 gradient) */
    float *dec_norm;       /* L: decoder row norms at the start of the step */
    double *colsum;        /* L: sum over rows of dLoss/d(pre-activation), for the pre-bias */
    double *dacc, *dacc2;  /* d: double accumulators (b_dec gradient, means, medians) */
    double batch_min;      /* smallest kept activation of the last BatchTopK selection */
    uint8_t *fired, *dead; /* L */
    sae_codes codes;       /* cap * k main codes (sparse path); ReLU: codes of a sparse block */
    float *gval;           /* cap * k: dLoss/dz of each code */
    int64_t *ent, *col_ptr; /* column view of codes */
    int32_t *erow;
    sae_batch_heap heap;   /* cap * k (BatchTopK selection) */
    sae_codes aux;         /* cap * aux_k AuxK codes */
    float *aux_gval;
    int64_t *aux_ent, *aux_col_ptr;
    int32_t *aux_erow;
    float *ga;             /* cap x d: dLoss/d(aux reconstruction) */
    float *ortho_work, *lowact_work;
    float *dvec;           /* d */
    uint32_t *bf_rows, *bf_enc; /* bf16_scores where a kernel runs (lib/linalg/bf16.h):
                                   packed centred rows of one block and encoder rows */
    double *bf_resid_rows, *bf_resid_cols; /* and their rounding residuals (chunk, L) */
    float *bf_scale_rows, *bf_scale_cols;  /* and their int16 scales (chunk, L) */
    sae_batch_heap heap_hi; /* BatchTopK family: upper bounds, SAE_BATCH_HI_MULT x cap * k */
    float *margin;          /* BatchTopK family, chunk: the bounds' margin c per row */
    float *list_val, *list_low;    /* BatchTopK family, several blocks: the entries of a */
    int64_t *list_pos, list_cap;   /* block that may enter a heap (select.c): upper and
                                      lower bounds, positions, list_cap, */
    sae_block_list lists[2];       /* twice with threads, and the shares in each half */
    int up_pending, up_half;       /* a listed block whose upper side waits (its half) */
    float up_floor;                /* and the lower heap's floor after it */
    float floor_hint;              /* BatchTopK family: the lower heap's first floor, from */
    int64_t hint_misses;           /* the cut of the step before (select.c); selections run
                                      again since it was above the cut */
    int64_t block_room;            /* ReLU: codes of one sparse block (chunk x L / sparse_div
                                      + 1); codes.cap is that + L */
    int64_t pend_row0, pend_rows, pend_nnz; /* ReLU: sparse blocks whose latent-wise gradients
                                               wait in codes, go (rows from pend_row0) */
    int64_t xc_row0;               /* ReLU: the first row of the block centred in xc */
    double screen_scales[3];       /* ReLU screened blocks: the encoder's scales this step */
    int screen_ready;              /* ... computed (and the encoder packed) this step */
    int screen_next;               /* screen the next ReLU block: the last one was sparse */
    float *fused;                  /* ReLU at toy widths: the fused blocks' scratch */
    int fused_ready;               /* ... packed with this step's weights */
} sae_train_ws;

struct sae_trainer {
    sae_alloc al;
    sae_err err;
    sae_config *cfg; /* private copy */
    sae_model *model; /* reference held */
    sae_train_opts o;

    /* optimiser state, same layout as model->params */
    float *adam_m, *adam_v, *grad;
    int64_t step;         /* optimiser steps taken */
    uint64_t sample_pos;  /* next toy sample index */
    int64_t *since_fired; /* n_latents: steps since each latent last fired */
    int32_t b_dec_done;   /* b_dec_init applied */
    int32_t aux_k;        /* resolved AuxK size */
    int64_t sparse_div;   /* ReLU sparse blocks: density <= 1/sparse_div (tests set 1) */
    int32_t step_threads; /* threads of the step under way (sae_train_set_rows) */

    sae_train_stats last;
    double phase_s[SAE_N_PHASES]; /* seconds spent in each phase since creation */
    sae_log_fn log;
    sae_progress_fn progress;
    void *user;

    sae_train_ws ws;
};

/* Monotonic wall-clock seconds (lib/train/clock.c). */
double sae_train_now(void);
/* Charges the time since *since to phase p and restarts the clock there: a few tens of
 * nanoseconds, a handful of times per step. */
static inline void sae_train_tick(sae_trainer *t, int p, double *since)
{
    double now = sae_train_now();
    t->phase_s[p] += now - *since;
    *since = now;
}

/* ---- internal entry points (lib/train) -------------------------------------------- */
/* Grow the scratch to hold n rows (allocates only when n > cap). */
int32_t sae_train_ws_reserve(sae_trainer *t, int64_t n);
void sae_train_ws_free(sae_trainer *t);
/* Loss and raw gradient (t->grad) of the current parameters on ws.x[0..n); no update.
 * Fills t->last loss parts, ws.fired, the sparse codes. */
int32_t sae_train_loss_grad(sae_trainer *t, int64_t n);
int32_t sae_train_dense_loss_grad(sae_trainer *t, int64_t n);
int32_t sae_train_sparse_loss_grad(sae_trainer *t, int64_t n);
/* TopK family: the encoder product and the exact codes of ws.x[0..n) (ws.codes, and the
 * AuxK codes ws.aux when use_aux; ws.batch_min). lib/train/select.c. */
int32_t sae_train_select_codes(sae_trainer *t, int64_t n, int use_aux);
/* ReLU block of nc centred rows (ws.xc) that is expected to be sparse: its codes into c
 * (rows from 0) from low-precision scores, recomputing exactly only the latents whose bound
 * reaches above 0; their L0 and weights-times-codes into ws.row_loss / ws.row_sp from r0.
 * Returns 0 when the candidates would overflow c->cap (then no codes; ws.pre is
 * clobbered). Needs ws.bf_enc. */
int sae_train_relu_screen(sae_trainer *t, int64_t nc, int64_t r0, sae_codes *c);
/* One full step on ws.x[0..n): loss/grad, checks, clipping, Adam, constraints. */
int32_t sae_train_step_rows(sae_trainer *t, int64_t n);
/* Schedules at optimiser step `step` (0-based). */
double sae_train_lr_at(const sae_train_opts *o, int64_t step);
double sae_train_coeff_at(const sae_train_opts *o, int64_t step);
/* Rows [0, nr) of one group's codes c: go = two_n (xhat - x) (rows of d), row_loss =
 * ||xhat - x||^2, gval[e] = go . W_dec,idx[e]; nt threads over the rows. */
void sae_train_code_rows(const sae_model *m, const sae_codes *c, const float *x, int64_t nr,
                         float two_n, int nt, float *go, double *row_loss, float *gval);
/* Latent j's entries of a column view of codes: gd += value * vecs[row] (row stride
 * vec_stride), ge += dLoss/dz * xcs[row] (stride d); returns the sum of dLoss/dz. */
double sae_train_add_column(const float *xcs, const int64_t *col_ptr, const int64_t *ent,
                            const int32_t *erow, const float *val, const float *gval,
                            const float *vecs, int64_t vec_stride, int64_t j, int64_t d,
                            float *gd, float *ge);
/* b_dec from the batch (mean or geometric median). */
void sae_train_init_b_dec(sae_trainer *t, int64_t n);
/* Anthropic-style resampling of dead latents from the last batch. */
void sae_train_resample(sae_trainer *t, int64_t n);
/* Threads for this trainer's parallel loops: those of the step under way. */
static inline int sae_train_threads(const sae_trainer *t) { return (int)t->step_threads; }
/* Sets the threads of a step of n rows: n_threads, or one below thread_min_work. */
static inline void sae_train_set_rows(sae_trainer *t, int64_t n)
{
    double work = (double)n * (double)t->model->n_latents * (double)t->model->d;
    t->step_threads = (int32_t)(work < (double)t->o.thread_min_work ? 1 : t->o.threads);
}

#endif
