/* kernels.h — the kernel table: one struct of function pointers per
 * backend, filled once, through which every op reaches its kernel.
 *
 *     const empo_kernel_table *K = empo_kernels();
 *     K->rmsnorm_forward(out, rstd, x, w, N, D, eps);
 *
 * Three tables exist: empo_kernels_avx2 ("avx2", kernels/cpu/table.c:
 * OpenMP, x86-64-v3 SIMD, oneDNN), empo_kernels_avx512 (kernels/avx512/:
 * the same kernels built for x86-64-v4) and empo_kernels_ref
 * (kernels/ref/table.c: naive loops in double, the oracle every fast
 * kernel is tested against). The best the CPU runs is the default;
 * EMPO_ISA=avx2|avx512|ref or empo_set_kernel_table (the one switch;
 * empo_set_reference_kernels is its shorthand for ref) choose another. A
 * new backend (CUDA) is one more table of this type: it fills every slot
 * (tests/kernels/test_table.c checks that no slot is NULL and that each
 * table gives the reference's results through the same ops) and is chosen
 * in kernels/kernels.c.
 *
 * Slots are grouped by the family header that declares their type and the
 * two implementations; kernels include only those headers and
 * kernels/parallel.h, never core's. */
#ifndef EMPO_KERNELS_KERNELS_H
#define EMPO_KERNELS_KERNELS_H
#include "kernels/adamw.h"
#include "kernels/convert.h"
#include "kernels/copy.h"
#include "kernels/decode_step.h"
#include "kernels/device.h"
#include "kernels/elementwise.h"
#include "kernels/fused.h"
#include "kernels/gemm.h"
#include "kernels/index.h"
#include "kernels/kv_attention.h"
#include "kernels/reduce.h"
#include "kernels/sample_row.h"
#include <stddef.h>

typedef struct empo_kernel_table {
    const char *name;   /* "avx2", "avx512", "ref", "cuda" */
    /* NULL: the kernels take host pointers. Else they take this device's
     * pointers, and the tensors they see live there (kernels/device.h). */
    const empo_device_api *device;
    /* NULL: every slot runs. Else supports(EMPO_SLOT(name)) says whether
     * that slot has a kernel yet; one that has not is filled with a stub
     * that stops the program, and the op runs it on the CPU instead
     * (empo_kernels_support below). */
    int (*supports)(size_t slot);
    /* elementwise.h */
    empo_binary_fn *binary;
    empo_unary_fn *unary;
    empo_unary_backward_fn *unary_backward;
    empo_select_fn *select;
    /* reduce.h */
    empo_sum_dim_fn *sum_dim;
    empo_max_dim_fn *max_dim;
    empo_softmax_fn *softmax;
    empo_softmax_backward_fn *softmax_backward;
    /* gemm.h */
    empo_gemm_fn *gemm;
    empo_gemm_bf16_fn *gemm_bf16;
    /* index.h */
    empo_index_rows_fn *index_rows;
    empo_index_rows_add_fn *index_rows_add;
    /* fused.h */
    empo_rmsnorm_forward_fn *rmsnorm_forward;
    empo_rmsnorm_backward_fn *rmsnorm_backward;
    empo_swiglu_forward_fn *swiglu_forward;
    empo_swiglu_backward_fn *swiglu_backward;
    empo_rope_fn *rope_forward;
    empo_rope_fn *rope_backward;
    empo_attention_work_fn *attention_work;
    empo_attention_forward_fn *attention_forward;
    empo_attention_backward_fn *attention_backward;
    empo_logprob_entropy_forward_fn *logprob_entropy_forward;
    empo_logprob_entropy_backward_fn *logprob_entropy_backward;
    empo_head_logprob_forward_fn *head_logprob_forward;
    empo_head_logprob_backward_fn *head_logprob_backward;
    /* copy.h, convert.h */
    empo_copy_strided_fn *copy_strided;
    empo_convert_fn *convert;
    /* adamw.h */
    empo_adamw_fn *adamw;
    empo_sumsq_fn *sumsq;
    empo_scale_fn *scale;
    /* sample_row.h, kv_attention.h */
    empo_sample_row_fn *sample_row;
    empo_sample_rows_fn *sample_rows;
    empo_sample_stats_fn *sample_stats;
    empo_kv_attention_work_fn *kv_attention_work;
    empo_kv_attention_fn *kv_attention;
    /* decode_step.h: the stock decoder's fused step and prefill */
    empo_decode_scratch_fn *decode_scratch_floats;
    empo_decode_step_fn *decode_step;
    empo_decode_prefill_fn *decode_prefill;
} empo_kernel_table;

/* the slot of a table member, for supports() */
#define EMPO_SLOT(member) offsetof(empo_kernel_table, member)
static inline int empo_kernels_support(const empo_kernel_table *k, size_t slot) {
    return !k->supports || k->supports(slot);
}

/* One naming rule: a table is empo_kernels_<its name> — avx2 (x86-64-v3,
 * kernels/cpu/), avx512 (the same kernels built for x86-64-v4,
 * kernels/avx512/), ref (the naive oracle, kernels/ref/); a kernel is
 * empo_k_<slot> when fast, empo_ref_<slot> when the reference, and
 * empo_k512_<slot> in the AVX-512 build (kernels/avx512/rename.h). */
extern const empo_kernel_table empo_kernels_avx2, empo_kernels_avx512, empo_kernels_ref;

/* The table in use, chosen at the first call: EMPO_ISA=avx2|avx512|ref if
 * set (a table the CPU cannot run, or an unknown name, is refused with a
 * line on stderr, and the best table runs), else the old EMPO_REFERENCE=1
 * (said on stderr), else the best the CPU runs (avx512 with AVX-512 F/CD/BW/VL/DQ,
 * else avx2). empo_kernels_use changes it. */
const empo_kernel_table *empo_kernels(void);
void empo_kernels_use(const empo_kernel_table *k);

/* The table of that name ("avx2", "avx512", "ref"), or NULL: unknown, or
 * one this CPU cannot run. The best the CPU runs: empo_kernels_best(). */
const empo_kernel_table *empo_kernels_named(const char *name);
const empo_kernel_table *empo_kernels_best(void);
/* The fast table chosen at start (EMPO_ISA's, or the best; never ref):
 * where turning the reference off goes back to. */
const empo_kernel_table *empo_kernels_fast(void);

/* The table of a device: 0 (EMPO_CPU) the table in use, 1 (EMPO_CUDA) the
 * CUDA table, loaded from libempo_cuda the first time; NULL when that
 * device cannot be used, and empo_kernels_device_why() says why. */
const empo_kernel_table *empo_kernels_device(int device);
const char *empo_kernels_device_why(void);

/* dlopen(flags) of a backend library: the path the environment variable
 * env names, else soname beside libempo (kernels/library.c). The path
 * tried is left in path[len]; NULL: dlerror() says why. */
void *empo_open_beside(const char *env, const char *soname, int flags, char *path, size_t len);
/* Lets the CUDA products round f32 inputs to TF32 on the tensor cores
 * (allow 1) or keeps them full f32 (0, the default); returns the previous
 * setting, or -1 with no CUDA device. */
int empo_kernels_cuda_tf32(int allow);

#endif
