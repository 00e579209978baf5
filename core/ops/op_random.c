/* op_random.c — tensor draws from a Philox generator (empo/rng.h): rand,
 * randn, randint, multinomial. The stream's layout (which words each
 * element takes) is described in base/rng.c; every element is computed
 * from its own words, so results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/parallel.h"
#include "tensor/tensor_internal.h"

/* ---- tensor draws: one tiled driver, one transform per distribution ---- */
enum { RNG_TILE = 512, RNG_MAX_WORDS = 2 };

/* Turns the words of m consecutive elements into values at dst. */
typedef void (*rng_transform)(const uint32_t *w, int64_t m, void *dst, const void *arg);

static void draw_uniform(const uint32_t *w, int64_t m, void *dst, const void *arg) {
    float *y = dst;
    for (int64_t i = 0; i < m; i++) y[i] = empo_u24(w[i]);
}

/* Box-Muller, cosine branch only, so each element depends on its own two
 * words (the sine branch would tie elements in pairs and break split
 * draws). u1 is in (0, 1]: never log(0); the tail reaches 6.7 sigma. */
static void draw_normal(const uint32_t *w, int64_t m, void *dst, const void *arg) {
    float *y = dst;
    for (int64_t i = 0; i < m; i++) {
        float u1 = (float)(((double)w[2 * i] + 0.5) * 0x1p-32);
        float u2 = empo_u24(w[2 * i + 1]);
        y[i] = sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
    }
}

/* low + floor(x * range / 2^64) for a 64-bit x: no modulo; each value's
 * probability is off from 1/range by less than 2^-64 (Lemire's rejection
 * step would make the words used per element data-dependent). */
static void draw_int(const uint32_t *w, int64_t m, void *dst, const void *arg) {
    const int64_t *lim = arg;   /* {low, high} */
    uint64_t range = (uint64_t)lim[1] - (uint64_t)lim[0];
    int64_t *y = dst;
    for (int64_t i = 0; i < m; i++) {
        uint64_t x = ((uint64_t)w[2 * i] << 32) | w[2 * i + 1];
        uint64_t k = (uint64_t)(((unsigned __int128)x * range) >> 64);
        y[i] = (int64_t)((uint64_t)lim[0] + k);
    }
}

static void rng_run(empo_rng *r, int64_t n, int words_each, rng_transform fn, char *dst, size_t esize,
                    const void *arg) {
    uint64_t start = r->counter;
    int64_t ntiles = (n + RNG_TILE - 1) / RNG_TILE;
    #pragma omp parallel for num_threads(empo_omp_threads_for(n * 8)) schedule(static)
    for (int64_t t = 0; t < ntiles; t++) {
        uint32_t w[RNG_TILE * RNG_MAX_WORDS];
        int64_t i0 = t * RNG_TILE, m = n - i0 < RNG_TILE ? n - i0 : RNG_TILE;
        empo_philox_words(r, start + (uint64_t)i0 * (uint64_t)words_each, m * words_each, w);
        fn(w, m, dst + (size_t)i0 * esize, arg);
    }
    r->counter = start + (uint64_t)n * (uint64_t)words_each;
}

static int draw(const char *op, empo_tensor **out, empo_rng *r, int ndim, const int64_t *shape, int dtype,
                int words_each, rng_transform fn, const void *arg) {
    if (!out || !r) return empo_fail(EMPO_E_ARG, "%s: NULL %s", op, out ? "generator" : "output pointer");
    if (ndim < 0 || ndim > EMPO_MAX_DIMS || (ndim > 0 && !shape))
        return empo_fail(EMPO_E_ARG, "%s: bad shape (ndim %d)", op, ndim);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) return empo_fail(EMPO_E_ARG, "%s: negative size %lld in dim %d", op, (long long)shape[d], d);
    empo_tensor *t = empo_tensor_new(ndim, shape, dtype);
    if (!t) return EMPO_E_NOMEM;
    rng_run(r, empo_tensor_numel(t), words_each, fn, empo_tensor_data(t), (size_t)empo_dtype_size(dtype), arg);
    *out = t;
    return EMPO_OK;
}

int empo_rand(empo_tensor **out, empo_rng *r, int ndim, const int64_t *shape) {
    return draw("rand", out, r, ndim, shape, EMPO_F32, 1, draw_uniform, NULL);
}

