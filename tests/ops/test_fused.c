/* test_fused.c — the fused transformer ops over kernels/fused.h: RMSNorm,
 * SwiGLU, rotary embedding, grouped-query attention, token log-prob +
 * entropy. (Their kernels, fast against reference on raw arrays:
 * tests/kernels/test_fused_kernels.c.)
 *
 * 2. Each op's backward through the public API against f32 central
 *    differences of loss = sum(out * W) for fixed random W, with the fast
 *    and then the reference kernels.
 * 3. Semantics: KV-cache alignment, GQA = repeated heads, rope identities,
 *    uniform logits, NaN-free masked rows, strided inputs.
 * 4. Errors: wrong shapes, dtypes, ids out of range, non-finite logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "empo/empo.h"

#define FD_TOL 2e-3

static float *zeros(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

static int all_finite(const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* ---- helpers for the op-level tests ---- */

static float *fptr(empo_tensor *t) { return (float *)empo_tensor_data(t); }

static empo_tensor *rand_t(int ndim, const int64_t *shape, uint64_t seed, float scale) {
    empo_tensor *t = check_rand_tensor(ndim, shape, seed);
    for (int64_t i = 0, n = empo_tensor_numel(t); i < n; i++) fptr(t)[i] *= scale;
    return t;
}

/* a tensor of dtype holding the given values (converted from f64) */
static empo_tensor *vals_t(int ndim, const int64_t *shape, int dtype, const double *vals) {
    empo_tensor *t = NULL;
    empo_tensor_from_buffer(&t, ndim, shape, dtype, vals, EMPO_F64);
    return t;
}

static int shape_of(const empo_tensor *t, int64_t *shape) {
    int nd = empo_tensor_ndim(t);
    for (int d = 0; d < nd; d++) shape[d] = empo_tensor_size(t, d);
    return nd;
}

/* max relative difference of two tensors of any layout (contiguous copies) */
static double tensor_err(empo_tensor *a, empo_tensor *b) {
    empo_tensor *ac = NULL, *bc = NULL;
    if (empo_contiguous(&ac, a) != EMPO_OK || empo_contiguous(&bc, b) != EMPO_OK) return INFINITY;
    int64_t n = empo_tensor_numel(ac);
    double e = n == empo_tensor_numel(bc) ? check_rel_err(fptr(ac), fptr(bc), n) : INFINITY;
    if (!all_finite(fptr(ac), n)) e = INFINITY;
    empo_tensor_release(ac);
    empo_tensor_release(bc);
    return e;
}

/* ---- 2. backward through the ops vs central differences ---- */

typedef struct fd_case fd_case;
struct fd_case {
    const char *name;
    empo_tensor *in[3];   /* differentiable leaves (unused slots NULL) */
    empo_tensor *aux;     /* positions, key mask or ids: never differentiated */
    int64_t offset;
    double param;         /* eps, theta or scale */
    int flag;             /* causal; for logprob_entropy 1 = logp, 2 = entropy, 3 = both */
    int (*run)(const fd_case *c, empo_tensor **outs);
};

static int run_rmsnorm(const fd_case *c, empo_tensor **o) { return empo_rmsnorm(&o[0], c->in[0], c->in[1], c->param); }
static int run_swiglu(const fd_case *c, empo_tensor **o) { return empo_swiglu(&o[0], c->in[0], c->in[1]); }
static int run_rope(const fd_case *c, empo_tensor **o) {
    return empo_rope(&o[0], c->in[0], c->aux, c->offset, c->param);
}
static int run_attention(const fd_case *c, empo_tensor **o) {
    return empo_attention(&o[0], c->in[0], c->in[1], c->in[2], c->flag, c->param, c->aux);
}
static int run_logprob(const fd_case *c, empo_tensor **o) {
    return empo_logprob_entropy(c->flag & 1 ? &o[0] : NULL, c->flag & 2 ? &o[1] : NULL, c->in[0], c->aux);
}

