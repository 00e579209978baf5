/* parallel.h — the threading every kernel (and the tensor layer's copies)
 * may use: a thread count for a given amount of work and a parallel-for
 * that stays on this thread when the work is small. The decoder's
 * work-sharing team is kernels/team.h. Implemented in kernels/cpu/parallel.c;
 * the thread count itself is set through empo_set_num_threads. */
#ifndef EMPO_KERNELS_PARALLEL_H
#define EMPO_KERNELS_PARALLEL_H
#include <stdint.h>

/* 1 for small work (about `work` simple operations in all), else all threads. */
int empo_omp_threads_for(int64_t work);

/* Runs fn(ctx, lo, hi) over [0, n) in contiguous ranges: on every thread
 * when `work` is large enough, else directly on this one. Use it instead
 * of an OpenMP pragma in code that can be small: entering an OpenMP region
 * costs ~0.4 us even with one thread, which would dominate a small op. */
typedef void (*empo_range_fn)(void *ctx, int64_t lo, int64_t hi);
void empo_parallel_for(int64_t n, int64_t work, empo_range_fn fn, void *ctx);

#endif
