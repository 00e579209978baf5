/* test_table.c — the kernel tables (kernels/kernels.h): every table fills
 * every slot, the switch picks the table, and one small model of every op
 * that reaches a kernel gives the reference table's values and gradients
 * when run on the fast table, through the same op code; the AVX-512
 * table's runs are skipped, saying so, on a CPU without it, and there its
 * panel products must give the AVX2 tiles' bits. A new backend or
 * instruction set is one more entry in `tables` below. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "empo/empo.h"
#include "kernels/kernels.h"
#include "kernels/panel_gemm.h"
#include "kernels/tile_gemm.h"

/* the AVX-512 build's products (kernels/avx512/rename.h names them) */
empo_panel_linear_fn empo_k512_panel_linear, empo_k512_panel_linear_panels;
empo_panel_swiglu_fn empo_k512_panel_swiglu;
empo_tile_gemm_fn empo_tile_gemm_avx512;

/* The AVX-512 attention tiles keep the AVX2 ones' chains too: the same
 * bits over row and column tails (n = 8 .. 45 crosses 32-, 16- and
 * 8-column blocks and the scalar tail), plain and transposed A, with and
 * without accumulation. */
static void test_tiles_same_bits(void) {
    static float A[40 * 40], B[40 * 48], C0[40 * 48], C1[40 * 48];
    for (int i = 0; i < 40 * 40; i++) A[i] = (float)((i * 29) % 83) / 40.0f - 1.0f;
    for (int i = 0; i < 40 * 48; i++) B[i] = (float)((i * 31) % 79) / 39.0f - 1.0f;
    int same = 1;
    const int64_t ms[] = {1, 7, 8, 13, 40}, ns[] = {8, 15, 16, 33, 45}, k = 37;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++)
            for (int mode = 0; mode < 4; mode++) {
                const int64_t m = ms[a], n = ns[b], ldc = 48;
                const int acc = mode & 1, transposed = mode & 2;
                for (int i = 0; i < 40 * 48; i++) C0[i] = C1[i] = (float)(i % 7) / 7.0f;
                const int64_t a_row = transposed ? 1 : 40, a_col = transposed ? 40 : 1;
                empo_tile_gemm(C0, ldc, A, a_row, a_col, B, 48, m, n, k, acc);
                empo_tile_gemm_avx512(C1, ldc, A, a_row, a_col, B, 48, m, n, k, acc);
                same &= memcmp(C0, C1, sizeof C0) == 0;
            }
    check_report(__FILE__, __LINE__, same, "avx512 tile products: the avx2 tiles' bits");
}

/* The AVX-512 panel tiles keep the AVX2 tiles' FMA chains: the same bits,
 * for 1 to 5 panels (pairs and a lone one), full and short last panels. */
