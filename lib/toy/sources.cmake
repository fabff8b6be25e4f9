list(APPEND SAE_SOURCES toy/toy_params.c toy/toy_validate.c toy/toy.c toy/dictionary.c
  toy/superposition.c toy/firing.c toy/copula.c toy/magnitude.c toy/noise.c toy/sample.c)
