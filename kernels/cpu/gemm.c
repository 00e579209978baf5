/* cpu/gemm.c — GEMM through oneDNN's sgemm (row-major, JIT-generated for the
 * machine's ISA, threaded with OpenMP). */
#include <oneapi/dnnl/dnnl.h>
#include "kernels/gemm.h"

void empo_k_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {   /* oneDNN rejects K = 0; the product is empty */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    /* lda/ldb must be >= 1 even for single rows */
    dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda > 0 ? lda : 1, B,
               ldb > 0 ? ldb : 1, beta, C, ldc > 0 ? ldc : 1);
}
