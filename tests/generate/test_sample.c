/* test_sample.c — the sampler's per-token math (core/include/empo/sample.h):
 * the fast kernel against the naive reference on random rows and settings;
 * chi-square tests of empirical token frequencies against the distribution
 * each rule defines (plain, temperature, top-k, top-p, min-p, combined),
 * for both kernels; returned log-probs; greedy ties; uniforms; bad
 * settings, shapes and non-finite logits; the per-token entropy and
 * self-certainty against their definitions; the KV-cache row moves.
 * Every draw uses a fixed seed; the thresholds are written down below. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

static empo_tensor *tensor(int ndim, const int64_t *shape, int dtype) {
    empo_tensor *t = NULL;
    CHECK_OK(empo_tensor_zeros(&t, ndim, shape, dtype));
    return t;
}

static float *fdata(empo_tensor *t) { return empo_tensor_data(t); }

/* logits [N, V]: every row a copy of row[V] */
static empo_tensor *repeat_row(const float *row, int64_t N, int64_t V) {
    int64_t shape[2] = {N, V};
    empo_tensor *t = tensor(2, shape, EMPO_F32);
    for (int64_t n = 0; n < N; n++) memcpy(fdata(t) + n * V, row, sizeof(float) * (size_t)V);
    return t;
}

static double *uniforms(int64_t N, uint64_t seed) {
    double *u = malloc(sizeof(double) * (size_t)N);
    uint64_t *stream = malloc(sizeof(uint64_t) * (size_t)N), *counter = malloc(sizeof(uint64_t) * (size_t)N);
    for (int64_t i = 0; i < N; i++) { stream[i] = 11; counter[i] = (uint64_t)i; }
    empo_sample_uniforms(u, N, seed, stream, counter);
    free(stream);
    free(counter);
    return u;
}

/* ---- the distribution each setting defines, written out independently ---- */

/* q[V]: the probability of each token under s (0 for tokens not kept) */
static void expected(double *q, const float *x, int64_t V, const empo_sampling *s) {
    double m = -INFINITY, Z = 0.0;
    for (int64_t j = 0; j < V; j++) m = fmax(m, x[j]);
    for (int64_t j = 0; j < V; j++) Z += q[j] = exp((x[j] - m) / s->temperature);
    for (int64_t j = 0; j < V; j++) q[j] /= Z;
    /* rank by probability (V is small here: selection by repeated max) */
    int64_t order[64];
    int used[64] = {0};
    for (int64_t r = 0; r < V; r++) {
        int64_t best = -1;
        for (int64_t j = 0; j < V; j++)
            if (!used[j] && (best < 0 || q[j] > q[best])) best = j;
        used[best] = 1;
        order[r] = best;
    }
    double cut = 0.0;
    if (s->top_k > 0 && s->top_k < V) cut = q[order[s->top_k - 1]];
    if (s->top_p < 1.0) {
        double kept = 0.0, acc = 0.0;
        for (int64_t j = 0; j < V; j++) if (q[j] >= cut) kept += q[j];
        for (int64_t r = 0; r < V; r++) {
            acc += q[order[r]];
            if (acc >= s->top_p * kept) { cut = fmax(cut, q[order[r]]); break; }
        }
    }
    cut = fmax(cut, s->min_p * q[order[0]]);
    double kept = 0.0;
    for (int64_t j = 0; j < V; j++) kept += q[j] >= cut ? q[j] : 0.0;
    for (int64_t j = 0; j < V; j++) q[j] = q[j] >= cut ? q[j] / kept : 0.0;
}

/* chi-square critical values at p = 0.001, by degrees of freedom 1..9 */
static const double CHI2_999[10] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88};

