/* table.c — the AVX2 kernel table: OpenMP, SIMD (x86-64-v3), oneDNN's sgemm.
 * kernels/avx512/table.c is the same kernels built for x86-64-v4. */
#include "kernels/kernels.h"
#include "table_slots.h"

const empo_kernel_table empo_kernels_avx2 = {.name = "avx2", EMPO_CPU_TABLE_SLOTS};
