/* internal.h — what ops, kernels and the engine share inside libempo.
 * Not part of the public API (never included by empo.h). */
#ifndef EMPO_INTERNAL_H
#define EMPO_INTERNAL_H
#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include "empo.h"

/* ---- errors ---- */
/* Sets the thread's message (printf-style) and returns code, so that
 *   return empo_fail(EMPO_E_SHAPE, "add: %s vs %s", ...);  */
int empo_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Propagate a failing status. */
#define EMPO_TRY(expr) do { int empo_st_ = (expr); if (empo_st_ != EMPO_OK) return empo_st_; } while (0)

/* ---- storage and allocator ---- */
typedef struct empo_storage {
    int refcount;
    int device;          /* empo_device */
    size_t nbytes;       /* usable size asked for */
    size_t capacity;     /* size of the block (allocator bucket) */
    void *data;
    /* NULL for allocator blocks. Otherwise data points into this file
     * mapping (safetensors zero-copy views): the header is malloc'd on its
     * own, never goes to the allocator's cache, and holds one reference to
     * the mapping, which is unmapped when its last reference goes. */
    struct empo_mapping *mapping;
} empo_storage;

empo_storage *empo_storage_new(size_t nbytes, int device);   /* NULL + error on failure */
void empo_storage_retain(empo_storage *s);
void empo_storage_release(empo_storage *s);

/* A refcounted file mapping (see empo_storage.mapping). empo_mapping_new
 * takes over [addr, addr + len) from mmap; the last release munmaps it. */
typedef struct empo_mapping empo_mapping;
empo_mapping *empo_mapping_new(void *addr, size_t len);      /* NULL + error on failure */
void empo_mapping_retain(empo_mapping *m);
void empo_mapping_release(empo_mapping *m);
/* A storage of nbytes at data (inside m), holding a reference to m. */
empo_storage *empo_storage_from_mapping(empo_mapping *m, void *data, size_t nbytes);
/* live tensor handle count, for leak tests */
void empo_count_tensor(int delta);

/* ---- tensors ---- */
struct empo_node;

struct empo_tensor {
    int refcount;
    int ndim;
    int dtype;
    int requires_grad;
    int64_t shape[EMPO_MAX_DIMS];
    int64_t strides[EMPO_MAX_DIMS];   /* in elements */
    int64_t offset;                   /* in elements */
    empo_storage *storage;
    struct empo_tensor *grad;         /* accumulated gradient (leaves) */
    struct empo_node *grad_fn;        /* producer node (non-leaves) */
};

/* A fresh handle with no storage; shape copied, contiguous strides. */
empo_tensor *empo_tensor_alloc_handle(int ndim, const int64_t *shape, int dtype);
/* Contiguous new tensor, uninitialised (error set on failure). */
empo_tensor *empo_tensor_new(int ndim, const int64_t *shape, int dtype);
/* New tensor with x's shape (contiguous), given dtype. */
empo_tensor *empo_tensor_new_like(const empo_tensor *x, int dtype);
/* A view handle of x's storage with given geometry (no autograd). */
empo_tensor *empo_tensor_view_of(const empo_tensor *x, int ndim, const int64_t *shape,
                                 const int64_t *strides, int64_t offset);
void empo_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
int64_t empo_shape_numel(int ndim, const int64_t *shape);
int empo_is_float(int dtype);     /* f32, f64, bf16, f16 */
int empo_is_int(int dtype);       /* i32, i64, u8 */
/* Normalises a possibly negative dim; fails naming `op` when out of range. */
int empo_wrap_dim(const char *op, int dim, int ndim, int *out);
/* "[2 x 3]" of a shape, into buf. */
const char *empo_shape_str(int ndim, const int64_t *shape, char *buf, int buflen);
/* Convenience: describe t into one of a small ring of thread-local buffers
 * (so several may appear in one message). */
const char *empo_desc(const empo_tensor *t);
/* Checks t is non-NULL, on the CPU and of one of the dtypes in `mask`
 * (bit (1 << dtype)); names op and argument in the error. */
int empo_check_tensor(const char *op, const char *arg, const empo_tensor *t, unsigned dtype_mask);
#define EMPO_DT(d) (1u << (d))
#define EMPO_DT_FLOAT (EMPO_DT(EMPO_F32))
#define EMPO_DT_INDEX (EMPO_DT(EMPO_I32) | EMPO_DT(EMPO_I64))
/* Broadcast shapes of a and b into out (ndim returned via out_ndim). */
int empo_broadcast_shapes(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                          int *out_ndim, int64_t *out_shape);
/* Strides of t seen as a tensor of shape (ndim, shape) after broadcasting
 * (0 on broadcast dims). */
void empo_broadcast_strides(const empo_tensor *t, int ndim, const int64_t *shape, int64_t *strides);
/* Read element i (flat, logical order) of any dtype as double: slow, for
 * references and tests. */