static void test_frequencies(void) {
    /* the last token is banned (-inf); two are tied */
    static const float row[9] = {2.0f, 1.5f, 1.0f, 1.0f, 0.25f, -0.5f, -1.0f, -2.0f, -INFINITY};
    const int64_t V = 9, N = 100000;
    static const struct { const char *name; empo_sampling s; } cases[] = {
        {"plain", {1.0, 0, 1.0, 0.0, 0}},
        {"temperature 0.6", {0.6, 0, 1.0, 0.0, 0}},
        {"temperature 1.7", {1.7, 0, 1.0, 0.0, 0}},
        {"top_k 3 (ties kept)", {1.0, 3, 1.0, 0.0, 0}},
        {"top_k 2", {1.0, 2, 1.0, 0.0, 0}},
        {"top_p 0.7", {1.0, 0, 0.7, 0.0, 0}},
        {"top_p 0.95, T 1.3", {1.3, 0, 0.95, 0.0, 0}},
        {"min_p 0.2", {1.0, 0, 1.0, 0.2, 0}},
        {"top_k 5, top_p 0.9, min_p 0.1, T 0.8", {0.8, 5, 0.9, 0.1, 0}},
    };
    empo_tensor *logits = repeat_row(row, N, V);
    int64_t n1 = N;
    empo_tensor *ids = tensor(1, &n1, EMPO_I64), *lp = tensor(1, &n1, EMPO_F32), *ref = tensor(1, &n1, EMPO_F32);
    double q[9], lsm[9], m = 2.0, z = 0.0;
    for (int64_t j = 0; j < V; j++) z += exp(row[j] - m);
    for (int64_t j = 0; j < V; j++) lsm[j] = row[j] - m - log(z);
    for (int reference = 0; reference <= 1; reference++) {
        empo_set_reference_kernels(reference);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            double *u = uniforms(N, 1000 + c);
            CHECK_OK(empo_sample(ids, lp, ref, logits, &cases[c].s, u));
            free(u);
            expected(q, row, V, &cases[c].s);
            int64_t count[9] = {0};
            double worst_lp = 0.0, worst_ref = 0.0;
            const int64_t *id = empo_tensor_data(ids);
            for (int64_t n = 0; n < N; n++) {
                count[id[n]]++;
                if (q[id[n]] > 0.0) worst_lp = fmax(worst_lp, fabs(fdata(lp)[n] - log(q[id[n]])));
                worst_ref = fmax(worst_ref, fabs(fdata(ref)[n] - lsm[id[n]]));
            }
            double chi2 = 0.0;
            int kept = 0, outside = 0;
            for (int64_t j = 0; j < V; j++) {
                if (q[j] > 0.0) {
                    kept++;
                    chi2 += (count[j] - N * q[j]) * (count[j] - N * q[j]) / (N * q[j]);
                } else {
                    outside += count[j] != 0;
                }
            }
            check_report(__FILE__, __LINE__, kept >= 2 && chi2 < CHI2_999[kept - 1],
                         "%s (%s): chi2 %.2f with %d tokens kept (limit %.2f)", cases[c].name,
                         reference ? "ref" : "fast", chi2, kept, CHI2_999[kept - 1]);
            check_report(__FILE__, __LINE__, outside == 0, "%s: %d tokens outside the kept set were drawn",
                         cases[c].name, outside);
            check_report(__FILE__, __LINE__, worst_lp < 2e-6 && worst_ref < 2e-6,
                         "%s (%s): logp off by %.2e, ref_logp off by %.2e", cases[c].name,
                         reference ? "ref" : "fast", worst_lp, worst_ref);
        }
    }
    empo_set_reference_kernels(0);
    empo_tensor_release(logits);
    empo_tensor_release(ids);
    empo_tensor_release(lp);
    empo_tensor_release(ref);
}

/* ---- fast kernel = reference on random rows ---- */

