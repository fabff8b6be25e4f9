list(APPEND SAE_SOURCES linalg/gemm.c linalg/gemm_small.c linalg/bf16.c linalg/i16.c)
