/* test_optim.c — AdamW kernel vs its reference, AdamW trajectories against
 * a hand computation and a plain double loop of PyTorch's formulas, the
 * global grad norm, clipping, zero_grad and the errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "autograd/autograd_internal.h"   /* t->grad */
#include "kernels/adamw.h"

static empo_tensor *from_f32(int ndim, const int64_t *shape, const float *v) {
    empo_tensor *t = NULL;
    CHECK_OK(empo_tensor_from_buffer(&t, ndim, shape, EMPO_F32, v, EMPO_F32));
    return t;
}

static empo_tensor *zeros(int ndim, const int64_t *shape) {
    empo_tensor *t = NULL;
    CHECK_OK(empo_tensor_zeros(&t, ndim, shape, EMPO_F32));
    return t;
}

static float *f32(empo_tensor *t) { return empo_tensor_data(t); }

/* Sets p.grad to a new tensor holding v. */
static void set_grad(empo_tensor *p, const float *v) {
    empo_tensor *g = from_f32(empo_tensor_ndim(p), (int64_t[]){empo_tensor_size(p, 0),
                              empo_tensor_ndim(p) > 1 ? empo_tensor_size(p, 1) : 1}, v);
    CHECK_OK(empo_tensor_set_grad(p, g));
    empo_tensor_release(g);
}

static void test_kernel_vs_ref(void) {
    int64_t n = 100003;   /* odd and large: threads and a SIMD tail */
    float *buf = malloc(sizeof(float) * (size_t)n * 8);
    float *p = buf, *m = p + n, *v = m + n, *g = v + n, *p2 = g + n, *m2 = p2 + n, *v2 = m2 + n;
    check_fill_uniform(p, n, 1);
    check_fill_uniform(m, n, 2);
    check_fill_uniform(v, n, 3);
    check_fill_uniform(g, n, 4);
    for (int64_t i = 0; i < n; i++) { v[i] = v[i] * v[i] * 0.01f; m[i] *= 0.1f; }
    memcpy(p2, p, sizeof(float) * (size_t)n * 3);   /* p2, m2, v2 */
    int64_t step = 3;
    empo_adamw_scalars s = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .one_minus_beta1 = 0.1f,
                            .one_minus_beta2 = 0.05f, .decay = (float)(1 - 1e-3 * 0.1),
                            .step_size = (float)(1e-3 / (1 - pow(0.9, step))),
                            .bc2_sqrt = (float)sqrt(1 - pow(0.95, step))};
    empo_k_adamw(p, m, v, g, n, &s);
    empo_ref_adamw(p2, m2, v2, g, n, &s);
    double ep = check_rel_err(p, p2, n), em = check_rel_err(m, m2, n), ev = check_rel_err(v, v2, n);
    check_report(__FILE__, __LINE__, ep < 1e-6 && em < 1e-6 && ev < 1e-6, "adamw cpu vs ref: p %.3g m %.3g v %.3g",
                 ep, em, ev);
    double s1 = empo_k_sumsq(g, n), s2 = empo_ref_sumsq(g, n);
    CHECK_NEAR(s1, s2, 1e-10 * s2);
    memcpy(p2, p, sizeof(float) * (size_t)n);
    empo_k_scale(p, n, 0.37f);
    empo_ref_scale(p2, n, 0.37f);
    CHECK(memcmp(p, p2, sizeof(float) * (size_t)n) == 0);
    free(buf);
}

/* One parameter, constant gradient 0.5, lr 0.1, wd 0.01, betas (0.9, 0.999),
 * eps 1e-8. By hand: with a constant g the bias-corrected moments are
 * mhat = g and sqrt(vhat) = |g| exactly, so every step is
 *     p <- 0.999 p - 0.1 * 0.5 / (0.5 + 1e-8) = 0.999 p - 0.099999998. */
