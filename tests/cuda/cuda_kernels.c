/* cuda_kernels.c — every slot of the CUDA kernel table against the
 * reference table, slot by slot, at shapes that cross the kernels' block,
 * tile and warp boundaries and their tails, with the edge cases the
 * reference defines (NaN, ties, -inf logits, hidden keys, rows that see
 * nothing, NULL gradients).
 *
 * Built twice (tests/CMakeLists.txt): against the emulation
 * (cuda/kernels_emulated: the same .cu sources run on the host, in CI) and
 * against the real table (cuda/kernels: on a GPU; exit 77, "skipped", on
 * a machine without one). Inputs go up and results come down through the
 * table's device (kernels/device.h), so the kernels only ever see device
 * pointers. Tolerance: ||got - want|| / ||want|| <= 1e-5 (f32; DESIGN). */
#include "device_harness.h"

/* ---- elementwise ---- */
static void test_elementwise(void) {
    const int64_t sizes[] = {1, 31, 256, 257, 5000};
    const int64_t strides[][2] = {{1, 1}, {1, 0}, {0, 1}, {2, 3}};
    for (int si = 0; si < 5; si++)
        for (int op = EMPO_BIN_ADD; op <= EMPO_BIN_GT; op++)
            for (int st = 0; st < 4; st++) {
                const int64_t n = sizes[si], sa = strides[st][0], sb = strides[st][1];
                float *a = randoms(n * 3 + 1, 11 + op, op == EMPO_BIN_POW ? 0.1f : -2.0f, 2.0f);
                float *b = randoms(n * 3 + 1, 12 + si, -2.0f, 2.0f);
                if (n > 3) a[sa * 2] = NAN, b[sb * 3] = b[sb * 2], a[sa * 3] = b[sb * 3];   /* NaN, ties */
                float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
                float *da = UPF(a, n * 3 + 1), *db = UPF(b, n * 3 + 1), *dy = ALLOCF(n);
                R->binary(op, want, a, sa, b, sb, n);
                K->binary(op, dy, da, sa, db, sb, n);
                down(got, dy, sizeof(float) * n);
                char what[64];
                snprintf(what, sizeof what, "binary op %d, n %lld, strides %lld/%lld", op, (long long)n,
                         (long long)sa, (long long)sb);
                compare(what, got, want, n);
                drop(da), drop(db), drop(dy);
                free(a), free(b), free(want), free(got);
            }
    for (int op = EMPO_UN_NEG; op <= EMPO_UN_CLAMP; op++)
        for (int si = 0; si < 5; si++) {
            const int64_t n = sizes[si];
            const int positive = op == EMPO_UN_LOG || op == EMPO_UN_SQRT || op == EMPO_UN_RSQRT ||
                                 op == EMPO_UN_POW_S || op == EMPO_UN_RDIV_S;
            float *x = randoms(n, 21 + op, positive ? 0.1f : -3.0f, 3.0f), *g = randoms(n, 22, -1, 1);
            float *y = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
            const float p0 = op == EMPO_UN_CLAMP ? -0.5f : 1.7f, p1 = 0.5f;
            R->unary(op, y, x, n, p0, p1);
            float *dx = UPF(x, n), *dy = UPF(y, n), *dg = UPF(g, n), *dout = ALLOCF(n);
            K->unary(op, dout, dx, n, p0, p1);
            down(got, dout, sizeof(float) * n);
            char what[64];
            snprintf(what, sizeof what, "unary op %d, n %lld", op, (long long)n);
            compare(what, got, y, n);
            R->unary_backward(op, want, g, x, y, n, p0, p1);
            K->unary_backward(op, dout, dg, dx, dy, n, p0, p1);
            down(got, dout, sizeof(float) * n);
            snprintf(what, sizeof what, "unary_backward op %d, n %lld", op, (long long)n);
            compare(what, got, want, n);
            drop(dx), drop(dy), drop(dg), drop(dout);
            free(x), free(g), free(y), free(want), free(got);
        }
}

