/* adamw.c (cpu) — fused AdamW, sum of squares and scaling for the
 * optimizer (see kernels/adamw.h): one pass over memory, OpenMP across
 * threads and SIMD within. The naive twins are in kernels/ref/adamw.c. */
#include <math.h>
#include <omp.h>
#include "kernels/parallel.h"
#include "kernels/adamw.h"

void empo_k_adamw(float *p, float *m, float *v, const float *g, int64_t n, const empo_adamw_scalars *s) {
    const float b1c = s->one_minus_beta1, b2 = s->beta2, b2c = s->one_minus_beta2;
    const float decay = s->decay, step = s->step_size, inv_bc2 = 1.0f / s->bc2_sqrt, eps = s->eps;
    /* 7 streams of 4 bytes per element: memory bound, so a thread per core
     * only pays off for large tensors */
    #pragma omp parallel for simd num_threads(empo_omp_threads_for(n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m[i] + b1c * (gi - m[i]);   /* torch's lerp_(g, 1 - beta1) */
        float vi = b2 * v[i] + b2c * gi * gi;
        float denom = sqrtf(vi) * inv_bc2 + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / denom;
    }
}

/* Each thread sums a fixed slice in double and the slices are combined in
 * order, so the result is identical from run to run at a thread count. */
double empo_k_sumsq(const float *x, int64_t n) {
    enum { MAXT = 256 };
    double part[MAXT];
    int nt = empo_omp_threads_for(n), used = 1;
    if (nt > MAXT) nt = MAXT;
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t lo = n * t / T, hi = n * (t + 1) / T;
        double acc = 0;
        #pragma omp simd reduction(+ : acc)
        for (int64_t i = lo; i < hi; i++) acc += (double)x[i] * x[i];
        part[t] = acc;
        if (t == 0) used = T;
    }
    double total = 0;
    for (int t = 0; t < used; t++) total += part[t];
    return total;
}

void empo_k_scale(float *x, int64_t n, float scale) {
    #pragma omp parallel for simd num_threads(empo_omp_threads_for(n)) schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] *= scale;
}
