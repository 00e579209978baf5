/* test_gradcheck.c — every differentiable op's backward against central
 * finite differences, on small shapes, with the fast kernels and again with
 * the reference kernels (empo_set_reference_kernels(1)).
 *
 * For each case: inputs are f32 leaves with fixed random values (kept away
 * from kinks: relu/abs at 0, clamp bounds, maximum ties, max ties), some
 * seen through a transpose; loss = sum_k sum(out_k * W_k) with fixed random
 * W_k. The analytic gradient of every leaf comes from empo_backward; the
 * numeric one from (loss(x + eps) - loss(x - eps)) / 2 eps per element,
 * with the forward in f32 and the loss summed in double. They must agree to
 *     max |analytic - numeric| <= TOL * max |numeric| + ATOL,
 * which a wrong gradient (a missing term, a wrong sign or factor) fails.
 * A case whose op is missing from libempo (weak symbol) fails too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

#pragma weak empo_embedding
#pragma weak empo_gather
#pragma weak empo_index_select
#pragma weak empo_cat
#pragma weak empo_where
#pragma weak empo_masked_fill
#pragma weak empo_rmsnorm
#pragma weak empo_rope
#pragma weak empo_attention
#pragma weak empo_swiglu
#pragma weak empo_logprob_entropy

enum { MAX_IN = 5, MAX_OUT = 2 };
static const double TOL = 1e-2, ATOL = 2e-4;

/* ---- inputs ---- */
enum { K_NONE, K_FLOAT, K_FLOAT_T, K_INT, K_VALS };           /* K_FLOAT_T: made with the last two dims swapped, then transposed */
enum { D_UNIF, D_AWAY, D_LEVELS, D_DISTINCT };

typedef struct gc_in {
    int kind, dist, dtype;
    double lo, hi;             /* floats: range (D_LEVELS: lo = offset); K_INT: values in [lo, hi) */
    int nd;
    int64_t s[6];
    const int64_t *vals;       /* K_VALS: row-major values */
} gc_in;

#define FL(lo_, hi_, nd_, ...) {.kind = K_FLOAT, .dist = D_UNIF, .lo = (lo_), .hi = (hi_), .nd = (nd_), .s = {__VA_ARGS__}}
#define FT(lo_, hi_, nd_, ...) {.kind = K_FLOAT_T, .dist = D_UNIF, .lo = (lo_), .hi = (hi_), .nd = (nd_), .s = {__VA_ARGS__}}
#define AWAY(lo_, hi_, nd_, ...) {.kind = K_FLOAT, .dist = D_AWAY, .lo = (lo_), .hi = (hi_), .nd = (nd_), .s = {__VA_ARGS__}}
#define LEVELS(off, nd_, ...) {.kind = K_FLOAT, .dist = D_LEVELS, .lo = (off), .nd = (nd_), .s = {__VA_ARGS__}}
#define DISTINCT(nd_, ...) {.kind = K_FLOAT, .dist = D_DISTINCT, .nd = (nd_), .s = {__VA_ARGS__}}
#define INTS(dt, hi_, nd_, ...) {.kind = K_INT, .dtype = (dt), .lo = 0, .hi = (hi_), .nd = (nd_), .s = {__VA_ARGS__}}
#define VALS(dt, v, nd_, ...) {.kind = K_VALS, .dtype = (dt), .vals = (v), .nd = (nd_), .s = {__VA_ARGS__}}

struct gc_case;
typedef int (*gc_run)(const struct gc_case *c, empo_tensor *const *x, empo_tensor **y);

typedef struct gc_case {
    const char *name;
    gc_run run;
    gc_in in[MAX_IN];
    int64_t i[3];              /* integer parameters (dim, keepdim, causal, ...) */
    double f[3];               /* real parameters (scalar, eps, theta, ...) */
    double eps;                /* finite-difference step (0: 1e-2) */
} gc_case;

/* ---- the ops, as runners ---- */
#define BINARY(op) \
    static int r_##op(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_##op(&y[0], x[0], x[1]); }
#define UNARY(op) \
    static int r_##op(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_##op(&y[0], x[0]); }
#define SCALAR(op) \
    static int r_##op(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_##op(&y[0], x[0], c->f[0]); }
#define DIMOP(op) \
    static int r_##op(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_##op(&y[0], x[0], (int)c->i[0]); }