double empo_tensor_get_flat(const empo_tensor *t, int64_t i);
/* Contiguous copy (same dtype), or a new reference when x already is
 * contiguous. Records no autograd. */
int empo_contiguous_nograd(empo_tensor **out, empo_tensor *x);
/* dtype conversion of n contiguous elements */
void empo_convert(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t n);
float empo_bf16_to_f32(uint16_t h);
uint16_t empo_f32_to_bf16(float f);
float empo_f16_to_f32(uint16_t h);
uint16_t empo_f32_to_f16(float f);
double empo_load_element(const void *p, int dtype, int64_t i);
void empo_store_element(void *p, int dtype, int64_t i, double v);
/* Contiguous copy of x converted to dtype (no autograd). */
int empo_copy_as(empo_tensor **out, const empo_tensor *x, int dtype);
/* Index tensor element as int64 (i32/i64/u8). */
int64_t empo_index_at(const empo_tensor *idx, int64_t flat);

/* ---- autograd ---- */
typedef struct empo_node empo_node;
/* Computes gradients of the node's inputs from grad_out (the gradient of
 * its one output, contiguous f32 of the output's shape). gin[i] receives a
 * new tensor with inputs[i]'s shape, or stays NULL (no gradient). Runs in
 * no-grad mode. */
typedef int (*empo_backward_fn)(empo_node *node, empo_tensor *grad_out, empo_tensor **gin);

enum { EMPO_NODE_INLINE = 4, EMPO_NODE_SAVED = 6, EMPO_NODE_PARAMS = 8 };

struct empo_node {
    int refcount;
    const char *name;              /* op name, static string */
    empo_backward_fn backward;
    int n_inputs;
    empo_tensor **inputs;          /* retained; NULL entries need no grad */
    empo_tensor *inline_inputs[EMPO_NODE_INLINE];
    empo_tensor *saved[EMPO_NODE_SAVED];   /* retained extra tensors (outputs, stats) */
    double f[EMPO_NODE_PARAMS];    /* op parameters */
    int64_t i[EMPO_NODE_PARAMS];
    int64_t out_shape[EMPO_MAX_DIMS];
    int out_ndim;
    int released;                  /* graph freed after backward */
    /* engine scratch */
    empo_tensor *pending;          /* accumulated grad of the output */
    int mark;
};

/* True when grad mode is on and any input requires grad. NULLs allowed. */
int empo_any_requires_grad(int n, empo_tensor *const *inputs);
/* Records node for `out` computed from inputs (only those that require grad
 * are kept). Returns the node so the op can save tensors and parameters,
 * or NULL (no error) when no gradient is needed. On allocation failure sets
 * the error and returns NULL with *status = EMPO_E_NOMEM. */
void empo_node_retain(empo_node *node);
void empo_node_release(empo_node *node);
empo_node *empo_node_record(const char *name, empo_backward_fn backward, empo_tensor *out, int n,
                            empo_tensor *const *inputs, int *status);
/* Saves t (retained) in slot k of node. Never pass the op's own output
 * here: output -> node -> output would be a reference cycle (a leak); use
 * empo_node_save_output, which keeps a detached alias of its memory. */
void empo_node_save(empo_node *node, int k, empo_tensor *t);
int empo_node_save_output(empo_node *node, int k, empo_tensor *out);
/* Sums grad (shape of broadcast result) down to shape (ndim, shape). */
int empo_reduce_to_shape(empo_tensor **out, empo_tensor *grad, int ndim, const int64_t *shape);

/* Offset (elements) of the element with row-major linear index `linear`
 * in a tensor of (ndim, shape) with the given strides. */
static inline int64_t empo_linear_offset(int64_t linear, int ndim, const int64_t *shape,
                                         const int64_t *strides) {
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0 && linear; d--) {
        int64_t q = linear / shape[d];
        off += (linear - q * shape[d]) * strides[d];
        linear = q;
    }
    return off;
}

/* ---- the sampling batch's cache (kv_cache.c) ---- */
/* Rows grouped by prefix row: order [B + 1], start [P + 2] (group p is
 * order[start[p] .. start[p+1])); prow NULL: one group per row. */
void empo_kv_group_rows(int64_t *order, int64_t *start, int64_t B, int64_t P, const int64_t *prow);

/* ---- kernels selection ---- */
int empo_use_reference(void);
int empo_omp_threads_for(int64_t work);   /* 1 for small work, else all */
/* Runs fn(ctx, lo, hi) over [0, n) in contiguous ranges: on every thread
 * when `work` (about the number of simple operations in all) is large
 * enough, else directly on this one. Use it instead of an OpenMP pragma in
 * ops that can be small: entering an OpenMP region costs ~0.4 us even with
 * one thread, which would dominate a small op. */
typedef void (*empo_range_fn)(void *ctx, int64_t lo, int64_t hi);
void empo_parallel_for(int64_t n, int64_t work, empo_range_fn fn, void *ctx);

#endif
