/* fused_rope.c (ref) — naive reference kernel for the rotary embedding
 * (half-rotation layout), one element pair at a time. The oracle for
 * kernels/cpu/fused_rope.c; both take the angle from empo_rope_angle. */
#include "kernels/fused.h"

/* sign = 1 rotates by +angle (forward), -1 by -angle (backward). */
static void ref_rope(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H,
                     int64_t T, int64_t Dh, double theta, double sign) {
    const int64_t half = Dh / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t i = 0; i < half; i++) {
                    double a = empo_rope_angle(pos[b * T + t], i, Dh, theta);
                    double c = (float)cos(a), s = sign * (float)sin(a);
                    int64_t row = ((b * H + h) * T + t) * Dh;
                    double x1 = x[row + i], x2 = x[row + i + half];
                    out[row + i] = (float)(x1 * c - x2 * s);
                    out[row + i + half] = (float)(x2 * c + x1 * s);
                }
}

void empo_ref_rope_forward(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H,
                           int64_t T, int64_t Dh, double theta) {
    ref_rope(out, x, pos, B, H, T, Dh, theta, 1.0);
}

void empo_ref_rope_backward(float *dx, const float *dout, const int64_t *pos, int64_t B,
                            int64_t H, int64_t T, int64_t Dh, double theta) {
    ref_rope(dx, dout, pos, B, H, T, Dh, theta, -1.0);
}