static void test_fast_vs_reference(void) {
    static const int64_t Vs[] = {1, 2, 7, 33, 512, 4096, 5003};
    static const empo_sampling settings[] = {
        {0.0, 0, 1.0, 0.0, 0}, {1.0, 0, 1.0, 0.0, 0}, {0.7, 0, 1.0, 0.0, 0}, {1.6, 0, 1.0, 0.0, 0},
        {1.0, 1, 1.0, 0.0, 0}, {1.0, 5, 1.0, 0.0, 0}, {1.0, 40, 1.0, 0.0, 0}, {1.0, 100000, 1.0, 0.0, 0},
        {1.0, 0, 0.9, 0.0, 0}, {1.0, 0, 0.3, 0.0, 0}, {1.0, 0, 1e-6, 0.0, 0}, {0.5, 0, 0.95, 0.0, 0},
        {1.0, 0, 1.0, 0.05, 0}, {1.0, 0, 1.0, 0.5, 0}, {1.0, 0, 1.0, 1.0, 0}, {0.9, 20, 0.8, 0.02, 0},
    };
    const int64_t N = 24;
    int mismatches = 0, compared = 0;
    double worst = 0.0;
    for (size_t v = 0; v < sizeof Vs / sizeof Vs[0]; v++) {
        const int64_t V = Vs[v];
        int64_t shape[2] = {N, V}, n1 = N;
        empo_tensor *logits = check_rand_tensor(2, shape, 77 + v);
        float *x = fdata(logits);
        for (int64_t i = 0; i < N * V; i++) {
            x[i] *= (i / V) % 3 == 0 ? 12.0f : 3.0f;   /* peaked and flat rows */
            if (i % 17 == 5 && i % V != 0) x[i] = -INFINITY;   /* banned tokens */
        }
        empo_tensor *ids[2], *lp[2], *ref[2];
        for (size_t c = 0; c < sizeof settings / sizeof settings[0]; c++) {
            double *u = uniforms(N, 5 + c);
            for (int k = 0; k < 2; k++) {
                ids[k] = tensor(1, &n1, EMPO_I64);
                lp[k] = tensor(1, &n1, EMPO_F32);
                ref[k] = tensor(1, &n1, EMPO_F32);
                empo_set_reference_kernels(k);
                CHECK_OK(empo_sample(ids[k], lp[k], ref[k], logits, &settings[c], u));
            }
            empo_set_reference_kernels(0);
            for (int64_t n = 0; n < N; n++) {
                const int64_t a = ((int64_t *)empo_tensor_data(ids[0]))[n], b = ((int64_t *)empo_tensor_data(ids[1]))[n];
                compared++;
                if (a != b) {
                    mismatches++;
                    fprintf(stderr, "V %lld setting %zu row %lld: fast %lld, ref %lld\n", (long long)V, c,
                            (long long)n, (long long)a, (long long)b);
                    continue;
                }
                worst = fmax(worst, fabs(fdata(lp[0])[n] - fdata(lp[1])[n]));
                worst = fmax(worst, fabs(fdata(ref[0])[n] - fdata(ref[1])[n]));
                if (x[n * V + a] == -INFINITY) mismatches++;   /* a banned token */
            }
            for (int k = 0; k < 2; k++) {
                empo_tensor_release(ids[k]);
                empo_tensor_release(lp[k]);
                empo_tensor_release(ref[k]);
            }
            free(u);
        }
        empo_tensor_release(logits);
    }
    check_report(__FILE__, __LINE__, mismatches == 0, "fast vs reference: %d of %d tokens differ", mismatches,
                 compared);
    check_report(__FILE__, __LINE__, worst < 1e-5, "fast vs reference: log-probs differ by up to %.2e", worst);
}

/* ---- a vocabulary smaller than the logits (a padded embedding) ----
 * The padded ids get the largest logits, so a sampler that looked at them
 * would draw them almost every time; none may come out, greedy included,
 * and the log-probs are of the distribution over the ids that exist. */
static void test_vocab_limit(void) {
    const int64_t V = 40, vocab = 31, N = 10000, shape[2] = {N, V};
    empo_tensor *logits = tensor(2, shape, EMPO_F32), *ids = tensor(1, &N, EMPO_I64);
    empo_tensor *lp = tensor(1, &N, EMPO_F32), *ref = tensor(1, &N, EMPO_F32);
    double *u = malloc(sizeof(double) * (size_t)N);
    uint64_t *stream = malloc(sizeof(uint64_t) * (size_t)N), *counter = malloc(sizeof(uint64_t) * (size_t)N);
    for (int64_t n = 0; n < N; n++) stream[n] = 7, counter[n] = (uint64_t)n;
    empo_sample_uniforms(u, N, 3, stream, counter);
    for (int64_t i = 0; i < N * V; i++) fdata(logits)[i] = i % V >= vocab ? 6.0f : (float)((i * 7919) % 13) * 0.25f;
    for (int k = 0; k < 2; k++) {
        empo_set_reference_kernels(k);
        for (int greedy = 0; greedy < 2; greedy++) {
            const empo_sampling s = {greedy ? 0.0 : 1.0, 0, 1.0, 0.0, vocab};
            CHECK_OK(empo_sample(ids, lp, ref, logits, &s, u));
            int64_t past = 0;
            double worst = 0.0;
            for (int64_t n = 0; n < N; n++) {
                const int64_t id = ((const int64_t *)empo_tensor_data(ids))[n];
                past += id >= vocab;
                const float *x = fdata(logits) + n * V;
                double z = 0.0;
                for (int64_t v = 0; v < vocab; v++) z += exp(x[v]);
                if (id < vocab) worst = fmax(worst, fabs(fdata(ref)[n] - (x[id] - log(z))));
            }
            check_report(__FILE__, __LINE__, past == 0, "vocab %lld (%s, %s): %lld of %lld tokens past it",
                         (long long)vocab, k ? "reference" : "fast", greedy ? "greedy" : "T = 1", (long long)past,
                         (long long)N);
            CHECK(worst < 1e-5);
        }
    }
    empo_set_reference_kernels(0);
    const empo_sampling bad = {1.0, 0, 1.0, 0.0, -3};
    CHECK_FAIL(empo_sample(ids, lp, ref, logits, &bad, u), EMPO_E_ARG, "vocab must be >= 0");
    free(u), free(stream), free(counter);
    empo_tensor_release(logits), empo_tensor_release(ids), empo_tensor_release(lp), empo_tensor_release(ref);
}

