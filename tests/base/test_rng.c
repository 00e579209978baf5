/* test_rng.c — Philox known answers, determinism (seeds, streams, split
 * draws, thread counts), moments of rand/randn, randint range and
 * uniformity, multinomial frequencies (chi-square) and its errors.
 * All draws use fixed seeds; thresholds are written down below. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

/* Random123's kat_vectors for philox4x32_10: counter words c0..c3, key words k0 k1, output. */
static void test_philox_kat(void) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int t = 0; t < 3; t++) {
        const uint32_t *k = kat[t];
        uint32_t out[4];
        /* our mapping: key = k1:k0, counter_lo = c1:c0, counter_hi = c3:c2 */
        empo_philox4x32(((uint64_t)k[5] << 32) | k[4], ((uint64_t)k[3] << 32) | k[2], ((uint64_t)k[1] << 32) | k[0],
                        out);
        for (int i = 0; i < 4; i++)
            check_report(__FILE__, __LINE__, out[i] == k[6 + i], "KAT %d word %d: %08x, want %08x", t, i, out[i],
                         k[6 + i]);
    }
}

static empo_rng *rng(uint64_t seed, uint64_t stream) {
    empo_rng *r = NULL;
    CHECK_OK(empo_rng_new(&r, seed, stream));
    return r;
}

static int same_bytes(const empo_tensor *a, const empo_tensor *b) {
    int64_t n = empo_tensor_numel(a);
    return n == empo_tensor_numel(b) && empo_tensor_dtype(a) == empo_tensor_dtype(b) &&
           memcmp(empo_tensor_data(a), empo_tensor_data(b), (size_t)n * (size_t)empo_dtype_size(empo_tensor_dtype(a))) == 0;
}

typedef int (*draw_fn)(empo_tensor **out, empo_rng *r, int64_t n);
static int d_rand(empo_tensor **o, empo_rng *r, int64_t n) { return empo_rand(o, r, 1, &n); }
static int d_randn(empo_tensor **o, empo_rng *r, int64_t n) { return empo_randn(o, r, 1, &n); }
static int d_randint(empo_tensor **o, empo_rng *r, int64_t n) { return empo_randint(o, r, -5, 1000, 1, &n); }

/* draws of n1 then n2 equal one draw of n1 + n2 (element by element) */
static void check_split(draw_fn fn, int64_t n1, int64_t n2, int words_each) {
    empo_rng *a = rng(77, 3), *b = rng(77, 3);
    empo_tensor *x1 = NULL, *x2 = NULL, *y = NULL;
    CHECK_OK(fn(&x1, a, n1));
    CHECK_OK(fn(&x2, a, n2));
    CHECK_OK(fn(&y, b, n1 + n2));
    int es = empo_dtype_size(empo_tensor_dtype(y));
    const char *yd = empo_tensor_data(y);
    CHECK(memcmp(empo_tensor_data(x1), yd, (size_t)(n1 * es)) == 0);
    CHECK(memcmp(empo_tensor_data(x2), yd + n1 * es, (size_t)(n2 * es)) == 0);
    uint64_t ca, cb;
    empo_rng_get_state(a, NULL, NULL, &ca);
    empo_rng_get_state(b, NULL, NULL, &cb);
    CHECK(ca == cb && ca == (uint64_t)((n1 + n2) * words_each));
    empo_tensor_release(x1); empo_tensor_release(x2); empo_tensor_release(y);
    empo_rng_free(a); empo_rng_free(b);
}

