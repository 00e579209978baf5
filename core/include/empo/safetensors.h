/* empo/safetensors.h — Hugging Face safetensors files: read (mmap), write
 * (atomic, byte-reproducible), sharded checkpoints (index.json).
 *
 * Format: 8 bytes little-endian header size N, N bytes of JSON
 * {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ...}, then the data area; offsets count
 * bytes from the start of the data area.
 *
 *     empo_safetensors *f;
 *     if (empo_safetensors_open(&f, "model.safetensors") != EMPO_OK)
 *         fprintf(stderr, "%s\n", empo_last_error());
 *     empo_tensor *w;
 *     empo_safetensors_get(&w, f, "model.norm.weight", EMPO_F32);
 *     empo_safetensors_close(f);         // w stays valid
 *
 * Reading validates the whole header before anything is trusted: header
 * size (at most 100,000,000 bytes and inside the file), JSON object,
 * metadata of strings, every entry's dtype, shape (non-negative integers,
 * overflow-checked) and data_offsets (end - begin == numel x dtype size,
 * inside the data area, no two tensors overlapping, no name twice). Any
 * failure is EMPO_E_IO with a message naming the file and the tensor.
 *
 * Names are listed sorted by bytes (strcmp), not in file order. */
#ifndef EMPO_SAFETENSORS_H
#define EMPO_SAFETENSORS_H
#ifndef EMPO_FFI
#include <stdint.h>
#endif
#include "empo/tensor.h"

typedef struct empo_safetensors empo_safetensors;
typedef struct empo_safetensors_index empo_safetensors_index;

/* ---- reading one file ---- */
int empo_safetensors_open(empo_safetensors **out, const char *path);
/* Tensors already taken from the file stay valid (they keep the mapping). */
void empo_safetensors_close(empo_safetensors *f);
const char *empo_safetensors_path(const empo_safetensors *f);
int64_t empo_safetensors_count(const empo_safetensors *f);
/* Name i (0 <= i < count) in sorted order; NULL when out of range. */
const char *empo_safetensors_name(const empo_safetensors *f, int64_t i);
/* Position of name in that order, or -1. */
int64_t empo_safetensors_find(const empo_safetensors *f, const char *name);
/* The dtype as written in the file ("BF16"). NULL when there is no such
 * tensor. */
const char *empo_safetensors_file_dtype(const empo_safetensors *f, const char *name);
/* dtype: the empo dtype, or -1 when empo has none (I8, I16, U16, U32, U64,
 * F8_*); ndim and shape (room for EMPO_MAX_DIMS) of the tensor. Any output
 * may be NULL. Fails for a missing name or more than EMPO_MAX_DIMS dims. */
int empo_safetensors_info(const empo_safetensors *f, const char *name, int *dtype, int *ndim,
                          int64_t *shape);
/* Byte range [begin, end) of the tensor inside the data area. */
int empo_safetensors_range(const empo_safetensors *f, const char *name, int64_t *begin,
                           int64_t *end);
/* The tensor `name`. dtype < 0 or equal to the file's dtype: a zero-copy
 * view of the mapping (a copy when the bytes are not aligned to the element
 * size). The mapping is private copy-on-write: writing into the view never
 * reaches the file, but later views of the same tensor from the same open
 * file see the change (take a clone to be safe). Another dtype: a
 * converted copy (e.g. BF16/F16 -> f32; I8, I16, U16, U32, U64 convert to
 * any empo dtype; u8 keeps empo's 0/1 convention). */
int empo_safetensors_get(empo_tensor **out, empo_safetensors *f, const char *name, int dtype);
/* __metadata__: count, key i (sorted), and the value of key (NULL if
 * absent). */
int64_t empo_safetensors_metadata_count(const empo_safetensors *f);
const char *empo_safetensors_metadata_key(const empo_safetensors *f, int64_t i);
const char *empo_safetensors_metadata(const empo_safetensors *f, const char *key);

/* ---- writing ----
 * Writes n named tensors (any empo dtype; non-contiguous ones in logical
 * order) and n_meta metadata pairs to path, atomically: the bytes go to
 * "<path>.tmp.<pid>", are fsync'ed, then renamed over path, so a reader or
 * a crash sees the old file or the new one, never a mix. Header keys are
 * sorted and the data laid out by element size (largest first) then name,
 * so every tensor is aligned and the same input gives the same bytes.
 * keys/values may be NULL when n_meta is 0. Names must be distinct valid
 * UTF-8 and not "__metadata__". */
int empo_safetensors_save(const char *path, int n, const char *const *names,
                          empo_tensor *const *tensors, int n_meta, const char *const *keys,
                          const char *const *values);
/* Hugging Face's sharded layout in directory dir (created if missing, one
 * level): when the tensors (in name order) fit in max_shard_bytes (or it is
 * <= 0), one file "<base>.safetensors"; else shards
 * "<base>-00001-of-0000K.safetensors" each holding at most max_shard_bytes
 * of tensor data (a bigger tensor gets a shard of its own) and
 * "<base>.safetensors.index.json" ({"metadata": {"total_size": bytes},
 * "weight_map": {name: shard}}), written last. Files of an earlier save with
 * the other layout (stale shards, index or single file of the same base)
 * are removed afterwards. n_shards (may be NULL) receives the number of
 * shards (1 for the single file). */
int empo_safetensors_save_sharded(const char *dir, const char *base, int n, const char *const *names,
                                  empo_tensor *const *tensors, int n_meta, const char *const *keys,
                                  const char *const *values, int64_t max_shard_bytes,
                                  int *n_shards);

/* ---- sharded checkpoints: model.safetensors.index.json ----
 * Reads and validates the weight_map (tensor -> shard file; shard names
 * must be plain file names in the index's directory). */
int empo_safetensors_index_open(empo_safetensors_index **out, const char *path);
void empo_safetensors_index_close(empo_safetensors_index *ix);
int64_t empo_safetensors_index_count(const empo_safetensors_index *ix);
/* Tensor name i, sorted; NULL when out of range. */
const char *empo_safetensors_index_name(const empo_safetensors_index *ix, int64_t i);
int64_t empo_safetensors_index_find(const empo_safetensors_index *ix, const char *name);
/* Path (index directory + shard file) of the shard holding tensor name;
 * NULL when the index does not list it. */
const char *empo_safetensors_index_file_of(const empo_safetensors_index *ix, const char *name);
/* The distinct shard paths, sorted. */
int64_t empo_safetensors_index_shard_count(const empo_safetensors_index *ix);
const char *empo_safetensors_index_shard(const empo_safetensors_index *ix, int64_t i);
/* metadata.total_size, or -1 when the index has none. */
int64_t empo_safetensors_index_total_size(const empo_safetensors_index *ix);

#endif
