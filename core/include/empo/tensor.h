/* empo/tensor.h — n-dimensional tensors: storage, shape, strides, views.
 *
 * A tensor is a refcounted handle onto a refcounted storage (device-tagged
 * memory). Views (view, transpose, permute, narrow, expand, ...) share the
 * storage and differ only in shape/strides/offset. Shapes are outermost
 * first, as in PyTorch. Strides and offsets count elements, not bytes.
 *
 *     int64_t shape[2] = {2, 3};
 *     empo_tensor *t;
 *     empo_tensor_zeros(&t, 2, shape, EMPO_F32);
 *     ...
 *     empo_tensor_release(t);
 *
 * Functions returning a tensor through `out` hand the caller one reference. */
#ifndef EMPO_TENSOR_H
#define EMPO_TENSOR_H
#ifndef EMPO_FFI
#include <stddef.h>
#include <stdint.h>
#endif

typedef struct empo_tensor empo_tensor;

typedef enum empo_dtype {
    EMPO_F32 = 0,
    EMPO_F64 = 1,
    EMPO_BF16 = 2,
    EMPO_F16 = 3,
    EMPO_I32 = 4,
    EMPO_I64 = 5,
    EMPO_U8 = 6        /* masks and booleans */
} empo_dtype;

typedef enum empo_device { EMPO_CPU = 0, EMPO_CUDA = 1 } empo_device;

enum { EMPO_MAX_DIMS = 8 };

/* --- creation (contiguous, on the CPU) --- */
int empo_tensor_empty(empo_tensor **out, int ndim, const int64_t *shape, int dtype);
/* empty, in `device`'s memory (EMPO_CPU, EMPO_CUDA) without a host copy on
 * the way; EMPO_E_DEVICE naming why when that device cannot be used */
int empo_tensor_empty_on(empo_tensor **out, int ndim, const int64_t *shape, int dtype, int device);
int empo_tensor_zeros(empo_tensor **out, int ndim, const int64_t *shape, int dtype);
int empo_tensor_full(empo_tensor **out, int ndim, const int64_t *shape, int dtype, double value);
/* Copies numel values from `data`, which holds elements of `src_dtype`
 * (converted to `dtype`). */
int empo_tensor_from_buffer(empo_tensor **out, int ndim, const int64_t *shape, int dtype,
                            const void *data, int src_dtype);
/* 0..n-1 as a 1-d tensor. */
int empo_tensor_arange(empo_tensor **out, int64_t n, int dtype);

/* --- lifetime --- */
void empo_tensor_retain(empo_tensor *t);
void empo_tensor_release(empo_tensor *t);

/* --- inspection --- */
int empo_tensor_ndim(const empo_tensor *t);
int64_t empo_tensor_size(const empo_tensor *t, int dim);    /* dim may be negative */
int64_t empo_tensor_stride(const empo_tensor *t, int dim);
int64_t empo_tensor_offset(const empo_tensor *t);
int64_t empo_tensor_numel(const empo_tensor *t);
int empo_tensor_dtype(const empo_tensor *t);
int empo_tensor_device(const empo_tensor *t);
int empo_tensor_is_contiguous(const empo_tensor *t);
/* Pointer to the first element (offset applied). Valid while t lives. */
void *empo_tensor_data(const empo_tensor *t);
const char *empo_dtype_name(int dtype);
int empo_dtype_size(int dtype);
/* "[2 x 3] f32" into buf (always NUL-terminated); returns buf. */
const char *empo_tensor_describe(const empo_tensor *t, char *buf, int buflen);
/* True when a and b share storage. */
int empo_tensor_shares_storage(const empo_tensor *a, const empo_tensor *b);

/* --- element access (no autograd) --- */
/* Reads every element, in logical row-major order, as doubles into `dst`
 * (numel entries). */
int empo_tensor_read_f64(const empo_tensor *t, double *dst);
int empo_tensor_item(const empo_tensor *t, double *value);        /* numel must be 1 */
int empo_tensor_get(const empo_tensor *t, const int64_t *index, double *value);
int empo_tensor_set(empo_tensor *t, const int64_t *index, double value);
/* In place, no autograd: fill with value / copy src (broadcast) into dst. */
int empo_tensor_fill_(empo_tensor *t, double value);
int empo_tensor_copy_(empo_tensor *dst, const empo_tensor *src);

/* --- views (autograd-aware; share storage) --- */
/* shape may contain one -1, inferred. view needs compatible strides;
 * reshape copies when it must. */
int empo_view(empo_tensor **out, empo_tensor *x, int ndim, const int64_t *shape);
int empo_reshape(empo_tensor **out, empo_tensor *x, int ndim, const int64_t *shape);
int empo_transpose(empo_tensor **out, empo_tensor *x, int dim0, int dim1);
int empo_permute(empo_tensor **out, empo_tensor *x, int ndim, const int *dims);
/* elements start..start+length-1 of dim */
int empo_narrow(empo_tensor **out, empo_tensor *x, int dim, int64_t start, int64_t length);
/* python-style x[start:stop:step] on dim; step >= 1 */
int empo_slice(empo_tensor **out, empo_tensor *x, int dim, int64_t start, int64_t stop, int64_t step);
/* x[index] on dim; removes dim */
int empo_select(empo_tensor **out, empo_tensor *x, int dim, int64_t index);
int empo_expand(empo_tensor **out, empo_tensor *x, int ndim, const int64_t *shape);
int empo_unsqueeze(empo_tensor **out, empo_tensor *x, int dim);
int empo_squeeze(empo_tensor **out, empo_tensor *x, int dim);
int empo_contiguous(empo_tensor **out, empo_tensor *x);   /* new ref to x if already contiguous */
int empo_clone(empo_tensor **out, empo_tensor *x);        /* always copies */
/* x on `device` (EMPO_CPU, EMPO_CUDA): a new reference when it is there
 * already, else a contiguous copy there; the gradient flows back to x's
 * device. Fails (EMPO_E_DEVICE) naming the reason when the device cannot
 * be used. Ops take tensors of one device; reading a device tensor's
 * elements (read_f64, item, get) copies them to the host first. */
int empo_to(empo_tensor **out, empo_tensor *x, int device);
int empo_to_dtype(empo_tensor **out, empo_tensor *x, int dtype);

#endif