static void test_hand_trajectory(void) {
    static const double want[5] = {0.899000002, 0.798101004, 0.697302905, 0.596605604, 0.496009000};
    int64_t one = 1;
    float p0 = 1, g0 = 0.5f;
    empo_tensor *p = from_f32(1, &one, &p0), *m = zeros(1, &one), *v = zeros(1, &one);
    empo_adamw_config cfg = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    for (int step = 1; step <= 5; step++) {
        set_grad(p, &g0);
        CHECK_OK(empo_adamw_step(1, &p, &m, &v, &cfg, step));
        CHECK_NEAR(f32(p)[0], want[step - 1], 1e-6);
    }
    CHECK_NEAR(f32(m)[0], 0.5 * (1 - pow(0.9, 5)), 1e-7);
    CHECK_NEAR(f32(v)[0], 0.25 * (1 - pow(0.999, 5)), 1e-9);
    empo_tensor_release(p); empo_tensor_release(m); empo_tensor_release(v);
}

/* Two parameters and one without a gradient, 5 steps, gradients that depend
 * on the current parameters (g = p - 0.3 + 0.1 * step * sin(i)); compared
 * with PyTorch's single-tensor AdamW written out in double. */
static void run_trajectory(int reference) {
    enum { NA = 12, NB = 5, STEPS = 5 };
    int64_t sa[2] = {3, 4}, sb = NB;
    float a0[NA], b0[NB];
    check_fill_uniform(a0, NA, 10);
    check_fill_uniform(b0, NB, 11);
    empo_tensor *params[3] = {from_f32(2, sa, a0), from_f32(1, &sb, b0), from_f32(1, &sb, b0)};
    empo_tensor *m[3] = {zeros(2, sa), zeros(1, &sb), zeros(1, &sb)};
    empo_tensor *v[3] = {zeros(2, sa), zeros(1, &sb), zeros(1, &sb)};
    double P[NA + NB], M[NA + NB] = {0}, Vv[NA + NB] = {0};
    for (int i = 0; i < NA; i++) P[i] = a0[i];
    for (int i = 0; i < NB; i++) P[NA + i] = b0[i];
    const double lr = 3e-2, b1 = 0.9, b2 = 0.95, eps = 1e-6, wd = 0.1;
    empo_adamw_config cfg = {lr, b1, b2, eps, wd};
    int prev = empo_set_reference_kernels(reference);
    for (int step = 1; step <= STEPS; step++) {
        float ga[NA], gb[NB];
        for (int i = 0; i < NA + NB; i++) {
            float gi = (float)(P[i] - 0.3 + 0.1 * step * sin(i));
            if (i < NA) ga[i] = gi; else gb[i - NA] = gi;
            /* torch.optim.AdamW, _single_tensor_adamw */
            P[i] *= 1 - lr * wd;
            M[i] += (gi - M[i]) * (1 - b1);
            Vv[i] = Vv[i] * b2 + (1 - b2) * gi * gi;
            double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
            P[i] -= lr / bc1 * M[i] / (sqrt(Vv[i]) / sqrt(bc2) + eps);
        }
        set_grad(params[0], ga);
        set_grad(params[1], gb);
        CHECK_OK(empo_adamw_step(3, params, m, v, &cfg, step));
    }
    empo_set_reference_kernels(prev);
    double err = 0;
    for (int i = 0; i < NA + NB; i++) {
        float got = i < NA ? f32(params[0])[i] : f32(params[1])[i - NA];
        if (fabs(got - P[i]) > err) err = fabs(got - P[i]);
    }
    check_report(__FILE__, __LINE__, err < 1e-6, "AdamW trajectory (reference=%d): max |p - torch formula| = %.3g",
                 reference, err);
    /* the parameter without a gradient and its moments are untouched */
    CHECK(memcmp(f32(params[2]), b0, sizeof b0) == 0);
    CHECK(f32(m[2])[0] == 0 && f32(v[2])[NB - 1] == 0);
    for (int k = 0; k < 3; k++) {
        empo_tensor_release(params[k]); empo_tensor_release(m[k]); empo_tensor_release(v[k]);
    }
}

