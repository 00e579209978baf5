/* test_index.c — indexing ops: embedding, index_select, gather, cat, where,
 * masked_fill. Forward values against hand-written expectations (f32 and
 * integer dtypes, strided inputs, broadcasting), gradients against central
 * finite differences of loss = sum(out * W) for fixed weights W and against
 * hand-derived expectations, the row kernels against their references,
 * and the error messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/index.h"

/* ---- helpers ---- */

static empo_tensor *tf32(int ndim, const int64_t *shape, const float *v) {
    empo_tensor *t = NULL;
    CHECK_OK(empo_tensor_from_buffer(&t, ndim, shape, EMPO_F32, v, EMPO_F32));
    return t;
}

static empo_tensor *ti64(int ndim, const int64_t *shape, const int64_t *v) {
    empo_tensor *t = NULL;
    CHECK_OK(empo_tensor_from_buffer(&t, ndim, shape, EMPO_I64, v, EMPO_I64));
    return t;
}

static empo_tensor *param(int ndim, const int64_t *shape, uint64_t seed) {
    empo_tensor *t = check_rand_tensor(ndim, shape, seed);
    CHECK_OK(empo_tensor_set_requires_grad(t, 1));
    return t;
}

/* out's shape and values (read as doubles) equal the expectation */
static void expect(int line, const empo_tensor *out, int ndim, const int64_t *shape, const double *want) {
    int ok = out && empo_tensor_ndim(out) == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = empo_tensor_size(out, d) == shape[d];
    check_report(__FILE__, line, ok, "shape of %s", out ? "output" : "NULL output");
    if (!ok) return;
    int64_t n = empo_tensor_numel(out);
    double *got = malloc(sizeof(double) * (size_t)(n ? n : 1));
    CHECK_OK(empo_tensor_read_f64(out, got));
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i] && !(isnan(want[i]) && isnan(got[i])) && !(isinf(want[i]) && got[i] == want[i])) {
            check_report(__FILE__, line, 0, "element %lld: %g, want %g", (long long)i, got[i], want[i]);
            break;
        }
    free(got);
}
#define EXPECT(out, ndim, shape, ...) expect(__LINE__, out, ndim, shape, (const double[]){__VA_ARGS__})

/* An op under test: out = f(inputs), with op parameters in ctx. */
typedef int (*op_fn)(empo_tensor **out, empo_tensor *const *in, const void *ctx);

static double weighted_sum(const empo_tensor *out, const float *w) {
    const float *o = empo_tensor_data(out);
    double s = 0;
    for (int64_t i = 0; i < empo_tensor_numel(out); i++) s += (double)o[i] * w[i];
    return s;
}

/* Gradients of loss = sum(out * W) (W fixed, from a seed) w.r.t. every input
 * that requires grad: the backward pass vs central differences (h = 1e-2;
 * these ops are linear in their f32 inputs, so only rounding differs). */
static void gradcheck(int line, op_fn f, int n, empo_tensor **in, const void *ctx) {
    empo_tensor *out = NULL, *wt = NULL, *prod = NULL, *loss = NULL;
    CHECK_OK(f(&out, in, ctx));
    if (!out) return;
    int64_t shape[8];
    for (int d = 0; d < empo_tensor_ndim(out); d++) shape[d] = empo_tensor_size(out, d);
    wt = check_rand_tensor(empo_tensor_ndim(out), shape, 99);
    CHECK_OK(empo_mul(&prod, out, wt));
    CHECK_OK(empo_sum(&loss, prod));
    CHECK_OK(empo_zero_grad(n, in));
    CHECK_OK(empo_backward(loss, NULL, 0));
    const float *w = empo_tensor_data(wt);
    int prev = empo_grad_set_enabled(0);
    for (int k = 0; k < n; k++) {
        if (!empo_tensor_requires_grad(in[k])) continue;
        empo_tensor *g = NULL;
        CHECK_OK(empo_tensor_grad(&g, in[k]));
        int64_t m = empo_tensor_numel(in[k]);
        check_report(__FILE__, line, g != NULL, "input %d got no gradient", k);
        if (!g) continue;
        float *x = empo_tensor_data(in[k]), *fd = malloc(sizeof(float) * (size_t)m);
        for (int64_t j = 0; j < m; j++) {
            float keep = x[j];
            empo_tensor *o1 = NULL, *o2 = NULL;
            x[j] = keep + 1e-2f;
            CHECK_OK(f(&o1, in, ctx));
            x[j] = keep - 1e-2f;
            CHECK_OK(f(&o2, in, ctx));
            x[j] = keep;
            fd[j] = (float)((weighted_sum(o1, w) - weighted_sum(o2, w)) / 2e-2);
            empo_tensor_release(o1);
            empo_tensor_release(o2);
        }
        double err = check_rel_err(empo_tensor_data(g), fd, m);
        check_report(__FILE__, line, err < 1e-3, "input %d: backward vs finite differences, rel err %.3g", k, err);
        free(fd);
        empo_tensor_release(g);
    }
    empo_grad_set_enabled(prev);
    empo_tensor_release(out); empo_tensor_release(wt); empo_tensor_release(prod); empo_tensor_release(loss);
}
#define GRADCHECK(f, n, in, ctx) gradcheck(__LINE__, f, n, in, ctx)