/* sum_k sum(o[k] * w[k]) in double, straight from the outputs */
static double loss_value(const fd_case *c, empo_tensor *const *w) {
    empo_tensor *o[2] = {NULL, NULL};
    if (c->run(c, o) != EMPO_OK) return NAN;
    double L = 0.0;
    for (int k = 0; k < 2; k++) {
        if (!o[k]) continue;
        for (int64_t i = 0, n = empo_tensor_numel(o[k]); i < n; i++) L += (double)fptr(o[k])[i] * fptr(w[k])[i];
        empo_tensor_release(o[k]);
    }
    return L;
}

/* the same loss as a graph: sum(o0 * w0) [+ sum(o1 * w1)] */
static empo_tensor *loss_graph(empo_tensor *const *o, empo_tensor *const *w) {
    empo_tensor *total = NULL;
    for (int k = 0; k < 2; k++) {
        if (!o[k]) continue;
        empo_tensor *p = NULL, *s = NULL, *t = NULL;
        CHECK_OK(empo_mul(&p, o[k], w[k]));
        CHECK_OK(empo_sum(&s, p));
        empo_tensor_release(p);
        if (!total) { total = s; continue; }
        CHECK_OK(empo_add(&t, total, s));
        empo_tensor_release(total);
        empo_tensor_release(s);
        total = t;
    }
    return total;
}

/* relative error of x's accumulated gradient against central differences */
static double fd_input_err(const fd_case *c, empo_tensor *x, empo_tensor *const *w) {
    const float h = 5e-3f;
    empo_tensor *g = NULL;
    empo_tensor_grad(&g, x);
    if (!g) return INFINITY;
    const int64_t n = empo_tensor_numel(x);
    float *xv = fptr(x), *num = zeros(n);
    int prev = empo_grad_set_enabled(0);
    for (int64_t j = 0; j < n; j++) {
        const float x0 = xv[j];
        xv[j] = x0 + h;
        const double up = (double)xv[j] - x0, Lp = loss_value(c, w);
        xv[j] = x0 - h;
        const double down = x0 - (double)xv[j], Lm = loss_value(c, w);
        xv[j] = x0;
        num[j] = (float)((Lp - Lm) / (up + down));
    }
    empo_grad_set_enabled(prev);
    double e = all_finite(fptr(g), n) ? check_rel_err(fptr(g), num, n) : INFINITY;
    free(num);
    empo_tensor_release(g);
    return e;
}

static void fd_check(const fd_case *c, int reference) {
    empo_tensor *o[2] = {NULL, NULL}, *w[2] = {NULL, NULL};
    for (int i = 0; i < 3; i++)
        if (c->in[i]) {
            empo_tensor_set_requires_grad(c->in[i], 1);
            empo_tensor_set_grad(c->in[i], NULL);
        }
    int st = c->run(c, o);
    check_report(__FILE__, __LINE__, st == EMPO_OK, "%s: %s", c->name, empo_last_error());
    if (st != EMPO_OK) return;
    for (int k = 0; k < 2; k++) {
        int64_t shape[8];
        if (o[k]) w[k] = check_rand_tensor(shape_of(o[k], shape), shape, 900 + (uint64_t)k);
    }
    empo_tensor *loss = loss_graph(o, w);
    CHECK_OK(empo_backward(loss, NULL, 0));
    for (int i = 0; i < 3; i++) {
        if (!c->in[i]) continue;
        double e = fd_input_err(c, c->in[i], w);
        printf("  fd %-4s %-34s input %d: rel err %.2e\n", reference ? "ref" : "fast", c->name, i, e);
        check_report(__FILE__, __LINE__, e <= FD_TOL, "%s (%s kernels): d loss / d input %d: rel err %.3g", c->name,
                     reference ? "reference" : "fast", i, e);
    }
    empo_tensor *objs[] = {o[0], o[1], w[0], w[1], loss};
    for (size_t i = 0; i < 5; i++) empo_tensor_release(objs[i]);
}

