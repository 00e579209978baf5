/* rename.h — the AVX-512 table's builds of the CPU kernels: the sources
 * listed in CMakeLists.txt (EMPO_AVX512_SOURCES) are compiled a second
 * time with -march=x86-64-v4 and this header included first, so every
 * function they define gets an empo_k512_* / *_avx512 name of its own and
 * the two builds live side by side in libempo. Their code is the same
 * source: intrinsics written for 8 lanes get the EVEX encoding and 32
 * registers, plain loops vectorize 16 wide, and where a kernel has a
 * 16-lane path (`#ifdef __AVX512F__`: the decode step's panel products)
 * this build takes it. A source added to that list must have each of its
 * global functions here (else the link fails on a duplicate symbol).
 * kernels/avx512/table.c includes it too, so the names it puts in the
 * table are these builds'. */
#ifndef EMPO_KERNELS_AVX512_RENAME_H
#define EMPO_KERNELS_AVX512_RENAME_H

#define empo_k_panel_linear empo_k512_panel_linear
#define empo_k_panel_linear_bf16 empo_k512_panel_linear_bf16
#define empo_k_panel_linear_panels empo_k512_panel_linear_panels
#define empo_k_panel_linear_panels_bf16 empo_k512_panel_linear_panels_bf16
#define empo_k_panel_pack empo_k512_panel_pack
#define empo_k_panel_swiglu empo_k512_panel_swiglu
#define empo_k_panel_swiglu_bf16 empo_k512_panel_swiglu_bf16
#define empo_k_decode_prefill empo_k512_decode_prefill
#define empo_k_decode_step empo_k512_decode_step
#define empo_k_kv_attention empo_k512_kv_attention
#define empo_k_kv_attention_range empo_k512_kv_attention_range
#define empo_k_kv_attention_tasks empo_k512_kv_attention_tasks
#define empo_k_kv_attention_work empo_k512_kv_attention_work
#define empo_k_kv_attention_work_for empo_k512_kv_attention_work_for
#define empo_k_kv_prefill_range empo_k512_kv_prefill_range
#define empo_k_kv_prefill_tasks empo_k512_kv_prefill_tasks
#define empo_k_sample_row empo_k512_sample_row
#define empo_k_sample_rows empo_k512_sample_rows
#define empo_k_attention_backward empo_k512_attention_backward
#define empo_k_attention_forward empo_k512_attention_forward
#define empo_k_attention_work empo_k512_attention_work
#define empo_k_rmsnorm_backward empo_k512_rmsnorm_backward
#define empo_k_rmsnorm_forward empo_k512_rmsnorm_forward
#define empo_k_swiglu_backward empo_k512_swiglu_backward
#define empo_k_swiglu_forward empo_k512_swiglu_forward
#define empo_k_rope_backward empo_k512_rope_backward
#define empo_k_rope_forward empo_k512_rope_forward
#define empo_k_logprob_entropy_backward empo_k512_logprob_entropy_backward
#define empo_k_logprob_entropy_forward empo_k512_logprob_entropy_forward
#define empo_k_head_logprob_forward empo_k512_head_logprob_forward
#define empo_k_head_logprob_backward empo_k512_head_logprob_backward
#define empo_k_binary_f32 empo_k512_binary_f32
#define empo_k_unary_backward_f32 empo_k512_unary_backward_f32
#define empo_k_unary_f32 empo_k512_unary_f32
#define empo_k_max_dim empo_k512_max_dim
#define empo_k_softmax empo_k512_softmax
#define empo_k_softmax_backward empo_k512_softmax_backward
#define empo_k_sum_dim empo_k512_sum_dim
#define empo_decode_rope_table empo_decode_rope_table_avx512
#define empo_decode_scratch_floats empo_decode_scratch_floats_avx512
#define empo_attn_add_rows empo_attn_add_rows_avx512
#define empo_attn_scores empo_attn_scores_avx512
#define empo_tile_gemm empo_tile_gemm_avx512
#define empo_k_adamw empo_k512_adamw
#define empo_k_scale empo_k512_scale
#define empo_k_sumsq empo_k512_sumsq

#endif
