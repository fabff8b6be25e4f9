/* OpenMP loops with the handle's thread count; serial when built without OpenMP.
 * Every parallel loop in lib/model and lib/train writes disjoint outputs and sums in a
 * fixed order, so results do not depend on the thread count. */
#ifndef SAE_LIB_MODEL_PARALLEL_H
#define SAE_LIB_MODEL_PARALLEL_H

#define SAE_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
/* if(nt > 1): one thread runs the loop inline, without a parallel region's fork and join */
#  define SAE_PARALLEL_FOR(nt) \
      SAE_PRAGMA(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
#  define SAE_PARALLEL_FOR_DYNAMIC(nt) \
      SAE_PRAGMA(omp parallel for num_threads(nt) schedule(dynamic, 16) if (nt > 1))
#else
#  define SAE_PARALLEL_FOR(nt)
#  define SAE_PARALLEL_FOR_DYNAMIC(nt)
#endif

/* For thread counts that only the OpenMP pragmas read. */
#if defined(__GNUC__)
#  define SAE_MAYBE_UNUSED __attribute__((unused))
#else
#  define SAE_MAYBE_UNUSED
#endif

#endif