#define DIMKEEP(op) \
    static int r_##op(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { \
        return empo_##op(&y[0], x[0], (int)c->i[0], (int)c->i[1]); }

BINARY(add) BINARY(sub) BINARY(mul) BINARY(div) BINARY(pow) BINARY(maximum) BINARY(minimum)
BINARY(matmul) BINARY(swiglu)
UNARY(neg) UNARY(exp) UNARY(log) UNARY(sqrt) UNARY(rsqrt) UNARY(tanh) UNARY(sigmoid) UNARY(silu)
UNARY(relu) UNARY(abs) UNARY(sum) UNARY(mean) UNARY(max) UNARY(contiguous) UNARY(clone)
SCALAR(add_scalar) SCALAR(mul_scalar) SCALAR(pow_scalar) SCALAR(rsub_scalar) SCALAR(rdiv_scalar)
DIMOP(softmax) DIMOP(log_softmax) DIMOP(unsqueeze) DIMOP(squeeze)
DIMKEEP(sum_dim) DIMKEEP(mean_dim) DIMKEEP(transpose) DIMKEEP(select)

static int r_gelu(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_gelu(&y[0], x[0], (int)c->i[0]); }
static int r_clamp(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_clamp(&y[0], x[0], c->f[0], c->f[1]); }
static int r_max_dim(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    empo_tensor *ix = NULL;
    int st = empo_max_dim(&y[0], &ix, x[0], (int)c->i[0], (int)c->i[1]);
    empo_tensor_release(ix);
    return st;
}
/* one leaf used twice in one op: its two gradient terms must add up */
static int r_mul_self(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_mul(&y[0], x[0], x[0]); }
static int r_gram(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    empo_tensor *t = NULL;
    int st = empo_transpose(&t, x[0], -2, -1);
    if (st == EMPO_OK) st = empo_matmul(&y[0], x[0], t);
    empo_tensor_release(t);
    return st;
}
static int r_linear(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_linear(&y[0], x[0], x[1], x[2]); }
/* reshape/permute/expand take their shape from i[] (-1 padded) */
static int shape_of(const gc_case *c, int64_t *s) {
    int n = 0;
    while (n < 3 && c->i[n] != 0) { s[n] = c->i[n]; n++; }
    return n;
}
static int r_reshape(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    int64_t s[3];
    int n = shape_of(c, s);
    return empo_reshape(&y[0], x[0], n, s);
}
static int r_expand(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    int64_t s[3];
    int n = shape_of(c, s);
    return empo_expand(&y[0], x[0], n, s);
}
static int r_permute(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    int dims[3] = {(int)c->i[0], (int)c->i[1], (int)c->i[2]};
    return empo_permute(&y[0], x[0], 3, dims);
}
static int r_narrow(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    return empo_narrow(&y[0], x[0], (int)c->i[0], c->i[1], c->i[2]);
}
static int r_slice(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    return empo_slice(&y[0], x[0], (int)c->i[0], c->i[1], c->i[2], (int64_t)c->f[0]);
}
static int r_embedding(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_embedding(&y[0], x[0], x[1]); }
static int r_gather(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_gather(&y[0], x[0], (int)c->i[0], x[1]); }
static int r_index_select(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    return empo_index_select(&y[0], x[0], (int)c->i[0], x[1]);
}
static int r_cat(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_cat(&y[0], 3, x, (int)c->i[0]); }
static int r_where(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_where(&y[0], x[0], x[1], x[2]); }
static int r_masked_fill(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    return empo_masked_fill(&y[0], x[0], x[1], c->f[0]);
}
static int r_rmsnorm(const gc_case *c, empo_tensor *const *x, empo_tensor **y) { return empo_rmsnorm(&y[0], x[0], x[1], c->f[0]); }
static int r_rope(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    return empo_rope(&y[0], x[0], x[1], c->i[0], c->f[0]);   /* x[1] is NULL without positions */
}
static int r_attention(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    return empo_attention(&y[0], x[0], x[1], x[2], (int)c->i[0], c->f[0], x[3]);
}
static int r_logprob_entropy(const gc_case *c, empo_tensor *const *x, empo_tensor **y) {
    return empo_logprob_entropy(&y[0], &y[1], x[0], x[1]);
}

