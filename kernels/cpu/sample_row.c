/* sample_row.c — the fast sampler kernel (f32): a max pass, an exp pass that
 * keeps the unnormalised probabilities e_j = exp((x_j - max) / T) (so the
 * most likely token has e = 1 exactly), the top-k / top-p cuts as a
 * threshold on e found by selection (expected O(V), no sort), then one walk
 * in id order to the drawn token. The naive version is in kernels/ref. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf. */
#pragma GCC optimize("no-trapping-math")
#include <math.h>
#include <string.h>
#include "kernels/fused.h"
#include "kernels/sample_row.h"

enum { CHUNK = 1024, SMALL = 32 };   /* f32 partial sums per chunk; insertion sort below SMALL */

/* max of x; *bad when x holds a NaN or +inf, or no finite value */
static float row_max(const float *x, int64_t V, int *bad) {
    float m = -INFINITY;
    int nonfinite = 0;
#pragma omp simd reduction(max : m) reduction(+ : nonfinite)
    for (int64_t j = 0; j < V; j++) {
        m = x[j] > m ? x[j] : m;
        nonfinite += (x[j] != x[j]) | (x[j] == INFINITY);
    }
    *bad = nonfinite != 0 || m == -INFINITY;
    return m;
}

/* e_j = exp((x_j - m) * inv_t) into e; returns sum e */
static double exp_sum(float *e, const float *x, int64_t V, float m, float inv_t) {
    double Z = 0.0;
    for (int64_t c0 = 0; c0 < V; c0 += CHUNK) {
        const int64_t c1 = V - c0 < CHUNK ? V : c0 + CHUNK;
        float z = 0.0f;
#pragma omp simd reduction(+ : z)
        for (int64_t j = c0; j < c1; j++) {
            e[j] = empo_k_expf((x[j] - m) * inv_t);
            z += e[j];
        }
        Z += z;
    }
    return Z;
}

/* sum of the e_j >= cut */
static double kept_sum(const float *e, int64_t V, float cut) {
    double Z = 0.0;
    for (int64_t c0 = 0; c0 < V; c0 += CHUNK) {
        const int64_t c1 = V - c0 < CHUNK ? V : c0 + CHUNK;
        float z = 0.0f;
#pragma omp simd reduction(+ : z)
        for (int64_t j = c0; j < c1; j++) z += e[j] >= cut ? e[j] : 0.0f;
        Z += z;
    }
    return Z;
}

static void swap(float *a, int64_t i, int64_t j) { float t = a[i]; a[i] = a[j]; a[j] = t; }

static float median3(float a, float b, float c) {
    if (a > b) { float t = a; a = b; b = t; }
    if (b > c) b = c;
    return a > b ? a : b;
}

/* Reorders a[lo, hi) (descending) into > pivot [lo, *g), == pivot [*g, *l),
 * < pivot [*l, hi). pivot is one of the values, so the middle is never
 * empty and every caller's range shrinks. */
static void partition3(float *a, int64_t lo, int64_t hi, float pivot, int64_t *g, int64_t *l) {
    int64_t gt = lo, i = lo, lt = hi;
    while (i < lt) {
        if (a[i] > pivot) swap(a, gt++, i++);
        else if (a[i] < pivot) swap(a, i, --lt);
        else i++;
    }
    *g = gt;
    *l = lt;
}

static float pivot_of(const float *a, int64_t lo, int64_t hi) {
    return median3(a[lo], a[lo + (hi - lo) / 2], a[hi - 1]);
}

/* the k-th largest of a[0, n), 1 <= k <= n (reorders a) */
static float kth_largest(float *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n, want = k - 1, g, l;
    while (hi - lo > 1) {
        const float pivot = pivot_of(a, lo, hi);
        partition3(a, lo, hi, pivot, &g, &l);
        if (want < g) hi = g;
        else if (want < l) return pivot;
        else lo = l;
    }
    return a[lo];
}