int empo_randn(empo_tensor **out, empo_rng *r, int ndim, const int64_t *shape) {
    return draw("randn", out, r, ndim, shape, EMPO_F32, 2, draw_normal, NULL);
}

int empo_randint(empo_tensor **out, empo_rng *r, int64_t low, int64_t high, int ndim, const int64_t *shape) {
    if (high <= low)
        return empo_fail(EMPO_E_ARG, "randint: empty range [%lld, %lld): need low < high", (long long)low,
                         (long long)high);
    int64_t lim[2] = {low, high};
    return draw("randint", out, r, ndim, shape, EMPO_I64, 2, draw_int, lim);
}

/* ---- multinomial ---- */

/* Checks one row of probabilities; counts its positive entries. */
static int check_row(const float *p, int64_t V, int64_t row, int64_t *npos) {
    double sum = 0;
    *npos = 0;
    for (int64_t j = 0; j < V; j++) {
        if (!isfinite(p[j]))
            return empo_fail(EMPO_E_NUMERIC, "multinomial: probability %g at row %lld, column %lld is not finite",
                             (double)p[j], (long long)row, (long long)j);
        if (p[j] < 0)
            return empo_fail(EMPO_E_ARG, "multinomial: probability %g at row %lld, column %lld is negative",
                             (double)p[j], (long long)row, (long long)j);
        sum += p[j];
        *npos += p[j] > 0;
    }
    if (sum <= 0) return empo_fail(EMPO_E_ARG, "multinomial: row %lld of probabilities sums to zero", (long long)row);
    return EMPO_OK;
}

/* With replacement: inverse CDF. The first j with cdf[j] > u * total is
 * never a zero-probability entry (its cdf equals its predecessor's). */
static void sample_row_replace(const empo_rng *r, uint64_t w0, const float *p, int64_t V, int64_t num,
                               double *cdf, int64_t *y) {
    double acc = 0;
    int64_t last_pos = 0;
    for (int64_t j = 0; j < V; j++) {
        acc += p[j];
        cdf[j] = acc;
        if (p[j] > 0) last_pos = j;
    }
    uint32_t w[2 * RNG_TILE];
    for (int64_t k0 = 0; k0 < num; k0 += RNG_TILE) {
        int64_t m = num - k0 < RNG_TILE ? num - k0 : RNG_TILE;
        empo_philox_words(r, w0 + 2 * (uint64_t)k0, 2 * m, w);
        for (int64_t k = 0; k < m; k++) {
            double target = empo_u53(w[2 * k], w[2 * k + 1]) * acc;
            int64_t lo = 0, hi = V - 1;
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (cdf[mid] > target) hi = mid; else lo = mid + 1;
            }
            /* target can round up to the total: fall back to the last positive entry */
            y[k0 + k] = cdf[lo] > target ? lo : last_pos;
        }
    }
}

typedef struct { double key; int64_t idx; } race_entry;

static int race_less(race_entry a, race_entry b) { return a.key < b.key || (a.key == b.key && a.idx < b.idx); }

static void heap_sift_down(race_entry *h, int64_t n, int64_t i) {
    for (;;) {
        int64_t l = 2 * i + 1, big = i;
        if (l < n && race_less(h[big], h[l])) big = l;
        if (l + 1 < n && race_less(h[big], h[l + 1])) big = l + 1;
        if (big == i) return;
        race_entry t = h[i]; h[i] = h[big]; h[big] = t;
        i = big;
    }
}

/* Without replacement: the exponential race. Entry j finishes at E_j / p_j
 * with E_j ~ Exp(1); the order of the first `num` finishers has exactly the
 * law of drawing one at a time without replacement. A max-heap keeps the
 * num earliest; heapsort then lists them in finishing order. */
