/* test_kernels.c — every fast core kernel against its naive reference:
 * elementwise (contiguous, broadcast, strided), unary forward/backward,
 * reductions, softmax, GEMM (every transpose combination, odd sizes,
 * padded leading dimensions). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"

typedef int (*binary_fn)(empo_tensor **, empo_tensor *, empo_tensor *);
typedef int (*unary_fn)(empo_tensor **, empo_tensor *);

/* Runs f with fast and reference kernels; returns rel. error of outputs. */
static double compare_binary(binary_fn f, empo_tensor *a, empo_tensor *b) {
    empo_tensor *y1 = NULL, *y2 = NULL, *c1 = NULL, *c2 = NULL;
    empo_set_reference_kernels(0);
    if (f(&y1, a, b) != EMPO_OK) return INFINITY;
    empo_set_reference_kernels(1);
    if (f(&y2, a, b) != EMPO_OK) return INFINITY;
    empo_set_reference_kernels(0);
    empo_contiguous(&c1, y1);
    empo_contiguous(&c2, y2);
    double e = check_rel_err(empo_tensor_data(c1), empo_tensor_data(c2), empo_tensor_numel(c1));
    empo_tensor_release(y1); empo_tensor_release(y2); empo_tensor_release(c1); empo_tensor_release(c2);
    return e;
}

static int wrap_transposed_mul(empo_tensor **o, empo_tensor *a, empo_tensor *b) {
    empo_tensor *t = NULL;
    int st = empo_transpose(&t, a, 0, 1);
    if (st == EMPO_OK) st = empo_mul(o, t, b);
    empo_tensor_release(t);
    return st;
}

static void test_binary(void) {
    binary_fn fns[] = {empo_add, empo_sub, empo_mul, empo_div, empo_maximum, empo_minimum, empo_pow};
    int64_t s1[3] = {4, 33, 70}, s2[2] = {33, 70}, s3[3] = {4, 1, 70}, s4[2] = {70, 33};
    empo_tensor *a = check_rand_tensor(3, s1, 1), *b = check_rand_tensor(2, s2, 2), *c = check_rand_tensor(3, s3, 3);
    empo_tensor *pa = NULL, *at = check_rand_tensor(2, s4, 4);
    empo_abs(&pa, a);   /* pow needs a positive base */
    for (size_t k = 0; k < sizeof fns / sizeof *fns; k++) {
        empo_tensor *base = fns[k] == empo_pow ? pa : a;
        double e1 = compare_binary(fns[k], base, b), e2 = compare_binary(fns[k], base, c);
        check_report(__FILE__, __LINE__, e1 < 1e-6 && e2 < 1e-6, "binary op %zu: rel err %g / %g", k, e1, e2);
    }
    double e = compare_binary(wrap_transposed_mul, at, b);
    check_report(__FILE__, __LINE__, e < 1e-6, "strided mul: %g", e);
    empo_tensor_release(a); empo_tensor_release(b); empo_tensor_release(c); empo_tensor_release(pa);
    empo_tensor_release(at);
}

static void test_unary(void) {
    int64_t n = 100003;   /* spans several parallel chunks, odd tail */
    float *x = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    float *y1 = malloc(sizeof(float) * (size_t)n), *y2 = malloc(sizeof(float) * (size_t)n);
    check_fill_uniform(x, n, 5);
    check_fill_uniform(g, n, 6);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * 3.0f + (x[i] >= 0 ? 0.05f : -0.05f);   /* keep away from 0 */
    for (int op = EMPO_UN_NEG; op <= EMPO_UN_CLAMP; op++) {
        int positive = op == EMPO_UN_LOG || op == EMPO_UN_SQRT || op == EMPO_UN_RSQRT || op == EMPO_UN_POW_S;
        float *in = x;
        float *xp = NULL;
        if (positive) {
            xp = malloc(sizeof(float) * (size_t)n);
            for (int64_t i = 0; i < n; i++) xp[i] = fabsf(x[i]);
            in = xp;
        }
        float p0 = op == EMPO_UN_CLAMP ? -0.5f : 1.7f, p1 = 0.5f;
        empo_k_unary_f32(op, y1, in, n, p0, p1);
        empo_ref_unary_f32(op, y2, in, n, p0, p1);
        double ef = check_rel_err(y1, y2, n);
        float *gx1 = malloc(sizeof(float) * (size_t)n), *gx2 = malloc(sizeof(float) * (size_t)n);
        empo_k_unary_backward_f32(op, gx1, g, in, y1, n, p0, p1);
        empo_ref_unary_backward_f32(op, gx2, g, in, y2, n, p0, p1);
        double eb = check_rel_err(gx1, gx2, n);
        check_report(__FILE__, __LINE__, ef < 2e-6 && eb < 2e-6, "unary op %d: forward %g backward %g", op, ef, eb);
        free(gx1); free(gx2); free(xp);
    }
    free(x); free(g); free(y1); free(y2);
}

