/* table.c — the reference kernel table: naive loops, double accumulation;
 * the oracle the fast tables are tested against. */
#include "kernels/kernels.h"

/* the naive kernels need no scratch */
int64_t empo_ref_attention_work(const empo_attn_shape *a) { return 0; }
int64_t empo_ref_kv_attention_work(const empo_kv_shape *a) { return 0; }

const empo_kernel_table empo_kernels_ref = {
    .name = "ref",
    .binary = empo_ref_binary_f32,
    .unary = empo_ref_unary_f32,
    .unary_backward = empo_ref_unary_backward_f32,
    .select = empo_ref_select,
    .sum_dim = empo_ref_sum_dim,
    .max_dim = empo_ref_max_dim,
    .softmax = empo_ref_softmax,
    .softmax_backward = empo_ref_softmax_backward,
    .gemm = empo_ref_gemm,
    .gemm_bf16 = empo_ref_gemm_bf16,
    .index_rows = empo_ref_index_rows,
    .index_rows_add = empo_ref_index_rows_add,
    .rmsnorm_forward = empo_ref_rmsnorm_forward,
    .rmsnorm_backward = empo_ref_rmsnorm_backward,
    .swiglu_forward = empo_ref_swiglu_forward,
    .swiglu_backward = empo_ref_swiglu_backward,
    .rope_forward = empo_ref_rope_forward,
    .rope_backward = empo_ref_rope_backward,
    .attention_work = empo_ref_attention_work,
    .attention_forward = empo_ref_attention_forward,
    .attention_backward = empo_ref_attention_backward,
    .logprob_entropy_forward = empo_ref_logprob_entropy_forward,
    .logprob_entropy_backward = empo_ref_logprob_entropy_backward,
    .head_logprob_forward = empo_ref_head_logprob_forward,
    .head_logprob_backward = empo_ref_head_logprob_backward,
    .copy_strided = empo_ref_copy_strided,
    .convert = empo_ref_convert,
    .adamw = empo_ref_adamw,
    .sumsq = empo_ref_sumsq,
    .scale = empo_ref_scale,
    .sample_row = empo_ref_sample_row,
    .sample_rows = empo_ref_sample_rows,
    .sample_stats = empo_ref_sample_stats,
    .kv_attention_work = empo_ref_kv_attention_work,
    .kv_attention = empo_ref_kv_attention,
    /* the stock decoder's fused step has no naive C twin: its reference is
     * the Lua model running the ops above (tests/generate/test_decode.lua) */
    .decode_scratch_floats = empo_decode_scratch_floats,
    .decode_step = empo_k_decode_step,
    .decode_prefill = empo_k_decode_prefill,
};
