/* decode_ab.c — the C decode step of two builds in one process, taking
 * turns call by call: the working tree's (libempo) against another
 * revision's kernels, compiled beside it with every symbol renamed old_*
 * (tests/bench/decode_ab.sh does that). On these shared machines the speed
 * drifts by tens of percent within a minute, so two processes run one
 * after the other cannot tell a 3% change; turns in one process can.
 *
 *     decode_ab CONFIG [own=N] [calls=N] [threads=N] [same=1]
 *
 * CONFIG is a workload of tests/bench/generate_bench.lua (tiny, small,
 * arith) at a step whose rows have `own` positions of their own (default:
 * half the new tokens). Random weights and cache, the same for both. Prints
 * the mean and median step time of each and the largest difference of
 * their logits; with same=1 exits 1 unless the logits are the same bits
 * (an A/A run: the tool measures what it says). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/decode_step.h"
#include "kernels/team.h"

void old_empo_k_decode_step(float *logits, float *scratch, const empo_decode_model *m, const empo_decode_batch *b);
int64_t old_empo_decode_scratch_floats(const empo_decode_model *m, int64_t rows);

typedef struct {
    const char *name;
    int64_t D, L, Hq, Hkv, F, V, prompts, n, plen, fresh;
} workload;

static const workload workloads[] = {
    {"tiny", 256, 4, 4, 2, 704, 512, 8, 8, 32, 96},
    {"small", 512, 8, 8, 2, 1408, 4096, 8, 8, 32, 96},
    {"arith", 128, 3, 4, 2, 384, 80, 16, 8, 100, 40},
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t lcg = 88172645463325252ull;

/* n floats uniform in [-scale/2, scale/2), 64-byte aligned */
static float *uniform(int64_t n, float scale) {
    float *a = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64);
    if (!a) {
        fprintf(stderr, "decode_ab: out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = ((float)(lcg >> 40) / (float)(1 << 24) - 0.5f) * scale;
    }
    return a;
}