static void test_reduce_softmax(void) {
    int64_t shapes[3][3] = {{7, 300, 5}, {1, 1000, 1}, {64, 77, 1}};
    for (int k = 0; k < 3; k++) {
        int64_t o = shapes[k][0], n = shapes[k][1], in = shapes[k][2], m = o * n * in;
        float *x = malloc(sizeof(float) * (size_t)m), *g = malloc(sizeof(float) * (size_t)m);
        float *a = malloc(sizeof(float) * (size_t)m), *b = malloc(sizeof(float) * (size_t)m);
        float *ga = malloc(sizeof(float) * (size_t)m), *gb = malloc(sizeof(float) * (size_t)m);
        int64_t *ia = malloc(sizeof(int64_t) * (size_t)(o * in)), *ib = malloc(sizeof(int64_t) * (size_t)(o * in));
        check_fill_uniform(x, m, 10 + (uint64_t)k);
        check_fill_uniform(g, m, 20 + (uint64_t)k);
        empo_k_sum_dim(a, x, o, n, in);
        empo_ref_sum_dim(b, x, o, n, in);
        CHECK(check_rel_err(a, b, o * in) < 1e-6);
        empo_k_max_dim(a, ia, x, o, n, in);
        empo_ref_max_dim(b, ib, x, o, n, in);
        CHECK(check_rel_err(a, b, o * in) == 0 && memcmp(ia, ib, sizeof(int64_t) * (size_t)(o * in)) == 0);
        for (int lg = 0; lg < 2; lg++) {
            empo_k_softmax(a, x, o, n, in, lg);
            empo_ref_softmax(b, x, o, n, in, lg);
            double ef = check_rel_err(a, b, m);
            empo_k_softmax_backward(ga, g, a, o, n, in, lg);
            empo_ref_softmax_backward(gb, g, b, o, n, in, lg);
            double eb = check_rel_err(ga, gb, m);
            check_report(__FILE__, __LINE__, ef < 1e-6 && eb < 1e-5, "softmax log=%d shape %d: %g %g", lg, k, ef, eb);
        }
        free(x); free(g); free(a); free(b); free(ga); free(gb); free(ia); free(ib);
    }
}

static void test_gemm(void) {
    int64_t sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {64, 96, 128}, {129, 65, 33}, {1, 384, 128}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int64_t M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], pad = 3;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
                int64_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb, nc = M * ldc;
                float *A = malloc(sizeof(float) * (size_t)na), *B = malloc(sizeof(float) * (size_t)nb);
                float *C1 = malloc(sizeof(float) * (size_t)nc), *C2 = malloc(sizeof(float) * (size_t)nc);
                check_fill_uniform(A, na, 30 + s);
                check_fill_uniform(B, nb, 40 + s);
                check_fill_uniform(C1, nc, 50 + s);
                memcpy(C2, C1, sizeof(float) * (size_t)nc);
                empo_k_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C1, ldc);
                empo_ref_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C2, ldc);
                double e = check_rel_err(C1, C2, nc);
                check_report(__FILE__, __LINE__, e < 1e-6, "gemm %lldx%lldx%lld ta=%d tb=%d: %g", (long long)M,
                             (long long)N, (long long)K, ta, tb, e);
                free(A); free(B); free(C1); free(C2);
            }
    }
}

int main(void) {
    test_binary();
    test_unary();
    test_reduce_softmax();
    test_gemm();
    return check_finish("test_kernels");
}