/* ---- reductions over (outer, n, inner) ---- */
static void test_reduce(void) {
    const int64_t shapes[][3] = {{3, 1, 5}, {2, 31, 3}, {2, 32, 1}, {1, 1000, 1}, {4, 257, 2}, {5, 3, 700}, {1, 1, 1}};
    for (int c = 0; c < 7; c++) {
        const int64_t o = shapes[c][0], n = shapes[c][1], in = shapes[c][2], total = o * n * in, lines = o * in;
        float *x = randoms(total, 31 + c, -4, 4), *g = randoms(total, 32 + c, -1, 1);
        if (n > 4) x[2 * in] = x[4 * in], x[in] = 9.0f, x[3 * in] = 9.0f;   /* a tie for the max: the first wins */
        if (lines > 1 && n > 2) x[(n + 1) * in + 1 - in] = NAN;               /* a NaN in another line */
        float *want = malloc(sizeof(float) * total), *got = malloc(sizeof(float) * total);
        int64_t *iw = malloc(sizeof(int64_t) * lines), *ig = malloc(sizeof(int64_t) * lines);
        float *dx = UPF(x, total), *dg = UPF(g, total), *dy = ALLOCF(total);
        int64_t *di = dalloc(sizeof(int64_t) * (size_t)lines);
        char what[96];
        snprintf(what, sizeof what, "(%lld, %lld, %lld)", (long long)o, (long long)n, (long long)in);

        R->sum_dim(want, x, o, n, in);
        K->sum_dim(dy, dx, o, n, in);
        down(got, dy, sizeof(float) * lines);
        char w2[128];
        snprintf(w2, sizeof w2, "sum_dim %s", what);
        compare(w2, got, want, lines);

        R->max_dim(want, iw, x, o, n, in);
        K->max_dim(dy, di, dx, o, n, in);
        down(got, dy, sizeof(float) * lines);
        down(ig, di, sizeof(int64_t) * lines);
        snprintf(w2, sizeof w2, "max_dim %s", what);
        compare(w2, got, want, lines);
        check_report(__FILE__, __LINE__, memcmp(iw, ig, sizeof(int64_t) * lines) == 0, "max_dim %s: indices", what);

        for (int lg = 0; lg < 2; lg++) {
            float *y = malloc(sizeof(float) * total);
            R->softmax(y, x, o, n, in, lg);
            K->softmax(dy, dx, o, n, in, lg);
            down(got, dy, sizeof(float) * total);
            snprintf(w2, sizeof w2, "%s %s", lg ? "log_softmax" : "softmax", what);
            compare(w2, got, y, total);
            float *dyy = UPF(y, total);
            R->softmax_backward(want, g, y, o, n, in, lg);
            K->softmax_backward(dy, dg, dyy, o, n, in, lg);
            down(got, dy, sizeof(float) * total);
            snprintf(w2, sizeof w2, "%s backward %s", lg ? "log_softmax" : "softmax", what);
            compare(w2, got, want, total);
            drop(dyy);
            free(y);
        }
        drop(dx), drop(dg), drop(dy), drop(di);
        free(x), free(g), free(want), free(got), free(iw), free(ig);
    }
}

/* ---- products: every transpose, padded leading dims, alpha/beta, K = 0 ---- */
static void test_gemm(void) {
    const int64_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 64}, {64, 65, 3}, {5, 6, 0}};
    for (int c = 0; c < 5; c++)
        for (int t = 0; t < 4; t++)
            for (int ab = 0; ab < 3; ab++) {
                const int64_t M = shapes[c][0], N = shapes[c][1], Kd = shapes[c][2];
                const int ta = t & 1, tb = t >> 1;
                const int64_t lda = (ta ? M : Kd) + 3, ldb = (tb ? Kd : N) + 2, ldc = N + 1;
                const int64_t na = (ta ? Kd : M) * lda + 1, nb = (tb ? N : Kd) * ldb + 1, nc = M * ldc;
                const float alpha = ab == 2 ? 0.5f : 1.0f, beta = ab == 0 ? 0.0f : (ab == 1 ? 1.0f : -2.0f);
                const int64_t off = ab == 2;   /* then A and B start one float in: 4-byte aligned, as a view's rows */
                float *A = randoms(na + off, 41 + c, -1, 1), *B = randoms(nb + off, 42 + t, -1, 1);
                float *C = randoms(nc, 43, -1, 1);
                if (beta == 0.0f) C[0] = NAN;   /* beta 0 ignores C, NaN included */
                float *dA = UPF(A, na + off), *dB = UPF(B, nb + off), *dC = UPF(C, nc), *got = malloc(sizeof(float) * nc);
                R->gemm(ta, tb, M, N, Kd, alpha, A + off, lda, B + off, ldb, beta, C, ldc);
                K->gemm(ta, tb, M, N, Kd, alpha, dA + off, lda, dB + off, ldb, beta, dC, ldc);
                down(got, dC, sizeof(float) * nc);
                char what[96];
                snprintf(what, sizeof what, "gemm %lldx%lldx%lld trans %d%d alpha %g beta %g%s", (long long)M,
                         (long long)N, (long long)Kd, ta, tb, alpha, beta, off ? " (operands 4-byte aligned)" : "");
                compare(what, got, C, nc);
                drop(dA), drop(dB), drop(dC);
                free(A), free(B), free(C), free(got);
            }
}

/* ---- TF32 allowed (the switch empo.cuda_allow_tf32 reaches): f32 operands
 * rounded to 10 mantissa bits on the tensor cores, so a product is within
 * 1e-3 of f32's and, under the emulation, to show the switch works, not
 * f32's itself; the attention, which runs on the products, within 1e-3
 * too ---- */
int empo_cuda_backend_tf32(int allow);

