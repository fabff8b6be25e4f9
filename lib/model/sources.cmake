list(APPEND SAE_SOURCES model/model_params.c)