/* which runners need an op that may be absent from libempo */
static int op_present(gc_run run) {
    if (run == r_embedding) return empo_embedding != NULL;
    if (run == r_gather) return empo_gather != NULL;
    if (run == r_index_select) return empo_index_select != NULL;
    if (run == r_cat) return empo_cat != NULL;
    if (run == r_where) return empo_where != NULL;
    if (run == r_masked_fill) return empo_masked_fill != NULL;
    if (run == r_rmsnorm) return empo_rmsnorm != NULL;
    if (run == r_rope) return empo_rope != NULL;
    if (run == r_attention) return empo_attention != NULL;
    if (run == r_swiglu) return empo_swiglu != NULL;
    if (run == r_logprob_entropy) return empo_logprob_entropy != NULL;
    return 1;
}

static const int64_t ATTN_MASK[] = {1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1};   /* [2, 6]; b = 1: causal t < 2 sees nothing */
static const int64_t POSITIONS[] = {3, 0, 17, 5, 9, 2};                     /* [2, 3] */

/* ---- the cases ---- */
static const gc_case CASES[] = {
    /* broadcasting binary ops: both inputs broadcast, or one transposed */
    {"add", r_add, .in = {FL(-1, 1, 3, 2, 1, 3), FL(-1, 1, 2, 4, 3)}},
    {"sub", r_sub, .in = {FT(-1, 1, 2, 3, 4), FL(-1, 1, 1, 4)}},
    {"mul", r_mul, .in = {FL(-1, 1, 3, 2, 1, 3), FT(-1, 1, 2, 4, 3)}},
    {"div", r_div, .in = {FL(-1, 1, 2, 3, 4), AWAY(0.5, 2, 2, 1, 4)}},
    {"pow", r_pow, .in = {FL(0.5, 2, 3, 2, 1, 3), FL(-2, 2, 2, 4, 3)}},
    {"maximum", r_maximum, .in = {LEVELS(0, 3, 2, 1, 3), LEVELS(0.1, 2, 4, 3)}},
    {"minimum", r_minimum, .in = {LEVELS(0, 2, 3, 4), LEVELS(0.1, 2, 3, 4)}},
    /* scalar ops */
    {"add_scalar", r_add_scalar, .in = {FT(-1, 1, 2, 3, 4)}, .f = {0.75}},
    {"mul_scalar", r_mul_scalar, .in = {FL(-1, 1, 2, 3, 4)}, .f = {-1.25}},
    {"pow_scalar", r_pow_scalar, .in = {FL(0.5, 2, 2, 3, 4)}, .f = {2.5}},
    {"pow_scalar", r_pow_scalar, .in = {FT(-1, 1, 2, 3, 4)}, .f = {3.0}},
    {"pow_scalar", r_pow_scalar, .in = {FL(0.5, 2, 2, 3, 4)}, .f = {-0.5}},
    {"rsub_scalar", r_rsub_scalar, .in = {FL(-1, 1, 2, 3, 4)}, .f = {2.0}},
    {"rdiv_scalar", r_rdiv_scalar, .in = {AWAY(0.5, 2, 2, 3, 4)}, .f = {1.5}},
    {"clamp", r_clamp, .in = {LEVELS(0.1, 2, 4, 5)}, .f = {-0.45, 0.35}},   /* levels stay 0.04 from the bounds */
    /* unary */
    {"neg", r_neg, .in = {FT(-2, 2, 2, 3, 4)}},
    {"exp", r_exp, .in = {FL(-2, 2, 2, 3, 4)}},
    {"log", r_log, .in = {FT(0.5, 3, 2, 3, 4)}},
    {"sqrt", r_sqrt, .in = {FL(0.5, 3, 2, 3, 4)}},
    {"rsqrt", r_rsqrt, .in = {FL(0.5, 3, 2, 3, 4)}},
    {"tanh", r_tanh, .in = {FT(-2, 2, 2, 3, 4)}},
    {"sigmoid", r_sigmoid, .in = {FL(-4, 4, 2, 3, 4)}},
    {"silu", r_silu, .in = {FL(-4, 4, 2, 3, 4)}},
    {"relu", r_relu, .in = {AWAY(0.1, 2, 2, 3, 4)}},
    {"abs", r_abs, .in = {AWAY(0.1, 2, 2, 3, 4)}},
    {"gelu", r_gelu, .in = {FT(-3, 3, 2, 3, 4)}, .i = {0}},
    {"gelu tanh", r_gelu, .in = {FL(-3, 3, 2, 3, 4)}, .i = {1}},
    /* reductions */
    {"sum", r_sum, .in = {FT(-1, 1, 2, 3, 4)}},
    {"mean", r_mean, .in = {FL(-1, 1, 3, 2, 3, 4)}},
    {"sum_dim", r_sum_dim, .in = {FL(-1, 1, 3, 2, 3, 4)}, .i = {1, 0}},
    {"sum_dim keepdim", r_sum_dim, .in = {FT(-1, 1, 2, 3, 4)}, .i = {0, 1}},
    {"mean_dim", r_mean_dim, .in = {FL(-1, 1, 3, 2, 3, 4)}, .i = {-1, 1}},
    {"mean_dim", r_mean_dim, .in = {FT(-1, 1, 2, 3, 4)}, .i = {1, 0}},
    {"max_dim", r_max_dim, .in = {DISTINCT(3, 2, 3, 4)}, .i = {1, 0}},
    {"max_dim keepdim", r_max_dim, .in = {DISTINCT(2, 3, 4)}, .i = {-1, 1}},
    {"max", r_max, .in = {DISTINCT(2, 3, 4)}},
    {"softmax", r_softmax, .in = {FL(-2, 2, 2, 3, 5)}, .i = {1}},
    {"softmax dim 0", r_softmax, .in = {FT(-2, 2, 3, 2, 3, 4)}, .i = {0}},
    {"log_softmax", r_log_softmax, .in = {FL(-2, 2, 2, 3, 5)}, .i = {-1}},
    {"log_softmax dim 0", r_log_softmax, .in = {FT(-2, 2, 2, 4, 3)}, .i = {0}},
    /* linear algebra */
    {"matmul", r_matmul, .in = {FL(-1, 1, 3, 2, 3, 4), FL(-1, 1, 2, 4, 5)}},
    {"matmul transposed", r_matmul, .in = {FT(-1, 1, 2, 3, 4), FT(-1, 1, 2, 4, 2)}},
    {"matmul 1-d", r_matmul, .in = {FL(-1, 1, 1, 4), FL(-1, 1, 2, 4, 3)}},
    {"matmul 1-d b", r_matmul, .in = {FL(-1, 1, 3, 2, 3, 4), FL(-1, 1, 1, 4)}},
    {"matmul broadcast", r_matmul, .in = {FL(-1, 1, 4, 2, 1, 3, 4), FL(-1, 1, 3, 2, 4, 2)}},
    {"mul x * x", r_mul_self, .in = {FT(-1, 1, 2, 3, 4)}},
    {"matmul x @ x^T", r_gram, .in = {FL(-1, 1, 3, 2, 3, 4)}},
    {"linear", r_linear, .in = {FL(-1, 1, 3, 2, 3, 4), FL(-1, 1, 2, 5, 4), FL(-1, 1, 1, 5)}},
    {"linear no bias", r_linear, .in = {FT(-1, 1, 2, 3, 4), FT(-1, 1, 2, 5, 4)}},
    /* views */
    {"reshape", r_reshape, .in = {FT(-1, 1, 3, 2, 3, 4)}, .i = {4, -1}},
    {"transpose", r_transpose, .in = {FL(-1, 1, 3, 2, 3, 4)}, .i = {0, 2}},
    {"permute", r_permute, .in = {FT(-1, 1, 3, 2, 3, 4)}, .i = {2, 0, 1}},
    {"narrow", r_narrow, .in = {FL(-1, 1, 2, 3, 5)}, .i = {1, 1, 3}},
    {"slice", r_slice, .in = {FT(-1, 1, 2, 7, 3)}, .i = {0, 1, 7}, .f = {2}},
    {"select", r_select, .in = {FL(-1, 1, 3, 2, 3, 4)}, .i = {1, -1}},
    {"expand", r_expand, .in = {FL(-1, 1, 2, 1, 4)}, .i = {2, 3, 4}},
    {"unsqueeze", r_unsqueeze, .in = {FT(-1, 1, 2, 3, 4)}, .i = {1}},
    {"squeeze", r_squeeze, .in = {FL(-1, 1, 3, 3, 1, 4)}, .i = {1}},
    {"contiguous", r_contiguous, .in = {FT(-1, 1, 2, 3, 4)}},
    {"clone", r_clone, .in = {FL(-1, 1, 2, 3, 4)}},
    /* indexing (repeated indices, so gradients accumulate) */
    {"embedding", r_embedding, .in = {FT(-1, 1, 2, 5, 3), INTS(EMPO_I64, 5, 2, 2, 4)}},
    {"gather", r_gather, .in = {FL(-1, 1, 2, 3, 4), INTS(EMPO_I64, 4, 2, 3, 5)}, .i = {1}},
    {"gather dim 0", r_gather, .in = {FT(-1, 1, 2, 3, 4), INTS(EMPO_I32, 3, 2, 2, 4)}, .i = {0}},
    {"index_select", r_index_select, .in = {FL(-1, 1, 2, 4, 3), INTS(EMPO_I64, 4, 1, 6)}, .i = {0}},
    {"index_select dim 1", r_index_select, .in = {FT(-1, 1, 3, 2, 3, 4), INTS(EMPO_I32, 3, 1, 5)}, .i = {1}},
    {"cat", r_cat, .in = {FL(-1, 1, 2, 2, 3), FT(-1, 1, 2, 2, 4), FL(-1, 1, 2, 2, 1)}, .i = {1}},
    {"where", r_where, .in = {INTS(EMPO_U8, 2, 3, 2, 1, 4), FL(-1, 1, 2, 3, 4), FT(-1, 1, 3, 2, 3, 4)}},
    {"masked_fill", r_masked_fill, .in = {FT(-1, 1, 2, 3, 4), INTS(EMPO_U8, 2, 1, 4)}, .f = {-2.5}},
    /* fused */
    {"rmsnorm", r_rmsnorm, .in = {FL(-2, 2, 2, 3, 6), FL(0.5, 1.5, 1, 6)}, .f = {1e-6}},
    {"rmsnorm transposed", r_rmsnorm, .in = {FT(-2, 2, 3, 2, 2, 5), FL(0.5, 1.5, 1, 5)}, .f = {0.1}},
    {"swiglu", r_swiglu, .in = {FL(-4, 4, 2, 3, 4), FT(-2, 2, 2, 3, 4)}},
    {"rope offset", r_rope, .in = {FL(-1, 1, 4, 2, 2, 3, 8), {K_NONE}}, .i = {5}, .f = {10000.0}},
    {"rope positions", r_rope, .in = {FT(-1, 1, 4, 2, 1, 3, 4), VALS(EMPO_I64, POSITIONS, 2, 2, 3)}, .f = {100.0}},
    {"attention causal gqa kv-cache mask", r_attention,
     .in = {FL(-1.5, 1.5, 4, 2, 4, 3, 4), FL(-1.5, 1.5, 4, 2, 2, 6, 4), FL(-1, 1, 4, 2, 2, 6, 4),
      VALS(EMPO_U8, ATTN_MASK, 2, 2, 6)}, .i = {1}},
    {"attention gqa 4/1 scale", r_attention,
     .in = {FT(-1.5, 1.5, 4, 1, 4, 4, 3), FL(-1.5, 1.5, 4, 1, 1, 5, 3), FT(-1, 1, 4, 1, 1, 5, 3), {K_NONE}},
     .i = {0}, .f = {0.7}},
    {"logprob_entropy", r_logprob_entropy, .in = {FL(-3, 3, 2, 4, 7), INTS(EMPO_I64, 7, 1, 4)}},
    {"logprob_entropy transposed", r_logprob_entropy, .in = {FT(-3, 3, 2, 3, 5), INTS(EMPO_I64, 5, 1, 3)}},
};

