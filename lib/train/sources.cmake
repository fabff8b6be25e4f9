list(APPEND SAE_SOURCES train/train_params.c train/trainer.c train/workspace.c train/step.c
  train/dense.c train/relu_fused.c train/select.c train/sparse_loss.c train/dead.c train/clock.c)
list(APPEND SAE_SOURCES train/reg_common.c train/reg_ortho.c train/reg_lowact.c)
