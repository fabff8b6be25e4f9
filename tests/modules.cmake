# one line per module test: sae_add_test(<name> [INTERNAL] [LABELS ...])
sae_add_test(toy)
sae_add_test(reg INTERNAL)