static void test_determinism(void) {
    int64_t n = 1000;
    empo_rng *a = rng(1234, 0), *b = rng(1234, 0), *c = rng(1234, 1), *d = rng(1235, 0);
    empo_tensor *xa, *xb, *xc, *xd;
    CHECK_OK(empo_randn(&xa, a, 1, &n));
    CHECK_OK(empo_randn(&xb, b, 1, &n));
    CHECK_OK(empo_randn(&xc, c, 1, &n));
    CHECK_OK(empo_randn(&xd, d, 1, &n));
    CHECK(same_bytes(xa, xb));
    CHECK(!same_bytes(xa, xc));   /* another stream */
    CHECK(!same_bytes(xa, xd));   /* another seed */
    /* a saved state replays the draw */
    uint64_t seed, stream, counter;
    empo_rng_get_state(a, &seed, &stream, &counter);
    CHECK(seed == 1234 && stream == 0 && counter == 2000);
    empo_tensor *x1, *x2;
    CHECK_OK(empo_rand(&x1, a, 1, &n));
    empo_rng_set_state(c, seed, stream, counter);
    CHECK_OK(empo_rand(&x2, c, 1, &n));
    CHECK(same_bytes(x1, x2));
    empo_tensor_release(xa); empo_tensor_release(xb); empo_tensor_release(xc); empo_tensor_release(xd);
    empo_tensor_release(x1); empo_tensor_release(x2);
    empo_rng_free(a); empo_rng_free(b); empo_rng_free(c); empo_rng_free(d);
    /* splits at odd places, including across Philox blocks and tiles */
    check_split(d_rand, 10, 7, 1);
    check_split(d_rand, 1001, 3333, 1);
    check_split(d_randn, 5, 6, 2);
    check_split(d_randn, 513, 2000, 2);
    check_split(d_randint, 3, 700, 2);
    /* uniform() shares the stream: two words per call */
    empo_rng *u = rng(9, 9);
    double u1 = empo_rng_uniform(u);
    empo_rng_get_state(u, NULL, NULL, &counter);
    CHECK(counter == 2 && u1 >= 0 && u1 < 1);
    empo_rng_free(u);
}

/* Big draws run on several threads; the result must not depend on how many. */
static void test_threads(void) {
    int64_t n = 1 << 20, ps[2] = {64, 1000};
    empo_tensor *x[2], *y[2], *z[2], *m[2], *probs = NULL;
    CHECK_OK(empo_tensor_full(&probs, 2, ps, EMPO_F32, 1.0));
    for (int t = 0; t < 2; t++) {
        empo_set_num_threads(t + 1);
        empo_rng *r = rng(42, 7);
        CHECK_OK(empo_randn(&x[t], r, 1, &n));
        CHECK_OK(empo_rand(&y[t], r, 1, &n));
        CHECK_OK(empo_randint(&z[t], r, 0, 50000, 1, &n));
        CHECK_OK(empo_multinomial(&m[t], r, probs, 8, t));   /* both modes, same stream position */
        empo_rng_free(r);
    }
    empo_set_num_threads(2);
    CHECK(same_bytes(x[0], x[1]));
    CHECK(same_bytes(y[0], y[1]));
    CHECK(same_bytes(z[0], z[1]));
    /* different modes, so compare each against a 1-thread redo */
    for (int t = 0; t < 2; t++) {
        empo_set_num_threads(1);
        empo_rng *r = rng(42, 7);
        empo_rng_set_state(r, 42, 7, (uint64_t)n * 5);
        empo_tensor *again = NULL;
        CHECK_OK(empo_multinomial(&again, r, probs, 8, t));
        CHECK(same_bytes(again, m[t]));
        empo_tensor_release(again);
        empo_rng_free(r);
    }
    empo_set_num_threads(2);
    for (int t = 0; t < 2; t++) {
        empo_tensor_release(x[t]); empo_tensor_release(y[t]); empo_tensor_release(z[t]); empo_tensor_release(m[t]);
    }
    empo_tensor_release(probs);
}

static void test_moments(void) {
    int64_t n = 1000000;
    empo_rng *r = rng(2024, 0);
    empo_tensor *u, *z;
    CHECK_OK(empo_rand(&u, r, 1, &n));
    CHECK_OK(empo_randn(&z, r, 1, &n));
    const float *up = empo_tensor_data(u), *zp = empo_tensor_data(z);
    double s = 0, s2 = 0, zs = 0, zs2 = 0, zs4 = 0;
    float umin = 1, umax = 0;
    int64_t tail = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        s += up[i]; s2 += (double)up[i] * up[i];
        if (up[i] < umin) umin = up[i];
        if (up[i] > umax) umax = up[i];
        double x = zp[i];
        bad += !isfinite(x);
        zs += x; zs2 += x * x; zs4 += x * x * x * x;
        tail += x < -1.959964;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    /* standard errors at n = 1e6: mean 2.9e-4, var 7.5e-5; allow about 5 of them */
    CHECK_NEAR(mean, 0.5, 1.5e-3);
    CHECK_NEAR(var, 1.0 / 12, 4e-4);
    CHECK(umin >= 0 && umax < 1 && umin < 1e-4 && umax > 1 - 1e-4);
    double zm = zs / n, zv = zs2 / n - zm * zm;
    CHECK(bad == 0);
    CHECK_NEAR(zm, 0.0, 5e-3);          /* se 1e-3 */
    CHECK_NEAR(zv, 1.0, 7e-3);          /* se 1.4e-3 */
    CHECK_NEAR(zs4 / n, 3.0, 0.05);     /* kurtosis, se 1e-2 */
    CHECK_NEAR((double)tail / n, 0.025, 8e-4);   /* P(Z < -1.96), se 1.6e-4 */
    empo_tensor_release(u); empo_tensor_release(z);
    empo_rng_free(r);
}