/* ---- machinery ---- */
static uint64_t g_rng;
static double unit(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

static void fill(float *p, int64_t n, const gc_in *in) {
    for (int64_t i = 0; i < n; i++) {
        double u = unit();
        switch (in->dist) {
        case D_AWAY: p[i] = (float)((in->lo + (in->hi - in->lo) * u) * (unit() < 0.5 ? -1 : 1)); break;
        case D_LEVELS: p[i] = (float)(0.2 * floor(11 * unit() - 5) + in->lo + 0.01 * u); break;
        case D_DISTINCT: p[i] = (float)(0.1 * (double)i + 0.03 * u); break;
        default: p[i] = (float)(in->lo + (in->hi - in->lo) * u);
        }
    }
    if (in->dist == D_DISTINCT)   /* shuffle the 0.1-spaced values */
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(unit() * (double)(i + 1));
            float t = p[i]; p[i] = p[j]; p[j] = t;
        }
}

typedef struct gc_state {
    const gc_case *c;
    int nin;
    empo_tensor *base[MAX_IN];     /* contiguous leaves (NULL for absent optional inputs) */
    empo_tensor *W[MAX_OUT];
} gc_state;

static int is_float_in(const gc_in *in) { return in->kind == K_FLOAT || in->kind == K_FLOAT_T; }

