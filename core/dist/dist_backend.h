/* dist_backend.h — what a communication backend gives core/dist/dist.c.
 * The MPI one (core/dist/dist_mpi.c) lives in libempo_mpi.so.0, loaded
 * only when the process was launched by an MPI launcher. Every call
 * returns 0, or nonzero with why[] filled. */
#ifndef EMPO_DIST_BACKEND_H
#define EMPO_DIST_BACKEND_H
#include <stddef.h>
#include <stdint.h>

enum { EMPO_DIST_F32, EMPO_DIST_F64, EMPO_DIST_I64 };

typedef struct dist_backend {
    const char *name;
    int (*init)(int *rank, int *size, int *local_rank, int *local_size);
    int (*barrier)(void);
    int (*allreduce_sum)(void *buf, int64_t n, int dtype);   /* in place */
    int (*broadcast)(void *buf, int64_t bytes, int root);
    int (*allgather_i64)(int64_t mine, int64_t *all);
    int (*allgatherv)(const void *data, int64_t n, const int64_t *lens, void *out);
    void (*abort)(int status);
    void (*finalize)(void);
    const char *(*why)(void);                                 /* the last failure */
} dist_backend;

/* The sum of a device buffer over the ranks' GPUs (core/dist/dist_nccl.c,
 * libempo_nccl.so.0, built with CUDA): NCCL, its communicator bootstrapped
 * through the host backend's broadcast (rank 0's unique id). */
typedef struct dist_nccl {
    int (*init)(int rank, int size, int (*broadcast)(void *buf, int64_t bytes, int root));
    int (*allreduce_sum_f32)(void *device_buf, int64_t n);   /* in place; returns when done */
    const char *(*why)(void);
} dist_nccl;

#endif
