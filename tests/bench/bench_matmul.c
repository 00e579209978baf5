/* bench_matmul.c — matmul GFLOP/s through the runtime (empo_matmul: op
 * validation, output allocation, dispatch) next to oneDNN's sgemm called
 * directly and PyTorch (run as a child process), with 1 and 2 threads.
 * Best of N repetitions; ratios are what to read (the machine is noisy).
 * Usage: bench_matmul [path/to/matmul_torch.py] */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "empo/empo.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static empo_tensor *rand_matrix(int64_t r, int64_t c) {
    empo_tensor *t = NULL;
    int64_t s[2] = {r, c};
    empo_tensor_empty(&t, 2, s, EMPO_F32);
    float *p = empo_tensor_data(t);
    for (int64_t i = 0; i < r * c; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return t;
}

typedef struct { int64_t m, n, k; int reps; } shape;

static double bench_empo(const shape *s, empo_tensor *a, empo_tensor *b) {
    double best = 1e30;
    for (int r = 0; r <= s->reps; r++) {
        empo_tensor *c = NULL;
        double t0 = now();
        if (empo_matmul(&c, a, b) != EMPO_OK) { fprintf(stderr, "%s\n", empo_last_error()); exit(1); }
        double dt = now() - t0;
        empo_tensor_release(c);
        if (r > 0 && dt < best) best = dt;   /* r = 0 warms up */
    }
    return 2.0 * (double)(s->m * s->n * s->k) / best / 1e9;
}

static double bench_onednn(const shape *s, const float *a, const float *b, float *c) {
    double best = 1e30;
    for (int r = 0; r <= s->reps; r++) {
        double t0 = now();
        dnnl_sgemm('N', 'N', s->m, s->n, s->k, 1.0f, a, s->k, b, s->n, 0.0f, c, s->n);
        double dt = now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    return 2.0 * (double)(s->m * s->n * s->k) / best / 1e9;
}

int main(int argc, char **argv) {
    const char *torch_script = argc > 1 ? argv[1] : "tests/bench/matmul_torch.py";
    shape shapes[] = {{512, 512, 512, 20}, {1024, 1024, 1024, 10}, {2048, 2048, 2048, 4}, {4096, 1024, 256, 10}};
    int nshapes = sizeof shapes / sizeof *shapes, threads[2] = {1, 2};
    double torch_gf[4][2] = {{0}};
    char cmd[1024];
    int n = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s 1,2", torch_script);
    for (int i = 0; i < nshapes; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %lldx%lldx%lldx%d", (long long)shapes[i].m,
                      (long long)shapes[i].n, (long long)shapes[i].k, shapes[i].reps);
    FILE *p = popen(cmd, "r");
    long long m, nn, k;
    int t;
    double gf;
    while (p && fscanf(p, "%lld %lld %lld %d %lf", &m, &nn, &k, &t, &gf) == 5)
        for (int i = 0; i < nshapes; i++)
            if (shapes[i].m == m && shapes[i].n == nn && shapes[i].k == k) torch_gf[i][t - 1] = gf;
    if (p) pclose(p);

    printf("matmul GFLOP/s (best of N; M x N x K); kernel table %s (best here: %s)\n", empo_kernel_table_name(),
           empo_best_kernel_table());
    printf("%-18s %3s %10s %10s %10s %12s %12s\n", "shape", "thr", "empo", "oneDNN", "PyTorch", "empo/oneDNN",
           "empo/PyTorch");
    for (int i = 0; i < nshapes; i++) {
        const shape *s = &shapes[i];
        empo_tensor *a = rand_matrix(s->m, s->k), *b = rand_matrix(s->k, s->n);
        float *c = malloc(sizeof(float) * (size_t)(s->m * s->n));
        for (int ti = 0; ti < 2; ti++) {
            empo_set_num_threads(threads[ti]);
            double ge = bench_empo(s, a, b);
            double gd = bench_onednn(s, empo_tensor_data(a), empo_tensor_data(b), c);
            char name[32];
            snprintf(name, sizeof name, "%lldx%lldx%lld", (long long)s->m, (long long)s->n, (long long)s->k);
            double gt = torch_gf[i][ti];
            printf("%-18s %3d %10.1f %10.1f %10.1f %11.2fx %11.2fx\n", name, threads[ti], ge, gd, gt, ge / gd,
                   gt > 0 ? ge / gt : 0.0);
        }
        free(c);
        empo_tensor_release(a);
        empo_tensor_release(b);
    }
    return 0;
}