static int make_inputs(gc_state *s) {
    for (int k = 0; k < MAX_IN; k++) {
        const gc_in *in = &s->c->in[k];
        if (in->kind == K_NONE) { s->base[k] = NULL; continue; }
        s->nin = k + 1;
        int64_t shape[6];
        memcpy(shape, in->s, sizeof shape);
        int64_t n = 1;
        for (int d = 0; d < in->nd; d++) n *= shape[d];
        if (in->kind == K_FLOAT_T) { shape[in->nd - 2] = in->s[in->nd - 1]; shape[in->nd - 1] = in->s[in->nd - 2]; }
        if (is_float_in(in)) {
            if (empo_tensor_empty(&s->base[k], in->nd, shape, EMPO_F32) != EMPO_OK) return 0;
            fill(empo_tensor_data(s->base[k]), n, in);
            if (empo_tensor_set_requires_grad(s->base[k], 1) != EMPO_OK) return 0;
        } else {
            int64_t *v = malloc(sizeof(int64_t) * (size_t)n);
            for (int64_t i = 0; i < n; i++)
                v[i] = in->kind == K_VALS ? in->vals[i] : (int64_t)in->lo + (int64_t)(unit() * (in->hi - in->lo));
            int st = empo_tensor_from_buffer(&s->base[k], in->nd, shape, in->dtype, v, EMPO_I64);
            free(v);
            if (st != EMPO_OK) return 0;
        }
    }
    return 1;
}

