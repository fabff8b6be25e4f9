# one line per module test: sae_add_test(<name> [INTERNAL] [LABELS ...])
sae_add_test(toy)
sae_add_test(reg INTERNAL)
# issue 4 must-show: orthogonality penalty vs composed features (about 7 s)
sae_add_test(reg_recovery LABELS repro)
# reliability (docs/reliability.md): argument matrix over every symbol in lib/sae.map
sae_add_test(abuse SOURCES rel_util.c)
target_compile_definitions(test_abuse PRIVATE SAE_MAP_PATH="${PROJECT_SOURCE_DIR}/lib/sae.map")
sae_add_test(oom SOURCES rel_util.c)
sae_add_test(io INTERNAL)
sae_add_test(robust SOURCES rel_util.c)
sae_add_test(threads SOURCES rel_util.c)
find_package(Threads REQUIRED)
target_link_libraries(test_threads PRIVATE Threads::Threads)
sae_add_test(model)
sae_add_test(train)
# every architecture recovers the easy toy (about a minute; label slow keeps it out of valgrind)
sae_add_test(train_recovery LABELS slow)
sae_add_test(train_grad INTERNAL)
# sae_topk_row and the batch top-K buffer against a brute-force reference
sae_add_test(select INTERNAL)
sae_add_test(refine INTERNAL)
sae_add_test(toy_models)
sae_add_test(toy_repro LABELS unit repro)
sae_add_test(toy_tms)
sae_add_test(io_resume INTERNAL)
sae_add_test(io_safetensors INTERNAL)
# io: safetensors files checked by a reader written in Python from the format description
execute_process(COMMAND /usr/bin/python3 -c "import numpy, pytest" RESULT_VARIABLE _sae_py_rc
                OUTPUT_QUIET ERROR_QUIET)
if(BUILD_SHARED_LIBS AND _sae_py_rc EQUAL 0)
  add_test(NAME sae.io_python COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider
           ${CMAKE_CURRENT_SOURCE_DIR}/python/test_safetensors.py)
  set_tests_properties(sae.io_python PROPERTIES LABELS unit TIMEOUT 120
                       ENVIRONMENT "SAE_LIBRARY=$<TARGET_FILE:sae>")
endif()
sae_add_test(metrics_core INTERNAL)
# io: short libFuzzer run of every loader (clang + ASan + UBSan), when clang is installed
find_program(SAE_CLANG clang)
if(SAE_CLANG)
  add_test(NAME sae.io_fuzz COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run.sh 3)
  set_tests_properties(sae.io_fuzz PROPERTIES LABELS fuzz TIMEOUT 900
                       ENVIRONMENT "SAE_FUZZ_DIR=${CMAKE_CURRENT_BINARY_DIR}/fuzz;SAE_FUZZ_CC=${SAE_CLANG}")
endif()
sae_add_test(metrics)
# blocked products: the same bits for any thread count, with the single-threaded BLAS
# under which libsae splits them
sae_add_test(gemm_blocks INTERNAL)
set_tests_properties(sae.gemm_blocks PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
