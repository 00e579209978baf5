/* dist.c — the ranks of a job and what they share (empo/dist.h).
 *
 * The backend is picked once, from the launcher's environment: Open MPI's
 * mpirun sets OMPI_COMM_WORLD_SIZE, Slurm's srun and other PMI launchers
 * PMI_SIZE or PMIX_RANK. Then libempo_mpi.so.0 (beside this library, or
 * EMPO_MPI_LIBRARY) is opened; without those variables the job is this
 * process alone and nothing of MPI is loaded.
 *
 * Gradients travel in one flat buffer: packed, all-reduced once, unpacked.
 * A parameter with no gradient sends zeros and a flag, so a parameter that
 * had one on any rank gets the sum everywhere and one that had none
 * anywhere keeps none (as one process would leave it). The exact mode
 * adds fixed-point integers instead, whose sum has no rounding and so no
 * order: one process and N ranks get the same bits. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base_internal.h"
#include "dist/dist_backend.h"
#include "tensor/tensor_internal.h"
#include "empo/dist.h"

/* exact mode's grid: 2^-36 (1.5e-11); a folded element beyond 2^20 in
 * magnitude, or a sum past int64, makes the reduced gradient NaN, which
 * the trainer's non-finite check skips like any other */
#define FIXED_SCALE 68719476736.0   /* 2^36 */
#define FIXED_BOUND 1048576.0       /* 2^20 */

static int none_init(int *rank, int *size, int *local_rank, int *local_size) {
    *rank = 0, *size = 1, *local_rank = 0, *local_size = 1;
    return 0;
}
static int none_ok(void) { return 0; }
static int none_allreduce(void *buf, int64_t n, int dtype) { return 0; }
static int none_broadcast(void *buf, int64_t bytes, int root) { return 0; }
static int none_allgather_i64(int64_t mine, int64_t *all) { all[0] = mine; return 0; }
static int none_allgatherv(const void *data, int64_t n, const int64_t *lens, void *out) {
    if (n > 0) memmove(out, data, (size_t)n);
    return 0;
}
static void none_abort(int status) {}
static void none_finalize(void) {}
static const char *none_why(void) { return ""; }

static const dist_backend none_backend = {
    "none", none_init, none_ok, none_allreduce, none_broadcast, none_allgather_i64, none_allgatherv,
    none_abort, none_finalize, none_why,
};

static struct {
    const dist_backend *b;
    int rank, size, local_rank, local_size, ended;
    float *flat;               /* the fast mode's packed gradients + flags */
    int64_t flat_n;
    int64_t *fixed;            /* the exact mode's accumulator + flags */
    int64_t fixed_n;
    int overflow;
} dist;

static const char *launcher(void) {
    if (getenv("OMPI_COMM_WORLD_SIZE")) return "mpirun (Open MPI)";
    if (getenv("PMIX_RANK")) return "a PMIx launcher";
    if (getenv("PMI_SIZE")) return "a PMI launcher (srun, mpiexec)";
    return NULL;
}

static const dist_backend *load_mpi(const char *how) {
    const char *path = getenv("EMPO_MPI_LIBRARY");
    char beside[4096];
    Dl_info self;
    if ((!path || !*path) && dladdr((void *)load_mpi, &self) && self.dli_fname) {
        const char *slash = strrchr(self.dli_fname, '/');
        int dir = slash ? (int)(slash - self.dli_fname) : 1;
        snprintf(beside, sizeof beside, "%.*s/libempo_mpi.so.0", dir, slash ? self.dli_fname : ".");
        path = beside;
    }
    /* NODELETE: the backend's exit handler must outlive a dlclose of libempo */
    void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
    if (!lib) {
        empo_fail(EMPO_E_STATE, "dist: launched by %s, but the MPI backend did not load (%s); this empo was built "
                  "without MPI: install libopenmpi-dev and rebuild", how, dlerror());
        return NULL;
    }
    const dist_backend *(*get)(void) = (const dist_backend *(*)(void))dlsym(lib, "empo_dist_mpi_backend");
    if (!get) {
        empo_fail(EMPO_E_STATE, "dist: %s holds no MPI backend", path);
        return NULL;
    }
    return get();
}

