/* dist_nccl.c — the sum of a GPU buffer over the ranks (libempo_nccl.so.0,
 * built with CUDA when NCCL is found): one communicator over every rank's
 * GPU, bootstrapped as llm.c does it: rank 0 makes NCCL's unique id and
 * the host backend (MPI) broadcasts it. The all-reduce runs on a stream
 * of its own; core/dist/dist.c synchronizes the compute stream before and
 * this waits for it after, so neither stream sees the other's half-done
 * work. */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include "dist/dist_backend.h"

static char why_text[512];
static ncclComm_t comm;
static cudaStream_t stream;

static int nccl_failed(const char *what, ncclResult_t r) {
    snprintf(why_text, sizeof why_text, "%s: %s", what, ncclGetErrorString(r));
    return 1;
}

static int cuda_failed(const char *what, cudaError_t e) {
    snprintf(why_text, sizeof why_text, "%s: %s", what, cudaGetErrorString(e));
    return 1;
}

static int nccl_init(int rank, int size, int (*broadcast)(void *buf, int64_t bytes, int root)) {
    ncclUniqueId id;
    ncclResult_t r;
    if (rank == 0 && (r = ncclGetUniqueId(&id)) != ncclSuccess) return nccl_failed("ncclGetUniqueId", r);
    if (broadcast(&id, (int64_t)sizeof id, 0)) {
        snprintf(why_text, sizeof why_text, "broadcasting NCCL's unique id failed");
        return 1;
    }
    cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) return cuda_failed("cudaStreamCreate", e);
    if ((r = ncclCommInitRank(&comm, size, id, rank)) != ncclSuccess) return nccl_failed("ncclCommInitRank", r);
    return 0;
}

static int nccl_allreduce_sum_f32(void *buf, int64_t n) {
    ncclResult_t r = ncclAllReduce(buf, buf, (size_t)n, ncclFloat32, ncclSum, comm, stream);
    if (r != ncclSuccess) return nccl_failed("ncclAllReduce", r);
    cudaError_t e = cudaStreamSynchronize(stream);
    return e == cudaSuccess ? 0 : cuda_failed("after ncclAllReduce", e);
}

static const char *nccl_why(void) { return why_text; }

static const dist_nccl nccl_api = {nccl_init, nccl_allreduce_sum_f32, nccl_why};

const dist_nccl *empo_dist_nccl(void);
const dist_nccl *empo_dist_nccl(void) { return &nccl_api; }
