/* sample_row.c (ref) — the naive sampler kernel: probabilities in double, every
 * token sorted by probability, each rule of core/include/empo/sample.h applied as
 * written. The oracle for kernels/cpu/sample_row.c. */
#include <math.h>
#include <stdlib.h>
#include "kernels/sample_row.h"

typedef struct { double p; int64_t id; } ranked;

/* most likely first, lower id first among ties */
static int by_prob(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

void empo_ref_sample_row(int64_t *id, float *logp, float *ref_logp, const float *x, int64_t V,
                         const empo_sampling *s, double u, void *scratch) {
    ranked *r = scratch;
    double m = -INFINITY;
    int bad = 0;
    for (int64_t j = 0; j < V; j++) {
        if (isnan(x[j]) || x[j] == INFINITY) bad = 1;
        if (x[j] > m) m = x[j];
    }
    *id = 0;
    if (bad || !isfinite(m)) { *logp = *ref_logp = NAN; return; }
    double z1 = 0.0;
    for (int64_t j = 0; j < V; j++) z1 += exp(x[j] - m);
    const double lse1 = m + log(z1);
    if (s->temperature == 0.0) {
        for (int64_t j = 0; j < V; j++) if (x[j] == m) { *id = j; break; }
        *logp = 0.0f;
        *ref_logp = (float)(x[*id] - lse1);
        return;
    }
    /* p_j = softmax(x / T)_j, unnormalised: exp((x_j - m) / T) */
    for (int64_t j = 0; j < V; j++) {
        r[j].p = exp((x[j] - m) / s->temperature);
        r[j].id = j;
    }
    qsort(r, (size_t)V, sizeof *r, by_prob);
    double cut = 0.0;   /* keep p >= cut */
    if (s->top_k > 0 && s->top_k < V) cut = r[s->top_k - 1].p;
    if (s->top_p < 1.0) {
        double kept = 0.0, acc = 0.0;
        for (int64_t i = 0; i < V && r[i].p >= cut; i++) kept += r[i].p;
        for (int64_t i = 0; i < V && r[i].p >= cut; i++) {
            acc += r[i].p;
            if (acc >= s->top_p * kept) { cut = r[i].p; break; }
        }
    }
    if (s->min_p > 0.0 && s->min_p * r[0].p > cut) cut = s->min_p * r[0].p;
    /* back to id order: p_j = exp((x_j - m) / T) again */
    double Zk = 0.0;
    for (int64_t j = 0; j < V; j++) {
        double p = exp((x[j] - m) / s->temperature);
        if (p >= cut) Zk += p;
    }
    double target = u * Zk, acc = 0.0;
    int64_t pick = -1;
    for (int64_t j = 0; j < V; j++) {
        double p = exp((x[j] - m) / s->temperature);
        if (p < cut || p == 0.0) continue;
        acc += p;
        pick = j;
        if (acc > target) break;
    }
    *id = pick;
    *logp = (float)((x[pick] - m) / s->temperature - log(Zk));
    *ref_logp = (float)(x[pick] - lse1);
}