/* Pearson chi-square of counts against expected probabilities */
static double chi2(const int64_t *count, const double *p, int k, int64_t n) {
    double c = 0;
    for (int i = 0; i < k; i++) {
        double e = p[i] * n;
        c += (count[i] - e) * (count[i] - e) / e;
    }
    return c;
}

static void test_randint(void) {
    int64_t n = 70000, count[7] = {0};
    double p[7];
    empo_rng *r = rng(5, 5);
    empo_tensor *x;
    CHECK_OK(empo_randint(&x, r, -3, 4, 1, &n));
    const int64_t *xp = empo_tensor_data(x);
    int64_t out = 0;
    for (int64_t i = 0; i < n; i++) {
        if (xp[i] < -3 || xp[i] >= 4) out++;
        else count[xp[i] + 3]++;
    }
    CHECK(out == 0);
    for (int i = 0; i < 7; i++) p[i] = 1.0 / 7;
    double c = chi2(count, p, 7, n);
    check_report(__FILE__, __LINE__, c < 22.46, "randint chi2 %.2f >= 22.46 (6 dof, p = 0.001)", c);
    empo_tensor_release(x);
    /* the widest range does not overflow */
    int64_t m = 1000, neg = 0;
    CHECK_OK(empo_randint(&x, r, INT64_MIN, INT64_MAX, 1, &m));
    xp = empo_tensor_data(x);
    for (int64_t i = 0; i < m; i++) neg += xp[i] < 0;
    CHECK(neg > 400 && neg < 600 && xp[0] != INT64_MAX);
    empo_tensor_release(x);
    CHECK_FAIL(empo_randint(&x, r, 4, 4, 1, &m), EMPO_E_ARG, "empty range [4, 4)");
    int64_t negshape = -2;
    CHECK_FAIL(empo_rand(&x, r, 1, &negshape), EMPO_E_ARG, "negative size");
    CHECK_FAIL(empo_rand(&x, NULL, 1, &m), EMPO_E_ARG, "rand: NULL generator");
    empo_rng_free(r);
}

static empo_tensor *tensor_f32(int ndim, const int64_t *shape, const float *v) {
    empo_tensor *t = NULL;
    CHECK_OK(empo_tensor_from_buffer(&t, ndim, shape, EMPO_F32, v, EMPO_F32));
    return t;
}