static void test_norm_and_clip(void) {
    int64_t two = 2, one = 1;
    const float a[2] = {3, 4}, b[1] = {12};
    empo_tensor *ps[3] = {zeros(1, &two), zeros(1, &one), zeros(1, &one)};   /* ps[2] has no grad */
    set_grad(ps[0], a);
    set_grad(ps[1], b);
    double norm = 0;
    CHECK_OK(empo_grad_norm(3, ps, 1, &norm));
    CHECK(norm == 13.0);
    /* below the limit: nothing changes */
    CHECK_OK(empo_clip_grad_norm(3, ps, 100.0, &norm));
    CHECK(norm == 13.0 && f32(ps[0]->grad)[0] == 3 && f32(ps[1]->grad)[0] == 12);
    /* above: scaled by 6.5 / (13 + 1e-6) */
    CHECK_OK(empo_clip_grad_norm(3, ps, 6.5, &norm));
    double c = 6.5 / (13 + 1e-6);
    CHECK(norm == 13.0);
    CHECK_NEAR(f32(ps[0]->grad)[0], 3 * c, 1e-6);
    CHECK_NEAR(f32(ps[0]->grad)[1], 4 * c, 1e-6);
    CHECK_NEAR(f32(ps[1]->grad)[0], 12 * c, 1e-6);
    CHECK_OK(empo_grad_norm(3, ps, 1, &norm));
    CHECK_NEAR(norm, 6.5, 1e-5);

    /* a strided grad (a transposed view of a block) is scaled in its block */
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2};
    const float blockv[6] = {1, 2, 3, 4, 5, 6};
    empo_tensor *w = zeros(2, s23), *block = from_f32(2, s32, blockv), *view = NULL;
    CHECK_OK(empo_transpose(&view, block, 0, 1));
    CHECK(!empo_tensor_is_contiguous(view));
    CHECK_OK(empo_tensor_set_grad(w, view));
    CHECK_OK(empo_clip_grad_norm(1, &w, sqrt(91.0) / 2, &norm));   /* |block| = sqrt(91) */
    CHECK_NEAR(norm, sqrt(91.0), 1e-6);
    for (int i = 0; i < 6; i++) CHECK_NEAR(f32(block)[i], blockv[i] * 0.5, 1e-6);

    /* NaN/Inf: named by index; without check_finite the norm is just NaN */
    const float bad[1] = {NAN};
    set_grad(ps[1], bad);
    CHECK_FAIL(empo_grad_norm(3, ps, 1, &norm), EMPO_E_NUMERIC, "gradient of parameter 1 [1] f32 is not finite");
    CHECK_OK(empo_grad_norm(3, ps, 0, &norm));
    CHECK(isnan(norm));
    CHECK_FAIL(empo_clip_grad_norm(3, ps, 1.0, &norm), EMPO_E_NUMERIC, "parameter 1");
    CHECK(f32(ps[0]->grad)[0] == (float)(3 * c));   /* a failed clip changes nothing */
    const float inf[1] = {INFINITY};
    set_grad(ps[1], inf);
    CHECK_FAIL(empo_grad_norm(3, ps, 1, &norm), EMPO_E_NUMERIC, "parameter 1");
    CHECK_FAIL(empo_clip_grad_norm(3, ps, -1.0, &norm), EMPO_E_ARG, "max_norm -1 must be >= 0");

    /* zero_grad drops every grad */
    CHECK_OK(empo_zero_grad(3, ps));
    empo_tensor *g = ps[0];
    CHECK_OK(empo_tensor_grad(&g, ps[0]));
    CHECK(g == NULL && ps[1]->grad == NULL);
    CHECK_OK(empo_grad_norm(3, ps, 1, &norm));
    CHECK(norm == 0);
    CHECK_FAIL(empo_zero_grad(1, (empo_tensor *[]){NULL}), EMPO_E_ARG, "zero_grad: parameter 0 is NULL");
    for (int k = 0; k < 3; k++) empo_tensor_release(ps[k]);
    empo_tensor_release(w); empo_tensor_release(block); empo_tensor_release(view);
}