static int make_fd_cases(fd_case *cs) {
    int n = 0;
    const int64_t sx[3] = {2, 3, 5}, sw[1] = {5}, sg[2] = {3, 7};
    cs[n++] = (fd_case){"rmsnorm", {rand_t(3, sx, 201, 1.5f), rand_t(1, sw, 202, 1.0f)}, NULL, 0, 1e-5, 0, run_rmsnorm};
    cs[n++] = (fd_case){"swiglu", {rand_t(2, sg, 203, 3.0f), rand_t(2, sg, 204, 1.0f)}, NULL, 0, 0, 0, run_swiglu};

    const int64_t sr1[4] = {2, 3, 4, 6}, sp1[2] = {2, 4}, sr2[4] = {1, 2, 3, 4}, sr3[4] = {2, 1, 3, 4}, sp3[1] = {3};
    const double p1[8] = {0, 1, 2, 3, 7, 20, 33, 50}, p3[3] = {4, 9, 2};
    cs[n++] = (fd_case){"rope positions [B, T]", {rand_t(4, sr1, 205, 1.0f)}, vals_t(2, sp1, EMPO_I64, p1), 0, 1e4, 0,
                        run_rope};
    cs[n++] = (fd_case){"rope offset", {rand_t(4, sr2, 206, 1.0f)}, NULL, 5, 100.0, 0, run_rope};
    cs[n++] = (fd_case){"rope positions [T] i32", {rand_t(4, sr3, 207, 1.0f)}, vals_t(1, sp3, EMPO_I32, p3), 0, 1e4,
                        0, run_rope};

    const int64_t q1[4] = {2, 4, 3, 6}, k1[4] = {2, 2, 5, 6}, m1[2] = {2, 5};
    const double mv1[10] = {1, 1, 0, 1, 1, 0, 1, 1, 1, 1};
    cs[n++] = (fd_case){"attention causal gqa2 cache mask", {rand_t(4, q1, 208, 1.0f), rand_t(4, k1, 209, 1.0f),
                        rand_t(4, k1, 210, 1.0f)}, vals_t(2, m1, EMPO_U8, mv1), 0, 0.0, 1, run_attention};
    const int64_t q2[4] = {1, 4, 4, 5}, k2[4] = {1, 1, 6, 5};
    cs[n++] = (fd_case){"attention full gqa4 scale", {rand_t(4, q2, 211, 1.0f), rand_t(4, k2, 212, 1.0f),
                        rand_t(4, k2, 213, 1.0f)}, NULL, 0, 0.3, 0, run_attention};
    const int64_t q3[4] = {2, 2, 1, 4}, k3[4] = {2, 1, 7, 4}, m3[2] = {2, 7};
    const double mv3[14] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0};
    cs[n++] = (fd_case){"attention decode T=1 mask i64", {rand_t(4, q3, 214, 1.0f), rand_t(4, k3, 215, 1.0f),
                        rand_t(4, k3, 216, 1.0f)}, vals_t(2, m3, EMPO_I64, mv3), 0, 0.0, 1, run_attention};
    const int64_t q4[4] = {1, 2, 3, 4}, k4[4] = {1, 1, 3, 4}, m4[2] = {1, 3};
    const double mv4[3] = {0, 1, 1};
    cs[n++] = (fd_case){"attention empty row mask f32", {rand_t(4, q4, 217, 1.0f), rand_t(4, k4, 218, 1.0f),
                        rand_t(4, k4, 219, 1.0f)}, vals_t(2, m4, EMPO_F32, mv4), 0, 0.0, 1, run_attention};

    const int64_t sl[2] = {5, 7}, si[1] = {5}, sl3[3] = {2, 3, 7}, si3[2] = {2, 3};
    const double ids[5] = {0, 6, 3, 3, 1}, ids3[6] = {2, 0, 6, 5, 5, 1};
    const char *names[3] = {"logprob_entropy logp", "logprob_entropy entropy", "logprob_entropy both"};
    for (int f = 1; f <= 3; f++)
        cs[n++] = (fd_case){names[f - 1], {rand_t(2, sl, 220 + (uint64_t)f, 3.0f)}, vals_t(1, si, EMPO_I64, ids), 0, 0,
                            f, run_logprob};
    cs[n++] = (fd_case){"logprob_entropy [2x3x7] i32", {rand_t(3, sl3, 224, 3.0f)}, vals_t(2, si3, EMPO_I32, ids3), 0,
                        0, 3, run_logprob};
    return n;
}