/* grad of t at flat position i (NaN when none) */
static double grad_at(empo_tensor *t, int64_t i) {
    empo_tensor *g = NULL;
    double v = NAN;
    empo_tensor_grad(&g, t);
    if (g) { v = ((const float *)empo_tensor_data(g))[i]; empo_tensor_release(g); }
    return v;
}

static void release_all(int n, empo_tensor **ts) {
    for (int i = 0; i < n; i++) empo_tensor_release(ts[i]);
}

/* ---- embedding ---- */

static int op_embedding(empo_tensor **out, empo_tensor *const *in, const void *ctx) {
    return empo_embedding(out, in[0], in[1]);
}

static void test_embedding(void) {
    int64_t sw[2] = {4, 3}, si[2] = {2, 2};
    const float wv[12] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32};
    const int64_t iv[4] = {3, 0, 3, 1};
    empo_tensor *w = tf32(2, sw, wv), *ids = ti64(2, si, iv), *ids32 = NULL, *idt = NULL, *y = NULL;
    CHECK_OK(empo_embedding(&y, w, ids));
    EXPECT(y, 3, ((int64_t[]){2, 2, 3}), 30, 31, 32, 0, 1, 2, 30, 31, 32, 10, 11, 12);
    empo_tensor_release(y);
    /* i32 ids, and transposed (strided) ids */
    CHECK_OK(empo_to_dtype(&ids32, ids, EMPO_I32));
    CHECK_OK(empo_embedding(&y, w, ids32));
    EXPECT(y, 3, ((int64_t[]){2, 2, 3}), 30, 31, 32, 0, 1, 2, 30, 31, 32, 10, 11, 12);
    empo_tensor_release(y);
    CHECK_OK(empo_transpose(&idt, ids, 0, 1));   /* [[3, 3], [0, 1]] */
    CHECK_OK(empo_embedding(&y, w, idt));
    EXPECT(y, 3, ((int64_t[]){2, 2, 3}), 30, 31, 32, 30, 31, 32, 0, 1, 2, 10, 11, 12);
    empo_tensor_release(y);

    /* backward: with all-ones upstream, row r of the weight grad counts id r */
    CHECK_OK(empo_tensor_set_requires_grad(w, 1));
    empo_tensor *l = NULL;
    CHECK_OK(empo_embedding(&y, w, ids));
    CHECK(strcmp(empo_tensor_grad_fn(y), "embedding") == 0);
    CHECK_OK(empo_sum(&l, y));
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK(grad_at(w, 0) == 1 && grad_at(w, 3) == 1 && grad_at(w, 6) == 0 && grad_at(w, 9) == 2 && grad_at(w, 11) == 2);
    empo_tensor_release(y); empo_tensor_release(l);
    empo_tensor *in[2] = {w, ids};
    GRADCHECK(op_embedding, 2, in, NULL);
    int prevref = empo_set_reference_kernels(1);
    GRADCHECK(op_embedding, 2, in, NULL);
    empo_set_reference_kernels(prevref);

    /* errors */
    const int64_t badv[3] = {1, 4, 0}, negv[2] = {0, -1};
    int64_t three = 3, two = 2;
    empo_tensor *bad = ti64(1, &three, badv), *neg = ti64(1, &two, negv), *fids = NULL, *w1 = NULL, *w64 = NULL;
    CHECK_FAIL(empo_embedding(&y, w, bad), EMPO_E_INDEX, "embedding: index 4 at position 1 of [3] i64 is out of range for the rows of weight (size 4)");
    CHECK_FAIL(empo_embedding(&y, w, neg), EMPO_E_INDEX, "index -1 at position 1");
    CHECK_OK(empo_tensor_zeros(&fids, 1, &two, EMPO_F32));
    CHECK_FAIL(empo_embedding(&y, w, fids), EMPO_E_DTYPE, "embedding: ids [2] f32 has dtype f32");
    CHECK_OK(empo_tensor_zeros(&w64, 2, sw, EMPO_F64));
    CHECK_FAIL(empo_embedding(&y, w64, ids), EMPO_E_DTYPE, "embedding: weight");
    CHECK_OK(empo_tensor_zeros(&w1, 1, &three, EMPO_F32));
    CHECK_FAIL(empo_embedding(&y, w1, ids), EMPO_E_SHAPE, "weight [3] f32 must be 2-d [V, D]");
    empo_tensor *objs[] = {w, ids, ids32, idt, bad, neg, fids, w1, w64};
    release_all(9, objs);
}

