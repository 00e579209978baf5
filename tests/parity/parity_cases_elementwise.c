/* parity_cases_elementwise.c — parity cases for broadcasting binary ops,
 * scalar ops, comparisons and unary ops. */
#include <stddef.h>
#include "parity_gen.h"

typedef int (*binary_fn)(empo_tensor **, empo_tensor *, empo_tensor *);
typedef int (*unary_fn)(empo_tensor **, empo_tensor *);
typedef int (*scalar_fn)(empo_tensor **, empo_tensor *, double);

typedef struct { pg_shape a; pg_layout la; pg_shape b; pg_layout lb; } shape_pair;

static void binary_case(const char *op, binary_fn fn, shape_pair p, pg_dist da, pg_dist db) {
    pg_case *c = pg_begin(op);
    empo_tensor *a = pg_input(c, "a", p.a.nd, p.a.s, p.la, da);
    empo_tensor *b = pg_input(c, "b", p.b.nd, p.b.s, p.lb, db);
    empo_tensor *y = NULL;
    int st = fn(&y, a, b);
    pg_output(c, y);
    pg_end(c, st);
}

static void binary_ops(void) {
    shape_pair shapes[] = {
        {{2, {4, 5}}, PG_PLAIN, {2, {4, 5}}, PG_PLAIN},
        {{3, {3, 1, 5}}, PG_PLAIN, {2, {4, 5}}, PG_PLAIN},        /* both broadcast */
        {{3, {2, 3, 4}}, PG_T, {2, {3, 4}}, PG_NARROW},
        {{2, {5, 6}}, PG_SLICE, {2, {1, 6}}, PG_PLAIN},
        {{2, {6, 5}}, PG_EXPAND, {2, {6, 5}}, PG_T},
        {{0, {0}}, PG_PLAIN, {2, {3, 4}}, PG_PLAIN},               /* 0-d */
        {{5, {2, 1, 3, 1, 4}}, PG_PLAIN, {3, {1, 5, 4}}, PG_SLICE},  /* 5-d */
        {{2, {200, 250}}, PG_PLAIN, {2, {200, 250}}, PG_PLAIN},    /* chunked, threaded */
        {{2, {200, 250}}, PG_T, {1, {250}}, PG_PLAIN},      /* threaded rows */
    };
    struct { const char *name; binary_fn fn; pg_dist da, db; } ops[] = {
        {"add", empo_add, pg_unif(-1, 1), pg_unif(-1, 1)},
        {"sub", empo_sub, pg_unif(-1, 1), pg_unif(-1, 1)},
        {"mul", empo_mul, pg_unif(-1, 1), pg_unif(-1, 1)},
        {"div", empo_div, pg_unif(-1, 1), pg_away(0.5, 2)},
        {"pow", empo_pow, pg_unif(0.5, 2), pg_unif(-2, 2)},
        {"maximum", empo_maximum, pg_levels(0), pg_levels(0.1)},
        {"minimum", empo_minimum, pg_levels(0), pg_levels(0.1)},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            binary_case(ops[k].name, ops[k].fn, shapes[i], ops[k].da, ops[k].db);
}

static void comparisons(void) {
    shape_pair shapes[] = {
        {{2, {4, 5}}, PG_PLAIN, {2, {4, 5}}, PG_PLAIN},
        {{3, {3, 1, 5}}, PG_PLAIN, {2, {4, 5}}, PG_NARROW},
        {{2, {4, 5}}, PG_T, {1, {5}}, PG_PLAIN},
    };
    struct { const char *name; binary_fn fn; } ops[] = {{"eq", empo_eq}, {"lt", empo_lt}, {"gt", empo_gt}};
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            binary_case(ops[k].name, ops[k].fn, shapes[i], pg_ties(), pg_ties());
}

/* shapes every unary and scalar op runs on */
static const int N_UNARY_SHAPES = 5;
static void unary_shape(int i, pg_shape *s, pg_layout *l) {
    pg_shape shapes[] = {{1, {7}}, {3, {3, 4, 5}}, {2, {4, 6}}, {3, {2, 3, 4}}, {2, {160, 300}}};
    pg_layout layouts[] = {PG_PLAIN, PG_T, PG_SLICE, PG_NARROW, PG_PLAIN};
    *s = shapes[i];
    *l = layouts[i];
}

static void scalar_case(const char *op, scalar_fn fn, double s, pg_dist d) {
    for (int i = 0; i < N_UNARY_SHAPES; i++) {
        pg_shape sh;
        pg_layout l;
        unary_shape(i, &sh, &l);
        pg_case *c = pg_begin(op);
        pg_param_f(c, "s", s);
        empo_tensor *a = pg_input(c, "a", sh.nd, sh.s, l, d), *y = NULL;
        int st = fn(&y, a, s);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void clamp_case(double lo, double hi) {
    for (int i = 0; i < N_UNARY_SHAPES; i++) {
        pg_shape sh;
        pg_layout l;
        unary_shape(i, &sh, &l);
        pg_case *c = pg_begin("clamp");
        pg_param_f(c, "lo", lo);
        pg_param_f(c, "hi", hi);
        empo_tensor *a = pg_input(c, "a", sh.nd, sh.s, l, pg_unif(-1, 1)), *y = NULL;
        int st = empo_clamp(&y, a, lo, hi);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void scalar_ops(void) {
    scalar_case("add_scalar", empo_add_scalar, 0.75, pg_unif(-1, 1));
    scalar_case("mul_scalar", empo_mul_scalar, -1.25, pg_unif(-1, 1));
    scalar_case("pow_scalar", empo_pow_scalar, 2.5, pg_unif(0.5, 2));
    scalar_case("pow_scalar", empo_pow_scalar, -0.5, pg_unif(0.5, 2));
    scalar_case("pow_scalar", empo_pow_scalar, 2.0, pg_unif(-1, 1));
    scalar_case("pow_scalar", empo_pow_scalar, 3.0, pg_unif(-1, 1));
    scalar_case("rsub_scalar", empo_rsub_scalar, 2.0, pg_unif(-1, 1));
    scalar_case("rdiv_scalar", empo_rdiv_scalar, 1.5, pg_away(0.5, 2));
    clamp_case(-0.5, 0.3);
    clamp_case(0.0, 0.75);
}

static int gelu_exact(empo_tensor **y, empo_tensor *a) { return empo_gelu(y, a, 0); }
static int gelu_tanh(empo_tensor **y, empo_tensor *a) { return empo_gelu(y, a, 1); }

static void unary_ops(void) {
    struct { const char *name; unary_fn fn; pg_dist d; int approximate; } ops[] = {
        {"neg", empo_neg, pg_unif(-2, 2), -1},       {"exp", empo_exp, pg_unif(-2, 2), -1},
        {"log", empo_log, pg_unif(0.2, 3), -1},      {"sqrt", empo_sqrt, pg_unif(0.2, 3), -1},
        {"rsqrt", empo_rsqrt, pg_unif(0.2, 3), -1},  {"tanh", empo_tanh, pg_unif(-3, 3), -1},
        {"sigmoid", empo_sigmoid, pg_unif(-4, 4), -1}, {"silu", empo_silu, pg_unif(-4, 4), -1},
        {"relu", empo_relu, pg_unif(-2, 2), -1},     {"abs", empo_abs, pg_unif(-2, 2), -1},
        {"gelu", gelu_exact, pg_unif(-4, 4), 0},     {"gelu", gelu_tanh, pg_unif(-4, 4), 1},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (int i = 0; i < N_UNARY_SHAPES; i++) {
            pg_shape sh;
            pg_layout l;
            unary_shape(i, &sh, &l);
            pg_case *c = pg_begin(ops[k].name);
            if (ops[k].approximate >= 0) pg_param_i(c, "approximate", ops[k].approximate);
            empo_tensor *a = pg_input(c, "a", sh.nd, sh.s, l, ops[k].d), *y = NULL;
            int st = ops[k].fn(&y, a);
            pg_output(c, y);
            pg_end(c, st);
        }
}

/* the same tensor as both operands: the two gradient terms add up */
static void aliased(void) {
    struct { const char *name; binary_fn fn; pg_dist d; } ops[] = {
        {"add", empo_add, pg_unif(-1, 1)}, {"mul", empo_mul, pg_unif(-1, 1)}, {"pow", empo_pow, pg_unif(0.5, 2)}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        pg_case *c = pg_begin(ops[k].name);
        pg_param_i(c, "b_is_a", 1);
        empo_tensor *a = pg_input(c, "a", 2, (int64_t[]){3, 4}, PG_T, ops[k].d), *y = NULL;
        int st = ops[k].fn(&y, a, a);
        pg_output(c, y);
        pg_end(c, st);
    }
}

void pg_cases_elementwise(void) {
    binary_ops();
    aliased();
    comparisons();
    scalar_ops();
    unary_ops();
}