static void test_fd(void) {
    fd_case cs[32];
    int n = make_fd_cases(cs);
    for (int reference = 0; reference <= 1; reference++) {
        int prev = empo_set_reference_kernels(reference);
        for (int i = 0; i < n; i++) fd_check(&cs[i], reference);
        empo_set_reference_kernels(prev);
    }
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++) empo_tensor_release(cs[i].in[k]);
        empo_tensor_release(cs[i].aux);
    }
}

/* ---- 3. semantics ---- */

/* The last two queries against the whole cache equal the last two rows of
 * full causal attention (S - T = 4 cached tokens); the query is a strided
 * view. */
static void test_attention_kv_cache(void) {
    const int64_t sq[4] = {1, 4, 6, 8}, sk[4] = {1, 2, 6, 8};
    empo_tensor *q = rand_t(4, sq, 301, 1.5f), *k = rand_t(4, sk, 302, 1.5f), *v = rand_t(4, sk, 303, 1.0f);
    empo_tensor *full = NULL, *qt = NULL, *tail = NULL, *want = NULL;
    CHECK_OK(empo_attention(&full, q, k, v, 1, 0.0, NULL));
    CHECK_OK(empo_narrow(&qt, q, 2, 4, 2));
    CHECK(!empo_tensor_is_contiguous(qt));
    CHECK_OK(empo_attention(&tail, qt, k, v, 1, 0.0, NULL));
    CHECK_OK(empo_narrow(&want, full, 2, 4, 2));
    double e = tensor_err(tail, want);
    check_report(__FILE__, __LINE__, e <= 1e-6, "attention with a KV cache: rel err %.3g", e);
    empo_tensor *objs[] = {q, k, v, full, qt, tail, want};
    for (size_t i = 0; i < 7; i++) empo_tensor_release(objs[i]);
}

/* kv head j repeated to query heads 2j, 2j+1 (as HF's repeat_kv) */
static empo_tensor *repeat_heads(empo_tensor *kv, int64_t rep) {
    int64_t s[4];
    shape_of(kv, s);
    const int64_t big[4] = {s[0], s[1] * rep, s[2], s[3]}, row = s[2] * s[3];
    empo_tensor *r = NULL;
    empo_tensor_empty(&r, 4, big, EMPO_F32);
    for (int64_t b = 0; b < s[0]; b++)
        for (int64_t h = 0; h < big[1]; h++) {
            const float *src = fptr(kv) + (b * s[1] + h / rep) * row;
            memcpy(fptr(r) + (b * big[1] + h) * row, src, sizeof(float) * (size_t)row);
        }
    empo_tensor_set_requires_grad(r, 1);
    return r;
}

/* GQA equals plain attention on repeated KV heads, gradients included
 * (the GQA dk of a head is the sum over the query heads that share it). */
