list(APPEND SAE_SOURCES model/model_params.c model/model.c model/tensors.c model/init.c
  model/forward.c model/sparse.c
  model/topk_row.c model/topk_batch.c model/refine.c)