/* ---- special cases and errors ---- */

static void test_cases_and_errors(void) {
    const empo_sampling greedy = {0.0, 0, 1.0, 0.0, 0}, plain = {1.0, 0, 1.0, 0.0, 0};
    int64_t two = 2, shape[2] = {2, 4};
    static const float rows[8] = {1.0f, 3.0f, 3.0f, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    empo_tensor *logits = tensor(2, shape, EMPO_F32), *ids = tensor(1, &two, EMPO_I64);
    empo_tensor *lp = tensor(1, &two, EMPO_F32), *ref = tensor(1, &two, EMPO_F32);
    memcpy(fdata(logits), rows, sizeof rows);
    for (int k = 0; k < 2; k++) {
        empo_set_reference_kernels(k);
        CHECK_FAIL(empo_sample(ids, lp, ref, logits, &greedy, NULL), EMPO_E_NUMERIC, "row 1 of logits");
        fdata(logits)[4] = 0.5f;
        CHECK_OK(empo_sample(ids, lp, ref, logits, &greedy, NULL));
        const int64_t *id = empo_tensor_data(ids);
        CHECK(id[0] == 1 && id[1] == 0);   /* lowest id among tied maxima; a lone finite logit */
        CHECK(fdata(lp)[0] == 0.0f);
        CHECK_NEAR(fdata(ref)[0], 3.0 - log(exp(1.0) + 2.0 * exp(3.0)), 1e-6);
        CHECK_NEAR(fdata(ref)[1], 0.0, 1e-7);
        fdata(logits)[2] = NAN;
        CHECK_FAIL(empo_sample(ids, lp, ref, logits, &greedy, NULL), EMPO_E_NUMERIC, "row 0 of logits");
        fdata(logits)[2] = INFINITY;
        CHECK_FAIL(empo_sample(ids, lp, ref, logits, &greedy, NULL), EMPO_E_NUMERIC, "NaN or +inf");
        fdata(logits)[2] = 3.0f;
        fdata(logits)[4] = -INFINITY;
    }
    empo_set_reference_kernels(0);
    double u[2] = {0.5, 0.5};
    empo_sampling bad = plain;
    bad.temperature = -1.0;
    CHECK_FAIL(empo_sample(ids, lp, ref, logits, &bad, u), EMPO_E_ARG, "temperature must be a finite number >= 0");
    bad = plain;
    bad.top_p = 0.0;
    CHECK_FAIL(empo_sampling_check(&bad), EMPO_E_ARG, "top_p must be in (0, 1]");
    bad.top_p = 1.5;
    CHECK_FAIL(empo_sampling_check(&bad), EMPO_E_ARG, "got 1.5");
    bad.top_p = NAN;
    CHECK_FAIL(empo_sampling_check(&bad), EMPO_E_ARG, "top_p");
    bad = plain;
    bad.top_k = -2;
    CHECK_FAIL(empo_sampling_check(&bad), EMPO_E_ARG, "top_k must be >= 0");
    bad = plain;
    bad.min_p = 1.5;
    CHECK_FAIL(empo_sampling_check(&bad), EMPO_E_ARG, "min_p must be in [0, 1]");
    CHECK_FAIL(empo_sample(ids, lp, ref, logits, &plain, NULL), EMPO_E_ARG, "uniforms are needed");
    int64_t three = 3;
    empo_tensor *ids3 = tensor(1, &three, EMPO_I64);
    CHECK_FAIL(empo_sample(ids3, lp, ref, logits, &plain, u), EMPO_E_SHAPE, "with 2 elements");
    CHECK_FAIL(empo_sample(lp, NULL, NULL, logits, &plain, u), EMPO_E_DTYPE, "ids");
    empo_tensor *t = NULL;
    CHECK_OK(empo_transpose(&t, logits, 0, 1));
    CHECK_FAIL(empo_sample(ids, lp, ref, t, &plain, u), EMPO_E_SHAPE, "must be contiguous");
    fdata(logits)[4] = 0.5f;
    CHECK_OK(empo_sample(ids, NULL, NULL, logits, &plain, u));   /* log-probs are optional */
    empo_tensor_release(t);
    empo_tensor_release(ids3);
    empo_tensor_release(logits);
    empo_tensor_release(ids);
    empo_tensor_release(lp);
    empo_tensor_release(ref);
}

/* ---- per-token entropy and self-certainty ---- */

/* By the definitions: p = softmax(x / T), H = -sum p log p,
 * KL(uniform || p) = -log V - mean log p. */
static void naive_stats(const float *x, int64_t V, double T, double *h, double *kl) {
    double m = -INFINITY, s = 0.0;
    for (int64_t v = 0; v < V; v++) m = fmax(m, x[v] / T);
    for (int64_t v = 0; v < V; v++) s += exp(x[v] / T - m);
    *h = 0.0;
    *kl = -log((double)V);
    for (int64_t v = 0; v < V; v++) {
        double logp = x[v] / T - m - log(s);
        *h -= exp(logp) * logp;
        *kl -= logp / (double)V;
    }
}

static void test_token_stats(void) {
    int64_t two = 2, shape[2] = {2, 5};
    static const float rows[10] = {0.3f, -1.2f, 2.5f, 0.0f, 1.1f, 4.0f, 4.0f, -3.0f, 0.5f, -0.25f};
    empo_tensor *logits = tensor(2, shape, EMPO_F32);
    empo_tensor *h = tensor(1, &two, EMPO_F32), *kl = tensor(1, &two, EMPO_F32);
    memcpy(fdata(logits), rows, sizeof rows);
    static const double temps[3] = {1.0, 0.7, 0.0};
    for (int k = 0; k < 3; k++) {
        CHECK_OK(empo_sample_token_stats(h, kl, logits, temps[k], 0));
        for (int r = 0; r < 2; r++) {
            double want_h, want_kl;
            naive_stats(rows + 5 * r, 5, temps[k] > 0 ? temps[k] : 1.0, &want_h, &want_kl);
            CHECK_NEAR(fdata(h)[r], want_h, 1e-6);
            CHECK_NEAR(fdata(kl)[r], want_kl, 1e-6);
        }
    }
    /* uniform logits: entropy log V, self-certainty 0 */
    for (int i = 0; i < 10; i++) fdata(logits)[i] = 2.0f;
    CHECK_OK(empo_sample_token_stats(h, NULL, logits, 1.0, 0));
    CHECK_NEAR(fdata(h)[0], log(5.0), 1e-6);
    CHECK_OK(empo_sample_token_stats(NULL, kl, logits, 1.0, 0));
    CHECK_NEAR(fdata(kl)[1], 0.0, 1e-6);
    /* a -inf logit: that token has p = 0, so KL(uniform || p) is +inf, the entropy finite */
    fdata(logits)[3] = -INFINITY;
    CHECK_OK(empo_sample_token_stats(h, kl, logits, 1.0, 0));
    CHECK_NEAR(fdata(h)[0], log(4.0), 1e-6);
    CHECK(isinf(fdata(kl)[0]) && fdata(kl)[0] > 0);
    /* bad input names what is wrong */
    fdata(logits)[7] = NAN;
    CHECK_FAIL(empo_sample_token_stats(h, kl, logits, 1.0, 0), EMPO_E_NUMERIC, "row 1 of logits");
    fdata(logits)[7] = INFINITY;
    CHECK_FAIL(empo_sample_token_stats(h, kl, logits, 1.0, 0), EMPO_E_NUMERIC, "NaN or +inf");
    fdata(logits)[7] = 2.0f;
    CHECK_FAIL(empo_sample_token_stats(h, kl, logits, -1.0, 0), EMPO_E_ARG, "temperature");
    CHECK_FAIL(empo_sample_token_stats(h, kl, logits, NAN, 0), EMPO_E_ARG, "temperature");
    CHECK_FAIL(empo_sample_token_stats(h, kl, logits, 1.0, -1), EMPO_E_ARG, "vocab must be >= 0");
    /* vocab 3: the two ids past it do not exist (a padded embedding's rows) */
    fdata(logits)[3] = 7.0f, fdata(logits)[4] = 9.0f;
    CHECK_OK(empo_sample_token_stats(h, kl, logits, 1.0, 3));
    CHECK_NEAR(fdata(h)[0], log(3.0), 1e-6);
    CHECK_NEAR(fdata(kl)[0], 0.0, 1e-6);
    int64_t three = 3;
    empo_tensor *h3 = tensor(1, &three, EMPO_F32), *ids = tensor(1, &two, EMPO_I64);
    CHECK_FAIL(empo_sample_token_stats(h3, NULL, logits, 1.0, 0), EMPO_E_SHAPE, "entropy");
    CHECK_FAIL(empo_sample_token_stats(NULL, ids, logits, 1.0, 0), EMPO_E_DTYPE, "self_certainty");
    CHECK_FAIL(empo_sample_token_stats(h, kl, ids, 1.0, 0), EMPO_E_DTYPE, "logits");
    empo_tensor *t = NULL;
    CHECK_OK(empo_transpose(&t, logits, 0, 1));
    CHECK_FAIL(empo_sample_token_stats(h, kl, t, 1.0, 0), EMPO_E_SHAPE, "must be contiguous");
    empo_tensor_release(t);
    empo_tensor_release(h3);
    empo_tensor_release(ids);
    empo_tensor_release(logits);
    empo_tensor_release(h);
    empo_tensor_release(kl);
}

static void test_uniforms(void) {
    uint64_t stream[3] = {5, 5, 6}, counter[3] = {(uint64_t)1 << 32, ((uint64_t)1 << 32) | 1, (uint64_t)1 << 32};
    double a[3], b[3];
    empo_sample_uniforms(a, 3, 42, stream, counter);
    empo_sample_uniforms(b, 3, 42, stream, counter);
    CHECK(a[0] == b[0] && a[1] == b[1] && a[2] == b[2]);
    CHECK(a[0] != a[1] && a[0] != a[2]);
    uint32_t w[4];
    empo_philox4x32(42, 5, (uint64_t)1 << 32, w);
    CHECK(a[0] == (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) * 0x1p-53);
    double lo = 1.0, hi = 0.0, sum = 0.0;
    double *u = uniforms(100000, 3);
    for (int i = 0; i < 100000; i++) { lo = fmin(lo, u[i]); hi = fmax(hi, u[i]); sum += u[i]; }
    free(u);
    CHECK(lo >= 0.0 && hi < 1.0);
    CHECK_NEAR(sum / 100000, 0.5, 0.005);   /* sd of the mean: 0.29 / sqrt(1e5) = 0.0009 */
}

/* ---- KV-cache rows ---- */

static void test_kv(void) {
    int64_t cshape[4] = {3, 2, 5, 4}, xshape[4] = {2, 1, 2, 4}, pos[2] = {3, 0};
    empo_tensor *cache = tensor(4, cshape, EMPO_F32);
    empo_tensor *xt = check_rand_tensor(4, xshape, 9), *x = NULL;
    CHECK_OK(empo_transpose(&x, xt, 1, 2));   /* [2, 2, 1, 4], strided */
    CHECK_OK(empo_kv_write(cache, x, pos));
    float *c = fdata(cache);
    const float *xs = fdata(xt);
    int ok = 1;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 2; h++)
            for (int64_t d = 0; d < 4; d++)
                ok &= c[((b * 2 + h) * 5 + pos[b]) * 4 + d] == xs[(b * 2 + h) * 4 + d];
    CHECK(ok);
    pos[0] = 5;
    CHECK_FAIL(empo_kv_write(cache, x, pos), EMPO_E_INDEX, "row 0 writes positions 5..5 of a cache of 5");
    empo_tensor *flat = NULL;
    CHECK_OK(empo_view(&flat, cache, 3, (int64_t[]){3, 10, 4}));
    CHECK_FAIL(empo_kv_write(flat, x, pos), EMPO_E_SHAPE, "contiguous [B, H, S, Dh] cache");
    empo_tensor_release(flat);
    /* copy rows: within one cache, and from another with a different length */
    for (int64_t i = 0; i < 3 * 2 * 5 * 4; i++) c[i] = (float)i;
    int64_t dst[2] = {0, 2}, src[2] = {2, 1};
    CHECK_OK(empo_kv_copy_rows(cache, cache, 2, dst, src, 5));
    ok = 1;
    for (int64_t i = 0; i < 40; i++) ok &= c[i] == (float)(80 + i) && c[80 + i] == (float)(40 + i);
    CHECK(ok);
    int64_t pshape[4] = {2, 2, 3, 4};
    empo_tensor *pre = tensor(4, pshape, EMPO_F32);
    for (int64_t i = 0; i < 48; i++) fdata(pre)[i] = -1.0f - (float)i;
    int64_t d1[1] = {1}, s1[1] = {1};
    CHECK_OK(empo_kv_copy_rows(cache, pre, 1, d1, s1, 3));
    ok = 1;
    for (int64_t h = 0; h < 2; h++)
        for (int64_t t = 0; t < 5; t++)
            for (int64_t d = 0; d < 4; d++) {
                float want = t < 3 ? -1.0f - (float)(((1 * 2 + h) * 3 + t) * 4 + d) : (float)(((1 * 2 + h) * 5 + t) * 4 + d);
                ok &= c[((1 * 2 + h) * 5 + t) * 4 + d] == want;
            }
    CHECK(ok);
    CHECK_FAIL(empo_kv_copy_rows(cache, pre, 1, d1, s1, 4), EMPO_E_SHAPE, "do not fit");
    s1[0] = 2;
    CHECK_FAIL(empo_kv_copy_rows(cache, pre, 1, d1, s1, 3), EMPO_E_INDEX, "row 2 -> row 1");
    empo_tensor_release(pre);
    empo_tensor_release(x);
    empo_tensor_release(xt);
    empo_tensor_release(cache);
}

