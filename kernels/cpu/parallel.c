/* parallel.c — kernels/parallel.h on OpenMP. */
#include <omp.h>
#include "kernels/parallel.h"

/* Threads only pay off past ~32k elements of simple work: below that the
 * fork/join costs more than the loop. */
int empo_omp_threads_for(int64_t work) {
    if (work < 32768) return 1;
    return omp_get_max_threads();
}

void empo_parallel_for(int64_t n, int64_t work, empo_range_fn fn, void *ctx) {
    int nt = empo_omp_threads_for(work);
    if (nt > n) nt = (int)n;
    if (nt <= 1) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    #pragma omp parallel num_threads(nt)
    {
        int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
        int64_t lo = n * t / k, hi = n * (t + 1) / k;
        if (lo < hi) fn(ctx, lo, hi);
    }
}