/* The row kernels (embedding/index_select) against their naive twins. */
static void test_row_kernels(void) {
    int64_t outer = 3, D = 50, K = 4000, inner = 300;
    float *x = malloc(sizeof(float) * (size_t)(outer * D * inner));
    float *gy = malloc(sizeof(float) * (size_t)(outer * K * inner));
    float *y1 = malloc(sizeof(float) * (size_t)(outer * K * inner)), *y2 = malloc(sizeof(float) * (size_t)(outer * K * inner));
    float *g1 = calloc((size_t)(outer * D * inner), sizeof(float)), *g2 = calloc((size_t)(outer * D * inner), sizeof(float));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)K);
    check_fill_uniform(x, outer * D * inner, 5);
    check_fill_uniform(gy, outer * K * inner, 6);
    for (int64_t k = 0; k < K; k++) idx[k] = (k * 7919) % D;   /* many repeats */
    empo_k_index_rows(y1, x, idx, outer, D, K, inner, 4);
    empo_ref_index_rows(y2, x, idx, outer, D, K, inner, 4);
    CHECK(memcmp(y1, y2, sizeof(float) * (size_t)(outer * K * inner)) == 0);
    empo_k_index_rows_add(g1, gy, idx, outer, D, K, inner);
    empo_ref_index_rows_add(g2, gy, idx, outer, D, K, inner);
    CHECK(memcmp(g1, g2, sizeof(float) * (size_t)(outer * D * inner)) == 0);   /* same order per element */
    free(x); free(gy); free(y1); free(y2); free(g1); free(g2); free(idx);
}

/* ---- index_select ---- */

static int op_index_select(empo_tensor **out, empo_tensor *const *in, const void *ctx) {
    return empo_index_select(out, in[0], *(const int *)ctx, in[1]);
}

