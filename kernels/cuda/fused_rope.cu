/* fused_rope.cu — the rotary embedding (half-rotation layout) on the GPU:
 * a thread per pair, the angle from empo_rope_angle (the CPU kernels'
 * own), its cosine and sine in double rounded to f32 as the reference. */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/fused.h"

EMPO_CUDA_BEGIN
__global__ void rope_pairs(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H, int64_t T,
                           int64_t Dh, double theta, double sign) {
    const int64_t half = Dh / 2, pairs = B * H * T * half;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < pairs; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = e % half, row = e / half, t = row % T, b = row / (H * T);
        const float a = empo_rope_angle(pos[b * T + t], i, Dh, theta);
        const double c = (float)cos((double)a), s = sign * (float)sin((double)a);
        const double x1 = x[row * Dh + i], x2 = x[row * Dh + i + half];
        out[row * Dh + i] = (float)(x1 * c - x2 * s);
        out[row * Dh + i + half] = (float)(x2 * c + x1 * s);
    }
}
static void rope(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H, int64_t T, int64_t Dh,
                 double theta, double sign) {
    const int64_t pairs = B * H * T * (Dh / 2);
    if (pairs > 0) EMPO_LAUNCH(rope_pairs, blocks_for(pairs, 256), 256, 0, out, x, pos, B, H, T, Dh, theta, sign);
}
void rope_forward(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H, int64_t T, int64_t Dh,
                  double theta) {
    rope(out, x, pos, B, H, T, Dh, theta, 1.0);
}
void rope_backward(float *dx, const float *dout, const int64_t *pos, int64_t B, int64_t H, int64_t T, int64_t Dh,
                   double theta) {
    rope(dx, dout, pos, B, H, T, Dh, theta, -1.0);
}
EMPO_CUDA_END
