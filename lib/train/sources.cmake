list(APPEND SAE_SOURCES train/train_params.c)
