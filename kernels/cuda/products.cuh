/* products.cuh — the backend's matrix products, behind the gemm slots and
 * the attention: one column-major product, as cuBLAS defines it
 * (cuBLASLt in gemm_lt.cu, a plain loop in emu/emu.cpp), over a batch of
 * matrices a fixed stride apart (one launch for many small products). */
#ifndef EMPO_KERNELS_CUDA_PRODUCTS_CUH
#define EMPO_KERNELS_CUDA_PRODUCTS_CUH
#include "kernels/cuda/cuda_compat.cuh"

EMPO_CUDA_BEGIN
/* count products; product i reads A + i stride_a, B + i stride_b and
 * writes C + i stride_c (strides in elements) */
struct product_batch {
    int64_t count, stride_a, stride_b, stride_c;
};
constexpr product_batch ONE_PRODUCT = {1, 0, 0, 0};

/* column-major C (m, n) = alpha op(A) op(B) + beta C, as cuBLAS; k > 0;
 * A and B f32 or (bf16 != 0) bfloat16, C f32 */
void gemm_column_major(int bf16, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const void *A, int64_t lda, const void *B, int64_t ldb, float beta, float *C, int64_t ldc,
                       product_batch batch);

/* row-major f32 C_i (M, N) = alpha op(A_i) op(B_i) + beta C_i for each
 * product of the batch (gemm.cu); K may be 0 (C = beta C) */
void gemm_strided(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc, product_batch batch);
EMPO_CUDA_END
#endif