static void test_tf32(void) {
    const int64_t M = 33, N = 40, Kd = 64;
    float *A = randoms(M * Kd, 241, -1, 1), *B = randoms(Kd * N, 242, -1, 1), *C = malloc(sizeof(float) * M * N);
    float *got = malloc(sizeof(float) * M * N), *dA = UPF(A, M * Kd), *dB = UPF(B, Kd * N), *dC = ALLOCF(M * N);
    R->gemm(0, 0, M, N, Kd, 1.0f, A, Kd, B, N, 0.0f, C, N);
    CHECK(empo_cuda_backend_tf32(1) == 0);   /* off until asked for */
    K->gemm(0, 0, M, N, Kd, 1.0f, dA, Kd, dB, N, 0.0f, dC, N);
    down(got, dC, sizeof(float) * M * N);
    int64_t bad;
    const double err = rel_error(got, C, M * N, &bad);
#ifdef EMPO_TEST_EMULATED   /* (cuBLASLt may still pick an f32 kernel for a small product: only the emulation must round) */
    check_report(__FILE__, __LINE__, err <= 1e-3 && err > 1e-6,
                 "gemm with TF32: relative error %.3g (want within 1e-3, and over f32's 1e-6)", err);
#else
    check_report(__FILE__, __LINE__, err <= 1e-3, "gemm with TF32: relative error %.3g (want within 1e-3)", err);
#endif

    empo_attn_shape a = {1, 4, 2, 40, 40, 64, 1, 0.125f};
    const int64_t nq = 4 * 40 * 64, nkv = 2 * 40 * 64, rows = 4 * 40;
    float *q = randoms(nq, 243, -1, 1), *k = randoms(nkv, 244, -1, 1), *v = randoms(nkv, 245, -1, 1);
    float *out = malloc(sizeof(float) * nq), *lse = malloc(sizeof(float) * rows), *gout = malloc(sizeof(float) * nq);
    float *Dq = UPF(q, nq), *Dk = UPF(k, nkv), *Dv = UPF(v, nkv), *Dout = ALLOCF(nq), *Dlse = ALLOCF(rows);
    float *Dwork = ALLOCF(K->attention_work(&a) + 1);
    R->attention_forward(out, lse, NULL, q, k, v, NULL, &a);
    K->attention_forward(Dout, Dlse, Dwork, Dq, Dk, Dv, NULL, &a);
    down(gout, Dout, sizeof(float) * nq);
    compare_within("attention forward with TF32", gout, out, nq, 1e-3);
    CHECK(empo_cuda_backend_tf32(0) == 1);
    drop(dA), drop(dB), drop(dC), drop(Dq), drop(Dk), drop(Dv), drop(Dout), drop(Dlse), drop(Dwork);
    free(A), free(B), free(C), free(got), free(q), free(k), free(v), free(out), free(lse), free(gout);
}

/* ---- the bf16 product: bf16 inputs, f32 out, against the reference on the same inputs ---- */
static uint16_t *to_bf16(const float *x, int64_t n) {
    uint16_t *b = malloc(sizeof(uint16_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        b[i] = (uint16_t)(u >> 16);
    }
    return b;
}

static void test_gemm_bf16(void) {
    const int64_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 64}, {64, 65, 3}, {5, 6, 0}};
    for (int c = 0; c < 5; c++)
        for (int t = 0; t < 4; t++) {
            const int64_t M = shapes[c][0], N = shapes[c][1], Kd = shapes[c][2];
            const int ta = t & 1, tb = t >> 1;
            const int64_t lda = (ta ? M : Kd) + 1, ldb = (tb ? Kd : N) + 2, ldc = N;
            const int64_t na = (ta ? Kd : M) * lda + 1, nb = (tb ? N : Kd) * ldb + 1, nc = M * ldc;
            float *Af = randoms(na, 141 + c, -1, 1), *Bf = randoms(nb, 142 + t, -1, 1), *C = randoms(nc, 143, -1, 1);
            uint16_t *A = to_bf16(Af, na), *B = to_bf16(Bf, nb);
            uint16_t *dA = up(A, sizeof(uint16_t) * (size_t)na), *dB = up(B, sizeof(uint16_t) * (size_t)nb);
            float *dC = UPF(C, nc);
            R->gemm_bf16(ta, tb, M, N, Kd, 1.0f, A, lda, B, ldb, 0.5f, C, ldc);
            K->gemm_bf16(ta, tb, M, N, Kd, 1.0f, dA, lda, dB, ldb, 0.5f, dC, ldc);
            char what[96];
            snprintf(what, sizeof what, "gemm_bf16 %lldx%lldx%lld trans %d%d", (long long)M, (long long)N,
                     (long long)Kd, ta, tb);
            expect(what, dC, C, nc);
            drop(dA), drop(dB), drop(dC);
            free(Af), free(Bf), free(C), free(A), free(B);
        }
}

