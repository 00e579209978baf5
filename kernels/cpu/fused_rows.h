/* fused_rows.h — per-row math shared by the fast CPU kernels (static
 * inline, OpenMP simd loops: CPU kernels only): the RMSNorm and SwiGLU of
 * fused_norm.c, and the rope that fused_rope.c and the C decode step
 * (decode_step.c) both use, so the decoder rotates exactly as the model
 * does. (The decoder's norm and SwiGLU work on panels in vector lanes:
 * decode_step.c and vec_math.h, the same steps.) Files that use
 * empo_k_swiglu allow if-conversion with -fno-trapping-math (see
 * kernels/fused.h's empo_k_expf). */
#ifndef EMPO_KERNELS_CPU_FUSED_ROWS_H
#define EMPO_KERNELS_CPU_FUSED_ROWS_H
#include <math.h>
#include <stdint.h>
#include "kernels/fused.h"

/* 1 / sqrt(mean(x^2) + eps) of one row */
static inline float empo_k_rms_rstd(const float *x, int64_t D, float eps) {
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < D; j++) ss += x[j] * x[j];
    return 1.0f / sqrtf(ss / (float)D + eps);
}

/* silu(g) * u */
static inline float empo_k_swiglu(float g, float u) {
    const float sig = 1.0f / (1.0f + empo_k_expf(-g));
    return g * sig * u;
}

/* cos/sin (times sign) of rope pairs i0 .. i0+m-1 at position pos */
static inline void empo_rope_cos_sin(float *cs, float *sn, int64_t pos, int64_t i0, int64_t m, int64_t Dh,
                                     double theta, float sign) {
    for (int64_t i = 0; i < m; i++) {
        const double a = (double)empo_rope_angle(pos, i0 + i, Dh, theta);
        cs[i] = (float)cos(a);
        sn[i] = sign * (float)sin(a);
    }
}

/* m rope pairs (x1[i], x2[i]) rotated by cos/sin cs, sn into (y1, y2);
 * in place is fine */
static inline void empo_rope_rotate(float *y1, float *y2, const float *x1, const float *x2, const float *cs,
                                    const float *sn, int64_t m) {
#pragma omp simd
    for (int64_t i = 0; i < m; i++) {
        const float a1 = x1[i], a2 = x2[i];
        y1[i] = a1 * cs[i] - a2 * sn[i];
        y2[i] = a2 * cs[i] + a1 * sn[i];
    }
}

#endif
