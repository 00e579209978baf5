/* op_optim.c — AdamW step, global gradient norm, clipping and zero_grad over a
 * list of parameters (see empo/optim.h). This file validates and
 * dispatches; the arithmetic is in kernels/{cpu,ref}/adamw.c. Updates are
 * in place on the parameters' and moments' storage and bypass autograd. */
#include <math.h>
#include <string.h>
#include "autograd/autograd_internal.h"
#include "op_dispatch.h"

static int same_shape(const empo_tensor *a, const empo_tensor *b) {
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0;
}

static int check_list(const char *op, int n, empo_tensor *const *params) {
    if (n < 0) return empo_fail(EMPO_E_ARG, "%s: negative parameter count %d", op, n);
    if (n > 0 && !params) return empo_fail(EMPO_E_ARG, "%s: NULL parameter list", op);
    for (int i = 0; i < n; i++) {
        if (!params[i]) return empo_fail(EMPO_E_ARG, "%s: parameter %d is NULL", op, i);
        if (params[i]->dtype != EMPO_F32)
            return empo_fail(EMPO_E_DTYPE, "%s: parameter %d is %s, expected f32", op, i, empo_desc(params[i]));
        const empo_tensor *g = params[i]->grad;
        if (g && (g->dtype != EMPO_F32 || !same_shape(g, params[i])))
            return empo_fail(EMPO_E_SHAPE, "%s: gradient %s of parameter %d %s: expected f32 of the same shape", op,
                             empo_desc(g), i, empo_desc(params[i]));
        if (g) EMPO_TRY(empo_check_input(op, "a gradient", g, EMPO_DT_FLOAT, "its parameter", params[i]));
    }
    return EMPO_OK;
}

/* Moment tensor k ("m" or "v") of parameter i: f32, contiguous, p's shape. */
static int check_moment(const char *name, int i, const empo_tensor *p, const empo_tensor *mt) {
    if (!mt) return empo_fail(EMPO_E_ARG, "adamw_step: %s[%d] is NULL", name, i);
    if (mt->dtype != EMPO_F32 || !same_shape(mt, p) || !empo_tensor_is_contiguous(mt))
        return empo_fail(EMPO_E_SHAPE, "adamw_step: %s[%d] %s does not match parameter %d %s (want contiguous f32 "
                         "of the same shape)", name, i, empo_desc(mt), i, empo_desc(p));
    return empo_check_input("adamw_step", name, mt, EMPO_DT_FLOAT, "its parameter", p);
}

