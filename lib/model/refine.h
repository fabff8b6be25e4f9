/* Exact per-row top-k from approximate scores (lib/model/refine.c). */
#ifndef SAE_LIB_MODEL_REFINE_H
#define SAE_LIB_MODEL_REFINE_H

#include <stdint.h>

/* Candidates rescored per row before the whole row is rescored instead. */
#define SAE_REFINE_CAND 1024

/* A bound on |a_j - e_j| for a row x of norm xnorm against encoder rows of norm <= wmax and
 * biases |b_j| <= bmax: a float product of any summation order (bf16 = 0), or the bfloat16
 * kernel (bf16 = 1) on operands whose rounding to bfloat16 moved the row by exnorm and
 * every encoder row by at most ewmax (as sae_bf16_pack_rows/cols report). INFINITY when no
 * useful bound holds (then every row is rescored). */
double sae_score_err(int bf16, int64_t d, double xnorm, double wmax, double bmax, double exnorm,
                     double ewmax);

/* out[c] = e_j (the exact score) for the columns j = cand[c], c < n; cand NULL: j = c. */
void sae_scores_exact(const float *x, const float *w, const float *bias, int64_t d,
                      const int32_t *cand, int64_t n, float *out);

/* The latents of a row (l approximate scores a, each within err of its exact score) that
 * may be active, e > 0: those with a > -err (and NaN ones). Lists their indices into idx
 * while they fit in room (counting only: room 0); returns how many. */
int64_t sae_relu_candidates(const float *a, int64_t l, double err, int32_t *idx, int64_t room);
/* The same on the portable code (level 0), AVX2 (1) or AVX-512F (2), or the best level
 * below the one asked that this CPU runs (tests: every level lists the same). */
int64_t sae_relu_candidates_at(int level, const float *a, int64_t l, double err, int32_t *idx,
                               int64_t room);

/* The largest row norm of w (l x d) and the largest |b_j|: the inputs of sae_score_err. */
void sae_score_scales(const float *w, const float *b, int64_t l, int64_t d, double *wmax,
                      double *bmax);

/* The same selection as sae_topk_row on the exact scores e_j = fl(sae_dotf_lanes(x, w_j, d)
 * + bias_j) of row x against the rows w_j of w (l x d), given approximations row[j] within
 * err of them (err = 0: row already holds e). May overwrite row with e. */
int64_t sae_topk_refine_row(float *row, int64_t l, int64_t k, const uint8_t *allow, double err,
                            const float *x, const float *w, const float *bias, int64_t d,
                            int32_t *idx, float *val);

#endif