/* ---- row gather (any element size) and ordered scatter-add ---- */
static void test_index(void) {
    const int64_t outer = 3, D = 7, Kn = 9, inner = 5;
    int64_t idx[9] = {6, 0, 3, 3, 1, 6, 6, 2, 0};
    int64_t *didx = UPI(idx, Kn);
    const int esizes[] = {4, 8, 2, 1, 12};
    for (int e = 0; e < 5; e++) {
        const int es = esizes[e];
        const size_t xb = (size_t)(outer * D * inner * es), yb = (size_t)(outer * Kn * inner * es);
        unsigned char *x = malloc(xb), *want = malloc(yb), *got = malloc(yb);
        for (size_t i = 0; i < xb; i++) x[i] = (unsigned char)(i * 37 + 11);
        void *dx = up(x, xb), *dy = dalloc(yb);
        R->index_rows(want, x, idx, outer, D, Kn, inner, es);
        K->index_rows(dy, dx, didx, outer, D, Kn, inner, es);
        down(got, dy, yb);
        check_report(__FILE__, __LINE__, memcmp(want, got, yb) == 0, "index_rows, elements of %d bytes", es);
        drop(dx), drop(dy);
        free(x), free(want), free(got);
    }
    float *gx = randoms(outer * D * inner, 51, -1, 1), *gy = randoms(outer * Kn * inner, 52, -1, 1);
    float *dgx = UPF(gx, outer * D * inner), *dgy = UPF(gy, outer * Kn * inner), *got = malloc(sizeof(float) * outer * D * inner);
    R->index_rows_add(gx, gy, idx, outer, D, Kn, inner);
    K->index_rows_add(dgx, dgy, didx, outer, D, Kn, inner);
    expect("index_rows_add (repeated indices)", dgx, gx, outer * D * inner);
    drop(dgx), drop(dgy), drop(didx);
    free(gx), free(gy), free(got);

    /* an embedding's backward: a vocabulary of rows, tokens repeating, few
     * columns (the kernel splits the rows into slices: 5000 rows in slices
     * of 2 here, the last one short) */
    const int64_t V = 5000, T = 64, E = 20;
    int64_t tokens[64];
    for (int64_t t = 0; t < T; t++) tokens[t] = t % 5 == 0 ? 7 : (t * 977 + 3) % V;   /* token 7 five times and more */
    tokens[T - 1] = V - 1;
    float *ge = randoms(V * E, 53, -1, 1), *gt = randoms(T * E, 54, -1, 1);
    float *dge = UPF(ge, V * E), *dgt = UPF(gt, T * E);
    int64_t *dtok = UPI(tokens, T);
    R->index_rows_add(ge, gt, tokens, 1, V, T, E);
    K->index_rows_add(dge, dgt, dtok, 1, V, T, E);
    expect("index_rows_add (an embedding's rows)", dge, ge, V * E);
    drop(dge), drop(dgt), drop(dtok);
    free(ge), free(gt);
}

