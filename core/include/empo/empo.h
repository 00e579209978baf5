/* empo/empo.h — the public C API of the empo runtime, in one include.
 *
 * Modules: status (errors), tensor (storage, views), autograd, ops
 * (differentiable operations and fused transformer kernels), rng (Philox),
 * optim (AdamW, grad norm), runtime (threads, memory, version), safetensors
 * (checkpoint files), files (atomic writes, mkdir -p), cluster (answer extraction, math equivalence, semantic
 * entropy), sample (per-token sampling math, KV-cache rows), dist (ranks,
 * collectives, the gradients' reduction).
 *
 * The declarations are FFI-clean (no macros in declarations, no varargs,
 * no struct by value) so that lua/empo/cdef.lua is generated from them. */
#ifndef EMPO_H
#define EMPO_H
#include "empo/status.h"
#include "empo/runtime.h"
#include "empo/tensor.h"
#include "empo/autograd.h"
#include "empo/ops.h"
#include "empo/rng.h"
#include "empo/optim.h"
#include "empo/safetensors.h"
#include "empo/files.h"
#include "empo/tokenizer.h"
#include "empo/cluster.h"
#include "empo/sample.h"
#include "empo/decoder.h"
#include "empo/dist.h"
#endif