static void test_panels_same_bits(void) {
    const int64_t Ms[] = {16, 17, 24, 40, 64, 77}, N = 23, K = 45;
    int same = 1;
    for (int c = 0; c < 6; c++) {
        const int64_t M = Ms[c], P = empo_panels(M), n = P * EMPO_PANEL * N;
        float x[77 * 45], w[23 * 45], u[23 * 45], b[23];
        for (int64_t i = 0; i < M * K; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        for (int64_t i = 0; i < N * K; i++) w[i] = (float)((i * 53) % 97) / 48.0f - 1.0f, u[i] = w[(i * 7) % (N * K)];
        for (int64_t i = 0; i < N; i++) b[i] = (float)i / 10.0f;
        float xp[5 * EMPO_PANEL * 45], y0[77 * 23], y1[77 * 23], p0[5 * EMPO_PANEL * 23], p1[5 * EMPO_PANEL * 23];
        empo_k_panel_pack(xp, x, M, K, K, 0, P);
        empo_k_panel_linear(y0, N, 0, xp, M, K, w, b, 0, N);
        empo_k512_panel_linear(y1, N, 0, xp, M, K, w, b, 0, N);
        same &= memcmp(y0, y1, sizeof(float) * (size_t)(M * N)) == 0;
        empo_k_panel_linear_panels(p0, EMPO_PANEL * N, 0, xp, M, K, w, NULL, 0, N);
        empo_k512_panel_linear_panels(p1, EMPO_PANEL * N, 0, xp, M, K, w, NULL, 0, N);
        same &= memcmp(p0, p1, sizeof(float) * (size_t)n) == 0;
        empo_k_panel_swiglu(p0, N, xp, M, K, w, u, 0, N);
        empo_k512_panel_swiglu(p1, N, xp, M, K, w, u, 0, N);
        same &= memcmp(p0, p1, sizeof(float) * (size_t)n) == 0;
    }
    check_report(__FILE__, __LINE__, same, "avx512 panel products (rows, panels, SwiGLU): the avx2 tiles' bits");
}

typedef void (*any_fn)(void);

/* Every slot after `name` is a function pointer: none may be NULL. */
static void check_slots_filled(const empo_kernel_table *k) {
    const size_t first = offsetof(empo_kernel_table, binary);
    const size_t n = (sizeof *k - first) / sizeof(any_fn);
    CHECK(n >= 30);
    for (size_t i = 0; i < n; i++) {
        any_fn f;
        memcpy(&f, (const char *)k + first + i * sizeof f, sizeof f);
        check_report(__FILE__, __LINE__, f != NULL, "table %s: slot %zu is NULL", k->name, i);
    }
}

/* ---- one pass over every op with a kernel; values and grads appended ---- */
typedef struct {
    float v[1 << 16];
    int64_t n;
} record;

static void keep(record *r, empo_tensor *t) {
    double buf[4096];
    int64_t n = empo_tensor_numel(t);
    if (n > 4096 || r->n + n > (int64_t)(sizeof r->v / sizeof r->v[0])) {
        CHECK(!"record too small");
        return;
    }
    CHECK_OK(empo_tensor_read_f64(t, buf));
    for (int64_t i = 0; i < n; i++) r->v[r->n++] = (float)buf[i];
}

static void keep_grad(record *r, empo_tensor *t) {
    empo_tensor *g = NULL;
    CHECK_OK(empo_tensor_grad(&g, t));
    CHECK(g != NULL);
    if (g) keep(r, g);
    empo_tensor_release(g);
}

static empo_tensor *leaf(int ndim, const int64_t *shape, uint64_t seed) {
    empo_tensor *t = check_rand_tensor(ndim, shape, seed);
    CHECK_OK(empo_tensor_set_requires_grad(t, 1));
    return t;
}

/* loss += sum(y * w) with a fixed weight, so every output element shapes
 * the gradients; releases y. */
static void add_term(empo_tensor **loss, empo_tensor *y, uint64_t seed) {
    int64_t shape[8];
    for (int d = 0; d < empo_tensor_ndim(y); d++) shape[d] = empo_tensor_size(y, d);
    empo_tensor *w = check_rand_tensor(empo_tensor_ndim(y), shape, seed);
    empo_tensor *p = NULL, *s = NULL, *sum = NULL;
    CHECK_OK(empo_mul(&p, y, w));
    CHECK_OK(empo_sum(&s, p));
    if (*loss) {
        CHECK_OK(empo_add(&sum, *loss, s));
        empo_tensor_release(*loss);
        empo_tensor_release(s);
        *loss = sum;
    } else {
        *loss = s;
    }
    empo_tensor_release(p);
    empo_tensor_release(w);
    empo_tensor_release(y);
}

static void run_model(record *r) {
    r->n = 0;
    const int64_t B = 2, H = 4, Hkv = 2, T = 5, Dh = 8, D = 16, V = 24;
    empo_tensor *x = leaf(2, (int64_t[]){B * T, D}, 1);
    empo_tensor *w = leaf(2, (int64_t[]){V, D}, 2);
    empo_tensor *norm_w = leaf(1, (int64_t[]){D}, 3);
    empo_tensor *q = leaf(4, (int64_t[]){B, H, T, Dh}, 4);
    empo_tensor *k = leaf(4, (int64_t[]){B, Hkv, T, Dh}, 5);
    empo_tensor *v = leaf(4, (int64_t[]){B, Hkv, T, Dh}, 6);
    empo_tensor *emb = leaf(2, (int64_t[]){V, D}, 7);
    empo_tensor *loss = NULL, *y = NULL, *y2 = NULL, *h = NULL;
    int64_t id_vals[10] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
    empo_tensor *ids = NULL, *pos = NULL;
    CHECK_OK(empo_tensor_from_buffer(&ids, 1, (int64_t[]){B * T}, EMPO_I64, id_vals, EMPO_I64));
    int64_t pos_vals[10] = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4};
    CHECK_OK(empo_tensor_from_buffer(&pos, 2, (int64_t[]){B, T}, EMPO_I64, pos_vals, EMPO_I64));

    /* rmsnorm -> linear (gemm) -> logprob/entropy; softmax; unary; binary */
    CHECK_OK(empo_rmsnorm(&h, x, norm_w, 1e-6));
    CHECK_OK(empo_linear(&y, h, w, NULL));
    empo_tensor *logp = NULL, *ent = NULL;
    CHECK_OK(empo_logprob_entropy(&logp, &ent, y, ids));
    add_term(&loss, logp, 11);
    add_term(&loss, ent, 12);
    CHECK_OK(empo_log_softmax(&y2, y, 1));
    add_term(&loss, y2, 13);
    CHECK_OK(empo_softmax(&y2, y, 0));
    add_term(&loss, y2, 14);
    empo_tensor *m = NULL, *e = NULL;
    CHECK_OK(empo_sum_dim(&m, y, 1, 0));
    add_term(&loss, m, 15);
    CHECK_OK(empo_max(&m, y));
    keep(r, m);
    empo_tensor_release(m);
    CHECK_OK(empo_silu(&e, h));
    add_term(&loss, e, 16);
    CHECK_OK(empo_exp(&e, h));
    add_term(&loss, e, 17);
    CHECK_OK(empo_swiglu(&e, h, x));
    add_term(&loss, e, 18);
    empo_tensor_release(y);
    empo_tensor_release(h);
    /* embedding and index_select (row gather / scatter-add) */
    CHECK_OK(empo_embedding(&e, emb, ids));
    add_term(&loss, e, 19);
    CHECK_OK(empo_index_select(&e, emb, 0, ids));
    add_term(&loss, e, 20);
    /* rope -> attention */
    empo_tensor *qr = NULL, *kr = NULL, *att = NULL;
    CHECK_OK(empo_rope(&qr, q, pos, 0, 10000.0));
    CHECK_OK(empo_rope(&kr, k, pos, 0, 10000.0));
    CHECK_OK(empo_attention(&att, qr, kr, v, 1, 0.0, NULL));
    add_term(&loss, att, 21);
    empo_tensor_release(qr);
    empo_tensor_release(kr);

    keep(r, loss);
    CHECK_OK(empo_backward(loss, NULL, 0));
    empo_tensor *leaves[] = {x, w, norm_w, q, k, v, emb};
    for (int i = 0; i < 7; i++) keep_grad(r, leaves[i]);

    /* grad norm, clipping and AdamW over those gradients */
    double norm = 0;
    CHECK_OK(empo_clip_grad_norm(7, leaves, 0.5, &norm));
    r->v[r->n++] = (float)norm;
    empo_tensor *mom[7], *var[7];
    for (int i = 0; i < 7; i++) {
        int64_t shape[4];
        for (int d = 0; d < empo_tensor_ndim(leaves[i]); d++) shape[d] = empo_tensor_size(leaves[i], d);
        CHECK_OK(empo_tensor_zeros(&mom[i], empo_tensor_ndim(leaves[i]), shape, EMPO_F32));
        CHECK_OK(empo_tensor_zeros(&var[i], empo_tensor_ndim(leaves[i]), shape, EMPO_F32));
    }
    empo_adamw_config cfg = {1e-2, 0.9, 0.999, 1e-8, 0.01};
    CHECK_OK(empo_adamw_step(7, leaves, mom, var, &cfg, 1));
    for (int i = 0; i < 7; i++) {
        keep(r, leaves[i]);
        empo_tensor_release(mom[i]);
        empo_tensor_release(var[i]);
        empo_tensor_release(leaves[i]);
    }
    empo_tensor_release(loss);
    empo_tensor_release(ids);
    empo_tensor_release(pos);
}

