/* fused_rope.c — fast CPU kernel for the rotary embedding (half-rotation
 * layout, f32), forward and backward. One (batch, token) pair per
 * task: its cos/sin are computed once and applied to every head.
 * The naive version is in kernels/ref/fused_rope.c. */
#include <math.h>
#include "internal.h"
#include "fused.h"

/* Rotates the H head rows of token (b, t) by +angle (sign = 1, forward)
 * or -angle (sign = -1, backward: the transpose of a rotation is its
 * inverse). */
static void rope_token(float *out, const float *x, int64_t pos, int64_t b, int64_t t, int64_t H,
                       int64_t T, int64_t Dh, double theta, float sign) {
    enum { PAIRS = 64 };   /* cos/sin table kept on the stack per chunk */
    const int64_t half = Dh / 2;
    float cs[PAIRS], sn[PAIRS];
    for (int64_t i0 = 0; i0 < half; i0 += PAIRS) {
        const int64_t m = half - i0 < PAIRS ? half - i0 : PAIRS;
        for (int64_t i = 0; i < m; i++) {
            const double a = (double)empo_rope_angle(pos, i0 + i, Dh, theta);
            cs[i] = (float)cos(a);
            sn[i] = sign * (float)sin(a);
        }
        for (int64_t h = 0; h < H; h++) {
            const int64_t row = ((b * H + h) * T + t) * Dh + i0;
            const float *x1 = x + row, *x2 = x + row + half;   // (m) each
            float *y1 = out + row, *y2 = out + row + half;     // (m) each
#pragma omp simd
            for (int64_t i = 0; i < m; i++) {
                const float a1 = x1[i], a2 = x2[i];
                y1[i] = a1 * cs[i] - a2 * sn[i];
                y2[i] = a2 * cs[i] + a1 * sn[i];
            }
        }
    }
}

/* One token per task: its cos/sin are computed once for all heads. Small
 * work runs without an OpenMP region (entering one costs ~0.4 us). */
static void rope_apply(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H,
                       int64_t T, int64_t Dh, double theta, float sign) {
    const int nt = empo_omp_threads_for(B * H * T * Dh);
    if (nt == 1) {
        for (int64_t bt = 0; bt < B * T; bt++)
            rope_token(out, x, pos[bt], bt / T, bt % T, H, T, Dh, theta, sign);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bt = 0; bt < B * T; bt++) rope_token(out, x, pos[bt], bt / T, bt % T, H, T, Dh, theta, sign);
}

void empo_k_rope_forward(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H,
                         int64_t T, int64_t Dh, double theta) {
    rope_apply(out, x, pos, B, H, T, Dh, theta, 1.0f);
}

void empo_k_rope_backward(float *dx, const float *dout, const int64_t *pos, int64_t B,
                          int64_t H, int64_t T, int64_t Dh, double theta) {
    rope_apply(dx, dout, pos, B, H, T, Dh, theta, -1.0f);
}
