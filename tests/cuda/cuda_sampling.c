/* cuda_sampling.c — the sampler's and the decoder's slots of the CUDA
 * table against the reference table: sample_rows (greedy, temperature,
 * top-k, top-p, min-p and their combinations, a restricted vocabulary,
 * ties, banned -inf tokens, uniforms at 0 and next to 1, bad rows) and
 * sample_stats; kv_attention (a prefix shared by rows, rows that see
 * nothing, more positions than a block has threads). Built twice, as cuda_kernels.c is (tests/CMakeLists.txt):
 * on the emulation in CI, on a GPU by tests/device/check.sh. Token ids
 * must be equal; log-probs within 1e-5. */
#include "device_harness.h"

/* logits in [-4, 4) with ties: every 7th value repeats the one before it */
static float *logits_with_ties(int64_t n, uint64_t seed) {
    float *x = randoms(n, seed, -4.0f, 4.0f);
    for (int64_t i = 7; i < n; i += 7) x[i] = x[i - 1];
    return x;
}

/* N rows of stride floats, the first V of each drawable, sampled by both
 * tables with the same uniforms; ids, log-probs and the bad row compared */
static void sample_case(const char *what, const float *x, int64_t N, int64_t V, int64_t stride,
                        empo_sampling s, const double *u) {
    int64_t *ids = malloc(sizeof(int64_t) * N), *got_ids = malloc(sizeof(int64_t) * N);
    float *lp = malloc(sizeof(float) * N), *ref = malloc(sizeof(float) * N);
    int64_t bad = -2, got_bad = -2;
    CHECK(R->sample_rows(ids, lp, ref, x, N, V, stride, &s, u, &bad) == 0);
    float *Dx = UPF(x, N * stride), *Dlp = ALLOCF(N), *Dref = ALLOCF(N);
    int64_t *Dids = (int64_t *)dalloc(sizeof(int64_t) * N);
    CHECK(K->sample_rows(Dids, Dlp, Dref, Dx, N, V, stride, &s, u, &got_bad) == 0);
    down(got_ids, Dids, sizeof(int64_t) * N);
    int64_t differ = -1;
    for (int64_t n = 0; n < N && differ < 0; n++)
        if (got_ids[n] != ids[n] && n != bad) differ = n;
    char name[160];
    snprintf(name, sizeof name, "%s (V %lld, T %g, top_k %lld, top_p %g, min_p %g)", what, (long long)V,
             s.temperature, (long long)s.top_k, s.top_p, s.min_p);
    if (differ < 0) check_report(__FILE__, __LINE__, got_bad == bad, "%s: ids equal, bad row %lld (want %lld)", name,
                                 (long long)got_bad, (long long)bad);
    else check_report(__FILE__, __LINE__, 0, "%s: row %lld drew %lld, want %lld", name, (long long)differ,
                      (long long)got_ids[differ], (long long)ids[differ]);
    if (bad < 0) {
        expect(name, Dlp, lp, N);
        expect(name, Dref, ref, N);
    }
    /* without the optional outputs: the same ids */
    CHECK(K->sample_rows(Dids, NULL, NULL, Dx, N, V, stride, &s, u, &got_bad) == 0 && got_bad == bad);
    down(got_ids, Dids, sizeof(int64_t) * N);
    for (int64_t n = 0; n < N; n++)
        if (n != bad && got_ids[n] != ids[n]) {
            check_report(__FILE__, __LINE__, 0, "%s: without logp / ref_logp row %lld drew %lld, want %lld", name,
                         (long long)n, (long long)got_ids[n], (long long)ids[n]);
            break;
        }
    drop(Dx), drop(Dlp), drop(Dref), drop(Dids);
    free(ids), free(got_ids), free(lp), free(ref);
}

