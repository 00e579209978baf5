/* gemm.cu — the row-major GEMM of kernels/gemm.h on the GPU through one
 * column-major product (cuBLASLt in the CUDA build, a plain loop in the
 * emulation, gemm_lt.cu and emu/emu.cpp).
 *
 * A row-major (r, c) array with leading dimension ld is, read
 * column-major, its transpose. So row-major C = op(A) op(B) is the
 * column-major C^T = op(B)^T op(A)^T: the product with the operands
 * swapped, each keeping its own transpose flag, and M and N swapped (and
 * in a batch, the operands' strides). */
#include "kernels/cuda/products.cuh"
#include "kernels/gemm.h"

EMPO_CUDA_BEGIN
__global__ void scale_matrix(float *C, int64_t rows, int64_t cols, int64_t ldc, float beta) {
    const int64_t n = rows * cols;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        float *c = C + (e / cols) * ldc + e % cols;
        *c = beta == 0.0f ? 0.0f : beta * *c;   /* beta 0 ignores NaN in C, as BLAS does */
    }
}

static void row_major(int bf16, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const void *A, int64_t lda, const void *B, int64_t ldb, float beta, float *C, int64_t ldc,
                      product_batch batch) {
    if (M <= 0 || N <= 0 || batch.count <= 0) return;
    if (K <= 0) {   /* no product: C = beta C */
        for (int64_t i = 0; i < batch.count; i++)
            EMPO_LAUNCH(scale_matrix, blocks_for(M * N, 256), 256, 0, C + i * batch.stride_c, M, N, ldc, beta);
        return;
    }
    const product_batch swapped = {batch.count, batch.stride_b, batch.stride_a, batch.stride_c};
    gemm_column_major(bf16, trans_b, trans_a, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc, swapped);
}

void gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
          const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    row_major(0, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ONE_PRODUCT);
}

void gemm_strided(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc, product_batch batch) {
    row_major(0, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch);
}

void gemm_bf16(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A,
               int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    row_major(1, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ONE_PRODUCT);
}
EMPO_CUDA_END