/* ---- RMSNorm, SwiGLU, RoPE ---- */
static void test_norm_swiglu_rope(void) {
    const int64_t shapes[][2] = {{1, 1}, {3, 257}, {5, 896}, {300, 7}};
    for (int c = 0; c < 4; c++) {
        const int64_t N = shapes[c][0], D = shapes[c][1];
        float *x = randoms(N * D, 61, -2, 2), *w = randoms(D, 62, 0.5f, 1.5f), *g = randoms(N * D, 63, -1, 1);
        float *out = malloc(sizeof(float) * N * D), *rstd = malloc(sizeof(float) * N), *dxw = malloc(sizeof(float) * N * D);
        float *dww = malloc(sizeof(float) * D), *got = malloc(sizeof(float) * N * D);
        float *dx = UPF(x, N * D), *dw = UPF(w, D), *dg = UPF(g, N * D), *dout = ALLOCF(N * D), *drs = ALLOCF(N);
        float *ddx = ALLOCF(N * D), *ddw = ALLOCF(D);
        R->rmsnorm_forward(out, rstd, x, w, N, D, 1e-6f);
        K->rmsnorm_forward(dout, drs, dx, dw, N, D, 1e-6f);
        expect("rmsnorm_forward out", dout, out, N * D);
        expect("rmsnorm_forward rstd", drs, rstd, N);
        for (int which = 0; which < 3; which++) {   /* both, dx only, dw only */
            R->rmsnorm_backward(which != 2 ? dxw : NULL, which != 1 ? dww : NULL, g, x, w, rstd, N, D);
            K->rmsnorm_backward(which != 2 ? ddx : NULL, which != 1 ? ddw : NULL, dg, dx, dw, drs, N, D);
            if (which != 2) down(got, ddx, sizeof(float) * N * D), compare("rmsnorm_backward dx", got, dxw, N * D);
            if (which != 1) down(got, ddw, sizeof(float) * D), compare("rmsnorm_backward dw", got, dww, D);
        }
        /* SwiGLU over the same buffers: gate = x, up = g */
        R->swiglu_forward(out, x, g, N * D);
        K->swiglu_forward(dout, dx, dg, N * D);
        expect("swiglu_forward", dout, out, N * D);
        for (int which = 0; which < 3; which++) {
            R->swiglu_backward(which != 2 ? dxw : NULL, which != 1 ? out : NULL, g, x, g, N * D);
            K->swiglu_backward(which != 2 ? ddx : NULL, which != 1 ? dout : NULL, dg, dx, dg, N * D);
            if (which != 2) down(got, ddx, sizeof(float) * N * D), compare("swiglu_backward dgate", got, dxw, N * D);
            if (which != 1) down(got, dout, sizeof(float) * N * D), compare("swiglu_backward dup", got, out, N * D);
        }
        drop(dx), drop(dw), drop(dg), drop(dout), drop(drs), drop(ddx), drop(ddw);
        free(x), free(w), free(g), free(out), free(rstd), free(dxw), free(dww), free(got);
    }
    const int64_t rs[][4] = {{2, 3, 5, 8}, {1, 2, 17, 64}, {1, 1, 3, 2}};
    for (int c = 0; c < 3; c++) {
        const int64_t B = rs[c][0], H = rs[c][1], T = rs[c][2], Dh = rs[c][3], n = B * H * T * Dh;
        int64_t *pos = malloc(sizeof(int64_t) * B * T);
        for (int64_t i = 0; i < B * T; i++) pos[i] = (i * 7919) % 32768;
        float *x = randoms(n, 71 + c, -1, 1), *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        float *dx = UPF(x, n), *dy = ALLOCF(n);
        int64_t *dpos = UPI(pos, B * T);
        for (int dir = 0; dir < 2; dir++) {
            (dir ? R->rope_backward : R->rope_forward)(want, x, pos, B, H, T, Dh, 1000000.0);
            (dir ? K->rope_backward : K->rope_forward)(dy, dx, dpos, B, H, T, Dh, 1000000.0);
            down(got, dy, sizeof(float) * n);
            compare(dir ? "rope_backward" : "rope_forward", got, want, n);
        }
        drop(dx), drop(dy), drop(dpos);
        free(pos), free(x), free(want), free(got);
    }
}

/* ---- attention: causal and not, cached keys (S > T), hidden keys, a batch
 * row that sees nothing, more queries than a chunk of scores, head dims over a block ---- */
typedef struct {
    int64_t B, Hq, Hkv, T, S, Dh;
    int causal, keep;   /* keep: 0 none, 1 some keys hidden, 2 batch row 0 sees nothing */
} attn_case;

