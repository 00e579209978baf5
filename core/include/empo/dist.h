/* empo/dist.h — more than one process (core/dist/): which rank this is,
 * collectives over all ranks, and the reduction of the gradients.
 *
 * The backend is chosen from how the process was launched: under mpirun
 * or srun (Open MPI's, PMI's or PMIx's environment) the MPI backend,
 * libempo_mpi.so.0 beside this library, built when CMake found MPI;
 * otherwise "none": one process, rank 0 of 1, every collective a no-op.
 * Collectives are called by every rank in the same order, from the thread
 * that called empo_dist_init. */
#ifndef EMPO_DIST_H
#define EMPO_DIST_H
#include <stdint.h>
#include "empo/tensor.h"

/* Joins the job (idempotent). A process launched by an MPI launcher with
 * an empo built without MPI is an error that says so. */
int empo_dist_init(void);
int empo_dist_rank(void);
int empo_dist_size(void);
/* rank and count of the ranks on this machine (threads per rank follow) */
int empo_dist_local_rank(void);
int empo_dist_local_size(void);
/* "none" or "mpi" */
const char *empo_dist_backend(void);

int empo_dist_barrier(void);
/* in place, the sum over the ranks (f64: small statistics; i64: counts) */
int empo_dist_allreduce_f64(double *buf, int64_t n);
int empo_dist_allreduce_i64(int64_t *buf, int64_t n);
/* in place, the sum or (average != 0) the mean over the ranks */
int empo_dist_allreduce_f32(float *buf, int64_t n, int average);
int empo_dist_broadcast(void *buf, int64_t bytes, int root);
/* Gathering records of different lengths on every rank: lens[size] gets
 * each rank's n, then out (sum of lens bytes) the records in rank order. */
int empo_dist_allgather_lengths(int64_t n, int64_t *lens);
int empo_dist_allgatherv(const void *data, int64_t n, const int64_t *lens, void *out);

/* The gradients of n f32 parameters summed over the ranks, in one flat
 * buffer and one all-reduce. A parameter that has a gradient on any rank
 * has the sum on every rank; one that has none anywhere keeps none.
 * exact = 0: the f32 sum (equal on every rank; equal to one process's to
 * rounding). exact = 1: the sum of what empo_dist_fold_grads gathered, in
 * 64-bit fixed point (2^-32 units), which no order of additions changes:
 * the same gradients whatever the number of ranks. Parameters on a GPU:
 * NCCL sums them on the device when libempo_nccl loads (several ranks, or
 * EMPO_DIST_NCCL=1), otherwise (and in exact mode) they go through host
 * memory. */
int empo_dist_reduce_grads(int n, empo_tensor *const *params, int exact);
/* How the last reduce_grads of a device's gradients went: "nccl" (summed
 * where they lie), "host" (through host memory and the host backend) or
 * "" (none yet). */
const char *empo_dist_device_path(void);
/* Exact mode: adds each parameter's gradient, rounded to the fixed-point
 * grid, into this process's accumulator and drops the gradient. Call it
 * after each micro-batch's backward (on every rank count alike). */
int empo_dist_fold_grads(int n, empo_tensor *const *params);
/* A 64-bit hash of the parameters' bytes (in order): equal weights give
 * equal checksums, so ranks compare them to prove lockstep. */
int empo_dist_checksum(int n, empo_tensor *const *params, uint64_t *out);

/* Ends the job's part in this process: status 0 leaves cleanly (the MPI
 * backend finalizes), anything else stops every rank (MPI_Abort), so a
 * rank's error never leaves the others waiting in a collective. */
void empo_dist_end(int status);
#endif
