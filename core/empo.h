/* empo.h — the public C API of the empo runtime, in one include.
 *
 * Modules: status (errors), tensor (storage, views), autograd, ops
 * (differentiable operations and fused transformer kernels), rng (Philox),
 * optim (AdamW, grad norm), runtime (threads, memory, version), safetensors
 * (checkpoint files), cluster (answer extraction, math equivalence, semantic
 * entropy), sample (per-token sampling math, KV-cache rows).
 *
 * The declarations are FFI-clean (no macros in declarations, no varargs,
 * no struct by value) so that lua/empo/cdef.lua is generated from them. */
#ifndef EMPO_H
#define EMPO_H
#include "empo_status.h"
#include "empo_runtime.h"
#include "empo_tensor.h"
#include "empo_autograd.h"
#include "empo_ops.h"
#include "empo_rng.h"
#include "empo_optim.h"
#include "empo_safetensors.h"
#include "empo_tokenizer.h"
#include "empo_cluster.h"
#include "empo_sample.h"
#include "empo_decode.h"
#endif
