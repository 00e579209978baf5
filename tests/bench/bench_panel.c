/* bench_panel.c — the decode step's products (kernels/panel_gemm.h) on the
 * shapes of a decode step (M rows of activations, one per sequence,
 * against each weight matrix of the arith, tiny and small models) next to
 * oneDNN's sgemm of the same M x N x K, one thread, best of N: GFLOP/s of
 * the AVX2 table's tiles, of the AVX-512 table's (when the CPU has it),
 * of oneDNN, and the AVX-512 tiles as a share of oneDNN. Packing the
 * activations into panels is left out (the decode step's norms write
 * panels directly).
 *
 *     bench_panel [reps=200] */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "empo/empo.h"
#include "kernels/kernels.h"
#include "kernels/panel_gemm.h"

/* the AVX-512 table's builds (kernels/avx512/rename.h names them) */
empo_panel_linear_fn empo_k512_panel_linear;
void empo_k512_panel_pack(float *xp, const float *x, int64_t M, int64_t K, int64_t ldx, int64_t p0, int64_t p1);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *uniform(int64_t n, unsigned seed) {
    float *a = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) a[i] = (float)(((uint64_t)(i + seed) * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return a;
}

typedef struct { const char *model, *what; int64_t M, N, K; } shape;

static double gflops(const shape *s, double seconds) { return 2.0 * (double)(s->M * s->N * s->K) / seconds / 1e9; }

static double best_panel(empo_panel_linear_fn *f, const shape *s, const float *xp, const float *w, float *y, int reps) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        const double t0 = now();
        f(y, s->N, 0, xp, s->M, s->K, w, NULL, 0, s->N);
        const double dt = now() - t0;
        if (r > 0 && dt < best) best = dt;   /* r = 0 warms up */
    }
    return gflops(s, best);
}

static double best_onednn(const shape *s, const float *x, const float *w, float *y, int reps) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        const double t0 = now();
        dnnl_sgemm('N', 'T', s->M, s->N, s->K, 1.0f, x, s->K, w, s->K, 0.0f, y, s->N);   /* y = x w^T */
        const double dt = now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    return gflops(s, best);
}

int main(int argc, char **argv) {
    int reps = 200;
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "reps=", 5) == 0) reps = atoi(argv[i] + 5);
    const shape shapes[] = {
        {"arith", "q/o", 128, 128, 128}, {"arith", "k/v", 128, 64, 128}, {"arith", "gate/up", 128, 384, 128},
        {"arith", "down", 128, 128, 384}, {"tiny", "q/o", 64, 256, 256}, {"tiny", "gate/up", 64, 704, 256},
        {"tiny", "down", 64, 256, 704}, {"tiny", "head", 64, 512, 256}, {"small", "q/o", 64, 512, 512},
        {"small", "k/v", 64, 128, 512}, {"small", "gate/up", 64, 1408, 512}, {"small", "down", 64, 512, 1408},
        {"small", "head", 64, 4096, 512},
    };
    const int has512 = empo_kernels_named("avx512") != NULL;
    empo_set_num_threads(1);
    printf("decode-step products, GFLOP/s, 1 thread, best of %d; kernel tables: avx2%s\n", reps,
           has512 ? ", avx512" : " (this CPU has no AVX-512)");
    printf("%-6s %-8s %14s %8s %8s %8s %14s\n", "model", "weight", "M x N x K", "avx2", "avx512", "oneDNN",
           "avx512/oneDNN");
    double sum512 = 0, sumdnnl = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        float *x = uniform(s->M * s->K, 1), *w = uniform(s->N * s->K, 2), *y = malloc(sizeof(float) * (size_t)(s->M * s->N));
        float *xp = malloc(sizeof(float) * (size_t)(empo_panels(s->M) * EMPO_PANEL * s->K));
        empo_k_panel_pack(xp, x, s->M, s->K, s->K, 0, empo_panels(s->M));
        const double g2 = best_panel(empo_k_panel_linear, s, xp, w, y, reps);
        const double g5 = has512 ? best_panel(empo_k512_panel_linear, s, xp, w, y, reps) : 0.0;
        const double gd = best_onednn(s, x, w, y, reps);
        char dims[32];
        snprintf(dims, sizeof dims, "%lldx%lldx%lld", (long long)s->M, (long long)s->N, (long long)s->K);
        printf("%-6s %-8s %14s %8.1f %8.1f %8.1f %13.0f%%\n", s->model, s->what, dims, g2, g5, gd,
               has512 ? 100.0 * g5 / gd : 0.0);
        sum512 += g5, sumdnnl += gd;
        free(x), free(w), free(y), free(xp);
    }
    if (has512) printf("mean over the shapes: avx512 at %.0f%% of oneDNN\n", 100.0 * sum512 / sumdnnl);
    return 0;
}