/* runs the op on views of the leaves; y[] gets the outputs */
static int forward(gc_state *s, empo_tensor **y) {
    empo_tensor *x[MAX_IN] = {0};
    int st = EMPO_OK;
    for (int k = 0; k < s->nin && st == EMPO_OK; k++) {
        if (!s->base[k]) continue;
        if (s->c->in[k].kind == K_FLOAT_T) st = empo_transpose(&x[k], s->base[k], -2, -1);
        else { x[k] = s->base[k]; empo_tensor_retain(x[k]); }
    }
    if (st == EMPO_OK) st = s->c->run(s->c, x, y);
    for (int k = 0; k < s->nin; k++) empo_tensor_release(x[k]);
    return st;
}

/* sum_k sum(y_k * W_k) in double (no autograd) */
static int loss_value(gc_state *s, double *loss) {
    empo_tensor *y[MAX_OUT] = {0};
    int st = forward(s, y);
    *loss = 0;
    for (int k = 0; k < MAX_OUT && st == EMPO_OK; k++) {
        if (!y[k]) continue;
        int64_t n = empo_tensor_numel(y[k]);
        double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
        st = empo_tensor_read_f64(y[k], v);
        const float *w = empo_tensor_data(s->W[k]);
        for (int64_t i = 0; i < n; i++) *loss += v[i] * (double)w[i];
        free(v);
    }
    for (int k = 0; k < MAX_OUT; k++) empo_tensor_release(y[k]);
    return st;
}

/* backward of sum_k sum(y_k * W_k) through empo's ops; creates the W_k */
static int analytic(gc_state *s) {
    empo_tensor *y[MAX_OUT] = {0}, *loss = NULL;
    int st = forward(s, y);
    for (int k = 0; k < MAX_OUT && st == EMPO_OK; k++) {
        if (!y[k]) continue;
        int64_t shape[EMPO_MAX_DIMS];
        for (int d = 0; d < empo_tensor_ndim(y[k]); d++) shape[d] = empo_tensor_size(y[k], d);
        st = empo_tensor_empty(&s->W[k], empo_tensor_ndim(y[k]), shape, EMPO_F32);
        if (st != EMPO_OK) break;
        float *w = empo_tensor_data(s->W[k]);
        for (int64_t i = 0; i < empo_tensor_numel(s->W[k]); i++) w[i] = (float)(2 * unit() - 1);
        empo_tensor *p = NULL, *t = NULL;
        st = empo_mul(&p, y[k], s->W[k]);
        if (st == EMPO_OK) st = empo_sum(&t, p);
        empo_tensor_release(p);
        if (st == EMPO_OK && loss) {
            empo_tensor *u = NULL;
            st = empo_add(&u, loss, t);
            empo_tensor_release(t);
            empo_tensor_release(loss);
            t = u;
        }
        loss = t;
    }
    if (st == EMPO_OK) st = empo_backward(loss, NULL, 0);
    empo_tensor_release(loss);
    for (int k = 0; k < MAX_OUT; k++) empo_tensor_release(y[k]);
    return st;
}

