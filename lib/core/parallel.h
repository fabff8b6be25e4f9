/* OpenMP loops with the handle's thread count; serial when built without OpenMP.
 * Every parallel loop of the library writes disjoint outputs and sums in a fixed order, so
 * results do not depend on the thread count. */
#ifndef SAE_LIB_CORE_PARALLEL_H
#define SAE_LIB_CORE_PARALLEL_H

#include <stdint.h>

#define SAE_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
/* if(nt > 1): one thread starts no others (libgomp is still entered: see SAE_FOR_THREADS) */
#  define SAE_PARALLEL_FOR(nt) \
      SAE_PRAGMA(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
#  define SAE_PARALLEL_FOR_DYNAMIC(nt) \
      SAE_PRAGMA(omp parallel for num_threads(nt) schedule(dynamic, 16) if (nt > 1))
#  define SAE_PARALLEL_FOR_GREEDY(nt) \
      SAE_PRAGMA(omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1))
#else
#  define SAE_PARALLEL_FOR(nt)
#  define SAE_PARALLEL_FOR_DYNAMIC(nt)
#  define SAE_PARALLEL_FOR_GREEDY(nt)
#endif

/* Loops whose iterations are independent: a parallel region only when it has more than
 * one thread. The library writes every per-step loop this way rather than with a bare
 * SAE_PARALLEL_FOR: even with if(nt > 1) libgomp is entered and sets up a team of one. */
#define SAE_FOR_THREADS(nt, var, n, ...) SAE_FOR_THREADS_AS(SAE_PARALLEL_FOR, nt, var, n, __VA_ARGS__)
#define SAE_FOR_THREADS_DYNAMIC(nt, var, n, ...)                                             \
    SAE_FOR_THREADS_AS(SAE_PARALLEL_FOR_DYNAMIC, nt, var, n, __VA_ARGS__)
/* A few large iterations, handed out one at a time as threads come free: threads on cores
 * of unequal speed (a busy SMT sibling, a hybrid CPU) still finish together. */
#define SAE_FOR_THREADS_GREEDY(nt, var, n, ...)                                              \
    SAE_FOR_THREADS_AS(SAE_PARALLEL_FOR_GREEDY, nt, var, n, __VA_ARGS__)
#define SAE_FOR_THREADS_AS(pragma, nt, var, n, ...)                                          \
    do {                                                                                     \
        if ((nt) > 1) {                                                                      \
            pragma(nt)                                                                       \
            for (int64_t var = 0; var < (n); var++)                                          \
                __VA_ARGS__;                                                                 \
        } else {                                                                             \
            for (int64_t var = 0; var < (n); var++)                                          \
                __VA_ARGS__;                                                                 \
        }                                                                                    \
    } while (0)

/* For thread counts that only the OpenMP pragmas read. */
#if defined(__GNUC__)
#  define SAE_MAYBE_UNUSED __attribute__((unused))
#else
#  define SAE_MAYBE_UNUSED
#endif

#endif