static void test_multinomial(void) {
    /* unnormalised, with a zero entry that must never be drawn */
    const float w[5] = {1, 2, 3, 0, 4};
    const double p[5] = {0.1, 0.2, 0.3, 0, 0.4};
    int64_t V = 5, num = 100000, count[5] = {0};
    empo_tensor *probs = tensor_f32(1, &V, w), *x = NULL;
    empo_rng *r = rng(11, 0);
    CHECK_OK(empo_multinomial(&x, r, probs, num, 1));
    CHECK(empo_tensor_ndim(x) == 1 && empo_tensor_size(x, 0) == num && empo_tensor_dtype(x) == EMPO_I64);
    const int64_t *xp = empo_tensor_data(x);
    for (int64_t i = 0; i < num; i++) count[xp[i] >= 0 && xp[i] < 5 ? xp[i] : 3] += 1;
    CHECK(count[3] == 0);
    const int64_t c4[4] = {count[0], count[1], count[2], count[4]};
    const double p4[4] = {p[0], p[1], p[2], p[4]};
    double c = chi2(c4, p4, 4, num);
    check_report(__FILE__, __LINE__, c < 16.27, "multinomial chi2 %.2f >= 16.27 (3 dof, p = 0.001)", c);
    uint64_t counter;
    empo_rng_get_state(r, NULL, NULL, &counter);
    CHECK(counter == 2 * (uint64_t)num);
    empo_tensor_release(x);

    /* without replacement, as many rows: every row is distinct categories,
     * the first draw follows p, the second p_j * sum_i p_i / (1 - p_i), i != j */
    int64_t N = 20000, shape[2] = {N, 5};
    float *rows = malloc(sizeof(float) * (size_t)(N * 5));
    for (int64_t i = 0; i < N * 5; i++) rows[i] = w[i % 5];
    empo_tensor *pr = tensor_f32(2, shape, rows);
    free(rows);
    CHECK_OK(empo_multinomial(&x, r, pr, 4, 0));
    CHECK(empo_tensor_ndim(x) == 2 && empo_tensor_size(x, 0) == N && empo_tensor_size(x, 1) == 4);
    xp = empo_tensor_data(x);
    int64_t first[5] = {0}, second[5] = {0}, badrows = 0;
    for (int64_t i = 0; i < N; i++) {
        const int64_t *row = xp + 4 * i;
        int seen = 0;
        for (int k = 0; k < 4; k++) {
            if (row[k] < 0 || row[k] > 4 || row[k] == 3 || (seen >> row[k] & 1)) { badrows++; break; }
            seen |= 1 << row[k];
        }
        if (seen == 0x17) { first[row[0]]++; second[row[1]]++; }
    }
    CHECK(badrows == 0);
    double q[5] = {0};
    for (int j = 0; j < 5; j++)
        for (int i = 0; i < 5; i++)
            if (i != j && p[i] < 1) q[j] += p[i] * p[j] / (1 - p[i]);
    const int64_t f4[4] = {first[0], first[1], first[2], first[4]}, s4[4] = {second[0], second[1], second[2], second[4]};
    const double q4[4] = {q[0], q[1], q[2], q[4]};
    double cf = chi2(f4, p4, 4, N), cs = chi2(s4, q4, 4, N);
    check_report(__FILE__, __LINE__, cf < 16.27, "first-draw chi2 %.2f >= 16.27 (3 dof, p = 0.001)", cf);
    check_report(__FILE__, __LINE__, cs < 16.27, "second-draw chi2 %.2f >= 16.27 (3 dof, p = 0.001)", cs);
    empo_tensor_release(x);
    empo_tensor_release(pr);

    /* errors, and no words consumed by a failing call */
    empo_rng_get_state(r, NULL, NULL, &counter);
    const float neg[3] = {0.5f, -0.1f, 1}, nan3[3] = {0.5f, NAN, 1}, zero[3] = {0, 0, 0};
    int64_t three = 3, two = 2, sh3[3] = {1, 1, 3};
    empo_tensor *tn = tensor_f32(1, &three, neg), *tnan = tensor_f32(1, &three, nan3), *tz = tensor_f32(1, &three, zero);
    empo_tensor *t3 = tensor_f32(3, sh3, neg), *ti = NULL;
    CHECK_OK(empo_tensor_zeros(&ti, 1, &two, EMPO_I64));
    CHECK_FAIL(empo_multinomial(&x, r, tn, 1, 1), EMPO_E_ARG, "probability -0.1 at row 0, column 1 is negative");
    CHECK_FAIL(empo_multinomial(&x, r, tnan, 1, 1), EMPO_E_NUMERIC, "column 1 is not finite");
    CHECK_FAIL(empo_multinomial(&x, r, tz, 1, 1), EMPO_E_ARG, "row 0 of probabilities sums to zero");
    CHECK_FAIL(empo_multinomial(&x, r, probs, 0, 1), EMPO_E_ARG, "num 0 < 1");
    CHECK_FAIL(empo_multinomial(&x, r, probs, 6, 0), EMPO_E_ARG, "cannot draw 6 without replacement from 5 categories");
    CHECK_FAIL(empo_multinomial(&x, r, probs, 5, 0), EMPO_E_ARG, "which has 4 nonzero probabilities");
    CHECK_FAIL(empo_multinomial(&x, r, t3, 1, 1), EMPO_E_SHAPE, "must be [V] or [N, V]");
    CHECK_FAIL(empo_multinomial(&x, r, ti, 1, 1), EMPO_E_DTYPE, "multinomial: probs");
    uint64_t after;
    empo_rng_get_state(r, NULL, NULL, &after);
    CHECK(after == counter);
    /* with replacement, more draws than categories is fine */
    CHECK_OK(empo_multinomial(&x, r, probs, 6, 1));
    empo_tensor_release(x);
    empo_tensor_release(tn); empo_tensor_release(tnan); empo_tensor_release(tz); empo_tensor_release(t3);
    empo_tensor_release(ti); empo_tensor_release(probs);
    empo_rng_free(r);
}

int main(void) {
    test_philox_kat();
    test_determinism();
    test_threads();
    test_moments();
    test_randint();
    test_multinomial();
    CHECK(empo_live_tensors() == 0);
    return check_finish("test_rng");
}
