/* table.c — the AVX-512 kernel table: the CPU table's slots
 * (kernels/cpu/table_slots.h) with kernels/avx512/rename.h included
 * first, so every name is the x86-64-v4 build's where one exists; oneDNN's
 * sgemm (which picks its own instruction set) and the index kernels stay
 * the AVX2 table's. Chosen in kernels/kernels.c when the CPU has AVX-512
 * F, CD, BW, VL and DQ, or by EMPO_ISA=avx512. */
#include "kernels/avx512/rename.h"
#include "kernels/kernels.h"
#include "kernels/cpu/table_slots.h"

const empo_kernel_table empo_kernels_avx512 = {.name = "avx512", EMPO_CPU_TABLE_SLOTS};
