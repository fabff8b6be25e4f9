/* The dense ReLU block fused for toy shapes (relu_fused.c). Internal to lib/train. */
#ifndef SAE_LIB_TRAIN_RELU_FUSED_H
#define SAE_LIB_TRAIN_RELU_FUSED_H

#include <stddef.h>
#include <stdint.h>

/* Inputs up to this wide: the small kernel's range (SMALL_MAX_COLS), whose results the
 * fused block reproduces. */
#define SAE_RELU_FUSED_MAX_D 128
/* and up to this many latents, where a group's codes and dLoss/dpre (32 rows each) stay in
 * L2 (measured gains up to 1,024: docs/performance.md) */
#define SAE_RELU_FUSED_MAX_L 1024

/* One dense ReLU block of n rows (dense.c fills it; the per-row passes are dense.c's). */
typedef struct sae_relu_fused {
    int64_t n, d, l;
    const float *x, *xc;          /* n x d: inputs, centred inputs */
    const float *b_enc, *w_dec, *b_dec;
    const float *wj;              /* l: penalty weights */
    float two_n;                  /* dLoss/dxhat = two_n (xhat - x) */
    float *z;                     /* n x l: codes (encode) */
    double *row_sp, *row_l0;      /* n: penalties and L0 (encode) */
    double *row_loss, *dacc;      /* n: squared errors; d: += column sums of dLoss/dxhat */
    float *g_dec, *g_enc;         /* l x d: += the block's gradients (may be the same) */
    const float *zs, *gs;         /* l: column sums of z and of dLoss/dpre (set by backward) */
    float *scratch;               /* sae_relu_fused_floats(d, l), packed by _prepare */
    void (*relu_rows)(const float *p, int64_t ldp, const float *wj, int64_t l, float *z,
                      int64_t ldz, double *pen, double *l0, int64_t n);
    double (*residual_row)(float *out, const float *x, int64_t d);
    void (*output_grad)(const float *res, int64_t nc, int64_t d, float scale, float *go,
                        double *acc);
} sae_relu_fused;

/* Whether the fused block runs on this CPU for inputs of width d. */
int sae_relu_fused_available(int64_t d);
size_t sae_relu_fused_floats(int64_t d, int64_t l);
/* W (l x d) in panels of 32 rows, each d x 32 with zero rows past l. */
void sae_relu_fused_pack(const float *w, int64_t l, int64_t d, float *panels);
/* Once per step, after the weights changed: the encoder and decoder panels, and the
 * sparsity term coeff_n wj of dLoss/dz. */
void sae_relu_fused_prepare(const float *w_enc_t, const float *w_dec, const float *wj,
                            double coeff_n, int64_t l, int64_t d, float *scratch);
/* Scores, codes (z), penalties and L0 of every row. */
void sae_relu_fused_encode(const sae_relu_fused *f);
/* With the codes in z: squared errors, dLoss/dxhat's column sums, the gradients; points zs
 * and gs at the column sums (in the scratch). */
void sae_relu_fused_backward(sae_relu_fused *f);

#endif