static void test_attention(void) {
    const attn_case cases[] = {
        {2, 4, 2, 5, 5, 8, 1, 0},   {1, 2, 1, 3, 7, 16, 1, 1}, {1, 1, 1, 130, 130, 64, 1, 0},
        {2, 2, 2, 4, 9, 8, 0, 1},   {2, 2, 1, 3, 3, 8, 1, 2},  {1, 1, 1, 3, 3, 200, 1, 0},
        /* Qwen's head dim, GQA 3:1, groups of several score chunks, cached keys, hidden keys; a wide head;
         * groups batched two to a product, the last batch one (the emulation's slabs hold 4096 scores) */
        {1, 6, 2, 37, 45, 128, 1, 1}, {2, 3, 1, 70, 70, 64, 0, 0}, {1, 2, 2, 5, 5, 2048, 1, 0},
        {5, 2, 1, 20, 50, 16, 1, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const attn_case *x = &cases[c];
        empo_attn_shape a = {x->B, x->Hq, x->Hkv, x->T, x->S, x->Dh, x->causal, 1.0f / sqrtf((float)x->Dh)};
        const int64_t nq = a.B * a.Hq * a.T * a.Dh, nkv = a.B * a.Hkv * a.S * a.Dh, rows = a.B * a.Hq * a.T;
        float *q = randoms(nq, 81 + c, -1, 1), *k = randoms(nkv, 82 + c, -1, 1), *v = randoms(nkv, 83 + c, -1, 1);
        float *dout = randoms(nq, 84 + c, -1, 1), *keep = NULL;
        if (x->keep) {
            keep = malloc(sizeof(float) * a.B * a.S);
            for (int64_t i = 0; i < a.B * a.S; i++) keep[i] = x->keep == 2 ? (i >= a.S) : (i % 3 != 1);
            for (int64_t b = 0; b < a.B; b++)   /* what a hidden key holds is never read */
                for (int64_t s = 0; s < a.S; s++)
                    if (keep[b * a.S + s] == 0.0f) v[((b * a.Hkv) * a.S + s) * a.Dh] = NAN;
        }
        float *out = malloc(sizeof(float) * nq), *lse = malloc(sizeof(float) * rows);
        float *got = malloc(sizeof(float) * (size_t)(nq > nkv ? nq : nkv));
        float *dq = malloc(sizeof(float) * nq), *dk = malloc(sizeof(float) * nkv), *dv = malloc(sizeof(float) * nkv);
        float *Dq = UPF(q, nq), *Dk = UPF(k, nkv), *Dv = UPF(v, nkv), *Dg = UPF(dout, nq);
        float *Dkeep = keep ? UPF(keep, a.B * a.S) : NULL, *Dout = ALLOCF(nq), *Dlse = ALLOCF(rows);
        float *Ddq = ALLOCF(nq), *Ddk = ALLOCF(nkv), *Ddv = ALLOCF(nkv), *Dwork = ALLOCF(K->attention_work(&a) + 1);
        char what[96];
        snprintf(what, sizeof what, "attention case %zu", c);
        R->attention_forward(out, lse, NULL, q, k, v, keep, &a);
        K->attention_forward(Dout, Dlse, Dwork, Dq, Dk, Dv, Dkeep, &a);
        down(got, Dout, sizeof(float) * nq);
        char w2[128];
        snprintf(w2, sizeof w2, "%s forward out", what);
        compare(w2, got, out, nq);
        down(got, Dlse, sizeof(float) * rows);
        snprintf(w2, sizeof w2, "%s forward lse", what);
        compare(w2, got, lse, rows);
        R->attention_backward(dq, dk, dv, NULL, dout, q, k, v, out, keep, lse, &a);
        for (int which = 0; which < 2; which++) {   /* all three, then dq alone */
            K->attention_backward(Ddq, which ? NULL : Ddk, which ? NULL : Ddv, Dwork, Dg, Dq, Dk, Dv, Dout, Dkeep,
                                  Dlse, &a);
            down(got, Ddq, sizeof(float) * nq);
            snprintf(w2, sizeof w2, "%s backward dq", what);
            compare(w2, got, dq, nq);
            if (which) break;
            down(got, Ddk, sizeof(float) * nkv);
            snprintf(w2, sizeof w2, "%s backward dk", what);
            compare(w2, got, dk, nkv);
            down(got, Ddv, sizeof(float) * nkv);
            snprintf(w2, sizeof w2, "%s backward dv", what);
            compare(w2, got, dv, nkv);
        }
        drop(Dq), drop(Dk), drop(Dv), drop(Dg), drop(Dout), drop(Dlse), drop(Ddq), drop(Ddk), drop(Ddv), drop(Dwork);
        if (Dkeep) drop(Dkeep);
        free(q), free(k), free(v), free(dout), free(keep), free(out), free(lse), free(got), free(dq), free(dk), free(dv);
    }
}

/* ---- log-prob and entropy: vocabularies past a block, -inf logits, NULL upstream gradients ---- */
static void test_logprob(void) {
    const int64_t shapes[][2] = {{1, 1}, {3, 513}, {2, 5000}, {4, 7}};
    for (int c = 0; c < 4; c++) {
        const int64_t N = shapes[c][0], V = shapes[c][1];
        float *x = randoms(N * V, 91 + c, -6, 6), *gl = randoms(N, 92, -1, 1), *ge = randoms(N, 93, -1, 1);
        int64_t *ids = malloc(sizeof(int64_t) * N);
        for (int64_t n = 0; n < N; n++) ids[n] = (n * 131 + 7) % V;
        for (int64_t i = 3; i < N * V; i += 5)
            if (i % V != ids[i / V]) x[i] = -INFINITY;   /* banned tokens */
        float *lp = malloc(sizeof(float) * N), *ent = malloc(sizeof(float) * N), *lse = malloc(sizeof(float) * N);
        float *want = malloc(sizeof(float) * N * V), *got = malloc(sizeof(float) * N * V);
        float *Dx = UPF(x, N * V), *Dgl = UPF(gl, N), *Dge = UPF(ge, N), *Dlp = ALLOCF(N), *Dent = ALLOCF(N);
        float *Dlse = ALLOCF(N), *Dd = ALLOCF(N * V);
        int64_t *Dids = UPI(ids, N);
        R->logprob_entropy_forward(lp, ent, lse, x, ids, N, V);
        K->logprob_entropy_forward(Dlp, Dent, Dlse, Dx, Dids, N, V);
        expect("logprob_entropy_forward logp", Dlp, lp, N);
        expect("logprob_entropy_forward entropy", Dent, ent, N);
        expect("logprob_entropy_forward lse", Dlse, lse, N);
        for (int which = 0; which < 3; which++) {   /* both, logp only, entropy only */
            R->logprob_entropy_backward(want, which != 2 ? gl : NULL, which != 1 ? ge : NULL, x, ids, lse, ent, N, V);
            K->logprob_entropy_backward(Dd, which != 2 ? Dgl : NULL, which != 1 ? Dge : NULL, Dx, Dids, Dlse, Dent, N, V);
            expect("logprob_entropy_backward", Dd, want, N * V);
        }
        drop(Dx), drop(Dgl), drop(Dge), drop(Dlp), drop(Dent), drop(Dlse), drop(Dd), drop(Dids);
        free(x), free(gl), free(ge), free(ids), free(lp), free(ent), free(lse), free(want), free(got);
    }
}

/* ---- the chunked LM head: ragged chunks, a padded weight, dW accumulated ---- */
static void test_head_logprob(void) {
    const int64_t cases[][5] = {{7, 16, 50, 50, 3}, {5, 24, 600, 571, 2}, {3, 8, 40, 40, 8}};   /* N, D, rows, V, chunk */
    for (int c = 0; c < 3; c++) {
        const int64_t N = cases[c][0], D = cases[c][1], Rw = cases[c][2], V = cases[c][3], chunk = cases[c][4];
        float *h = randoms(N * D, 95 + c, -1, 1), *W = randoms(Rw * D, 96 + c, -1, 1), *gl = randoms(N, 97, -1, 1);
        float *ge = randoms(N, 98, -1, 1), *dW = randoms(Rw * D, 99, -1, 1), *dh = malloc(sizeof(float) * N * D);
        int64_t *ids = malloc(sizeof(int64_t) * N);
        for (int64_t n = 0; n < N; n++) ids[n] = (n * 131 + 7) % V;
        float *lp = malloc(sizeof(float) * N), *ent = malloc(sizeof(float) * N), *lse = malloc(sizeof(float) * N);
        float *Dh = UPF(h, N * D), *DW = UPF(W, Rw * D), *Dgl = UPF(gl, N), *Dge = UPF(ge, N), *DdW = UPF(dW, Rw * D);
        float *Dlp = ALLOCF(N), *Dent = ALLOCF(N), *Dlse = ALLOCF(N), *Ddh = ALLOCF(N * D), *Dwork = ALLOCF(chunk * V);
        int64_t *Dids = UPI(ids, N);
        R->head_logprob_forward(lp, ent, lse, h, W, ids, N, D, V, 0.8f, 0, NULL);
        K->head_logprob_forward(Dlp, Dent, Dlse, Dh, DW, Dids, N, D, V, 0.8f, chunk, Dwork);
        expect("head_logprob_forward logp", Dlp, lp, N);
        expect("head_logprob_forward entropy", Dent, ent, N);
        expect("head_logprob_forward lse", Dlse, lse, N);
        R->head_logprob_backward(dh, dW, gl, ge, h, W, ids, lse, ent, N, D, V, 0.8f, 0, NULL);
        K->head_logprob_backward(Ddh, DdW, Dgl, Dge, Dh, DW, Dids, Dlse, Dent, N, D, V, 0.8f, chunk, Dwork);
        expect("head_logprob_backward dh", Ddh, dh, N * D);
        expect("head_logprob_backward dW (accumulated)", DdW, dW, Rw * D);
        drop(Dh), drop(DW), drop(Dgl), drop(Dge), drop(DdW), drop(Dlp), drop(Dent), drop(Dlse), drop(Ddh), drop(Dwork);
        drop(Dids);
        free(h), free(W), free(gl), free(ge), free(dW), free(dh), free(ids), free(lp), free(ent), free(lse);
    }
}

/* ---- the optimizer: AdamW, the sum of squares (same bits twice), scaling ---- */
static void test_optimizer(void) {
    const int64_t sizes[] = {1, 255, 70000};
    empo_adamw_scalars s = {0.9f, 0.999f, 1e-8f, 0.1f, 0.001f, 1.0f - 1e-3f * 0.01f, 1e-3f / 0.1f, 0.0316227766f};
    for (int c = 0; c < 3; c++) {
        const int64_t n = sizes[c];
        float *p = randoms(n, 101, -1, 1), *m = randoms(n, 102, -0.1f, 0.1f), *v = randoms(n, 103, 0, 0.01f);
        float *g = randoms(n, 104, -1, 1), *got = malloc(sizeof(float) * n);
        float *Dp = UPF(p, n), *Dm = UPF(m, n), *Dv = UPF(v, n), *Dg = UPF(g, n);
        R->adamw(p, m, v, g, n, &s);
        K->adamw(Dp, Dm, Dv, Dg, n, &s);
        expect("adamw p", Dp, p, n);
        expect("adamw m", Dm, m, n);
        expect("adamw v", Dv, v, n);
        const double want = R->sumsq(g, n), first = K->sumsq(Dg, n), second = K->sumsq(Dg, n);
        check_report(__FILE__, __LINE__, fabs(first - want) <= 1e-12 * want && first == second,
                     "sumsq n %lld: %.17g, again %.17g, want %.17g", (long long)n, first, second, want);
        R->scale(g, n, -0.375f);
        K->scale(Dg, n, -0.375f);
        expect("scale", Dg, g, n);
        drop(Dp), drop(Dm), drop(Dv), drop(Dg);
        free(p), free(m), free(v), free(g), free(got);
    }
}

/* ---- select: y = mask ? a : b, for every element size ---- */
static void test_select(void) {
    const int64_t n = 777;
    unsigned char mask[777], a[777 * 8], b[777 * 8], want[777 * 8], got[777 * 8];
    for (int64_t i = 0; i < n; i++) mask[i] = (unsigned char)((i * 7) % 3 == 0);
    for (int64_t i = 0; i < n * 8; i++) a[i] = (unsigned char)(i * 13), b[i] = (unsigned char)(i * 29 + 1);
    for (int es = 1; es <= 8; es *= 2) {
        R->select(want, mask, a, b, n, es);
        void *Dm = up(mask, (size_t)n), *Da = up(a, (size_t)(n * es)), *Db = up(b, (size_t)(n * es));
        void *Dy = dalloc((size_t)(n * es));
        K->select(Dy, Dm, Da, Db, n, es);
        down(got, Dy, (size_t)(n * es));
        check_report(__FILE__, __LINE__, memcmp(got, want, (size_t)(n * es)) == 0, "select, %d-byte elements", es);
        drop(Dm), drop(Da), drop(Db), drop(Dy);
    }
}

/* ---- dtype conversion: every pair, byte for byte as the host converts ---- */
static void test_convert(void) {
    const int dtypes[] = {EMPO_F32, EMPO_F64, EMPO_BF16, EMPO_F16, EMPO_I32, EMPO_I64, EMPO_U8};
    const int size[] = {4, 8, 2, 2, 4, 8, 1};
    enum { N = 300 };
    double v[N];
    float *r = randoms(N, 77, -70000.0f, 70000.0f);
    for (int i = 0; i < N; i++) v[i] = i % 3 ? r[i] : r[i] * 1e-9;   /* f16 overflow and subnormals, ties below */
    v[0] = NAN, v[1] = -INFINITY, v[2] = 0.0, v[3] = -2.5, v[4] = 1.00390625, v[5] = 3.0 * 0x1p-25;
    free(r);
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 7; b++) {
            const int src_dt = dtypes[a], dst_dt = dtypes[b];
            const int src_float = src_dt <= EMPO_F16, dst_int = dst_dt >= EMPO_I32 && dst_dt != EMPO_U8;
            unsigned char src[N * 8], want[N * 8], got[N * 8];
            for (int i = 0; i < N; i++) {   /* what becomes an integer is finite and in range (casts beyond are undefined) */
                double x = v[i];
                if (dst_int || !src_float) x = isfinite(x) ? fmod(x, 30000.0) : 7.0;
                if (src_dt == EMPO_I64 && i % 5 == 0) x *= 3e5;   /* past i32: its low bits are kept */
                empo_element_store(src, src_dt, i, x);
            }
            R->convert(want, dst_dt, src, src_dt, N);
            void *Dsrc = up(src, (size_t)N * size[a]), *Ddst = dalloc((size_t)N * size[b]);
            K->convert(Ddst, dst_dt, Dsrc, src_dt, N);
            down(got, Ddst, (size_t)N * size[b]);
            check_report(__FILE__, __LINE__, memcmp(got, want, (size_t)N * size[b]) == 0,
                         "convert %s -> %s: the host's bytes", empo_dtype_name(src_dt), empo_dtype_name(dst_dt));
            drop(Dsrc), drop(Ddst);
        }
}