/* the sampler's kernels: a row of logits -> token (greedy and at T = 1) */
static void run_sampler(record *r) {
    r->n = 0;
    const int64_t N = 4, V = 50;
    empo_tensor *logits = check_rand_tensor(2, (int64_t[]){N, V}, 31);
    empo_tensor *ids = NULL, *logp = NULL, *ref_logp = NULL;
    CHECK_OK(empo_tensor_empty(&ids, 1, (int64_t[]){N}, EMPO_I64));
    CHECK_OK(empo_tensor_empty(&logp, 1, (int64_t[]){N}, EMPO_F32));
    CHECK_OK(empo_tensor_empty(&ref_logp, 1, (int64_t[]){N}, EMPO_F32));
    const double u[4] = {0.1, 0.5, 0.9, 0.33};
    const empo_sampling settings[2] = {{0.0, 0, 1.0, 0.0, 0}, {1.0, 10, 0.9, 0.0, 0}};
    for (int s = 0; s < 2; s++) {
        CHECK_OK(empo_sample(ids, logp, ref_logp, logits, &settings[s], u));
        keep(r, ids);
        keep(r, logp);
        keep(r, ref_logp);
    }
    empo_tensor_release(logits);
    empo_tensor_release(ids);
    empo_tensor_release(logp);
    empo_tensor_release(ref_logp);
}

