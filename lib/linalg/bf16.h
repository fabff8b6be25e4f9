/* bfloat16 score products (approximate; see lib/linalg/bf16.c). */
#ifndef SAE_LIB_LINALG_BF16_H
#define SAE_LIB_LINALG_BF16_H

#include <stdint.h>

/* The kernel exists on x86-64 GCC builds without sanitisers (valgrind and ASan do not run
 * AVX-512); elsewhere sae_bf16_available() is 0 and callers use float products. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(SAE_NO_CLONES) && __GNUC__ >= 11
#  define SAE_HAVE_BF16_KERNEL 1
#else
#  define SAE_HAVE_BF16_KERNEL 0
#endif

#define SAE_BF16_MR 12 /* rows per tile */
#define SAE_BF16_NR 32 /* columns per tile */

#define SAE_BF16_NONE 1   /* no kernel: callers use float products */
#define SAE_BF16_AVX512 2 /* VDPBF16PS */
#define SAE_BF16_AMX 3    /* AMX tiles (TDPBF16PS) */

/* The kernel this CPU runs (probed once; on an AMX CPU the probe asks Linux for the tile
 * state). */
int sae_bf16_kernel(void);
/* 1 when this CPU runs a kernel. */
static inline int sae_bf16_available(void) { return sae_bf16_kernel() != SAE_BF16_NONE; }
/* Tests: run SAE_BF16_AVX512 even on an AMX CPU, or none, or (SAE_BF16_AMX) the best one
 * again. Not for use while products run. */
void sae_bf16_use_kernel(int kernel);

/* Pairs of bfloat16 per row of length k (padded with zero pairs to whole AMX tile rows). */
int64_t sae_bf16_pairs(int64_t k);
/* n rounded up to whole panels of `tile` rows. */
int64_t sae_bf16_panel_rows(int64_t n, int64_t tile);

/* Words of the packed A operand (n rows of length k, layout of the kernel in use) and of
 * the B operand (panels of SAE_BF16_NR rows). */
int64_t sae_bf16_rows_words(int64_t n, int64_t k);
int64_t sae_bf16_cols_words(int64_t l, int64_t k);

/* Pack n rows of length k (finite floats): rows as the A operand, cols as the B operand
 * (panels of SAE_BF16_NR rows; pair p of row i of a panel at p * SAE_BF16_NR + i). resid
 * (n entries, or NULL) gets ||row - bfloat16(row)|| of each row, rounded up. */
void sae_bf16_pack_rows(const float *x, int64_t n, int64_t k, int64_t ldx, uint32_t *out,
                        double *resid);
void sae_bf16_pack_cols(const float *w, int64_t n, int64_t k, int64_t ldw, uint32_t *out,
                        double *resid);

/* c[r][j] ~ bias[j] + sum_i x[r][i] w[j][i] for r < n, j < l (bias may be NULL), from
 * packed x (rows) and w (cols), on up to nt OpenMP threads. Each element is computed the
 * same way at any thread count. */
void sae_bf16_scores(int nt, const uint32_t *a, int64_t n, const uint32_t *b, int64_t l,
                     int64_t k, const float *bias, float *c, int64_t ldc);

#endif
