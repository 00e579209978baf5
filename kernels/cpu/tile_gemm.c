/* tile_gemm.c — register-blocked small matrix product (kernels/tile_gemm.h):
 * tiles of 4 rows x 16 columns of C live in eight AVX registers while p
 * runs; each step loads two vectors of B's row p and broadcasts four
 * elements of A. Columns left over go 8 at a time, then one at a time.
 * AVX2 + FMA is the library's baseline ISA (-march=x86-64-v3). The unroll
 * pragmas keep the accumulator arrays in registers (GCC at -O2 leaves
 * these loops rolled and the arrays in memory: 3x slower). The AVX-512
 * build (kernels/avx512/) first takes 8 rows x 32 columns (16 of its 32
 * registers), then 8 x 16: every element is the same FMA chain over p, so
 * the same bits. */
#include <immintrin.h>
#include "kernels/tile_gemm.h"

enum { MR = 4 };

/* mr rows x 8*NV columns; always inlined so that mr and nv are constants
 * and the accumulators stay in registers. */
static inline __attribute__((always_inline)) void tile(const int mr, const int nv, float *C, int64_t ldc,
                                                       const float *A, int64_t a_row, int64_t a_col,
                                                       const float *B, int64_t ldb, int64_t k, int acc) {
    __m256 c[MR][2];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) c[i][v] = acc ? _mm256_loadu_ps(C + i * ldc + 8 * v) : _mm256_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        __m256 b[2];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) b[v] = _mm256_loadu_ps(B + p * ldb + 8 * v);
        const float *ap = A + p * a_col;
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            const __m256 a = _mm256_broadcast_ss(ap + i * a_row);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) c[i][v] = _mm256_fmadd_ps(a, b[v], c[i][v]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) _mm256_storeu_ps(C + i * ldc + 8 * v, c[i][v]);
}

/* All rows of one column panel of width 8 * nv. */
static inline __attribute__((always_inline)) void panel(const int nv, float *C, int64_t ldc, const float *A,
                                                        int64_t a_row, int64_t a_col, const float *B, int64_t ldb,
                                                        int64_t m, int64_t k, int acc) {
    int64_t i = 0;
    for (; i + MR <= m; i += MR) tile(MR, nv, C + i * ldc, ldc, A + i * a_row, a_row, a_col, B, ldb, k, acc);
    float *c = C + i * ldc;
    const float *a = A + i * a_row;
    switch (m - i) {
    case 3: tile(3, nv, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    case 2: tile(2, nv, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    case 1: tile(1, nv, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    default: break;
    }
}

#ifdef __AVX512F__
enum { MR16 = 8 };

/* mr rows x 16*nz columns in 16-lane registers (the AVX-512 build) */
static inline __attribute__((always_inline)) void tile16(const int mr, const int nz, float *C, int64_t ldc,
                                                         const float *A, int64_t a_row, int64_t a_col,
                                                         const float *B, int64_t ldb, int64_t k, int acc) {
    __m512 c[MR16][2];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nz; v++) c[i][v] = acc ? _mm512_loadu_ps(C + i * ldc + 16 * v) : _mm512_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        __m512 b[2];
#pragma GCC unroll 2
        for (int v = 0; v < nz; v++) b[v] = _mm512_loadu_ps(B + p * ldb + 16 * v);
        const float *ap = A + p * a_col;
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const __m512 a = _mm512_set1_ps(ap[i * a_row]);
#pragma GCC unroll 2
            for (int v = 0; v < nz; v++) c[i][v] = _mm512_fmadd_ps(a, b[v], c[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nz; v++) _mm512_storeu_ps(C + i * ldc + 16 * v, c[i][v]);
}

static inline __attribute__((always_inline)) void panel16(const int nz, float *C, int64_t ldc, const float *A,
                                                          int64_t a_row, int64_t a_col, const float *B, int64_t ldb,
                                                          int64_t m, int64_t k, int acc) {
    int64_t i = 0;
    for (; i + MR16 <= m; i += MR16) tile16(MR16, nz, C + i * ldc, ldc, A + i * a_row, a_row, a_col, B, ldb, k, acc);
    float *c = C + i * ldc;
    const float *a = A + i * a_row;
    switch (m - i) {
    case 7: tile16(7, nz, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    case 6: tile16(6, nz, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    case 5: tile16(5, nz, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    case 4: tile16(4, nz, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    case 3: tile16(3, nz, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    case 2: tile16(2, nz, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    case 1: tile16(1, nz, c, ldc, a, a_row, a_col, B, ldb, k, acc); break;
    default: break;
    }
}
#endif

void empo_tile_gemm(float *C, int64_t ldc, const float *A, int64_t a_row, int64_t a_col, const float *B,
                    int64_t ldb, int64_t m, int64_t n, int64_t k, int acc) {
    int64_t j = 0;
#ifdef __AVX512F__
    for (; j + 32 <= n; j += 32) panel16(2, C + j, ldc, A, a_row, a_col, B + j, ldb, m, k, acc);
    for (; j + 16 <= n; j += 16) panel16(1, C + j, ldc, A, a_row, a_col, B + j, ldb, m, k, acc);
#endif
    for (; j + 16 <= n; j += 16) panel(2, C + j, ldc, A, a_row, a_col, B + j, ldb, m, k, acc);
    for (; j + 8 <= n; j += 8) panel(1, C + j, ldc, A, a_row, a_col, B + j, ldb, m, k, acc);
    for (; j < n; j++)   /* fewer than 8 columns left */
        for (int64_t i = 0; i < m; i++) {
            float s = acc ? C[i * ldc + j] : 0.0f;
            for (int64_t p = 0; p < k; p++) s = __builtin_fmaf(A[i * a_row + p * a_col], B[p * ldb + j], s);
            C[i * ldc + j] = s;
        }
}
