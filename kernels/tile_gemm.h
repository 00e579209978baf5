/* tile_gemm.h — small f32 matrix products over cache-resident tiles, the
 * building block of the tiled attention kernels (kernels/cpu/).
 *
 *   C[i, j] = (acc ? C[i, j] : 0) + sum_{p < k} A(i, p) * B[p, j]
 *   for i < m, j < n, with A(i, p) = A[i * a_row + p * a_col]
 *
 * B and C are row-major with row strides ldb and ldc. A is read one
 * element at a time (broadcast), so a transposed A is just other strides
 * (a_row = 1, a_col = its row length) and costs nothing extra.
 *
 * Each row of C is summed over p in increasing order with the same fused
 * multiply-adds whatever m is and whichever rows share a register tile, so
 * the result of a row does not depend on how callers group rows; the
 * attention backward relies on this to give identical gradients whether
 * it runs fused or split (see kernels/cpu/fused_attention.c).
 * empo_ref_tile_gemm is the naive version the tests compare it with. */
#ifndef EMPO_KERNELS_TILE_GEMM_H
#define EMPO_KERNELS_TILE_GEMM_H
#include <stdint.h>

typedef void empo_tile_gemm_fn(float *C, int64_t ldc, const float *A, int64_t a_row, int64_t a_col,
                               const float *B, int64_t ldb, int64_t m, int64_t n, int64_t k, int acc);
empo_tile_gemm_fn empo_tile_gemm, empo_ref_tile_gemm;

#endif
