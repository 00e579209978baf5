/* fused_norm.c (ref) — naive reference kernels for RMSNorm and SwiGLU:
 * plain loops, sums in double. The oracle for kernels/cpu/fused_norm.c. */
#include "kernels/fused.h"

void empo_ref_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w,
                              int64_t N, int64_t D, float eps) {
    for (int64_t n = 0; n < N; n++) {
        double ss = 0.0;
        for (int64_t j = 0; j < D; j++) ss += (double)x[n * D + j] * x[n * D + j];
        double r = 1.0 / sqrt(ss / (double)D + (double)eps);
        rstd[n] = (float)r;
        for (int64_t j = 0; j < D; j++) out[n * D + j] = (float)(x[n * D + j] * r * w[j]);
    }
}

void empo_ref_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x,
                               const float *w, const float *rstd, int64_t N, int64_t D) {
    for (int64_t j = 0; dw && j < D; j++) {
        double acc = 0.0;
        for (int64_t n = 0; n < N; n++) acc += (double)dout[n * D + j] * x[n * D + j] * rstd[n];
        dw[j] = (float)acc;
    }
    for (int64_t n = 0; dx && n < N; n++) {
        double r = rstd[n], dot = 0.0;
        for (int64_t j = 0; j < D; j++) dot += (double)dout[n * D + j] * w[j] * x[n * D + j];
        for (int64_t j = 0; j < D; j++)
            dx[n * D + j] = (float)(r * w[j] * dout[n * D + j] - x[n * D + j] * r * r * r * dot / D);
    }
}

static double sigmoid(double g) { return 1.0 / (1.0 + exp(-g)); }

void empo_ref_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)(gate[i] * sigmoid(gate[i]) * up[i]);
}

void empo_ref_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                              const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double g = gate[i], s = sigmoid(g);
        if (dgate) dgate[i] = (float)(dout[i] * up[i] * s * (1.0 + g * (1.0 - s)));
        if (dup) dup[i] = (float)(dout[i] * g * s);
    }
}