int empo_dist_init(void) {
    if (dist.b) return EMPO_OK;
    const char *how = launcher();
    const dist_backend *b = how ? load_mpi(how) : &none_backend;
    if (!b) return EMPO_E_STATE;
    if (b->init(&dist.rank, &dist.size, &dist.local_rank, &dist.local_size))
        return empo_fail(EMPO_E_STATE, "dist: %s", b->why());
    dist.b = b;
    return EMPO_OK;
}

/* every entry point joins the job first: a script that never called init
 * is one process */
static const dist_backend *backend(void) {
    if (!dist.b && empo_dist_init() != EMPO_OK) return NULL;
    return dist.b;
}

int empo_dist_rank(void) { return backend() ? dist.rank : 0; }
int empo_dist_size(void) { return backend() ? dist.size : 1; }
int empo_dist_local_rank(void) { return backend() ? dist.local_rank : 0; }
int empo_dist_local_size(void) { return backend() ? dist.local_size : 1; }
const char *empo_dist_backend(void) { return backend() ? dist.b->name : "none"; }

static int failed(const char *what) { return empo_fail(EMPO_E_STATE, "dist: %s: %s", what, dist.b->why()); }

int empo_dist_barrier(void) {
    if (!backend()) return EMPO_E_STATE;
    return dist.b->barrier() ? failed("barrier") : EMPO_OK;
}

static int allreduce(void *buf, int64_t n, int dtype, const char *what) {
    if (n < 0 || (n > 0 && !buf)) return empo_fail(EMPO_E_ARG, "dist: %s: a buffer of %lld elements", what, (long long)n);
    if (!backend()) return EMPO_E_STATE;
    if (dist.size == 1 || n == 0) return EMPO_OK;
    return dist.b->allreduce_sum(buf, n, dtype) ? failed(what) : EMPO_OK;
}

int empo_dist_allreduce_f64(double *buf, int64_t n) { return allreduce(buf, n, EMPO_DIST_F64, "allreduce_f64"); }
int empo_dist_allreduce_i64(int64_t *buf, int64_t n) { return allreduce(buf, n, EMPO_DIST_I64, "allreduce_i64"); }

int empo_dist_allreduce_f32(float *buf, int64_t n, int average) {
    int st = allreduce(buf, n, EMPO_DIST_F32, "allreduce_f32");
    if (st == EMPO_OK && average && dist.size > 1)
        for (int64_t i = 0; i < n; i++) buf[i] /= (float)dist.size;
    return st;
}

int empo_dist_broadcast(void *buf, int64_t bytes, int root) {
    if (!backend()) return EMPO_E_STATE;
    if (root < 0 || root >= dist.size)
        return empo_fail(EMPO_E_ARG, "dist: broadcast from rank %d of %d", root, dist.size);
    if (bytes < 0 || (bytes > 0 && !buf)) return empo_fail(EMPO_E_ARG, "dist: broadcast of %lld bytes", (long long)bytes);
    if (dist.size == 1 || bytes == 0) return EMPO_OK;
    return dist.b->broadcast(buf, bytes, root) ? failed("broadcast") : EMPO_OK;
}

int empo_dist_allgather_lengths(int64_t n, int64_t *lens) {
    if (!backend()) return EMPO_E_STATE;
    if (n < 0 || !lens) return empo_fail(EMPO_E_ARG, "dist: allgather_lengths: n %lld", (long long)n);
    return dist.b->allgather_i64(n, lens) ? failed("allgather_lengths") : EMPO_OK;
}

int empo_dist_allgatherv(const void *data, int64_t n, const int64_t *lens, void *out) {
    if (!backend()) return EMPO_E_STATE;
    if (!lens || (n > 0 && (!data || !out)) || lens[dist.rank] != n)
        return empo_fail(EMPO_E_ARG, "dist: allgatherv: this rank's %lld bytes are not lens[%d]", (long long)n, dist.rank);
    return dist.b->allgatherv(data, n, lens, out) ? failed("allgatherv") : EMPO_OK;
}

