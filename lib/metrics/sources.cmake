list(APPEND SAE_SOURCES metrics/metrics_params.c metrics/metrics.c metrics/similarity.c
  metrics/assign.c metrics/matching.c metrics/compose.c metrics/activation.c
  metrics/decoder_pairs.c)