static void test_sample_rows(void) {
    const int64_t vocab[] = {1, 7, 300, 1000};
    const empo_sampling settings[] = {
        {0.0, 0, 1.0, 0.0, 0},   {1.0, 0, 1.0, 0.0, 0},  {0.7, 5, 1.0, 0.0, 0},  {1.0, 1, 1.0, 0.0, 0},
        {1.0, 0, 0.9, 0.0, 0},   {1.3, 50, 0.5, 0.0, 0}, {1.0, 0, 1.0, 0.1, 0},  {0.8, 20, 0.8, 0.05, 0},
        {1.0, 5000, 0.999, 0.0, 0}, {0.5, 0, 0.05, 0.0, 0},
    };
    const int64_t N = 9;
    double u[9];
    for (int i = 0; i < 9; i++) u[i] = (i * 0.37 + 0.11) - (int)(i * 0.37 + 0.11);
    u[0] = 0.0, u[1] = 1.0 - 0x1p-53;
    for (int vi = 0; vi < 4; vi++) {
        const int64_t V = vocab[vi], stride = V + 3;
        float *x = logits_with_ties(N * stride, 300 + vi);
        for (int64_t j = 0; j < V; j += 3) x[2 * stride + j] = -INFINITY;   /* banned tokens in row 2 */
        if (V > 1) x[3 * stride + V - 1] = x[3 * stride];                    /* a tie across the row */
        for (size_t si = 0; si < sizeof settings / sizeof *settings; si++)
            sample_case("sample_rows", x, N, V, stride, settings[si], u);
        /* a vocabulary shorter than the row: ids past it never drawn */
        if (V > 7) {
            empo_sampling s = {1.0, 0, 0.95, 0.0, V - 5};
            sample_case("sample_rows, vocab", x, N, V - 5, stride, s, u);
        }
        free(x);
    }
    /* rows the op must refuse: the first of them is named, the others still sampled */
    const int64_t V = 40;
    float *x = logits_with_ties(4 * V, 41);
    x[1 * V + 9] = NAN;
    for (int64_t j = 0; j < V; j++) x[3 * V + j] = -INFINITY;
    const empo_sampling plain = {1.0, 0, 1.0, 0.0, 0}, greedy = {0.0, 0, 1.0, 0.0, 0};
    sample_case("sample_rows, a NaN row", x, 4, V, V, plain, u);
    sample_case("sample_rows, a NaN row (greedy)", x, 4, V, V, greedy, u);
    x[1 * V + 9] = 0.5f;
    sample_case("sample_rows, a row of -inf", x, 4, V, V, plain, u);
    x[2 * V] = INFINITY;
    sample_case("sample_rows, a +inf", x, 4, V, V, plain, u);
    free(x);
}

static void test_sample_stats(void) {
    const int64_t vocab[] = {1, 33, 1000}, N = 5;
    const double inv_t[] = {1.0, 1.0 / 0.7};
    for (int vi = 0; vi < 3; vi++)
        for (int ti = 0; ti < 2; ti++) {
            const int64_t V = vocab[vi], stride = V + 2;
            float *x = logits_with_ties(N * stride, 500 + vi);
            for (int64_t j = 0; j < V; j += 4) x[stride + j] = -INFINITY;
            float *ent = malloc(sizeof(float) * N), *cert = malloc(sizeof(float) * N);
            const int64_t bad = R->sample_stats(ent, cert, x, N, V, stride, inv_t[ti]);
            float *Dx = UPF(x, N * stride), *Dent = ALLOCF(N), *Dcert = ALLOCF(N);
            const int64_t got = K->sample_stats(Dent, Dcert, Dx, N, V, stride, inv_t[ti]);
            check_report(__FILE__, __LINE__, got == bad, "sample_stats V %lld: bad row %lld, want %lld", (long long)V,
                         (long long)got, (long long)bad);
            expect("sample_stats entropy", Dent, ent, N);
            expect("sample_stats self-certainty", Dcert, cert, N);
            CHECK(K->sample_stats(NULL, Dcert, Dx, N, V, stride, inv_t[ti]) == bad);
            expect("sample_stats self-certainty alone", Dcert, cert, N);
            x[3 * stride] = NAN;   /* now row 3 is bad */
            K->device->upload(Dx, x, sizeof(float) * N * stride);
            const int64_t nan_row = K->sample_stats(Dent, NULL, Dx, N, V, stride, inv_t[ti]),
                          want_row = R->sample_stats(ent, NULL, x, N, V, stride, inv_t[ti]);
            check_report(__FILE__, __LINE__, nan_row == want_row && want_row >= 0 && want_row <= 3,
                         "sample_stats V %lld names row %lld first, want %lld", (long long)V, (long long)nan_row,
                         (long long)want_row);
            drop(Dx), drop(Dent), drop(Dcert);
            free(x), free(ent), free(cert);
        }
}

