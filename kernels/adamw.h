/* adamw.h — optimizer kernels on raw f32 pointers: fused AdamW, sum of
 * squares (for the global grad norm) and in-place scaling (for clipping).
 * The _cpu versions are OpenMP + SIMD; the _ref versions are naive loops
 * that the tests compare against (and EMPO_ISA=ref selects: kernels.h). */
#ifndef EMPO_KERNELS_ADAMW_H
#define EMPO_KERNELS_ADAMW_H
#include <stdint.h>

/* Per-step scalars, precomputed once per step from the config (double)
 * so that the kernel does no pow/sqrt of its own. */
typedef struct empo_adamw_scalars {
    float beta1, beta2, eps;
    /* 1 - beta computed in double, then rounded (as PyTorch passes its
     * scalars): 1 - 0.999f would be off by 1.3e-5 relative */
    float one_minus_beta1, one_minus_beta2;
    float decay;        /* 1 - lr * weight_decay */
    float step_size;    /* lr / (1 - beta1^step) */
    float bc2_sqrt;     /* sqrt(1 - beta2^step) */
} empo_adamw_scalars;

/* p, m, v, g: [n]. Updates p, m, v in place, PyTorch's AdamW order:
 * p *= decay; m += (1-b1)(g-m); v = b2 v + (1-b2) g^2;
 * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps). */
void empo_k_adamw(float *p, float *m, float *v, const float *g, int64_t n, const empo_adamw_scalars *s);
void empo_ref_adamw(float *p, float *m, float *v, const float *g, int64_t n, const empo_adamw_scalars *s);

/* sum of x[i]^2 over [n], accumulated in double (NaN/Inf propagate) */
double empo_k_sumsq(const float *x, int64_t n);
double empo_ref_sumsq(const float *x, int64_t n);

/* x[i] *= scale over [n] */
void empo_k_scale(float *x, int64_t n, float scale);
void empo_ref_scale(float *x, int64_t n, float scale);

/* the kernel table's slot types (kernels/kernels.h) */
typedef void empo_adamw_fn(float *p, float *m, float *v, const float *g, int64_t n, const empo_adamw_scalars *s);
typedef double empo_sumsq_fn(const float *x, int64_t n);
typedef void empo_scale_fn(float *x, int64_t n, float scale);

#endif
