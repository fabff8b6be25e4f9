# Sanitizer build types (ASan, UBSan, TSan), applied through CMAKE_<LANG>_FLAGS_<TYPE>
# so they never leak into normal builds. CMAKE_BUILD_TYPE=None is honoured as given.
set(_sae_san_common "-O1 -g -fno-omit-frame-pointer")
set(CMAKE_C_FLAGS_ASAN "${_sae_san_common} -fsanitize=address,undefined -fno-sanitize-recover=undefined"
    CACHE STRING "C flags for the ASan (address + undefined) build type")
set(CMAKE_EXE_LINKER_FLAGS_ASAN "-fsanitize=address,undefined" CACHE STRING "")
set(CMAKE_SHARED_LINKER_FLAGS_ASAN "-fsanitize=address,undefined" CACHE STRING "")
set(CMAKE_C_FLAGS_UBSAN "${_sae_san_common} -fsanitize=undefined -fno-sanitize-recover=undefined"
    CACHE STRING "C flags for the UBSan build type")
set(CMAKE_EXE_LINKER_FLAGS_UBSAN "-fsanitize=undefined" CACHE STRING "")
set(CMAKE_SHARED_LINKER_FLAGS_UBSAN "-fsanitize=undefined" CACHE STRING "")
set(CMAKE_C_FLAGS_TSAN "${_sae_san_common} -fsanitize=thread" CACHE STRING "")
set(CMAKE_EXE_LINKER_FLAGS_TSAN "-fsanitize=thread" CACHE STRING "")
set(CMAKE_SHARED_LINKER_FLAGS_TSAN "-fsanitize=thread" CACHE STRING "")
mark_as_advanced(CMAKE_C_FLAGS_ASAN CMAKE_EXE_LINKER_FLAGS_ASAN CMAKE_SHARED_LINKER_FLAGS_ASAN
                 CMAKE_C_FLAGS_UBSAN CMAKE_EXE_LINKER_FLAGS_UBSAN CMAKE_SHARED_LINKER_FLAGS_UBSAN
                 CMAKE_C_FLAGS_TSAN CMAKE_EXE_LINKER_FLAGS_TSAN CMAKE_SHARED_LINKER_FLAGS_TSAN)
