/* runtime.c — version, thread count, kernel selection switch. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#ifndef EMPO_VERSION_STRING
#define EMPO_VERSION_STRING "0.0.0"
#endif

const char *empo_version(void) { return EMPO_VERSION_STRING; }
int empo_abi_version(void) { return EMPO_ABI_VERSION; }

void empo_set_num_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
}

int empo_get_num_threads(void) { return omp_get_max_threads(); }

/* -1: not yet read from the environment */
static int reference_mode = -1;

int empo_use_reference(void) {
    if (reference_mode < 0) {
        const char *e = getenv("EMPO_REFERENCE");
        reference_mode = (e && *e && strcmp(e, "0") != 0) ? 1 : 0;
    }
    return reference_mode;
}

int empo_set_reference_kernels(int on) {
    int prev = empo_use_reference();
    reference_mode = on ? 1 : 0;
    return prev;
}

int empo_reference_kernels(void) { return empo_use_reference(); }

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