static int64_t *indices(int64_t n) {
    int64_t *a = calloc((size_t)n, sizeof(int64_t));
    if (!a) exit(2);
    return a;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *option(int argc, char **argv, const char *key, const char *fallback) {
    const size_t k = strlen(key);
    for (int i = 2; i < argc; i++)
        if (!strncmp(argv[i], key, k) && argv[i][k] == '=') return argv[i] + k + 1;
    return fallback;
}

int main(int argc, char **argv) {
    const workload *c = NULL;
    for (size_t i = 0; argc > 1 && i < sizeof workloads / sizeof workloads[0]; i++)
        if (!strcmp(argv[1], workloads[i].name)) c = &workloads[i];
    if (!c) {
        fprintf(stderr, "usage: decode_ab tiny|small|arith [own=N] [calls=N] [threads=N] [same=1]\n");
        return 2;
    }
    const int64_t own = atoll(option(argc, argv, "own", "-1")), calls = atoll(option(argc, argv, "calls", "200"));
    const int threads = atoi(option(argc, argv, "threads", "2")), same = atoi(option(argc, argv, "same", "0"));
    const int64_t Dh = c->D / c->Hq, B = c->prompts * c->n, S = c->fresh, Sp = c->plen, P = c->prompts;
    const int64_t col = own >= 0 && own < S ? own : S / 2;

    empo_decode_model m = {.L = c->L, .D = c->D, .Hq = c->Hq, .Hkv = c->Hkv, .Dh = Dh, .F = c->F, .V = c->V,
                           .slots = P, .Sp = Sp, .S = S, .threads = threads, .theta = 10000.0, .norm_eps = 1e-6f};
    m.embed = m.head = uniform(c->V * c->D, 1.0f);
    m.norm = uniform(c->D, 2.0f);
    float *rope = uniform((Sp + S) * Dh, 0.0f);
    empo_decode_rope_table(rope, &m);
    m.rope = rope;
    empo_decode_layer *layer = calloc((size_t)c->L, sizeof *layer);
    const int64_t qd = c->Hq * Dh, kd = c->Hkv * Dh;
    for (int64_t l = 0; l < c->L; l++) {
        empo_decode_layer *y = &layer[l];
        y->input_norm = uniform(c->D, 2.0f), y->post_norm = uniform(c->D, 2.0f);
        y->wq = uniform(qd * c->D, 0.1f), y->wk = uniform(kd * c->D, 0.1f), y->wv = uniform(kd * c->D, 0.1f);
        y->bq = uniform(qd, 0.1f), y->bk = uniform(kd, 0.1f), y->bv = uniform(kd, 0.1f);
        y->wo = uniform(c->D * qd, 0.1f);
        y->wg = uniform(c->F * c->D, 0.1f), y->wu = uniform(c->F * c->D, 0.1f), y->wd = uniform(c->D * c->F, 0.1f);
        y->input_eps = y->post_eps = 1e-6f;
        y->pk = uniform(P * c->Hkv * Sp * Dh, 1.0f), y->pv = uniform(P * c->Hkv * Sp * Dh, 1.0f);
        y->k = uniform(B * c->Hkv * S * Dh, 1.0f), y->v = uniform(B * c->Hkv * S * Dh, 1.0f);
    }
    m.layer = layer;

    int64_t *ids = indices(B), *pos = indices(B), *cols = indices(B), *prow = indices(B), *plen = indices(P);
    int64_t *order = indices(B), *start = indices(P + 1), *lens = indices(B);
    for (int64_t b = 0; b < B; b++)
        ids[b] = b % c->V, cols[b] = col, pos[b] = Sp + col, prow[b] = b / c->n, order[b] = b;
    for (int64_t p = 0; p <= P; p++) start[p] = p * c->n;
    for (int64_t p = 0; p < P; p++) plen[p] = Sp;
    const size_t words = (size_t)empo_team_words(threads) * sizeof(uint64_t);
    uint64_t *claims[2] = {aligned_alloc(64, (words + 63) / 64 * 64), aligned_alloc(64, (words + 63) / 64 * 64)};
    memset(claims[0], 0, words), memset(claims[1], 0, words);
    const empo_decode_batch batch[2] = {{B, ids, pos, cols, prow, plen, order, start, lens, claims[0]},
                                        {B, ids, pos, cols, prow, plen, order, start, lens, claims[1]}};
    float *scratch[2] = {uniform(old_empo_decode_scratch_floats(&m, B), 0.0f),
                         uniform(empo_decode_scratch_floats(&m, B), 0.0f)};
    float *logits[2] = {uniform(B * c->V, 0.0f), uniform(B * c->V, 0.0f)};

    double *t[2] = {calloc((size_t)calls, sizeof(double)), calloc((size_t)calls, sizeof(double))}, sum[2] = {0, 0};
    for (int64_t r = -10; r < calls; r++)   /* 10 warm-up turns */
        for (int k = 0; k < 2; k++) {
            const double t0 = now();
            if (k) empo_k_decode_step(logits[1], scratch[1], &m, &batch[1]);
            else old_empo_k_decode_step(logits[0], scratch[0], &m, &batch[0]);
            if (r >= 0) t[k][r] = now() - t0, sum[k] += t[k][r];
        }
    double diff = 0.0;
    for (int64_t i = 0; i < B * c->V; i++) diff = fmax(diff, fabs((double)logits[0][i] - logits[1][i]));
    qsort(t[0], (size_t)calls, sizeof(double), by_value);
    qsort(t[1], (size_t)calls, sizeof(double), by_value);
    printf("the AVX2 table's decode step (both revisions' kernels/cpu built for x86-64-v3)\n");
    printf("%s, %lld rows with %lld own positions, %d threads, %lld calls each:\n", c->name, (long long)B,
           (long long)col, threads, (long long)calls);
    printf("  old: mean %.1f us, median %.1f us\n  new: mean %.1f us, median %.1f us\n", 1e6 * sum[0] / calls,
           1e6 * t[0][calls / 2], 1e6 * sum[1] / calls, 1e6 * t[1][calls / 2]);
    printf("  old / new: %.3f (means), %.3f (medians); largest logit difference %.3g\n", sum[0] / sum[1],
           t[0][calls / 2] / t[1][calls / 2], diff);
    return same && diff != 0.0 ? 1 : 0;
}