static void test_attention_gqa_repeat(void) {
    const int64_t sq[4] = {2, 4, 3, 4}, sk[4] = {2, 2, 5, 4}, sm[2] = {2, 5};
    const double mv[10] = {1, 0, 1, 1, 1, 1, 1, 1, 0, 1};
    empo_tensor *q = rand_t(4, sq, 311, 1.5f), *k = rand_t(4, sk, 312, 1.5f), *v = rand_t(4, sk, 313, 1.0f);
    empo_tensor *mask = vals_t(2, sm, EMPO_U8, mv), *kr = repeat_heads(k, 2), *vr = repeat_heads(v, 2);
    empo_tensor_set_requires_grad(k, 1);
    empo_tensor *o1 = NULL, *o2 = NULL, *l1 = NULL, *l2 = NULL, *gk = NULL, *gkr = NULL, *gsum = NULL;
    CHECK_OK(empo_attention(&o1, q, k, v, 1, 0.0, mask));
    CHECK_OK(empo_attention(&o2, q, kr, vr, 1, 0.0, mask));
    double e = tensor_err(o1, o2);
    check_report(__FILE__, __LINE__, e <= 1e-6, "GQA vs repeated heads: rel err %.3g", e);
    CHECK_OK(empo_sum(&l1, o1));
    CHECK_OK(empo_sum(&l2, o2));
    CHECK_OK(empo_backward(l1, NULL, 0));
    CHECK_OK(empo_backward(l2, NULL, 0));
    empo_tensor_grad(&gk, k);
    empo_tensor_grad(&gkr, kr);
    if (gk && gkr) {   /* sum the repeated heads' gradients pairwise */
        const int64_t s5[5] = {2, 2, 2, 5, 4};
        empo_tensor *g5 = NULL;
        CHECK_OK(empo_view(&g5, gkr, 5, s5));
        CHECK_OK(empo_sum_dim(&gsum, g5, 2, 0));
        e = tensor_err(gk, gsum);
        check_report(__FILE__, __LINE__, e <= 1e-5, "GQA dk vs repeated heads: rel err %.3g", e);
        empo_tensor_release(g5);
    } else {
        CHECK(gk && gkr);
    }
    empo_tensor *objs[] = {q, k, v, mask, kr, vr, o1, o2, l1, l2, gk, gkr, gsum};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

/* A batch row whose keys are all masked out gives zeros and zero, finite
 * gradients through the op. */
static void test_attention_empty_rows(void) {
    const int64_t sq[4] = {2, 2, 3, 4}, sk[4] = {2, 1, 3, 4}, sm[2] = {2, 3};
    const double mv[6] = {0, 0, 0, 1, 1, 1};
    empo_tensor *q = rand_t(4, sq, 321, 1.0f), *k = rand_t(4, sk, 322, 1.0f), *v = rand_t(4, sk, 323, 1.0f);
    empo_tensor *mask = vals_t(2, sm, EMPO_I32, mv), *o = NULL, *l = NULL, *gq = NULL;
    empo_tensor_set_requires_grad(q, 1);
    CHECK_OK(empo_attention(&o, q, k, v, 0, 0.0, mask));
    CHECK_OK(empo_sum(&l, o));
    CHECK_OK(empo_backward(l, NULL, 0));
    empo_tensor_grad(&gq, q);
    int ok = gq != NULL;
    for (int64_t i = 0; ok && i < 2 * 3 * 4; i++) ok = fptr(o)[i] == 0.0f && fptr(gq)[i] == 0.0f;
    CHECK(ok && all_finite(fptr(o), 48) && all_finite(fptr(gq), 48));
    empo_tensor *objs[] = {q, k, v, mask, o, l, gq};
    for (size_t i = 0; i < 7; i++) empo_tensor_release(objs[i]);
}

/* position 0 is the identity; [T] positions, [B, T] positions and an
 * offset give the same rotation */
static void test_rope_identities(void) {
    const int64_t sx[4] = {2, 2, 3, 8}, sp[1] = {3}, sbt[2] = {2, 3};
    const double zero[6] = {0, 0, 0, 0, 0, 0}, p[3] = {5, 6, 7}, pbt[6] = {5, 6, 7, 5, 6, 7};
    empo_tensor *x = rand_t(4, sx, 331, 1.0f), *z = vals_t(2, sbt, EMPO_I64, zero);
    empo_tensor *pt = vals_t(1, sp, EMPO_I64, p), *pb = vals_t(2, sbt, EMPO_I32, pbt);
    empo_tensor *y0 = NULL, *y1 = NULL, *y2 = NULL, *y3 = NULL;
    CHECK_OK(empo_rope(&y0, x, z, 0, 1e4));
    CHECK_OK(empo_rope(&y1, x, pt, 0, 1e4));
    CHECK_OK(empo_rope(&y2, x, pb, 0, 1e4));
    CHECK_OK(empo_rope(&y3, x, NULL, 5, 1e4));
    CHECK(tensor_err(y0, x) == 0.0);
    CHECK(tensor_err(y1, y2) == 0.0 && tensor_err(y1, y3) == 0.0);
    /* one hand-checked value: pair 0 at position 5 turns by 5 radians */
    double c5 = cos(5.0), s5 = sin(5.0), a = fptr(x)[0], b = fptr(x)[4];
    CHECK_NEAR(fptr(y1)[0], a * c5 - b * s5, 1e-6);
    CHECK_NEAR(fptr(y1)[4], b * c5 + a * s5, 1e-6);
    empo_tensor *objs[] = {x, z, pt, pb, y0, y1, y2, y3};
    for (size_t i = 0; i < 8; i++) empo_tensor_release(objs[i]);
}

static void test_logprob_values(void) {
    const int64_t sl[2] = {3, 10}, si[1] = {3};
    const double ids[3] = {0, 4, 9};
    empo_tensor *x = NULL, *id = vals_t(1, si, EMPO_I64, ids), *lp = NULL, *en = NULL;
    empo_tensor_zeros(&x, 2, sl, EMPO_F32);
    CHECK_OK(empo_logprob_entropy(&lp, &en, x, id));
    for (int i = 0; lp && en && i < 3; i++) {
        CHECK_NEAR(fptr(lp)[i], -log(10.0), 1e-6);
        CHECK_NEAR(fptr(en)[i], log(10.0), 1e-6);
    }
    /* banned tokens: the rest share the mass, entropy stays finite */
    for (int j = 5; j < 10; j++) fptr(x)[j] = -INFINITY;
    empo_tensor_release(lp);
    empo_tensor_release(en);
    lp = en = NULL;
    empo_tensor_set_requires_grad(x, 1);
    CHECK_OK(empo_logprob_entropy(&lp, &en, x, id));
    empo_tensor *l = NULL, *g = NULL;
    if (lp && en) {
        CHECK_NEAR(fptr(lp)[0], -log(5.0), 1e-6);
        CHECK_NEAR(fptr(en)[0], log(5.0), 1e-6);
        CHECK_OK(empo_sum(&l, en));
        CHECK_OK(empo_backward(l, NULL, 0));
        empo_tensor_grad(&g, x);
        CHECK(g && all_finite(fptr(g), 30) && fptr(g)[7] == 0.0f);
    }
    empo_tensor *objs[] = {x, id, lp, en, l, g};
    for (size_t i = 0; i < 6; i++) empo_tensor_release(objs[i]);
}

/* strided inputs are made contiguous, not misread */
static void test_strided_inputs(void) {
    const int64_t s[2] = {5, 4}, sw[1] = {5};
    empo_tensor *x = rand_t(2, s, 341, 1.0f), *w = rand_t(1, sw, 342, 1.0f), *xt = NULL, *xc = NULL;
    empo_tensor *y1 = NULL, *y2 = NULL, *g1 = NULL, *g2 = NULL;
    CHECK_OK(empo_transpose(&xt, x, 0, 1));   /* [4 x 5], strided */
    CHECK_OK(empo_clone(&xc, xt));
    CHECK_OK(empo_rmsnorm(&y1, xt, w, 1e-6));
    CHECK_OK(empo_rmsnorm(&y2, xc, w, 1e-6));
    CHECK(tensor_err(y1, y2) == 0.0);
    CHECK_OK(empo_swiglu(&g1, xt, y1));
    CHECK_OK(empo_swiglu(&g2, xc, y2));
    CHECK(tensor_err(g1, g2) == 0.0);
    empo_tensor *objs[] = {x, w, xt, xc, y1, y2, g1, g2};
    for (size_t i = 0; i < 8; i++) empo_tensor_release(objs[i]);
}

/* ---- 4. errors ---- */

static void test_errors_norm_rope(void) {
    const int64_t s24[2] = {2, 4}, s3[1] = {3}, s4[1] = {4}, s42[2] = {4, 2};
    const int64_t s3d[3] = {2, 3, 4}, sodd[4] = {1, 1, 2, 5}, sx[4] = {1, 2, 3, 4}, sp[1] = {2};
    empo_tensor *x = rand_t(2, s24, 401, 1.0f), *w3 = rand_t(1, s3, 402, 1.0f), *w4 = rand_t(1, s4, 403, 1.0f);
    empo_tensor *xi = NULL, *x42 = rand_t(2, s42, 404, 1.0f), *x3 = rand_t(3, s3d, 405, 1.0f);
    empo_tensor *xodd = rand_t(4, sodd, 406, 1.0f), *x4 = rand_t(4, sx, 407, 1.0f), *pf = rand_t(1, sp, 408, 1.0f);
    empo_tensor *p2 = NULL, *y = NULL;
    empo_tensor_zeros(&xi, 2, s24, EMPO_I32);
    empo_tensor_zeros(&p2, 1, sp, EMPO_I64);
    CHECK_FAIL(empo_rmsnorm(&y, x, w3, 1e-6), EMPO_E_SHAPE, "rmsnorm: x [2 x 4]");
    CHECK_FAIL(empo_rmsnorm(&y, xi, w4, 1e-6), EMPO_E_DTYPE, "rmsnorm: x");
    CHECK_FAIL(empo_rmsnorm(&y, x, w4, -1.0), EMPO_E_ARG, "rmsnorm: eps");
    CHECK_FAIL(empo_rmsnorm(&y, NULL, w4, 1e-6), EMPO_E_ARG, "rmsnorm");
    CHECK_FAIL(empo_swiglu(&y, x, x42), EMPO_E_SHAPE, "swiglu: gate [2 x 4]");
    CHECK_FAIL(empo_swiglu(&y, x, xi), EMPO_E_DTYPE, "swiglu: up");
    CHECK_FAIL(empo_rope(&y, x3, NULL, 0, 1e4), EMPO_E_SHAPE, "rope: x [2 x 3 x 4]");
    CHECK_FAIL(empo_rope(&y, xodd, NULL, 0, 1e4), EMPO_E_SHAPE, "must be even");
    CHECK_FAIL(empo_rope(&y, x4, p2, 0, 1e4), EMPO_E_SHAPE, "rope: x [1 x 2 x 3 x 4]");
    CHECK_FAIL(empo_rope(&y, x4, pf, 0, 1e4), EMPO_E_DTYPE, "rope: positions");
    CHECK_FAIL(empo_rope(&y, x4, NULL, 0, 0.0), EMPO_E_ARG, "rope: theta");
    CHECK(y == NULL);   /* a failed op leaves its output alone */
    empo_tensor *objs[] = {x, w3, w4, xi, x42, x3, xodd, x4, pf, p2};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

static void test_errors_attention(void) {
    const int64_t sq[4] = {2, 4, 5, 8}, sk3[4] = {2, 3, 5, 8}, sk[4] = {2, 2, 5, 8}, sk7[4] = {2, 2, 5, 7};
    const int64_t sb[4] = {1, 2, 5, 8}, sshort[4] = {2, 2, 4, 8}, sm[2] = {2, 4}, sm5[2] = {2, 5};
    empo_tensor *q = rand_t(4, sq, 411, 1.0f), *k3 = rand_t(4, sk3, 412, 1.0f), *k = rand_t(4, sk, 413, 1.0f);
    empo_tensor *k7 = rand_t(4, sk7, 414, 1.0f), *kb = rand_t(4, sb, 415, 1.0f), *ks = rand_t(4, sshort, 416, 1.0f);
    empo_tensor *m = NULL, *m64 = NULL, *qi = NULL, *y = NULL;
    empo_tensor_zeros(&m, 2, sm, EMPO_U8);
    empo_tensor_zeros(&m64, 2, sm5, EMPO_F64);
    empo_tensor_zeros(&qi, 4, sq, EMPO_I64);
    CHECK_FAIL(empo_attention(&y, q, k3, k3, 1, 0, NULL), EMPO_E_SHAPE, "heads 4 not a multiple of kv heads 3");
    CHECK_FAIL(empo_attention(&y, q, k3, k3, 1, 0, NULL), EMPO_E_SHAPE, "attention: q [2 x 4 x 5 x 8]");
    CHECK_FAIL(empo_attention(&y, q, k, k3, 1, 0, NULL), EMPO_E_SHAPE, "shapes must be equal");
    CHECK_FAIL(empo_attention(&y, q, k7, k7, 1, 0, NULL), EMPO_E_SHAPE, "head dims differ");
    CHECK_FAIL(empo_attention(&y, q, kb, kb, 1, 0, NULL), EMPO_E_SHAPE, "batch sizes differ");
    CHECK_FAIL(empo_attention(&y, q, ks, ks, 1, 0, NULL), EMPO_E_SHAPE, "S 4 < T 5");
    CHECK_FAIL(empo_attention(&y, q, k, k, 1, 0, m), EMPO_E_SHAPE, "attention: key_mask [2 x 4]");
    CHECK_FAIL(empo_attention(&y, q, k, k, 1, 0, m64), EMPO_E_DTYPE, "attention: key_mask");
    CHECK_FAIL(empo_attention(&y, qi, k, k, 1, 0, NULL), EMPO_E_DTYPE, "attention: q");
    CHECK_FAIL(empo_attention(&y, q, k, NULL, 1, 0, NULL), EMPO_E_ARG, "attention: v");
    CHECK(y == NULL);
    CHECK_OK(empo_attention(&y, q, ks, ks, 0, 0, NULL));   /* not causal: S < T is fine */
    empo_tensor *objs[] = {q, k3, k, k7, kb, ks, m, m64, qi, y};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

static void test_errors_logprob(void) {
    const int64_t sl[2] = {2, 5}, si[1] = {2}, s3[1] = {3};
    const double bad_hi[2] = {1, 5}, bad_lo[2] = {-1, 0}, ok[2] = {1, 4}, three[3] = {0, 1, 2};
    empo_tensor *x = rand_t(2, sl, 421, 1.0f), *hi = vals_t(1, si, EMPO_I64, bad_hi);
    empo_tensor *lo = vals_t(1, si, EMPO_I32, bad_lo), *good = vals_t(1, si, EMPO_I64, ok);
    empo_tensor *ids3 = vals_t(1, s3, EMPO_I64, three), *idf = rand_t(1, si, 422, 1.0f);
    empo_tensor *lp = NULL, *en = NULL;
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, hi), EMPO_E_INDEX, "logprob_entropy: ids [2] i64: element 1 is 5");
    CHECK_FAIL(empo_logprob_entropy(&lp, NULL, x, lo), EMPO_E_INDEX, "out of range [0, 5)");
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, ids3), EMPO_E_SHAPE, "logprob_entropy: logits [2 x 5]");
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, idf), EMPO_E_DTYPE, "logprob_entropy: ids");
    CHECK_FAIL(empo_logprob_entropy(NULL, NULL, x, good), EMPO_E_ARG, "logprob_entropy");
    fptr(x)[7] = NAN;
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, good), EMPO_E_NUMERIC, "row 1");
    for (int j = 0; j < 5; j++) fptr(x)[j] = -INFINITY;
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, good), EMPO_E_NUMERIC, "row 0");
    CHECK(lp == NULL && en == NULL);
    empo_tensor *objs[] = {x, hi, lo, good, ids3, idf};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

int main(void) {
    test_fd();
    test_attention_kv_cache();
    test_attention_gqa_repeat();
    test_attention_empty_rows();
    test_rope_identities();
    test_logprob_values();
    test_strided_inputs();
    test_errors_norm_rope();
    test_errors_attention();
    test_errors_logprob();
    CHECK(empo_live_tensors() == 0);
    return check_finish("test_fused");
}

