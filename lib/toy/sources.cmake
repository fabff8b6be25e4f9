list(APPEND SAE_SOURCES toy/toy_params.c toy/toy.c toy/dictionary.c toy/firing.c
  toy/magnitude.c toy/sample.c)
