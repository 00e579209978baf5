/* tile_gemm.c (ref) — the naive small matrix product of kernels/tile_gemm.h,
 * summed in double: the oracle for kernels/cpu/tile_gemm.c. */
#include "kernels/tile_gemm.h"

void empo_ref_tile_gemm(float *C, int64_t ldc, const float *A, int64_t a_row, int64_t a_col, const float *B,
                        int64_t ldb, int64_t m, int64_t n, int64_t k, int acc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = acc ? C[i * ldc + j] : 0.0;
            for (int64_t p = 0; p < k; p++) s += (double)A[i * a_row + p * a_col] * B[p * ldb + j];
            C[i * ldc + j] = (float)s;
        }
}
