list(APPEND SAE_SOURCES metrics/metrics_params.c)
