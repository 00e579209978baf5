/* tensor_internal.h — the tensor layer's interface to the layers above it
 * inside libempo (autograd, ops, io, generate): storage and file mappings,
 * the tensor struct, shape and dtype helpers, copies without autograd.
 * Not part of the public API. Below it: base and the kernels' threading. */
#ifndef EMPO_TENSOR_INTERNAL_H
#define EMPO_TENSOR_INTERNAL_H
#include <stdint.h>
#include <stddef.h>
#include "base/base_internal.h"
#include "kernels/kernels.h"

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

/* What a tensor knows of the node that produced it: a refcounted object
 * that the autograd layer defines (struct empo_node begins with one) and
 * that frees itself, so releasing a tensor needs nothing above this layer. */
typedef struct empo_node_ref {
    int refcount;
    void (*destroy)(struct empo_node_ref *self);
} empo_node_ref;
void empo_node_ref_release(empo_node_ref *r);

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
    struct empo_node *grad_fn;        /* producer node (non-leaves); starts with an empo_node_ref */
};

/* A fresh handle with no storage; shape copied, contiguous strides. */
empo_tensor *empo_tensor_alloc_handle(int ndim, const int64_t *shape, int dtype);
/* Contiguous new tensor, uninitialised (error set on failure). */
empo_tensor *empo_tensor_new(int ndim, const int64_t *shape, int dtype);
/* New tensor with x's shape (contiguous) on x's device, given dtype. */
empo_tensor *empo_tensor_new_like(const empo_tensor *x, int dtype);
/* A view handle of x's storage with given geometry (no autograd). */
empo_tensor *empo_tensor_view_of(const empo_tensor *x, int ndim, const int64_t *shape,
                                 const int64_t *strides, int64_t offset);
void empo_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
int64_t empo_shape_numel(int ndim, const int64_t *shape);
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
/* empo_check_tensor for an op that runs where its tensors live: t may be
 * on any device, but on the one of the op's first tensor (first, named
 * first_arg; t itself when it is the first). A mismatch names both. */
int empo_check_input(const char *op, const char *arg, const empo_tensor *t, unsigned dtype_mask,
                     const char *first_arg, const empo_tensor *first);
/* Broadcast shapes of a and b into out (ndim returned via out_ndim). */
int empo_broadcast_shapes(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                          int *out_ndim, int64_t *out_shape);
/* Strides of t seen as a tensor of shape (ndim, shape) after broadcasting
 * (0 on broadcast dims). */
void empo_broadcast_strides(const empo_tensor *t, int ndim, const int64_t *shape, int64_t *strides);
/* Read element i (flat, logical order) of any dtype as double: slow, for
 * references and tests. */
double empo_tensor_get_flat(const empo_tensor *t, int64_t i);
/* The end of an op: y goes to *out when st is EMPO_OK, else it is
 * released; returns st. */
static inline int empo_tensor_handover(empo_tensor **out, empo_tensor *y, int st) {
    if (st != EMPO_OK) {
        empo_tensor_release(y);
        return st;
    }
    *out = y;
    return EMPO_OK;
}
/* ---- devices (tensor_device.c) ----
 * A contiguous new tensor on a device (EMPO_CPU: empo_tensor_new). */
empo_tensor *empo_tensor_new_on(int ndim, const int64_t *shape, int dtype, int device);
/* x on `device` (a new reference when it is there already); no autograd.
 * Host to device and back; a device tensor's view comes down as the
 * contiguous tensor it shows. */
int empo_to_device_nograd(empo_tensor **out, empo_tensor *x, int device);
/* A contiguous host tensor with x's values (x itself when it already is one). */
int empo_to_host_nograd(empo_tensor **out, const empo_tensor *x);
/* dst (contiguous, on a device) := host (contiguous, same shape and dtype,
 * on the CPU), in one upload */
int empo_upload_into(empo_tensor *dst, const empo_tensor *host);
/* every byte of a contiguous device tensor 0, on the device */
int empo_device_zero(empo_tensor *t);
/* copy_ into a contiguous device tensor, through the host */
int empo_tensor_copy_to_device_(empo_tensor *dst, const empo_tensor *src);
/* "cpu", "cuda" */
const char *empo_device_name(int device);

/* Contiguous copy (same dtype), or a new reference when x already is
 * contiguous. Records no autograd. */
int empo_contiguous_nograd(empo_tensor **out, empo_tensor *x);
/* Contiguous copy of x converted to dtype (no autograd). */
int empo_copy_as(empo_tensor **out, const empo_tensor *x, int dtype);
/* Index tensor element as int64 (i32/i64/u8). */
int64_t empo_index_at(const empo_tensor *idx, int64_t flat);

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

/* The kernels an op on t runs: the CPU table chosen by ISA, or t's device's
 * (kernels/kernels.h). */
static inline const empo_kernel_table *empo_kernels_of(const empo_tensor *t) {
    const int device = empo_tensor_device(t);
    return device == EMPO_CPU ? empo_kernels() : empo_kernels_device(device);
}
static inline int empo_on_device(const empo_tensor *t) { return empo_tensor_device(t) != EMPO_CPU; }

#endif