/* compares one leaf's analytic gradient with central differences */
static void check_leaf(gc_state *s, int k, const char *mode) {
    empo_tensor *leaf = s->base[k], *g = NULL;
    int64_t n = empo_tensor_numel(leaf);
    double eps = s->c->eps > 0 ? s->c->eps : 1e-2, maxdiff = 0, maxref = 0;
    float *x = empo_tensor_data(leaf);
    empo_tensor_grad(&g, leaf);
    const float *ga = g ? empo_tensor_data(g) : NULL;
    int prev = empo_grad_set_enabled(0), st = EMPO_OK;
    int64_t worst = 0;
    for (int64_t i = 0; i < n && st == EMPO_OK; i++) {
        float keep = x[i];
        double lp, lm;
        x[i] = (float)(keep + eps);
        double hp = (double)x[i] - keep;   /* the step actually taken, after rounding to f32 */
        st = loss_value(s, &lp);
        x[i] = (float)(keep - eps);
        double hm = keep - (double)x[i];
        if (st == EMPO_OK) st = loss_value(s, &lm);
        x[i] = keep;
        double num = (lp - lm) / (hp + hm), ana = ga ? ga[i] : 0.0, d = fabs(num - ana);
        if (!(d <= maxdiff)) { maxdiff = d; worst = i; }
        if (fabs(num) > maxref) maxref = fabs(num);
    }
    empo_grad_set_enabled(prev);
    if (getenv("EMPO_GRADCHECK_VERBOSE"))
        printf("%-36s %-9s input %d: max diff %.2e, max |numeric| %.2e\n", s->c->name, mode, k, maxdiff, maxref);
    check_report(__FILE__, __LINE__, st == EMPO_OK, "%s [%s]: forward failed: %s", s->c->name, mode, empo_last_error());
    check_report(__FILE__, __LINE__, maxdiff <= TOL * maxref + ATOL,
                 "%s [%s] input %d: max |analytic - numeric| = %.3g at element %lld (analytic %.6g), max |numeric| = %.3g",
                 s->c->name, mode, k, maxdiff, (long long)worst, ga ? ga[worst] : 0.0, maxref);
    empo_tensor_release(g);
}

static void run_case(int idx, const char *mode) {
    const gc_case *c = &CASES[idx];
    if (!op_present(c->run)) {
        printf("%-36s SKIPPED (not built)\n", c->name);
        check_report(__FILE__, __LINE__, 0, "%s: op missing from libempo", c->name);
        return;
    }
    gc_state s = {.c = c};
    g_rng = 0x9E3779B97F4A7C15ull * (uint64_t)(idx + 1);
    int ok = make_inputs(&s);
    check_report(__FILE__, __LINE__, ok, "%s: inputs: %s", c->name, empo_last_error());
    int st = ok ? analytic(&s) : EMPO_E_ARG;
    check_report(__FILE__, __LINE__, st == EMPO_OK, "%s [%s]: %s", c->name, mode, empo_last_error());
    if (st == EMPO_OK)
        for (int k = 0; k < s.nin; k++)
            if (s.base[k] && is_float_in(&c->in[k])) check_leaf(&s, k, mode);
    for (int k = 0; k < MAX_IN; k++) empo_tensor_release(s.base[k]);
    for (int k = 0; k < MAX_OUT; k++) empo_tensor_release(s.W[k]);
}

int main(void) {
    int n = (int)(sizeof CASES / sizeof CASES[0]);
    for (int ref = 0; ref < 2; ref++) {
        empo_set_reference_kernels(ref);
        for (int i = 0; i < n; i++) run_case(i, ref ? "reference" : "fast");
    }
    empo_set_reference_kernels(0);
    printf("gradcheck: %d cases x 2 kernel sets\n", n);
    return check_finish("test_gradcheck");
}