/* ---- gradients ---- */

static int check_params(int n, empo_tensor *const *params, const char *what, int64_t *total) {
    if (n < 0 || (n > 0 && !params)) return empo_fail(EMPO_E_ARG, "dist: %s: %d parameters", what, n);
    *total = 0;
    for (int i = 0; i < n; i++) {
        const empo_tensor *p = params[i];
        if (!p) return empo_fail(EMPO_E_ARG, "dist: %s: parameter %d is NULL", what, i);
        if (p->dtype != EMPO_F32 || empo_tensor_device(p) != EMPO_CPU)
            return empo_fail(EMPO_E_DTYPE, "dist: %s: parameter %d is %s; the gradients reduced here are f32 on "
                             "the CPU", what, i, empo_desc(p));
        const empo_tensor *g = p->grad;
        if (g && (g->dtype != EMPO_F32 || !empo_tensor_is_contiguous(g) || empo_tensor_numel(g) != empo_tensor_numel(p)))
            return empo_fail(EMPO_E_STATE, "dist: %s: the gradient of parameter %d is %s, not a contiguous f32 like "
                             "its parameter", what, i, empo_desc(g));
        *total += empo_tensor_numel(p);
    }
    return EMPO_OK;
}

static int grow(void **buf, int64_t *have, int64_t want, size_t elem) {
    if (*have >= want) return EMPO_OK;
    void *p = realloc(*buf, (size_t)want * elem);
    if (!p) return empo_fail(EMPO_E_NOMEM, "dist: a flat buffer of %lld bytes", (long long)want * (long long)elem);
    *buf = p, *have = want;
    return EMPO_OK;
}

/* the gradient of p, made if it has none (the reduction's result lands there) */
static float *grad_of(empo_tensor *p) {
    if (!p->grad && empo_tensor_empty(&p->grad, p->ndim, p->shape, EMPO_F32) != EMPO_OK) return NULL;
    if (p->grad->refcount > 1 || p->grad->storage->refcount > 1) {    /* shared: write a copy of our own */
        empo_tensor *c = NULL;
        if (empo_copy_as(&c, p->grad, EMPO_F32) != EMPO_OK) return NULL;
        empo_tensor_release(p->grad);
        p->grad = c;
    }
    return empo_tensor_data(p->grad);
}

static void drop_grad(empo_tensor *p) {
    empo_tensor_release(p->grad);
    p->grad = NULL;
}

int empo_dist_fold_grads(int n, empo_tensor *const *params) {
    int64_t total;
    int st = check_params(n, params, "fold_grads", &total);
    if (st != EMPO_OK) return st;
    if (dist.fixed_n < total + n) {           /* a new parameter list: a fresh accumulator */
        if ((st = grow((void **)&dist.fixed, &dist.fixed_n, total + n, sizeof(int64_t))) != EMPO_OK) return st;
        memset(dist.fixed, 0, (size_t)(total + n) * sizeof(int64_t));
    }
    int64_t *acc = dist.fixed, *flags = dist.fixed + total;
    for (int i = 0; i < n; i++) {
        empo_tensor *p = params[i];
        const int64_t m = empo_tensor_numel(p);
        if (p->grad) {
            const float *g = empo_tensor_data(p->grad);
            for (int64_t j = 0; j < m; j++) {
                const double x = (double)g[j];
                if (!(fabs(x) <= FIXED_BOUND) || __builtin_add_overflow(acc[j], llrint(x * FIXED_SCALE), &acc[j]))
                    dist.overflow = 1;
            }
            flags[i] = 1;
            drop_grad(p);
        }
        acc += m;
    }
    return EMPO_OK;
}