static void sample_row_race(const empo_rng *r, uint64_t w0, const float *p, int64_t V, int64_t num,
                            race_entry *h, int64_t *y) {
    int64_t n = 0;
    uint32_t w[2 * RNG_TILE];
    for (int64_t j0 = 0; j0 < V; j0 += RNG_TILE) {
        int64_t m = V - j0 < RNG_TILE ? V - j0 : RNG_TILE;
        empo_philox_words(r, w0 + 2 * (uint64_t)j0, 2 * m, w);
        for (int64_t k = 0; k < m; k++) {
            if (!(p[j0 + k] > 0)) continue;
            race_entry e = {-log1p(-empo_u53(w[2 * k], w[2 * k + 1])) / p[j0 + k], j0 + k};
            if (n < num) {
                h[n++] = e;
                if (n == num)
                    for (int64_t i = num / 2 - 1; i >= 0; i--) heap_sift_down(h, num, i);
            } else if (race_less(e, h[0])) {
                h[0] = e;
                heap_sift_down(h, num, 0);
            }
        }
    }
    for (int64_t end = num - 1; end >= 0; end--) {   /* n == num: checked by the caller */
        y[end] = h[0].idx;
        h[0] = h[end];
        heap_sift_down(h, end, 0);
    }
}

int empo_multinomial(empo_tensor **out, empo_rng *r, empo_tensor *probs, int64_t num, int replacement) {
    if (!out || !r) return empo_fail(EMPO_E_ARG, "multinomial: NULL %s", out ? "generator" : "output pointer");
    EMPO_TRY(empo_check_tensor("multinomial", "probs", probs, EMPO_DT_FLOAT));
    if (probs->ndim != 1 && probs->ndim != 2)
        return empo_fail(EMPO_E_SHAPE, "multinomial: probs %s must be [V] or [N, V]", empo_desc(probs));
    int64_t N = probs->ndim == 2 ? probs->shape[0] : 1, V = probs->shape[probs->ndim - 1];
    if (V < 1) return empo_fail(EMPO_E_SHAPE, "multinomial: probs %s has no categories", empo_desc(probs));
    if (num < 1) return empo_fail(EMPO_E_ARG, "multinomial: num %lld < 1", (long long)num);
    if (!replacement && num > V)
        return empo_fail(EMPO_E_ARG, "multinomial: cannot draw %lld without replacement from %lld categories",
                         (long long)num, (long long)V);
    empo_tensor *pc = NULL;
    EMPO_TRY(empo_contiguous_nograd(&pc, probs));
    const float *p = empo_tensor_data(pc);
    for (int64_t i = 0; i < N; i++) {   /* everything is checked before any word is consumed */
        int64_t npos;
        int st = check_row(p + i * V, V, i, &npos);
        if (st == EMPO_OK && !replacement && npos < num)
            st = empo_fail(EMPO_E_ARG, "multinomial: cannot draw %lld without replacement from row %lld, which has "
                           "%lld nonzero probabilities", (long long)num, (long long)i, (long long)npos);
        if (st != EMPO_OK) { empo_tensor_release(pc); return st; }
    }
    int64_t oshape[2] = {N, num};
    empo_tensor *t = probs->ndim == 2 ? empo_tensor_new(2, oshape, EMPO_I64) : empo_tensor_new(1, &num, EMPO_I64);
    if (!t) { empo_tensor_release(pc); return EMPO_E_NOMEM; }
    int64_t *y = empo_tensor_data(t);
    /* row i owns words start + i*per_row .., so rows can run on any thread */
    uint64_t start = r->counter, per_row = 2 * (uint64_t)(replacement ? num : V);
    int nomem = 0;
    #pragma omp parallel num_threads(empo_omp_threads_for(N * (replacement ? V + num : V) * 4))
    {
        void *scratch = malloc(replacement ? (size_t)V * sizeof(double) : (size_t)num * sizeof(race_entry));
        if (!scratch) {
            #pragma omp atomic write
            nomem = 1;
        }
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < N; i++) {
            if (!scratch) continue;
            if (replacement) sample_row_replace(r, start + (uint64_t)i * per_row, p + i * V, V, num, scratch, y + i * num);
            else sample_row_race(r, start + (uint64_t)i * per_row, p + i * V, V, num, scratch, y + i * num);
        }
        free(scratch);
    }
    empo_tensor_release(pc);
    if (nomem) {
        empo_tensor_release(t);
        return empo_fail(EMPO_E_NOMEM, "multinomial: out of memory for %lld categories", (long long)V);
    }
    r->counter = start + (uint64_t)N * per_row;
    *out = t;
    return EMPO_OK;
}