/* ---- attention of one token per row over a shared prefix and its own positions ---- */
static void kv_case(int64_t B, int64_t Hq, int64_t Hkv, int64_t Dh, int64_t P, int64_t Sp, int64_t S, int prefix) {
    const empo_kv_shape a = {B, Hq, Hkv, Dh, prefix ? P : B, prefix ? Sp : 0, S, 0.37f};
    const int64_t nq = B * Hq * Dh, np = P * Hkv * Sp * Dh, nk = B * Hkv * S * Dh;
    float *q = randoms(nq, 61, -1, 1), *pk = randoms(np, 62, -1, 1), *pv = randoms(np, 63, -1, 1);
    float *k = randoms(nk, 64, -1, 1), *v = randoms(nk, 65, -1, 1), *out = malloc(sizeof(float) * nq);
    int64_t plen[8], len[16], prow[16], order[17], start[18];
    for (int64_t p = 0; p < P; p++) plen[p] = (p * 5 + 3) % (Sp + 1);
    plen[P - 1] = 0;   /* a prompt slot with no positions */
    for (int64_t b = 0; b < B; b++) len[b] = (b * 3) % (S + 1), prow[b] = (b * 7) % P;
    /* the rows grouped by prefix row, as empo_kv_group_rows does */
    const int64_t groups = prefix ? P : B;
    memset(start, 0, sizeof start);
    for (int64_t b = 0; b < B; b++) start[(prefix ? prow[b] : b) + 2]++;
    for (int64_t p = 0; p < groups; p++) start[p + 2] += start[p + 1];
    for (int64_t b = 0; b < B; b++) order[start[(prefix ? prow[b] : b) + 1]++] = b;
    R->kv_attention(out, NULL, q, prefix ? pk : NULL, prefix ? pv : NULL, plen, order, start, k, v, len, &a);
    float *Dq = UPF(q, nq), *Dpk = UPF(pk, np), *Dpv = UPF(pv, np), *Dk = UPF(k, nk), *Dv = UPF(v, nk);
    float *Dout = ALLOCF(nq), *Dwork = ALLOCF(K->kv_attention_work(&a));
    int64_t *Dplen = UPI(plen, P), *Dorder = UPI(order, B + 1), *Dstart = UPI(start, groups + 2), *Dlen = UPI(len, B);
    K->kv_attention(Dout, Dwork, Dq, prefix ? Dpk : NULL, prefix ? Dpv : NULL, Dplen, Dorder, Dstart, Dk, Dv, Dlen,
                    &a);
    char what[96];
    snprintf(what, sizeof what, "kv_attention B %lld Hq %lld Hkv %lld Dh %lld%s", (long long)B, (long long)Hq,
             (long long)Hkv, (long long)Dh, prefix ? " with a prefix" : "");
    expect(what, Dout, out, nq);
    drop(Dq), drop(Dpk), drop(Dpv), drop(Dk), drop(Dv), drop(Dout), drop(Dwork);
    drop(Dplen), drop(Dorder), drop(Dstart), drop(Dlen);
    free(q), free(pk), free(pv), free(k), free(v), free(out);
}

static void test_kv_attention(void) {
    kv_case(5, 4, 2, 8, 3, 7, 6, 1);
    kv_case(5, 4, 2, 8, 3, 7, 6, 0);
    kv_case(7, 6, 6, 130, 4, 300, 9, 1);   /* more positions and head dims than a block's threads */
    kv_case(1, 2, 1, 4, 1, 1, 1, 1);       /* one row that sees nothing */
    kv_case(3, 14, 2, 64, 2, 9, 5, 1);     /* Qwen2.5's 7 query heads to a KV head, odd cache lengths */
}

int main(void) {
    need_device();
    CHECK(empo_kernels_support(K, EMPO_SLOT(sample_rows)) && empo_kernels_support(K, EMPO_SLOT(sample_stats)));
    test_sample_rows();
    test_sample_stats();
    test_kv_attention();
    CHECK(K->device->synchronize() == 0);
    return check_finish("cuda_sampling");
}
