/* table_slots.h — the slots of the CPU kernel tables, as designated
 * initializers: kernels/cpu/table.c puts them in the AVX2 table, and
 * kernels/avx512/table.c in the AVX-512 one, where kernels/avx512/rename.h
 * (included first there) turns each name into the AVX-512 build's where
 * one exists. One list, so the two tables cannot drift apart. */
#ifndef EMPO_KERNELS_CPU_TABLE_SLOTS_H
#define EMPO_KERNELS_CPU_TABLE_SLOTS_H

#define EMPO_CPU_TABLE_SLOTS \
    .binary = empo_k_binary_f32,                                 \
    .unary = empo_k_unary_f32,                                   \
    .unary_backward = empo_k_unary_backward_f32,                 \
    .select = empo_ref_select,                                  \
    .sum_dim = empo_k_sum_dim,                                   \
    .max_dim = empo_k_max_dim,                                   \
    .softmax = empo_k_softmax,                                   \
    .softmax_backward = empo_k_softmax_backward,                 \
    .gemm = empo_k_gemm,                                         \
    .gemm_bf16 = empo_ref_gemm_bf16,                             \
    .index_rows = empo_k_index_rows,                           \
    .index_rows_add = empo_k_index_rows_add,                   \
    .rmsnorm_forward = empo_k_rmsnorm_forward,                   \
    .rmsnorm_backward = empo_k_rmsnorm_backward,                 \
    .swiglu_forward = empo_k_swiglu_forward,                     \
    .swiglu_backward = empo_k_swiglu_backward,                   \
    .rope_forward = empo_k_rope_forward,                         \
    .rope_backward = empo_k_rope_backward,                       \
    .attention_work = empo_k_attention_work,                     \
    .attention_forward = empo_k_attention_forward,               \
    .attention_backward = empo_k_attention_backward,             \
    .logprob_entropy_forward = empo_k_logprob_entropy_forward,   \
    .logprob_entropy_backward = empo_k_logprob_entropy_backward, \
    .head_logprob_forward = empo_k_head_logprob_forward,         \
    .head_logprob_backward = empo_k_head_logprob_backward,       \
    .copy_strided = empo_ref_copy_strided,                     \
    .convert = empo_ref_convert,                               \
    .adamw = empo_k_adamw,                                     \
    .sumsq = empo_k_sumsq,                                     \
    .scale = empo_k_scale,                                     \
    .sample_row = empo_k_sample_row,                             \
    .sample_rows = empo_k_sample_rows,                           \
    .sample_stats = empo_ref_sample_stats,                       \
    .kv_attention_work = empo_k_kv_attention_work,               \
    .kv_attention = empo_k_kv_attention,                         \
    .decode_scratch_floats = empo_decode_scratch_floats,         \
    .decode_step = empo_k_decode_step,                           \
    .decode_prefill = empo_k_decode_prefill,

#endif
