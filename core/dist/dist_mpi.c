/* dist_mpi.c — the MPI backend of core/dist (libempo_mpi.so.0): Open MPI
 * on Debian, or any MPI-3 library. Loaded by dist.c only when a launcher
 * started the process. MPI counts are ints, so big buffers go in pieces.
 * Errors return (MPI_ERRORS_RETURN) with MPI's own words in why(); a
 * process leaving without empo_dist_end (an exit from deep inside a
 * script) aborts the job rather than leave the other ranks waiting. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include "dist/dist_backend.h"

static char why_text[512];
static int initialized_here, finalized;
static int my_rank;

static int fail(const char *what, int rc) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    snprintf(why_text, sizeof why_text, "%s: %.*s", what, len, text);
    return 1;
}

static void leave_without_end(void) {
    if (!initialized_here || finalized) return;
    fprintf(stderr, "empo: rank %d exited without ending its part of the job; stopping every rank\n", my_rank);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static int mpi_init(int *rank, int *size, int *local_rank, int *local_size) {
    int done = 0, rc;
    MPI_Initialized(&done);
    if (!done) {
        int provided = 0;
        /* only the thread that joined calls MPI; the kernels' threads never do */
        if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS) return fail("MPI_Init", rc);
        initialized_here = 1;
        atexit(leave_without_end);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    my_rank = *rank;
    MPI_Comm local;
    if ((rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &local)) != MPI_SUCCESS)
        return fail("MPI_Comm_split_type", rc);
    MPI_Comm_rank(local, local_rank);
    MPI_Comm_size(local, local_size);
    MPI_Comm_free(&local);
    return 0;
}

static int mpi_barrier(void) {
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : fail("MPI_Barrier", rc);
}

enum { PIECE = 1 << 28 };   /* elements per call */

static int mpi_allreduce_sum(void *buf, int64_t n, int dtype) {
    MPI_Datatype t = dtype == EMPO_DIST_F32 ? MPI_FLOAT : dtype == EMPO_DIST_F64 ? MPI_DOUBLE : MPI_INT64_T;
    const size_t elem = dtype == EMPO_DIST_F32 ? 4 : 8;
    for (int64_t at = 0; at < n; at += PIECE) {
        const int count = (int)(n - at < PIECE ? n - at : PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)at * elem, count, t, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return fail("MPI_Allreduce", rc);
    }
    return 0;
}

static int mpi_broadcast(void *buf, int64_t bytes, int root) {
    for (int64_t at = 0; at < bytes; at += PIECE) {
        const int count = (int)(bytes - at < PIECE ? bytes - at : PIECE);
        int rc = MPI_Bcast((char *)buf + at, count, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return fail("MPI_Bcast", rc);
    }
    return 0;
}

static int mpi_allgather_i64(int64_t mine, int64_t *all) {
    int rc = MPI_Allgather(&mine, 1, MPI_INT64_T, all, 1, MPI_INT64_T, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : fail("MPI_Allgather", rc);
}

static int mpi_allgatherv(const void *data, int64_t n, const int64_t *lens, void *out) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int *counts = malloc(sizeof(int) * (size_t)size * 2);
    if (!counts) return snprintf(why_text, sizeof why_text, "allgatherv: out of memory"), 1;
    int *displs = counts + size;
    int64_t at = 0;
    for (int r = 0; r < size; r++) {
        if (lens[r] < 0 || at + lens[r] > 0x7fffffff) {
            free(counts);
            snprintf(why_text, sizeof why_text, "allgatherv: the records come to more than 2 GB");
            return 1;
        }
        counts[r] = (int)lens[r], displs[r] = (int)at;
        at += lens[r];
    }
    int rc = MPI_Allgatherv(data, (int)n, MPI_BYTE, out, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
    free(counts);
    return rc == MPI_SUCCESS ? 0 : fail("MPI_Allgatherv", rc);
}

static void mpi_abort(int status) {
    fprintf(stderr, "empo: rank %d failed (status %d); stopping every rank\n", my_rank, status);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
}

static void mpi_finalize(void) {
    if (initialized_here && !finalized) MPI_Finalize();
    finalized = 1;
}

static const char *mpi_why(void) { return why_text; }

static const dist_backend mpi_backend = {
    "mpi", mpi_init, mpi_barrier, mpi_allreduce_sum, mpi_broadcast, mpi_allgather_i64, mpi_allgatherv,
    mpi_abort, mpi_finalize, mpi_why,
};

const dist_backend *empo_dist_mpi_backend(void);
const dist_backend *empo_dist_mpi_backend(void) { return &mpi_backend; }