static void test_index_select(void) {
    int64_t sx[2] = {3, 4}, three = 3, two = 2;
    const float xv[12] = {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23};
    const int64_t i1[3] = {3, 0, 3}, i0[2] = {2, 0};
    empo_tensor *x = tf32(2, sx, xv), *a = ti64(1, &three, i1), *b = ti64(1, &two, i0), *y = NULL;
    CHECK_OK(empo_index_select(&y, x, 1, a));
    EXPECT(y, 2, ((int64_t[]){3, 3}), 3, 0, 3, 13, 10, 13, 23, 20, 23);
    empo_tensor_release(y);
    CHECK_OK(empo_index_select(&y, x, -2, b));
    EXPECT(y, 2, ((int64_t[]){2, 4}), 20, 21, 22, 23, 0, 1, 2, 3);
    empo_tensor_release(y);
    /* a strided x and an integer x */
    empo_tensor *xt = NULL, *xi = NULL;
    CHECK_OK(empo_transpose(&xt, x, 0, 1));   /* [4 x 3] */
    CHECK_OK(empo_index_select(&y, xt, 0, b));
    EXPECT(y, 2, ((int64_t[]){2, 3}), 2, 12, 22, 0, 10, 20);
    empo_tensor_release(y);
    CHECK_OK(empo_to_dtype(&xi, x, EMPO_I64));
    CHECK_OK(empo_index_select(&y, xi, 1, a));
    CHECK(empo_tensor_dtype(y) == EMPO_I64);
    EXPECT(y, 2, ((int64_t[]){3, 3}), 3, 0, 3, 13, 10, 13, 23, 20, 23);
    empo_tensor_release(y);

    /* gradients: repeated index 3 collects twice */
    int64_t s3[3] = {2, 3, 4};
    empo_tensor *p = param(3, s3, 1), *l = NULL;
    CHECK_OK(empo_index_select(&y, p, 2, a));
    CHECK_OK(empo_sum(&l, y));
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK(grad_at(p, 0) == 1 && grad_at(p, 1) == 0 && grad_at(p, 3) == 2 && grad_at(p, 23) == 2);
    empo_tensor_release(y); empo_tensor_release(l);
    for (int dim = 0; dim < 3; dim++) {
        const int64_t v[3] = {1, 1, 0};   /* fits every dim of p; a repeat */
        empo_tensor *in[2] = {p, dim == 2 ? a : ti64(1, &three, v)};
        GRADCHECK(op_index_select, 2, in, &dim);
        if (dim != 2) empo_tensor_release(in[1]);
    }

    /* errors */
    int64_t s22[2] = {2, 2};
    const int64_t oob[2] = {1, 4}, z4[4] = {0, 0, 0, 0};
    empo_tensor *bad = ti64(1, &two, oob), *i2d = ti64(2, s22, z4), *fi = NULL;
    CHECK_FAIL(empo_index_select(&y, x, 1, bad), EMPO_E_INDEX, "index_select: index 4 at position 1 of [2] i64 is out of range for dim 1 of x [3 x 4] f32 (size 4)");
    CHECK_FAIL(empo_index_select(&y, x, 1, i2d), EMPO_E_SHAPE, "index [2 x 2] i64 must be 1-d");
    CHECK_FAIL(empo_index_select(&y, x, 2, a), EMPO_E_INDEX, "index_select: dim 2 out of range");
    CHECK_OK(empo_tensor_zeros(&fi, 1, &two, EMPO_F32));
    CHECK_FAIL(empo_index_select(&y, x, 0, fi), EMPO_E_DTYPE, "index_select: index");
    empo_tensor *objs[] = {x, a, b, xt, xi, p, bad, i2d, fi};
    release_all(9, objs);
}

/* ---- gather ---- */

static int op_gather(empo_tensor **out, empo_tensor *const *in, const void *ctx) {
    return empo_gather(out, in[0], *(const int *)ctx, in[1]);
}

