/* table.cu — the CUDA kernel table (kernels/kernels.h): the kernels of
 * this folder behind the slots, the device they need, and supports() for
 * the one slot without a CUDA kernel (sample_row: the op samples a batch
 * through sample_rows), whose stub stops the program with a line naming
 * the slot if an op ever calls it instead of asking first. */
#include "kernels/cuda/cuda_compat.cuh"
#include <cstdio>
#include <cstdlib>
#include "kernels/kernels.h"

EMPO_CUDA_BEGIN
empo_binary_fn binary;
empo_unary_fn unary;
empo_unary_backward_fn unary_backward;
empo_select_fn select;
empo_sum_dim_fn sum_dim;
empo_max_dim_fn max_dim;
empo_softmax_fn softmax;
empo_softmax_backward_fn softmax_backward;
empo_gemm_fn gemm;
empo_gemm_bf16_fn gemm_bf16;
empo_index_rows_fn index_rows;
empo_index_rows_add_fn index_rows_add;
empo_rmsnorm_forward_fn rmsnorm_forward;
empo_rmsnorm_backward_fn rmsnorm_backward;
empo_swiglu_forward_fn swiglu_forward;
empo_swiglu_backward_fn swiglu_backward;
empo_rope_fn rope_forward, rope_backward;
empo_attention_work_fn attention_work;
empo_attention_forward_fn attention_forward;
empo_attention_backward_fn attention_backward;
empo_logprob_entropy_forward_fn logprob_entropy_forward;
empo_logprob_entropy_backward_fn logprob_entropy_backward;
empo_head_logprob_forward_fn head_logprob_forward;
empo_head_logprob_backward_fn head_logprob_backward;
empo_copy_strided_fn copy_strided;
empo_convert_fn convert;
empo_adamw_fn adamw;
empo_sumsq_fn sumsq;
empo_scale_fn scale;
empo_sample_rows_fn sample_rows;
empo_sample_stats_fn sample_stats;
empo_kv_attention_work_fn kv_attention_work;
empo_kv_attention_fn kv_attention;
empo_decode_scratch_fn decode_scratch_floats;
empo_decode_step_fn decode_step;
empo_decode_prefill_fn decode_prefill;

[[noreturn]] static void missing(const char *slot) {
    std::fprintf(stderr, "empo: the %s table has no %s kernel yet; the op should have asked supports() first\n",
                 EMPO_CUDA_TABLE_NAME, slot);
    std::abort();
}
static void no_sample_row(int64_t *, float *, float *, const float *, int64_t, const empo_sampling *, double, void *) {
    missing("sample_row");
}

static int supports(size_t slot) {
    return slot != EMPO_SLOT(sample_row);
}
EMPO_CUDA_END

extern "C" const empo_kernel_table EMPO_CUDA_TABLE = {
    .name = EMPO_CUDA_TABLE_NAME,
    .device = &EMPO_CUDA_DEVICE,
    .supports = EMPO_CUDA_NS::supports,
    .binary = EMPO_CUDA_NS::binary,
    .unary = EMPO_CUDA_NS::unary,
    .unary_backward = EMPO_CUDA_NS::unary_backward,
    .select = EMPO_CUDA_NS::select,
    .sum_dim = EMPO_CUDA_NS::sum_dim,
    .max_dim = EMPO_CUDA_NS::max_dim,
    .softmax = EMPO_CUDA_NS::softmax,
    .softmax_backward = EMPO_CUDA_NS::softmax_backward,
    .gemm = EMPO_CUDA_NS::gemm,
    .gemm_bf16 = EMPO_CUDA_NS::gemm_bf16,
    .index_rows = EMPO_CUDA_NS::index_rows,
    .index_rows_add = EMPO_CUDA_NS::index_rows_add,
    .rmsnorm_forward = EMPO_CUDA_NS::rmsnorm_forward,
    .rmsnorm_backward = EMPO_CUDA_NS::rmsnorm_backward,
    .swiglu_forward = EMPO_CUDA_NS::swiglu_forward,
    .swiglu_backward = EMPO_CUDA_NS::swiglu_backward,
    .rope_forward = EMPO_CUDA_NS::rope_forward,
    .rope_backward = EMPO_CUDA_NS::rope_backward,
    .attention_work = EMPO_CUDA_NS::attention_work,
    .attention_forward = EMPO_CUDA_NS::attention_forward,
    .attention_backward = EMPO_CUDA_NS::attention_backward,
    .logprob_entropy_forward = EMPO_CUDA_NS::logprob_entropy_forward,
    .logprob_entropy_backward = EMPO_CUDA_NS::logprob_entropy_backward,
    .head_logprob_forward = EMPO_CUDA_NS::head_logprob_forward,
    .head_logprob_backward = EMPO_CUDA_NS::head_logprob_backward,
    .copy_strided = EMPO_CUDA_NS::copy_strided,
    .convert = EMPO_CUDA_NS::convert,
    .adamw = EMPO_CUDA_NS::adamw,
    .sumsq = EMPO_CUDA_NS::sumsq,
    .scale = EMPO_CUDA_NS::scale,
    .sample_row = EMPO_CUDA_NS::no_sample_row,   /* a row at a time is the CPU's; the op calls sample_rows */
    .sample_rows = EMPO_CUDA_NS::sample_rows,
    .sample_stats = EMPO_CUDA_NS::sample_stats,
    .kv_attention_work = EMPO_CUDA_NS::kv_attention_work,
    .kv_attention = EMPO_CUDA_NS::kv_attention,
    .decode_scratch_floats = EMPO_CUDA_NS::decode_scratch_floats,
    .decode_step = EMPO_CUDA_NS::decode_step,
    .decode_prefill = EMPO_CUDA_NS::decode_prefill,
};
