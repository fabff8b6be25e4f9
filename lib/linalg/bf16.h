/* Low-precision score products (approximate; see lib/linalg/bf16.c): bfloat16 where the
 * CPU has bfloat16 dot products, else int16 (lib/linalg/i16.c). */
#ifndef SAE_LIB_LINALG_BF16_H
#define SAE_LIB_LINALG_BF16_H

#include <stdint.h>

/* The kernels exist on x86-64 GCC builds without sanitisers (valgrind and ASan do not run
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
#define SAE_BF16_INT16 2  /* int16 operands, AVX2's VPMADDWD (not bfloat16: lib/linalg/i16.c) */
#define SAE_BF16_AVX512 3 /* VDPBF16PS */
#define SAE_BF16_AMX 4    /* AMX tiles (TDPBF16PS) */

/* The kernel this CPU runs (probed once; on an AMX CPU the probe asks Linux for the tile
 * state). */
int sae_bf16_kernel(void);
/* 1 when this CPU runs a kernel. */
static inline int sae_bf16_available(void) { return sae_bf16_kernel() != SAE_BF16_NONE; }
/* Tests: run this kernel, or the best one below it that the CPU has (SAE_BF16_AMX: the
 * best one again). Not for use while products run, nor between packing and products. */
void sae_bf16_use_kernel(int kernel);

/* Rows of the A operand's panels for the kernel in use (32 on AMX, else SAE_BF16_MR): row
 * ranges that start at a multiple of it can be packed and scored apart. */
int64_t sae_bf16_tile_rows(void);

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
 * (n entries, or NULL) gets ||row - packed row|| of each row, rounded up; scale (n
 * entries) the int16 kernel's row scales (unused by the bfloat16 kernels: may be NULL). */
void sae_bf16_pack_rows(const float *x, int64_t n, int64_t k, int64_t ldx, uint32_t *out,
                        double *resid, float *scale);
void sae_bf16_pack_cols(const float *w, int64_t n, int64_t k, int64_t ldw, uint32_t *out,
                        double *resid, float *scale);

/* c[r][j] ~ bias[j] + sum_i x[r][i] w[j][i] for r < n, j < l (bias may be NULL), from
 * packed x (rows, with their scales ascale) and w (cols, bscale), on the calling thread.
 * Each element is computed from its row and column alone: callers split the rows among
 * threads (at multiples of sae_bf16_tile_rows()) and get the same bits. */
void sae_bf16_scores(const uint32_t *a, const float *ascale, int64_t n, const uint32_t *b,
                     const float *bscale, int64_t l, int64_t k, const float *bias, float *c,
                     int64_t ldc);

#endif