static void test_gather(void) {
    int64_t sx[2] = {2, 3}, s22[2] = {2, 2}, s13[2] = {1, 3};
    const float xv[6] = {1, 2, 3, 4, 5, 6};
    const int64_t iv[4] = {2, 0, 1, 1}, jv[3] = {1, 0, 1};
    empo_tensor *x = tf32(2, sx, xv), *i = ti64(2, s22, iv), *j = ti64(2, s13, jv), *y = NULL;
    CHECK_OK(empo_gather(&y, x, 1, i));
    EXPECT(y, 2, s22, 3, 1, 5, 5);
    empo_tensor_release(y);
    CHECK_OK(empo_gather(&y, x, 0, j));
    EXPECT(y, 2, s13, 4, 2, 6);
    empo_tensor_release(y);
    /* token log-prob style: logits [N, V], ids [N, 1] */
    int64_t s31[2] = {3, 1}, sl[2] = {3, 4};
    const float lv[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    const int64_t tv[3] = {3, 0, 2};
    empo_tensor *lg = tf32(2, sl, lv), *tk = ti64(2, s31, tv), *xt = NULL;
    CHECK_OK(empo_gather(&y, lg, -1, tk));
    EXPECT(y, 2, s31, 3, 4, 10);
    empo_tensor_release(y);
    /* strided x: x^T [3 x 2] gathered along dim 0 by [[2, 0]] */
    const int64_t kv[2] = {2, 0};
    empo_tensor *k = ti64(2, (int64_t[]){1, 2}, kv);
    CHECK_OK(empo_transpose(&xt, x, 0, 1));
    CHECK_OK(empo_gather(&y, xt, 0, k));
    EXPECT(y, 2, ((int64_t[]){1, 2}), 3, 4);
    empo_tensor_release(y);

    /* gradients: duplicates accumulate */
    empo_tensor *p = param(2, sx, 3), *l = NULL;
    CHECK_OK(empo_gather(&y, p, 1, i));
    CHECK_OK(empo_sum(&l, y));
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK(grad_at(p, 0) == 1 && grad_at(p, 2) == 1 && grad_at(p, 4) == 2 && grad_at(p, 3) == 0);
    empo_tensor_release(y); empo_tensor_release(l);
    int d1 = 1, d0 = 0;
    empo_tensor *in1[2] = {p, i}, *in0[2] = {p, j};
    GRADCHECK(op_gather, 2, in1, &d1);
    GRADCHECK(op_gather, 2, in0, &d0);
    empo_tensor *pl = param(2, sl, 4), *in2[2] = {pl, tk};
    GRADCHECK(op_gather, 2, in2, &d1);

    /* errors */
    int64_t three = 3, s32[2] = {3, 2};
    const int64_t z6[6] = {0}, oob[4] = {0, 3, 0, 0};
    empo_tensor *i1 = ti64(1, &three, z6), *big = ti64(2, s32, z6), *bad = ti64(2, s22, oob);
    CHECK_FAIL(empo_gather(&y, x, 1, i1), EMPO_E_SHAPE, "gather: index [3] i64 must have as many dims as x [2 x 3] f32");
    CHECK_FAIL(empo_gather(&y, x, 1, big), EMPO_E_SHAPE, "larger than x [2 x 3] f32 in dim 0 (3 > 2)");
    CHECK_FAIL(empo_gather(&y, x, 1, bad), EMPO_E_INDEX, "gather: index 3 at position 1 of [2 x 2] i64 is out of range for dim 1");
    empo_tensor *objs[] = {x, i, j, lg, tk, xt, k, p, pl, i1, big, bad};
    release_all(12, objs);
}

/* ---- cat ---- */

static int op_cat(empo_tensor **out, empo_tensor *const *in, const void *ctx) {
    const int *c = ctx;   /* {n, dim} */
    return empo_cat(out, c[0], in, c[1]);
}

static void test_cat(void) {
    int64_t s22[2] = {2, 2}, s21[2] = {2, 1}, s13[2] = {1, 3}, s23[2] = {2, 3};
    const float av[4] = {1, 2, 3, 4}, bv[2] = {5, 6}, cv[3] = {7, 8, 9}, dv[6] = {10, 11, 12, 13, 14, 15};
    empo_tensor *a = tf32(2, s22, av), *b = tf32(2, s21, bv), *c = tf32(2, s13, cv), *d = tf32(2, s23, dv), *y = NULL;
    empo_tensor *ab[3] = {a, b, d};
    CHECK_OK(empo_cat(&y, 3, ab, 1));
    EXPECT(y, 2, ((int64_t[]){2, 6}), 1, 2, 5, 10, 11, 12, 3, 4, 6, 13, 14, 15);
    empo_tensor_release(y);
    empo_tensor *cd[2] = {c, d};
    CHECK_OK(empo_cat(&y, 2, cd, 0));
    EXPECT(y, 2, ((int64_t[]){3, 3}), 7, 8, 9, 10, 11, 12, 13, 14, 15);
    empo_tensor_release(y);
    /* integers (token sequences) and a strided input */
    int64_t two = 2, one = 1;
    const int64_t t1[2] = {5, 6}, t2[1] = {7};
    empo_tensor *s1 = ti64(1, &two, t1), *s2 = ti64(1, &one, t2), *ss[2] = {s1, s2}, *at = NULL;
    CHECK_OK(empo_cat(&y, 2, ss, 0));
    CHECK(empo_tensor_dtype(y) == EMPO_I64);
    EXPECT(y, 1, ((int64_t[]){3}), 5, 6, 7);
    empo_tensor_release(y);
    CHECK_OK(empo_transpose(&at, a, 0, 1));   /* [[1, 3], [2, 4]] */
    empo_tensor *tb[2] = {at, b};
    CHECK_OK(empo_cat(&y, 2, tb, -1));
    EXPECT(y, 2, ((int64_t[]){2, 3}), 1, 3, 5, 2, 4, 6);
    empo_tensor_release(y);

    /* gradients: 5 inputs (more than a node keeps inline), one without grad */
    int64_t s2x[5][3] = {{2, 1, 3}, {2, 4, 3}, {2, 2, 3}, {2, 1, 3}, {2, 3, 3}};
    empo_tensor *ps[5];
    for (int k = 0; k < 5; k++) ps[k] = k == 2 ? check_rand_tensor(3, s2x[k], 20 + k) : param(3, s2x[k], 20 + k);
    int ctx[2] = {5, 1};
    GRADCHECK(op_cat, 5, ps, ctx);
    CHECK(isnan(grad_at(ps[2], 0)));   /* no grad for an input that needs none */
    empo_tensor *l = NULL;   /* analytic: all-ones upstream gives all-ones grads */
    CHECK_OK(empo_zero_grad(5, ps));
    CHECK_OK(empo_cat(&y, 5, ps, 1));
    CHECK_OK(empo_sum(&l, y));
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK(grad_at(ps[0], 5) == 1 && grad_at(ps[4], 17) == 1);
    empo_tensor_release(y); empo_tensor_release(l);

    /* errors */
    empo_tensor *bad_dt[2] = {a, s1}, *bad_sh[2] = {a, c}, *nul[2] = {a, NULL};
    CHECK_FAIL(empo_cat(&y, 2, bad_dt, 0), EMPO_E_DTYPE, "cat: xs[1] [2] i64 has another dtype than xs[0] [2 x 2] f32");
    CHECK_FAIL(empo_cat(&y, 2, bad_sh, 1), EMPO_E_SHAPE, "cat: xs[1] [1 x 3] f32 does not fit xs[0] [2 x 2] f32 (shapes must agree except in dim 1)");
    CHECK_FAIL(empo_cat(&y, 0, bad_sh, 0), EMPO_E_ARG, "need at least one tensor");
    CHECK_FAIL(empo_cat(&y, 2, nul, 0), EMPO_E_ARG, "cat: xs[1] is missing");
    CHECK_FAIL(empo_cat(&y, 2, bad_sh, 2), EMPO_E_INDEX, "cat: dim 2 out of range");
    empo_tensor *objs[] = {a, b, c, d, s1, s2, at};
    release_all(7, objs);
    release_all(5, ps);
}

/* ---- where / masked_fill ---- */

static int op_where(empo_tensor **out, empo_tensor *const *in, const void *ctx) {
    return empo_where(out, in[2], in[0], in[1]);
}

static int op_masked_fill(empo_tensor **out, empo_tensor *const *in, const void *ctx) {
    return empo_masked_fill(out, in[0], in[1], *(const double *)ctx);
}

static void test_where(void) {
    int64_t s21[2] = {2, 1}, s23[2] = {2, 3}, three = 3;
    const uint8_t cv[2] = {1, 0};
    const float av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {-1, -2, -3}, fc[3] = {0, NAN, -0.0f};
    empo_tensor *cond = NULL, *a = tf32(2, s23, av), *b = tf32(1, &three, bv), *fcond = tf32(1, &three, fc), *y = NULL;
    CHECK_OK(empo_tensor_from_buffer(&cond, 2, s21, EMPO_U8, cv, EMPO_U8));
    CHECK_OK(empo_where(&y, cond, a, b));
    EXPECT(y, 2, s23, 1, 2, 3, -1, -2, -3);
    empo_tensor_release(y);
    CHECK_OK(empo_where(&y, fcond, a, b));   /* NaN is nonzero, -0 is zero */
    EXPECT(y, 2, s23, -1, 2, -3, -1, 5, -3);
    empo_tensor_release(y);
    empo_tensor *base = tf32(2, (int64_t[]){3, 2}, av), *at = NULL;   /* a strided a: [[1, 3, 5], [2, 4, 6]] */
    CHECK_OK(empo_transpose(&at, base, 0, 1));
    CHECK_OK(empo_where(&y, cond, at, b));
    EXPECT(y, 2, s23, 1, 3, 5, -1, -2, -3);
    empo_tensor_release(y);
    CHECK_OK(empo_masked_fill(&y, at, cond, 9));
    EXPECT(y, 2, s23, 9, 9, 9, 2, 4, 6);
    empo_tensor_release(y);
    empo_tensor_release(at);
    empo_tensor_release(base);

    /* gradients, with b broadcast: grad b[j] = sum over rows where cond is 0 */
    empo_tensor *pa = param(2, s23, 7), *pb = param(1, &three, 8), *l = NULL;
    CHECK_OK(empo_where(&y, cond, pa, pb));
    CHECK_OK(empo_sum(&l, y));
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK(grad_at(pa, 0) == 1 && grad_at(pa, 3) == 0 && grad_at(pb, 0) == 1 && grad_at(pb, 2) == 1);
    empo_tensor_release(y); empo_tensor_release(l);
    empo_tensor *in[3] = {pa, pb, cond};
    GRADCHECK(op_where, 3, in, NULL);
    /* cond broadcasting up: a [3], b [1], cond [2 x 3] random mask -> out [2 x 3] */
    const int32_t mv[6] = {1, 0, 0, 1, 1, 0};
    int64_t one = 1;
    empo_tensor *m32 = NULL, *qa = param(1, &three, 9), *qb = param(1, &one, 10);
    CHECK_OK(empo_tensor_from_buffer(&m32, 2, s23, EMPO_I32, mv, EMPO_I32));
    empo_tensor *in2[3] = {qa, qb, m32};
    GRADCHECK(op_where, 3, in2, NULL);
    CHECK(grad_at(qb, 0) == grad_at(qb, 0));   /* has a grad */

    /* masked_fill */
    const uint8_t mk[3] = {1, 0, 1};
    empo_tensor *mask = NULL, *x = tf32(2, s23, av);
    CHECK_OK(empo_tensor_from_buffer(&mask, 1, &three, EMPO_U8, mk, EMPO_U8));
    CHECK_OK(empo_masked_fill(&y, x, mask, -INFINITY));
    EXPECT(y, 2, s23, -INFINITY, 2, -INFINITY, -INFINITY, 5, -INFINITY);
    empo_tensor_release(y);
    empo_tensor *xi = NULL;
    CHECK_OK(empo_to_dtype(&xi, x, EMPO_I64));
    CHECK_OK(empo_masked_fill(&y, xi, mask, 7));
    CHECK(empo_tensor_dtype(y) == EMPO_I64);
    EXPECT(y, 2, s23, 7, 2, 7, 7, 5, 7);
    empo_tensor_release(y);
    /* the mask may be larger than x: x [3], mask [2 x 3] -> [2 x 3]; x's grad sums the rows */
    double fillv = 0.5;
    empo_tensor *px = param(1, &three, 11), *in3[2] = {px, m32};
    CHECK_OK(empo_masked_fill(&y, px, m32, fillv));
    EXPECT(y, 2, s23, 0.5, ((float *)empo_tensor_data(px))[1], ((float *)empo_tensor_data(px))[2], 0.5, 0.5,
           ((float *)empo_tensor_data(px))[2]);
    CHECK_OK(empo_sum(&l, y));
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK(grad_at(px, 0) == 0 && grad_at(px, 1) == 1 && grad_at(px, 2) == 2);
    empo_tensor_release(y); empo_tensor_release(l);
    GRADCHECK(op_masked_fill, 2, in3, &fillv);
    empo_tensor *pm = param(2, s23, 12), *in4[2] = {pm, mask};
    GRADCHECK(op_masked_fill, 2, in4, &fillv);

    /* errors */
    empo_tensor *b64 = NULL, *x32 = NULL, *b4 = NULL;
    CHECK_OK(empo_tensor_zeros(&b64, 1, &three, EMPO_F64));
    CHECK_FAIL(empo_where(&y, cond, a, b64), EMPO_E_DTYPE, "where: a [2 x 3] f32 and b [3] f64 must have the same dtype");
    CHECK_OK(empo_tensor_zeros(&b4, 1, (int64_t[]){4}, EMPO_F32));
    CHECK_FAIL(empo_where(&y, cond, a, b4), EMPO_E_SHAPE, "where");
    CHECK_FAIL(empo_where(&y, NULL, a, b), EMPO_E_ARG, "where: cond is missing");
    CHECK_FAIL(empo_masked_fill(&y, x, b4, 1.0), EMPO_E_SHAPE, "masked_fill");
    CHECK_OK(empo_tensor_zeros(&x32, 1, &three, EMPO_I32));
    CHECK_FAIL(empo_masked_fill(&y, x32, mask, 1e10), EMPO_E_ARG, "masked_fill: value 1e+10 does not fit x [3] i32");
    CHECK_FAIL(empo_masked_fill(&y, x32, mask, NAN), EMPO_E_ARG, "does not fit");
    empo_tensor *objs[] = {cond, a, b, fcond, pa, pb, m32, qa, qb, mask, x, xi, px, pm, b64, x32, b4};
    release_all(17, objs);
}

int main(void) {
    test_embedding();
    test_row_kernels();
    test_index_select();
    test_gather();
    test_cat();
    test_where();
    CHECK(empo_live_tensors() == 0);
    return check_finish("test_index");
}
