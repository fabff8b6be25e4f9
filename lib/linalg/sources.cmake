list(APPEND SAE_SOURCES linalg/gemm.c)
