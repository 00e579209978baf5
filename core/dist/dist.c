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
#include "kernels/kernels.h"
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
    float *stage;              /* a device gradient's host copy */
    int64_t stage_n;
    const dist_nccl *nccl;     /* a device's all-reduce (libempo_nccl), once loaded */
    int nccl_tried;
    void *dflat;               /* its flat device buffer */
    int64_t dflat_n;
    const char *device_path;   /* empo_dist_device_path */
    int overflow;
} dist;

static const char *launcher(void) {
    if (getenv("OMPI_COMM_WORLD_SIZE")) return "mpirun (Open MPI)";
    if (getenv("PMIX_RANK")) return "a PMIx launcher";
    if (getenv("PMI_SIZE")) return "a PMI launcher (srun, mpiexec)";
    return NULL;
}

static const dist_backend *load_mpi(const char *how) {
    char path[4096];
    /* NODELETE: the backend's exit handler must outlive a dlclose of libempo */
    void *lib = empo_open_beside("EMPO_MPI_LIBRARY", "libempo_mpi.so.0", RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE, path,
                                 sizeof path);
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

static int grow(void **buf, int64_t *have, int64_t want, size_t elem) {
    if (*have >= want) return EMPO_OK;
    void *p = realloc(*buf, (size_t)want * elem);
    if (!p) return empo_fail(EMPO_E_NOMEM, "dist: a flat buffer of %lld bytes", (long long)want * (long long)elem);
    *buf = p, *have = want;
    return EMPO_OK;
}

/* f32 parameters, all on one device (*device), with contiguous f32
 * gradients where they have one; *total their elements */
static int check_params(int n, empo_tensor *const *params, const char *what, int64_t *total, int *device) {
    if (n < 0 || (n > 0 && !params)) return empo_fail(EMPO_E_ARG, "dist: %s: %d parameters", what, n);
    *total = 0;
    *device = n > 0 && params[0] ? empo_tensor_device(params[0]) : EMPO_CPU;
    for (int i = 0; i < n; i++) {
        const empo_tensor *p = params[i];
        if (!p) return empo_fail(EMPO_E_ARG, "dist: %s: parameter %d is NULL", what, i);
        if (p->dtype != EMPO_F32)
            return empo_fail(EMPO_E_DTYPE, "dist: %s: parameter %d is %s; the gradients reduced here are f32",
                             what, i, empo_desc(p));
        if (empo_tensor_device(p) != *device)
            return empo_fail(EMPO_E_DEVICE, "dist: %s: parameter %d is %s, parameter 0 %s: one device for all",
                             what, i, empo_desc(p), empo_desc(params[0]));
        const empo_tensor *g = p->grad;
        if (g && (g->dtype != EMPO_F32 || !empo_tensor_is_contiguous(g) || empo_tensor_numel(g) != empo_tensor_numel(p) ||
                  empo_tensor_device(g) != *device))
            return empo_fail(EMPO_E_STATE, "dist: %s: the gradient of parameter %d is %s, not a contiguous f32 like "
                             "its parameter %s", what, i, empo_desc(g), empo_desc(p));
        *total += empo_tensor_numel(p);
    }
    return EMPO_OK;
}

/* ---- a device's gradients: staged through the host, or NCCL ---- */

static const empo_device_api *device_api(int device) {
    const empo_kernel_table *k = device == EMPO_CPU ? NULL : empo_kernels_device(device);
    return k ? k->device : NULL;
}

/* host floats of a gradient: itself on the CPU, a download into scratch on a device */
static const float *host_floats(const empo_tensor *g, float **scratch, int64_t *cap) {
    const int64_t m = empo_tensor_numel(g);
    if (empo_tensor_device(g) == EMPO_CPU) return empo_tensor_data((empo_tensor *)g);
    if (grow((void **)scratch, cap, m, sizeof(float)) != EMPO_OK) return NULL;
    const empo_device_api *dev = device_api(empo_tensor_device(g));
    if (!dev || dev->download(*scratch, empo_tensor_data((empo_tensor *)g), (size_t)m * sizeof(float))) {
        empo_fail(EMPO_E_DEVICE, "dist: a gradient's download: %s", dev ? dev->last_error() : "no device");
        return NULL;
    }
    return *scratch;
}


/* the gradient of p, made if it has none (the reduction's result lands there) */
static float *grad_of(empo_tensor *p) {
    if (!p->grad && !(p->grad = empo_tensor_new_on(p->ndim, p->shape, EMPO_F32, empo_tensor_device(p)))) return NULL;
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

/* p's gradient := m host floats (an upload on a device) */
static int store_grad(empo_tensor *p, const float *vals) {
    float *g = grad_of(p);
    if (!g) return EMPO_E_NOMEM;
    const size_t bytes = (size_t)empo_tensor_numel(p) * sizeof(float);
    if (empo_tensor_device(p) == EMPO_CPU) {
        memcpy(g, vals, bytes);
        return EMPO_OK;
    }
    const empo_device_api *dev = device_api(empo_tensor_device(p));
    if (!dev || dev->upload(g, vals, bytes))
        return empo_fail(EMPO_E_DEVICE, "dist: a gradient's upload: %s", dev ? dev->last_error() : "no device");
    return EMPO_OK;
}

/* The exact mode's accumulator for total elements of n parameters: their
 * fixed-point sums, a flag per parameter and the overflow flag; zero when
 * fresh (a rank with no micro-batch reduces it without any fold) and
 * zeroed again after each reduction. */
static int fixed_accumulator(int64_t total, int n) {
    const int64_t want = total + n + 1;
    if (dist.fixed_n >= want) return EMPO_OK;
    int st = grow((void **)&dist.fixed, &dist.fixed_n, want, sizeof(int64_t));
    if (st == EMPO_OK) memset(dist.fixed, 0, (size_t)want * sizeof(int64_t));
    return st;
}

int empo_dist_fold_grads(int n, empo_tensor *const *params) {
    int64_t total;
    int device;
    int st = check_params(n, params, "fold_grads", &total, &device);
    if (st != EMPO_OK || (st = fixed_accumulator(total, n)) != EMPO_OK) return st;
    int64_t *acc = dist.fixed, *flags = dist.fixed + total;
    for (int i = 0; i < n; i++) {
        empo_tensor *p = params[i];
        const int64_t m = empo_tensor_numel(p);
        if (p->grad) {
            const float *g = host_floats(p->grad, &dist.stage, &dist.stage_n);
            if (!g) return EMPO_E_DEVICE;
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
    int st = fixed_accumulator(total, n);
    if (st != EMPO_OK) return st;
    int64_t *acc = dist.fixed, *flags = dist.fixed + total;
    flags[n] = dist.overflow;
    if ((st = allreduce(dist.fixed, total + n + 1, EMPO_DIST_I64, "reduce_grads")) != EMPO_OK) return st;
    const int overflow = flags[n] != 0;
    for (int i = 0; i < n; i++) {
        empo_tensor *p = params[i];
        const int64_t m = empo_tensor_numel(p);
        if (flags[i]) {
            if ((st = grow((void **)&dist.stage, &dist.stage_n, m, sizeof(float))) != EMPO_OK) return st;
            for (int64_t j = 0; j < m; j++) dist.stage[j] = overflow ? NAN : (float)((double)acc[j] / FIXED_SCALE);
            if ((st = store_grad(p, dist.stage)) != EMPO_OK) return st;
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
        const float *g = p->grad ? host_floats(p->grad, &dist.stage, &dist.stage_n) : NULL;
        if (p->grad && !g) return EMPO_E_DEVICE;
        if (g) memcpy(flat, g, (size_t)m * sizeof(float));
        else memset(flat, 0, (size_t)m * sizeof(float));
        flags[i] = p->grad ? 1.0f : 0.0f;
        flat += m;
    }
    if ((st = allreduce(dist.flat, total + n, EMPO_DIST_F32, "reduce_grads")) != EMPO_OK) return st;
    flat = dist.flat;
    for (int i = 0; i < n; i++) {
        empo_tensor *p = params[i];
        if (flags[i] > 0 && (st = store_grad(p, flat)) != EMPO_OK) return st;
        flat += empo_tensor_numel(p);
    }
    return EMPO_OK;
}

/* ---- NCCL: a device's gradients summed where they lie ---- */

static int host_broadcast(void *buf, int64_t bytes, int root) { return dist.b->broadcast(buf, bytes, root); }

/* libempo_nccl, loaded the first time a device's gradients are summed over
 * several ranks (or EMPO_DIST_NCCL=1: one rank through NCCL, as
 * tests/device/check.sh runs it); without it they go through the host */
static int use_nccl(void) {
    const char *force = getenv("EMPO_DIST_NCCL");
    if (dist.size == 1 && !(force && *force == '1')) return 0;
    if (dist.nccl_tried) return dist.nccl != NULL;
    dist.nccl_tried = 1;
    char path[4096];
    void *lib = empo_open_beside("EMPO_NCCL_LIBRARY", "libempo_nccl.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE, path,
                                 sizeof path);
    const dist_nccl *(*get)(void) = lib ? (const dist_nccl *(*)(void))dlsym(lib, "empo_dist_nccl") : NULL;
    const dist_nccl *nc = get ? get() : NULL;
    if (nc && nc->init(dist.rank, dist.size, host_broadcast) == 0) {
        dist.nccl = nc;
        return 1;
    }
    fprintf(stderr, "empo: dist: NCCL is not available (%s); the GPU's gradients are summed through the host\n",
            nc ? nc->why() : lib ? "libempo_nccl holds no NCCL backend" : dlerror());
    return 0;
}

static int reduce_nccl(int n, empo_tensor *const *params, int64_t total, int device) {
    const empo_device_api *dev = device_api(device);
    if (!dev) return empo_fail(EMPO_E_DEVICE, "dist: no device %d", device);
    if (dist.dflat_n < total) {
        if (dist.dflat) dev->release(dist.dflat);
        if (!(dist.dflat = dev->alloc((size_t)total * sizeof(float)))) {
            dist.dflat_n = 0;
            return empo_fail(EMPO_E_NOMEM, "dist: a flat device buffer of %lld floats: %s", (long long)total,
                             dev->last_error());
        }
        dist.dflat_n = total;
    }
    int st = grow((void **)&dist.flat, &dist.flat_n, n, sizeof(float));
    if (st != EMPO_OK) return st;
    float *flags = dist.flat, *flat = dist.dflat;
    for (int i = 0; i < n; i++) {                  /* packed on the compute stream */
        const empo_tensor *p = params[i];
        const size_t bytes = (size_t)empo_tensor_numel(p) * sizeof(float);
        if (p->grad ? dev->copy(flat, empo_tensor_data(p->grad), bytes) : dev->zero(flat, bytes))
            return empo_fail(EMPO_E_DEVICE, "dist: packing the gradients: %s", dev->last_error());
        flags[i] = p->grad ? 1.0f : 0.0f;
        flat += empo_tensor_numel(p);
    }
    if ((st = allreduce(flags, n, EMPO_DIST_F32, "reduce_grads")) != EMPO_OK) return st;
    if (dev->synchronize()) return empo_fail(EMPO_E_DEVICE, "dist: before NCCL: %s", dev->last_error());
    if (dist.nccl->allreduce_sum_f32(dist.dflat, total)) return empo_fail(EMPO_E_STATE, "dist: %s", dist.nccl->why());
    flat = dist.dflat;
    for (int i = 0; i < n; i++) {
        empo_tensor *p = params[i];
        if (flags[i] > 0) {
            float *g = grad_of(p);
            if (!g) return EMPO_E_NOMEM;
            if (dev->copy(g, flat, (size_t)empo_tensor_numel(p) * sizeof(float)))
                return empo_fail(EMPO_E_DEVICE, "dist: unpacking the gradients: %s", dev->last_error());
        }
        flat += empo_tensor_numel(p);
    }
    return EMPO_OK;
}

int empo_dist_reduce_grads(int n, empo_tensor *const *params, int exact) {
    int64_t total;
    int device;
    int st = check_params(n, params, "reduce_grads", &total, &device);
    if (st != EMPO_OK) return st;
    if (!backend()) return EMPO_E_STATE;
    if (exact) {
        for (int i = 0; i < n; i++)
            if (params[i]->grad)
                return empo_fail(EMPO_E_STATE, "dist: reduce_grads: parameter %d has a gradient that was not folded "
                                 "(exact mode: empo_dist_fold_grads after each backward)", i);
        if (device != EMPO_CPU) dist.device_path = "host";
        return reduce_exact(n, params, total);
    }
    if (device != EMPO_CPU && use_nccl()) {
        dist.device_path = "nccl";
        return reduce_nccl(n, params, total, device);
    }
    if (device != EMPO_CPU) dist.device_path = "host";
    return dist.size == 1 ? EMPO_OK : reduce_fast(n, params, total);
}

const char *empo_dist_device_path(void) { return dist.device_path ? dist.device_path : ""; }

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
