list(APPEND SAE_SOURCES toy/toy_params.c)
