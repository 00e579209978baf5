/* test_autograd.c — the backward engine: accumulation, shared inputs,
 * diamonds, no_grad, detach, retain_graph, freed graphs, deep chains,
 * gradient aliasing, errors and leaks. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "check.h"

static empo_tensor *leaf(const float *v, int64_t n) {
    empo_tensor *t = NULL;
    empo_tensor_from_buffer(&t, 1, &n, EMPO_F32, v, EMPO_F32);
    empo_tensor_set_requires_grad(t, 1);
    return t;
}

static double grad_at(empo_tensor *t, int64_t i) {
    empo_tensor *g = NULL;
    double v = NAN;
    empo_tensor_grad(&g, t);
    if (g) {
        empo_tensor_get(g, &i, &v);
        empo_tensor_release(g);
    }
    return v;
}

static void test_shared_and_diamond(void) {
    float v[3] = {1, 2, 3};
    empo_tensor *x = leaf(v, 3), *sq = NULL, *e = NULL, *d = NULL, *l = NULL;
    /* l = sum(x*x + exp(x)) : dl/dx = 2x + exp(x) */
    CHECK_OK(empo_mul(&sq, x, x));
    CHECK_OK(empo_exp(&e, x));
    CHECK_OK(empo_add(&d, sq, e));
    CHECK_OK(empo_sum(&l, d));
    CHECK(strcmp(empo_tensor_grad_fn(l), "sum") == 0 && !empo_tensor_is_leaf(l));
    CHECK_OK(empo_backward(l, NULL, 1));
    CHECK_NEAR(grad_at(x, 1), 4 + exp(2.0), 1e-5);
    /* a second backward through the retained graph accumulates */
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK_NEAR(grad_at(x, 2), 2 * (6 + exp(3.0)), 1e-4);
    /* now the graph is freed */
    CHECK_FAIL(empo_backward(l, NULL, 0), EMPO_E_STATE, "already freed");
    empo_tensor *objs[] = {x, sq, e, d, l};
    for (size_t i = 0; i < 5; i++) empo_tensor_release(objs[i]);
}

static void test_no_grad_and_detach(void) {
    float v[2] = {1, 2};
    empo_tensor *x = leaf(v, 2), *y = NULL, *z = NULL, *l = NULL, *dz = NULL;
    int prev = empo_grad_set_enabled(0);
    CHECK(prev == 1);
    CHECK_OK(empo_exp(&y, x));
    CHECK(!empo_tensor_requires_grad(y) && empo_tensor_is_leaf(y));
    empo_grad_set_enabled(1);
    CHECK_OK(empo_mul_scalar(&z, x, 3));
    CHECK_OK(empo_detach(&dz, z));
    CHECK(!empo_tensor_requires_grad(dz) && empo_tensor_shares_storage(dz, z));
    CHECK_FAIL(empo_backward(dz, NULL, 0), EMPO_E_STATE, "does not require grad");
    CHECK_OK(empo_sum(&l, z));
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK_NEAR(grad_at(x, 0), 3, 0);
    CHECK_FAIL(empo_tensor_set_requires_grad(z, 0), EMPO_E_STATE, "use detach");
    empo_tensor *objs[] = {x, y, z, l, dz};
    for (size_t i = 0; i < 5; i++) empo_tensor_release(objs[i]);
}

static void test_errors(void) {
    float v[2] = {1, 2};
    empo_tensor *x = leaf(v, 2), *y = NULL, *g = NULL, *ids = NULL;
    CHECK_OK(empo_exp(&y, x));
    CHECK_FAIL(empo_backward(y, NULL, 0), EMPO_E_SHAPE, "root [2] f32 has 2 elements");
    int64_t three = 3;
    CHECK_OK(empo_tensor_zeros(&g, 1, &three, EMPO_F32));
    CHECK_FAIL(empo_backward(y, g, 0), EMPO_E_SHAPE, "gradient [3] f32 does not match root [2] f32");
    empo_tensor_release(g);
    /* an explicit gradient works for non-scalars */
    CHECK_OK(empo_tensor_full(&g, 1, (int64_t[]){2}, EMPO_F32, 2.0));
    CHECK_OK(empo_backward(y, g, 0));
    CHECK_NEAR(grad_at(x, 1), 2 * exp(2.0), 1e-4);
    CHECK_OK(empo_tensor_zeros(&ids, 1, &three, EMPO_I64));
    CHECK_FAIL(empo_tensor_set_requires_grad(ids, 1), EMPO_E_DTYPE, "only f32 tensors can require grad");
    empo_tensor *objs[] = {x, y, g, ids};
    for (size_t i = 0; i < 4; i++) empo_tensor_release(objs[i]);
}

/* Two leaves whose gradients come from the same buffer must not alias. */
static void test_grad_not_aliased(void) {
    float v[4] = {1, 2, 3, 4};
    int64_t s[2] = {2, 2};
    empo_tensor *a = NULL, *b = NULL, *ta = NULL, *tb = NULL, *c = NULL, *l = NULL, *l2 = NULL;
    CHECK_OK(empo_tensor_from_buffer(&a, 2, s, EMPO_F32, v, EMPO_F32));
    CHECK_OK(empo_tensor_from_buffer(&b, 2, s, EMPO_F32, v, EMPO_F32));
    empo_tensor_set_requires_grad(a, 1);
    empo_tensor_set_requires_grad(b, 1);
    int64_t flat = 4;
    CHECK_OK(empo_view(&ta, a, 1, &flat));
    CHECK_OK(empo_view(&tb, b, 1, &flat));
    CHECK_OK(empo_add(&c, ta, tb));
    CHECK_OK(empo_sum(&l, c));
    CHECK_OK(empo_backward(l, NULL, 0));
    /* more gradient into a only */
    CHECK_OK(empo_sum(&l2, a));
    CHECK_OK(empo_backward(l2, NULL, 0));
    empo_tensor *ga = NULL, *gb = NULL;
    empo_tensor_grad(&ga, a);
    empo_tensor_grad(&gb, b);
    double va[4], vb[4];
    empo_tensor_read_f64(ga, va);
    empo_tensor_read_f64(gb, vb);
    CHECK(va[0] == 2 && vb[0] == 1);
    empo_tensor *objs[] = {a, b, ta, tb, c, l, l2, ga, gb};
    for (size_t i = 0; i < 9; i++) empo_tensor_release(objs[i]);
}

/* 200000 chained ops: the engine must not recurse on the C stack. */
static void test_deep_chain(void) {
    float v[1] = {0.5f};
    empo_tensor *x = leaf(v, 1), *cur = x, *l = NULL;
    empo_tensor_retain(cur);
    for (int i = 0; i < 200000; i++) {
        empo_tensor *next = NULL;
        empo_add_scalar(&next, cur, 1e-4);
        empo_tensor_release(cur);
        cur = next;
    }
    CHECK_OK(empo_sum(&l, cur));
    CHECK_OK(empo_backward(l, NULL, 0));
    CHECK_NEAR(grad_at(x, 0), 1, 0);
    empo_tensor_release(cur);
    empo_tensor_release(l);
    empo_tensor_release(x);
}

int main(void) {
    test_shared_and_diamond();
    test_no_grad_and_detach();
    test_errors();
    test_grad_not_aliased();
    test_deep_chain();
    CHECK(empo_live_tensors() == 0);
    return check_finish("test_autograd");
}