static void sort_desc(float *a, int64_t lo, int64_t hi) {
    for (int64_t i = lo + 1; i < hi; i++)
        for (int64_t j = i; j > lo && a[j] > a[j - 1]; j--) swap(a, j, j - 1);
}

/* The cut of the nucleus: the value v such that the values >= v are the
 * fewest largest of a[0, n) whose sum reaches `need` (every value tied
 * with the last one included). All of them when rounding leaves the total
 * short of need. Reorders a. */
static float nucleus_cut(float *a, int64_t n, double need) {
    int64_t lo = 0, hi = n, g, l;
    float lowest = 0.0f;   /* the smallest value taken so far */
    while (hi > lo) {
        if (hi - lo <= SMALL) {
            sort_desc(a, lo, hi);
            double acc = 0.0;
            for (int64_t i = lo; i < hi; i++) {
                acc += a[i];
                if (acc >= need) return a[i];
            }
            return a[hi - 1];
        }
        const float pivot = pivot_of(a, lo, hi);
        partition3(a, lo, hi, pivot, &g, &l);
        double above = 0.0;
        for (int64_t i = lo; i < g; i++) above += a[i];
        if (above >= need) { hi = g; continue; }
        const double with_ties = above + (double)pivot * (double)(l - g);
        if (with_ties >= need) return pivot;
        need -= with_ties;
        lowest = pivot;
        lo = l;
    }
    return lowest;
}

void empo_k_sample_row(int64_t *id, float *logp, float *ref_logp, const float *x, int64_t V,
                       const empo_sampling *s, double u, void *scratch) {
    float *e = scratch, *buf = e + V;   // (V), (V)
    int bad;
    const float m = row_max(x, V, &bad);
    *id = 0;
    if (bad) { *logp = *ref_logp = NAN; return; }
    if (s->temperature == 0.0) {
        int64_t j = 0;
        while (x[j] != m) j++;
        *id = j;
        *logp = 0.0f;
        *ref_logp = (float)-log(exp_sum(buf, x, V, m, 1.0f));
        return;
    }
    const float inv_t = (float)(1.0 / s->temperature);
    const double Z = exp_sum(e, x, V, m, inv_t);
    const double log_z1 = s->temperature == 1.0 ? log(Z) : log(exp_sum(buf, x, V, m, 1.0f));
    float cut = 0.0f;   /* keep e_j >= cut */
    double kept = Z;
    if (s->top_k > 0 && s->top_k < V) {
        memcpy(buf, e, sizeof(float) * (size_t)V);
        cut = kth_largest(buf, V, s->top_k);
        kept = kept_sum(e, V, cut);
    }
    if (s->top_p < 1.0) {
        int64_t n = 0;
        for (int64_t j = 0; j < V; j++)
            if (e[j] >= cut) buf[n++] = e[j];
        const float c = nucleus_cut(buf, n, s->top_p * kept);
        if (c > cut) cut = c;
    }
    if ((float)s->min_p > cut) cut = (float)s->min_p;   /* p_j / p_max = e_j, as e_max = 1 */
    const double Zc = cut > 0.0f ? kept_sum(e, V, cut) : Z;
    const double target = u * Zc;
    double acc = 0.0;
    int64_t pick = 0;
    for (int64_t j = 0; j < V; j++) {
        if (e[j] < cut || e[j] == 0.0f) continue;
        acc += e[j];
        pick = j;
        if (acc > target) break;   /* else rounding left u * Zc past the end: the last kept token */
    }
    *id = pick;
    *logp = (float)((double)((x[pick] - m) * inv_t) - log(Zc));
    *ref_logp = (float)((double)(x[pick] - m) - log_z1);
}

int empo_k_sample_rows(int64_t *ids, float *logp, float *ref_logp, const float *logits, int64_t N, int64_t V,
                       int64_t stride, const empo_sampling *s, const double *u, int64_t *bad) {
    return empo_sample_rows_cpu(empo_k_sample_row, ids, logp, ref_logp, logits, N, V, stride, s, u, bad);
}