static void test_errors(void) {
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, six = 6;
    const float ones[6] = {1, 1, 1, 1, 1, 1};
    empo_tensor *p = from_f32(2, s23, ones), *m = zeros(2, s23), *v = zeros(2, s23);
    empo_tensor *mbad = zeros(1, &six), *vf64 = NULL, *pt = NULL, *base = from_f32(2, s32, ones);
    CHECK_OK(empo_tensor_zeros(&vf64, 2, s23, EMPO_F64));
    CHECK_OK(empo_transpose(&pt, base, 0, 1));
    set_grad(p, ones);
    empo_adamw_config cfg = {1e-3, 0.9, 0.999, 1e-8, 0.0};
    CHECK_FAIL(empo_adamw_step(1, &p, &mbad, &v, &cfg, 1), EMPO_E_SHAPE, "m[0] [6] f32 does not match parameter 0 [2 x 3] f32");
    CHECK_FAIL(empo_adamw_step(1, &p, &m, &vf64, &cfg, 1), EMPO_E_SHAPE, "v[0] [2 x 3] f64");
    CHECK_FAIL(empo_adamw_step(1, &p, &m, &v, &cfg, 0), EMPO_E_ARG, "step 0 < 1");
    CHECK_FAIL(empo_adamw_step(1, &p, &m, &v, NULL, 1), EMPO_E_ARG, "NULL config");
    empo_adamw_config bad = cfg;
    bad.beta2 = 1.0;
    CHECK_FAIL(empo_adamw_step(1, &p, &m, &v, &bad, 1), EMPO_E_ARG, "betas (0.9, 1) must lie in [0, 1)");
    bad = cfg;
    bad.lr = NAN;
    CHECK_FAIL(empo_adamw_step(1, &p, &m, &v, &bad, 1), EMPO_E_ARG, "lr");
    set_grad(pt, ones);
    CHECK_FAIL(empo_adamw_step(1, &pt, &m, &v, &cfg, 1), EMPO_E_ARG, "parameter 0 [2 x 3] f32 is not contiguous");
    /* validation comes first: a failing step leaves the good parameter as it was */
    empo_tensor *two[2] = {p, p}, *ms[2] = {m, mbad}, *vs[2] = {v, v};
    CHECK_FAIL(empo_adamw_step(2, two, ms, vs, &cfg, 1), EMPO_E_SHAPE, "m[1]");
    CHECK(f32(p)[0] == 1 && f32(m)[0] == 0);
    empo_tensor *pf64 = NULL;
    CHECK_OK(empo_tensor_zeros(&pf64, 2, s23, EMPO_F64));
    double norm;
    CHECK_FAIL(empo_grad_norm(1, &pf64, 1, &norm), EMPO_E_DTYPE, "grad_norm: parameter 0 is [2 x 3] f64");
    CHECK_FAIL(empo_grad_norm(-1, &p, 1, &norm), EMPO_E_ARG, "negative parameter count");
    empo_tensor_release(p); empo_tensor_release(m); empo_tensor_release(v); empo_tensor_release(mbad);
    empo_tensor_release(vf64); empo_tensor_release(pt); empo_tensor_release(base); empo_tensor_release(pf64);
}

int main(void) {
    test_kernel_vs_ref();
    test_hand_trajectory();
    run_trajectory(0);
    run_trajectory(1);
    test_norm_and_clip();
    test_errors();
    CHECK(empo_live_tensors() == 0);
    return check_finish("test_optim");
}