static int check_config(const empo_adamw_config *c, int64_t step) {
    if (!c) return empo_fail(EMPO_E_ARG, "adamw_step: NULL config");
    if (step < 1) return empo_fail(EMPO_E_ARG, "adamw_step: step %lld < 1 (steps count from 1)", (long long)step);
    if (!(c->lr >= 0) || !isfinite(c->lr)) return empo_fail(EMPO_E_ARG, "adamw_step: lr %g must be >= 0", c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return empo_fail(EMPO_E_ARG, "adamw_step: betas (%g, %g) must lie in [0, 1)", c->beta1, c->beta2);
    if (!(c->eps >= 0) || !isfinite(c->eps)) return empo_fail(EMPO_E_ARG, "adamw_step: eps %g must be >= 0", c->eps);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return empo_fail(EMPO_E_ARG, "adamw_step: weight_decay %g must be >= 0", c->weight_decay);
    return EMPO_OK;
}

int empo_adamw_step(int n, empo_tensor *const *params, empo_tensor *const *m, empo_tensor *const *v,
                    const empo_adamw_config *cfg, int64_t step) {
    EMPO_TRY(check_config(cfg, step));
    EMPO_TRY(check_list("adamw_step", n, params));
    if (n > 0 && (!m || !v)) return empo_fail(EMPO_E_ARG, "adamw_step: NULL moment list");
    /* validate everything first: a failing step leaves every tensor untouched */
    for (int i = 0; i < n; i++) {
        if (!params[i]->grad) continue;
        if (!empo_tensor_is_contiguous(params[i]))
            return empo_fail(EMPO_E_ARG, "adamw_step: parameter %d %s is not contiguous", i, empo_desc(params[i]));
        EMPO_TRY(check_moment("m", i, params[i], m[i]));
        EMPO_TRY(check_moment("v", i, params[i], v[i]));
    }
    empo_adamw_scalars s = {
        .beta1 = (float)cfg->beta1, .beta2 = (float)cfg->beta2, .eps = (float)cfg->eps,
        .one_minus_beta1 = (float)(1.0 - cfg->beta1), .one_minus_beta2 = (float)(1.0 - cfg->beta2),
        .decay = (float)(1.0 - cfg->lr * cfg->weight_decay),
        .step_size = (float)(cfg->lr / (1.0 - pow(cfg->beta1, (double)step))),
        .bc2_sqrt = (float)sqrt(1.0 - pow(cfg->beta2, (double)step)),
    };
    for (int i = 0; i < n; i++) {
        if (!params[i]->grad) continue;
        const empo_kernel_table *K = empo_kernels_of(params[i]);
        empo_tensor *g = NULL;
        EMPO_TRY(empo_contiguous_nograd(&g, params[i]->grad));
        float *p = empo_tensor_data(params[i]), *mp = empo_tensor_data(m[i]), *vp = empo_tensor_data(v[i]);
        const float *gp = empo_tensor_data(g);
        int64_t numel = empo_tensor_numel(params[i]);
        K->adamw(p, mp, vp, gp, numel, &s);
        empo_tensor_release(g);
    }
    return EMPO_OK;
}

int empo_grad_norm(int n, empo_tensor *const *params, int check_finite, double *norm) {
    if (!norm) return empo_fail(EMPO_E_ARG, "grad_norm: NULL output pointer");
    EMPO_TRY(check_list("grad_norm", n, params));
    double total = 0;
    for (int i = 0; i < n; i++) {
        if (!params[i]->grad) continue;
        empo_tensor *g = NULL;
        EMPO_TRY(empo_contiguous_nograd(&g, params[i]->grad));
        const float *gp = empo_tensor_data(g);
        int64_t numel = empo_tensor_numel(g);
        double s = empo_kernels_of(g)->sumsq(gp, numel);
        empo_tensor_release(g);
        /* squares of finite f32 stay finite in double, so this catches exactly NaN/Inf */
        if (check_finite && !isfinite(s))
            return empo_fail(EMPO_E_NUMERIC, "grad_norm: gradient of parameter %d %s is not finite (NaN or Inf)",
                             i, empo_desc(params[i]));
        total += s;
    }
    *norm = sqrt(total);
    return EMPO_OK;
}

int empo_clip_grad_norm(int n, empo_tensor *const *params, double max_norm, double *norm) {
    if (!(max_norm >= 0)) return empo_fail(EMPO_E_ARG, "clip_grad_norm: max_norm %g must be >= 0", max_norm);
    double total;
    /* a NaN/Inf gradient fails here: scaling by a NaN factor would poison every grad */
    EMPO_TRY(empo_grad_norm(n, params, 1, &total));
    if (norm) *norm = total;
    double coef = max_norm / (total + 1e-6);
    if (coef >= 1.0) return EMPO_OK;
    for (int i = 0; i < n; i++) {
        empo_tensor *g = params[i]->grad;
        if (!g) continue;
        if (empo_tensor_is_contiguous(g)) {
            float *gp = empo_tensor_data(g);
            empo_kernels_of(g)->scale(gp, empo_tensor_numel(g), (float)coef);
            continue;
        }
        /* a strided grad (a view into a flat block) is scaled through a copy and
         * written back, so that the block it views is updated in place */
        empo_tensor *c = NULL;
        EMPO_TRY(empo_contiguous_nograd(&c, g));
        empo_kernels_of(c)->scale(empo_tensor_data(c), empo_tensor_numel(c), (float)coef);
        int st = empo_tensor_copy_(g, c);
        empo_tensor_release(c);
        EMPO_TRY(st);
    }
    return EMPO_OK;
}

int empo_zero_grad(int n, empo_tensor *const *params) {
    if (n < 0) return empo_fail(EMPO_E_ARG, "zero_grad: negative parameter count %d", n);
    if (n > 0 && !params) return empo_fail(EMPO_E_ARG, "zero_grad: NULL parameter list");
    for (int i = 0; i < n; i++)
        if (!params[i]) return empo_fail(EMPO_E_ARG, "zero_grad: parameter %d is NULL", i);
    for (int i = 0; i < n; i++) {
        if (params[i]->grad) empo_tensor_release(params[i]->grad);
        params[i]->grad = NULL;
    }
    return EMPO_OK;
}
