list(APPEND SAE_SOURCES rng/philox.c)