static record want, got;

static void compare(const char *what, const char *table) {
    CHECK(want.n == got.n && want.n > 0);
    double err = check_rel_err(got.v, want.v, want.n < got.n ? want.n : got.n);
    check_report(__FILE__, __LINE__, err < 2e-5, "%s on table %s: relative error %.3g vs the reference table",
                 what, table, err);
    printf("  %-8s %s: %lld values, max relative error %.2g\n", what, table, (long long)want.n, err);
}

int main(void) {
    /* every table is filled; those this CPU runs are run (the AVX-512 one only where it can be) */
    const empo_kernel_table *all[] = {&empo_kernels_avx2, &empo_kernels_avx512, &empo_kernels_ref};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) check_slots_filled(all[i]);
    const int has512 = empo_kernels_named("avx512") != NULL;
    const empo_kernel_table *tables[3] = {&empo_kernels_avx2, &empo_kernels_ref, &empo_kernels_avx512};
    const size_t ntables = has512 ? 3 : 2;
    if (!has512) printf("  SKIP the avx512 table's runs: this CPU has no AVX-512 (F, CD, BW, VL and DQ)\n");
    CHECK(strcmp(empo_best_kernel_table(), has512 ? "avx512" : "avx2") == 0);
    if (has512) test_panels_same_bits(), test_tiles_same_bits();

    /* the public switches pick the table */
    int prev = empo_set_reference_kernels(1);
    CHECK(empo_kernels() == &empo_kernels_ref && empo_reference_kernels());
    CHECK(strcmp(empo_kernel_table_name(), "ref") == 0);
    run_model(&want);
    empo_set_reference_kernels(0);
    CHECK(empo_kernels() == empo_kernels_fast() && !empo_reference_kernels());
    CHECK(empo_set_kernel_table("avx2") == EMPO_OK && strcmp(empo_kernel_table_name(), "avx2") == 0);
    CHECK(empo_set_kernel_table("avx512") == (has512 ? EMPO_OK : EMPO_E_ARG));
    CHECK(empo_set_kernel_table("sse") == EMPO_E_ARG && strstr(empo_last_error(), "unknown") != NULL);

    for (size_t i = 0; i < ntables; i++) {
        empo_kernels_use(tables[i]);
        run_model(&got);
        compare("ops", tables[i]->name);
    }
    empo_kernels_use(&empo_kernels_ref);
    run_sampler(&want);
    for (size_t i = 0; i < ntables; i++) {
        empo_kernels_use(tables[i]);
        run_sampler(&got);
        compare("sampler", tables[i]->name);
    }
    empo_set_reference_kernels(prev);
    CHECK(empo_live_tensors() == 0);
    return check_finish("test_table");
}
