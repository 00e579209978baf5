/* gemm.h — single-precision GEMM, row-major:
 *   C (M, N) = alpha * op(A) @ op(B) + beta * C
 * op(A) is (M, K): A itself (lda >= K) or, when trans_a, A^T of a (K, M)
 * array (lda >= M); likewise B. The fast version calls oneDNN's sgemm; the
 * reference is a plain triple loop. */
#ifndef EMPO_KERNELS_GEMM_H
#define EMPO_KERNELS_GEMM_H
#include <stdint.h>
#include "kernels/convert.h"   /* empo_bf16_value: a bf16 operand's element */

void empo_k_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void empo_ref_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

typedef void empo_gemm_fn(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                          int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* The same product with A and B in bfloat16 (uint16_t: the top half of an
 * f32) and C in f32, accumulated in f32 or better: the GPU's tensor-core
 * product (cuBLASLt); the CPU tables run the reference. */
typedef void empo_gemm_bf16_fn(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                               const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                               int64_t ldc);
empo_gemm_bf16_fn empo_ref_gemm_bf16;

#endif