static int reduce_exact(int n, empo_tensor *const *params, int64_t total) {
    int st = grow((void **)&dist.fixed, &dist.fixed_n, total + n + 1, sizeof(int64_t));
    if (st != EMPO_OK) return st;
    int64_t *acc = dist.fixed, *flags = dist.fixed + total;
    flags[n] = dist.overflow;
    if ((st = allreduce(dist.fixed, total + n + 1, EMPO_DIST_I64, "reduce_grads")) != EMPO_OK) return st;
    const int overflow = flags[n] != 0;
    for (int i = 0; i < n; i++) {
        empo_tensor *p = params[i];
        const int64_t m = empo_tensor_numel(p);
        if (flags[i]) {
            float *g = grad_of(p);
            if (!g) return EMPO_E_NOMEM;
            for (int64_t j = 0; j < m; j++) g[j] = overflow ? NAN : (float)((double)acc[j] / FIXED_SCALE);
        }
        acc += m;
    }
    memset(dist.fixed, 0, (size_t)(total + n + 1) * sizeof(int64_t));
    dist.overflow = 0;
    return EMPO_OK;
}

static int reduce_fast(int n, empo_tensor *const *params, int64_t total) {
    int st = grow((void **)&dist.flat, &dist.flat_n, total + n, sizeof(float));
    if (st != EMPO_OK) return st;
    float *flat = dist.flat, *flags = dist.flat + total;
    for (int i = 0; i < n; i++) {
        const empo_tensor *p = params[i];
        const int64_t m = empo_tensor_numel(p);
        if (p->grad) memcpy(flat, empo_tensor_data(p->grad), (size_t)m * sizeof(float));
        else memset(flat, 0, (size_t)m * sizeof(float));
        flags[i] = p->grad ? 1.0f : 0.0f;
        flat += m;
    }
    if ((st = allreduce(dist.flat, total + n, EMPO_DIST_F32, "reduce_grads")) != EMPO_OK) return st;
    flat = dist.flat;
    for (int i = 0; i < n; i++) {
        empo_tensor *p = params[i];
        const int64_t m = empo_tensor_numel(p);
        if (flags[i] > 0) {
            float *g = grad_of(p);
            if (!g) return EMPO_E_NOMEM;
            memcpy(g, flat, (size_t)m * sizeof(float));
        }
        flat += m;
    }
    return EMPO_OK;
}

int empo_dist_reduce_grads(int n, empo_tensor *const *params, int exact) {
    int64_t total;
    int st = check_params(n, params, "reduce_grads", &total);
    if (st != EMPO_OK) return st;
    if (!backend()) return EMPO_E_STATE;
    if (exact) {
        for (int i = 0; i < n; i++)
            if (params[i]->grad)
                return empo_fail(EMPO_E_STATE, "dist: reduce_grads: parameter %d has a gradient that was not folded "
                                 "(exact mode: empo_dist_fold_grads after each backward)", i);
        return reduce_exact(n, params, total);
    }
    return dist.size == 1 ? EMPO_OK : reduce_fast(n, params, total);
}

int empo_dist_checksum(int n, empo_tensor *const *params, uint64_t *out) {
    if (n < 0 || (n > 0 && !params) || !out) return empo_fail(EMPO_E_ARG, "dist: checksum: %d parameters", n);
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        const empo_tensor *p = params[i];
        if (!p || !empo_tensor_is_contiguous(p) || empo_tensor_device(p) != EMPO_CPU)
            return empo_fail(EMPO_E_ARG, "dist: checksum: parameter %d is not a contiguous CPU tensor", i);
        const unsigned char *b = empo_tensor_data((empo_tensor *)p);
        const size_t bytes = (size_t)empo_tensor_numel(p) * empo_dtype_size(p->dtype);
        size_t j = 0;
        for (; j + 8 <= bytes; j += 8) {
            uint64_t w;
            memcpy(&w, b + j, 8);
            h = (h ^ w) * 1099511628211ull;
            h ^= h >> 29;
        }
        for (; j < bytes; j++) h = (h ^ b[j]) * 1099511628211ull;
    }
    *out = h;
    return EMPO_OK;
}

void empo_dist_end(int status) {
    if (!dist.b || dist.ended) return;
    dist.ended = 1;
    if (status != 0 && dist.size > 1) dist.b->abort(status);
    dist.b->finalize();
}
