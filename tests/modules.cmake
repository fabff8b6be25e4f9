# one line per module test: sae_add_test(<name> [INTERNAL] [LABELS ...])
sae_add_test(toy)
sae_add_test(reg INTERNAL)
# reliability (docs/reliability.md): argument matrix over every symbol in lib/sae.map
sae_add_test(abuse SOURCES rel_util.c)
target_compile_definitions(test_abuse PRIVATE SAE_MAP_PATH="${PROJECT_SOURCE_DIR}/lib/sae.map")
sae_add_test(oom SOURCES rel_util.c)
