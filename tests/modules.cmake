# one line per module test: sae_add_test(<name> [INTERNAL] [LABELS ...])