/* kv_attention = empo_attention over each row's keys laid end to end
 * (its prefix row, then its own positions) with the hidden ones masked;
 * fast and reference; hidden positions hold NaN. */
static void test_kv_attention(void) {
    static const int64_t cases[][7] = {   /* Hq, Hkv, Dh, S, B, P (0: no prefix), Sp */
        {4, 2, 64, 130, 5, 0, 0}, {8, 2, 64, 70, 3, 0, 0}, {4, 2, 32, 40, 9, 3, 100}, {3, 1, 20, 9, 3, 2, 7},
        {32, 1, 16, 65, 2, 1, 70}, {2, 2, 8, 1, 2, 2, 1}, {4, 4, 128, 33, 1, 1, 5}, {4, 2, 32, 20, 24, 2, 33},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int64_t Hq = cases[c][0], Hkv = cases[c][1], Dh = cases[c][2], S = cases[c][3], B = cases[c][4];
        const int64_t P = cases[c][5], Sp = cases[c][6], F = Sp + S;
        int64_t qs[4] = {B, 1, Hq, Dh}, cs[4] = {B + 1, Hkv, S, Dh}, ps[4] = {P ? P : 1, Hkv, Sp ? Sp : 1, Dh};
        int64_t fs[4] = {B, Hkv, F, Dh}, ms[2] = {B, F}, len[24], prow[24], plen[3];
        empo_tensor *q0 = check_rand_tensor(4, qs, 300 + c), *q = NULL;
        CHECK_OK(empo_transpose(&q, q0, 1, 2));   /* [B, Hq, 1, Dh], strided as the decoder's */
        empo_tensor *k = check_rand_tensor(4, cs, 400 + c), *v = check_rand_tensor(4, cs, 500 + c);
        empo_tensor *pk = check_rand_tensor(4, ps, 600 + c), *pv = check_rand_tensor(4, ps, 700 + c);
        empo_tensor *kf = tensor(4, fs, EMPO_F32), *vf = tensor(4, fs, EMPO_F32), *mask = tensor(2, ms, EMPO_F32);
        for (int64_t p = 0; p < P; p++) plen[p] = p == 0 ? Sp : (p * 5 + (int64_t)c) % (Sp + 1);
        for (int64_t b = 0; b < B; b++) {
            len[b] = b == 0 ? S : (b * 7 + (int64_t)c) % (S + 1);
            prow[b] = P ? (b * 3 + 1) % P : 0;
        }
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < Hkv; h++)
                for (int64_t s = 0; s < F; s++) {
                    const int own = s >= Sp;
                    const int64_t at = own ? ((b * Hkv + h) * S + s - Sp) * Dh : ((prow[b] * Hkv + h) * Sp + s) * Dh;
                    const int shown = own ? s - Sp < len[b] : (P > 0 && s < plen[prow[b]]);
                    fdata(mask)[b * F + s] = shown ? 1.0f : 0.0f;
                    for (int64_t d = 0; d < Dh; d++) {
                        fdata(kf)[((b * Hkv + h) * F + s) * Dh + d] = (own ? fdata(k) : fdata(pk))[at + d];
                        fdata(vf)[((b * Hkv + h) * F + s) * Dh + d] = (own ? fdata(v) : fdata(pv))[at + d];
                    }
                }
        /* hidden positions hold NaN: they must never be read */
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < Hkv; h++)
                for (int64_t s = len[b]; s < S; s++) fdata(k)[((b * Hkv + h) * S + s) * Dh] = NAN;
        for (int64_t p = 0; p < P; p++)
            for (int64_t h = 0; h < Hkv; h++)
                for (int64_t s = plen[p]; s < Sp; s++) fdata(pv)[((p * Hkv + h) * Sp + s) * Dh + Dh - 1] = NAN;
        empo_tensor *want = NULL, *got[2] = {NULL, NULL};
        CHECK_OK(empo_attention(&want, q, kf, vf, 0, 0.0, mask));
        for (int r = 0; r < 2; r++) {
            empo_set_reference_kernels(r);
            CHECK_OK(empo_kv_attention(&got[r], q, P ? pk : NULL, P ? pv : NULL, P ? prow : NULL, P ? plen : NULL, k,
                                       v, len, 0.0));
            if (got[r] && want) {
                const float *g = fdata(got[r]), *w = fdata(want);
                double e = 0.0;
                int finite = 1;
                for (int64_t i = 0; i < B * Hq * Dh; i++) {
                    finite &= isfinite(g[i]);
                    e = fmax(e, fabs(g[i] - w[i]));
                }
                check_report(__FILE__, __LINE__, finite && e < 2e-6, "kv_attention case %zu (%s): max diff %.2e",
                             c, r ? "ref" : "fast", e);
            }
            empo_tensor_release(got[r]);
        }
        empo_set_reference_kernels(0);
        empo_tensor *all[] = {q0, q, k, v, pk, pv, kf, vf, mask, want};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) empo_tensor_release(all[i]);
    }
    /* errors */
    int64_t qs[4] = {2, 4, 1, 8}, cs[4] = {2, 2, 5, 8}, ps[4] = {1, 2, 3, 8}, len[2] = {5, 6}, prow[2] = {0, 1},
            plen[1] = {3};
    empo_tensor *q = check_rand_tensor(4, qs, 1), *k = check_rand_tensor(4, cs, 2), *pk = check_rand_tensor(4, ps, 3);
    empo_tensor *y = NULL;
    CHECK_FAIL(empo_kv_attention(&y, q, NULL, NULL, NULL, NULL, k, k, len, 0.0), EMPO_E_INDEX, "row 1 has length 6");
    len[1] = 1;
    CHECK_FAIL(empo_kv_attention(&y, k, NULL, NULL, NULL, NULL, k, k, len, 0.0), EMPO_E_SHAPE, "expected q");
    CHECK_FAIL(empo_kv_attention(&y, q, pk, pk, prow, plen, k, k, len, 0.0), EMPO_E_INDEX, "reads prefix row 1");
    prow[1] = 0;
    plen[0] = 4;
    CHECK_FAIL(empo_kv_attention(&y, q, pk, pk, prow, plen, k, k, len, 0.0), EMPO_E_INDEX, "has length 4, it holds 3");
    CHECK_FAIL(empo_kv_attention(&y, q, pk, NULL, prow, plen, k, k, len, 0.0), EMPO_E_ARG, "together");
    empo_tensor_set_requires_grad(q, 1);
    CHECK_FAIL(empo_kv_attention(&y, q, NULL, NULL, NULL, NULL, k, k, len, 0.0), EMPO_E_STATE, "no gradient");
    empo_grad_set_enabled(0);
    CHECK_OK(empo_kv_attention(&y, q, NULL, NULL, NULL, NULL, k, k, len, 0.0));
    empo_grad_set_enabled(1);
    empo_tensor_release(y);
    empo_tensor_release(q);
    empo_tensor_release(k);
    empo_tensor_release(pk);
}

int main(void) {
    test_frequencies();
    test_fast_vs_reference();
    test_cases_and_errors();
    test_vocab_limit();
    test_token_stats();
    test_uniforms();
    test_kv();
    test_kv_attention();
    return check_finish("test_sample");
}