/* ---- the table: filled, and says which slots it runs ---- */
static void test_table(void) {
    typedef void (*any_fn)(void);
    const size_t first = offsetof(empo_kernel_table, binary), n = (sizeof *K - first) / sizeof(any_fn);
    for (size_t i = 0; i < n; i++) {
        any_fn f;
        memcpy(&f, (const char *)K + first + i * sizeof f, sizeof f);
        check_report(__FILE__, __LINE__, f != NULL, "slot %zu is NULL", i);
    }
    CHECK(K->device != NULL && K->supports != NULL);
    CHECK(empo_kernels_support(K, EMPO_SLOT(gemm)) && empo_kernels_support(K, EMPO_SLOT(attention_backward)));
    CHECK(empo_kernels_support(K, EMPO_SLOT(scale)));
    CHECK(!empo_kernels_support(K, EMPO_SLOT(sample_row)) && empo_kernels_support(K, EMPO_SLOT(sample_rows)));
    CHECK(empo_kernels_support(K, EMPO_SLOT(decode_step)) && empo_kernels_support(K, EMPO_SLOT(convert)));
    CHECK(empo_kernels_support(R, EMPO_SLOT(decode_step)));
}

int main(void) {
    need_device();
    test_table();
    test_elementwise();
    test_reduce();
    test_gemm();
    test_gemm_bf16();
    test_index();
    test_convert();
    test_select();
    test_norm_swiglu_rope();
    test_attention();
    test_tf32();
    test_logprob();
    test_head_logprob();
    test_optimizer();
    CHECK(K->device->synchronize() == 0);
    return check_finish("cuda_kernels");
}
