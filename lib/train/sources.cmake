list(APPEND SAE_SOURCES train/train_params.c)
list(APPEND SAE_SOURCES train/reg_ortho.c train/reg_lowact.c)
