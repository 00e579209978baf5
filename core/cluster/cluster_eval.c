/* cluster_eval.c — values of expression trees and the comparison of two
 * parsed answers.
 *
 * A scalar is evaluated once, when it is parsed: a constant at one point,
 * an expression with variables at CL_POINTS fixed points. A variable's
 * value at point k depends only on its name and k (a hash), so two answers
 * that use x see the same x without knowing of each other, and comparing
 * a pair is a loop over a few doubles. Points 0-4 give every variable a
 * positive value and points 5-7 a negative one (so |x| differs from x while
 * sqrt(x)^2 still equals x where it is defined). Two scalars are equal when
 * every point where both are defined agrees to the relative tolerance and
 * at least 3 points (1 for constants) are defined. */
#include <math.h>
#include <string.h>
#include "cluster_internal.h"

#define CL_SCALE_FLOOR 1e-6   /* |a - b| <= rtol * max(|a|, |b|, this) */
/* Values that are neither exact nor written as decimals (pi, roots, with
 * variables) differ only by the rounding of their evaluation: they agree
 * to rtol times this (1e-10 by default), far tighter than any rounded
 * answer (355/113 is 8.5e-8 from pi) */
#define CL_TIGHT_SCALE 1e-4
#define CL_TIGHT_FLOOR 1e-3

uint64_t cl_hash(const char *s, int64_t n) {      /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (int64_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A variable's value at point k: magnitude in [0.35, 2.55), sign by k. */
double cl_var_value(double seed, int k) {
    uint64_t u = splitmix64((uint64_t)seed * 0x100000001b3ull + (uint64_t)k);
    double mag = 0.35 + 2.2 * (double)(u >> 11) * 0x1.0p-53;
    return k < 5 ? mag : -mag;
}

static double factorial(double x) {
    if (x < 0 && x == floor(x)) return NAN;
    return tgamma(x + 1);
}

static double binomial(double n, double k) {
    if (n == floor(n) && k == floor(k) && n >= 0) {
        if (k < 0 || k > n) return 0;
        if (k > n - k) k = n - k;
        double r = 1;
        for (double i = 1; i <= k && isfinite(r); i++) r = r * (n - k + i) / i;
        return isfinite(r) ? round(r) : r;
    }
    return tgamma(n + 1) / (tgamma(k + 1) * tgamma(n - k + 1));
}

static double root(double degree, double x) {
    if (x < 0 && degree == floor(degree) && fmod(fabs(degree), 2.0) == 1.0) return -pow(-x, 1.0 / degree);
    return pow(x, 1.0 / degree);
}

static double apply_fn(int fn, double x) {
    switch (fn) {
    case CL_SIN: return sin(x);
    case CL_COS: return cos(x);
    case CL_TAN: return tan(x);
    case CL_SEC: return 1.0 / cos(x);
    case CL_CSC: return 1.0 / sin(x);
    case CL_COT: return 1.0 / tan(x);
    case CL_ASIN: return asin(x);
    case CL_ACOS: return acos(x);
    case CL_ATAN: return atan(x);
    case CL_SINH: return sinh(x);
    case CL_COSH: return cosh(x);
    case CL_TANH: return tanh(x);
    case CL_LN: return log(x);
    case CL_EXP: return exp(x);
    case CL_SQRT: return sqrt(x);
    case CL_ABS: return fabs(x);
    default: return NAN;
    }
}

/* Recursion depth is bounded by the tree depth cap of the parser. */
static double eval(const cl_pool *p, int32_t i, int k, int32_t mask) {
    const cl_node *n = &p->nodes[i];
    switch (n->op) {
    case CL_NUM: return n->v;
    case CL_VAR: return cl_var_value(n->v, k);
    case CL_PI: return M_PI;
    case CL_E: return M_E;
    case CL_INF: return INFINITY;
    default: break;
    }
    double a = eval(p, n->a, k, mask);
    switch (n->op) {
    case CL_NEG: return -a;
    case CL_FUNC: return apply_fn(n->fn, a);
    case CL_FACT: return factorial(a);
    case CL_PERCENT: return a / 100.0;
    default: break;
    }
    double b = eval(p, n->b, k, mask);
    switch (n->op) {
    case CL_ADD: return a + b;
    case CL_SUB: return a - b;
    case CL_MUL: return a * b;
    case CL_DIV: return a / b;
    case CL_POW: return pow(a, b);
    case CL_PM: return (mask >> n->pm_bit) & 1 ? a - b : a + b;
    case CL_BINOM: return binomial(a, b);
    case CL_ROOT: return root(a, b);
    case CL_LOGB: return log(b) / log(a);
    /* a sum's value: a signature of its bounds (lower + the summation
     * variable's value, upper) and its summand; equal sums agree at every point */
    case CL_SUM_BOUNDS: return 2.1 * sin(1.3 * a + 0.7) + 1.7 * cos(0.9 * b + 0.2);
    case CL_SUM: return 1.618 * b + a;
    default: return NAN;
    }
}

int cl_tree_has_vars(const cl_pool *p, int32_t i) {
    const cl_node *n = &p->nodes[i];
    if (n->op == CL_VAR) return 1;
    return (n->a >= 0 && cl_tree_has_vars(p, n->a)) || (n->b >= 0 && cl_tree_has_vars(p, n->b));
}

int cl_eval_elem(cl_pool *p, cl_elem *e) {
    int32_t root = e->root;
    e->has_alt = p->nodes[root].op == CL_PERCENT;     /* x%: both x and x / 100 */
    if (e->has_alt) root = p->nodes[root].a;
    e->has_vars = (uint8_t)cl_tree_has_vars(p, root);
    e->decimal = (uint8_t)cl_tree_has_decimal(p, root);
    int points = e->has_vars ? CL_POINTS : 1;
    for (int k = 0; k < points; k++) {
        e->v[k] = eval(p, root, k, e->mask);
        e->alt[k] = e->v[k] / 100.0;
    }
    e->exact = 0;
    if (e->has_vars) return 0;
    int st = cl_exact_value(p, root, e->mask, &e->q);
    if (st == 1 && e->has_alt) st = cl_exact_value(p, e->root, e->mask, &e->q_alt);   /* x% as x / 100 */
    if (st < 0) return -1;
    e->exact = st == 1;
    return 0;
}

/* ---- comparison ---- */

static int close_enough(double a, double b, double rtol, double floor) {
    if (a == b) return 1;
    if (!isfinite(a) || !isfinite(b)) return 0;
    double scale = fmax(fmax(fabs(a), fabs(b)), floor);
    return fabs(a - b) <= rtol * scale;
}

static int values_equal(const double *x, int x_vars, const double *y, int y_vars, double rtol, double floor) {
    if (!x_vars && !y_vars) return close_enough(x[0], y[0], rtol, floor);
    int defined = 0;
    for (int k = 0; k < CL_POINTS; k++) {
        double a = x[x_vars ? k : 0], b = y[y_vars ? k : 0];
        if (isnan(a) || isnan(b)) continue;
        if (!close_enough(a, b, rtol, floor)) return 0;
        defined++;
    }
    return defined >= 3;
}

/* One reading of each scalar (x% as x, or as x / 100): exact values
 * compare exactly; a written decimal allows the tolerance rtol (0.3333333
 * = 1/3); anything else agrees to the rounding of its evaluation. */
static int reading_equal(const cl_pool *p, const cl_elem *a, int a_alt, const cl_elem *b, int b_alt, double rtol) {
    const double *x = a_alt ? a->alt : a->v, *y = b_alt ? b->alt : b->v;
    int decimal = a->decimal || b->decimal;
    if (a->exact && b->exact) {
        if (cl_rat_equal(p, a_alt ? &a->q_alt : &a->q, b_alt ? &b->q_alt : &b->q)) return 1;
        if (!decimal) return 0;
    }
    if (decimal) return values_equal(x, a->has_vars, y, b->has_vars, rtol, CL_SCALE_FLOOR);
    return values_equal(x, a->has_vars, y, b->has_vars, rtol * CL_TIGHT_SCALE, CL_TIGHT_FLOOR);
}

/* x% equals x and x / 100; two percentages compare by their numbers only
 * (30% != 0.3%: no reading of one meets the other's other reading). */
static int elem_equal(const cl_pool *p, const cl_elem *a, const cl_elem *b, double rtol) {
    if (reading_equal(p, a, 0, b, 0, rtol)) return 1;
    if (a->has_alt && b->has_alt) return 0;
    if (a->has_alt && reading_equal(p, a, 1, b, 0, rtol)) return 1;
    return b->has_alt && reading_equal(p, a, 0, b, 1, rtol);
}

static int label_equal(const cl_pool *p, const cl_val *a, const cl_val *b) {
    return a->label_len == b->label_len &&
           memcmp(p->text + a->label_off, p->text + b->label_off, (size_t)a->label_len) == 0;
}

static int all_labelled(const cl_pool *p, const cl_val *v) {
    for (int32_t c = v->first; c >= 0; c = p->vals[c].next)
        if (p->vals[c].label_len == 0) return 0;
    return 1;
}

/* Every element of a has an equal one in b (labels compared when `labels`). */
static int covered(const cl_pool *p, const cl_val *a, const cl_val *b, int labels, double rtol, int depth) {
    for (int32_t x = a->first; x >= 0; x = p->vals[x].next) {
        int found = 0;
        for (int32_t y = b->first; y >= 0 && !found; y = p->vals[y].next)
            found = (!labels || label_equal(p, &p->vals[x], &p->vals[y])) && cl_val_equal(p, x, y, rtol, depth + 1);
        if (!found) return 0;
    }
    return 1;
}

/* f = lhs - rhs of a relation at the points. */
static void relation_values(const cl_pool *p, const cl_val *r, double *f, int *vars, int *decimal) {
    const cl_val *lv = &p->vals[r->first], *rv = &p->vals[lv->next];
    const cl_elem *l = &p->elems[lv->elem], *rr = &p->elems[rv->elem];
    *vars = l->has_vars || rr->has_vars;
    *decimal = l->decimal || rr->decimal;
    for (int k = 0; k < CL_POINTS; k++) f[k] = l->v[l->has_vars ? k : 0] - rr->v[rr->has_vars ? k : 0];
}

/* Relations with variables are the same when lhs - rhs of one is a
 * nonzero multiple c of the other's (a positive one for inequalities, whose
 * direction it keeps): 2x + 4 = 0 is x = -2 - 0, and -x > -1 is x < 1. */
static int proportional(const cl_pool *p, const cl_val *a, const cl_val *b, int positive, double rtol) {
    double fa[CL_POINTS], fb[CL_POINTS];
    int va, vb, da, db;
    relation_values(p, a, fa, &va, &da);
    relation_values(p, b, fb, &vb, &db);
    if (!va || !vb) return 0;
    int best = -1;
    for (int k = 0; k < CL_POINTS; k++)
        if (isfinite(fa[k]) && isfinite(fb[k]) && (best < 0 || fabs(fb[k]) > fabs(fb[best]))) best = k;
    if (best < 0 || fb[best] == 0) return 0;
    double c = fa[best] / fb[best];
    if (!isfinite(c) || c == 0 || (positive && c < 0)) return 0;
    double tol = da || db ? rtol : rtol * CL_TIGHT_SCALE, floor = da || db ? CL_SCALE_FLOOR : CL_TIGHT_FLOOR;
    int defined = 0;
    for (int k = 0; k < CL_POINTS; k++) {
        if (isnan(fa[k]) || isnan(fb[k])) continue;
        if (!close_enough(fa[k], c * fb[k], tol, floor)) return 0;
        defined++;
    }
    return defined >= 3;
}

/* Label of a before label of b (byte order, then length). */
static int label_before(const cl_pool *p, const cl_val *a, const cl_val *b) {
    int32_t n = a->label_len < b->label_len ? a->label_len : b->label_len;
    int c = memcmp(p->text + a->label_off, p->text + b->label_off, (size_t)n);
    return c < 0 || (c == 0 && a->label_len < b->label_len);
}

enum { CL_MAX_POINT = 16 };   /* coordinates of a point compared with a tuple */

/* A point written by its coordinates (x = 2, y = -1: a set marked 'p')
 * against a tuple (2, -1): the coordinates in the order of their names. */
static int point_equal(const cl_pool *p, const cl_val *pt, const cl_val *tu, double rtol, int depth) {
    if (tu->open != '(' || tu->close != ')' || tu->count != pt->count || pt->count > CL_MAX_POINT) return 0;
    int32_t order[CL_MAX_POINT];
    int n = 0;
    for (int32_t c = pt->first; c >= 0; c = p->vals[c].next) {      /* insertion sort by name */
        int i = n++;
        while (i > 0 && label_before(p, &p->vals[c], &p->vals[order[i - 1]])) { order[i] = order[i - 1]; i--; }
        order[i] = c;
    }
    int i = 0;
    for (int32_t y = tu->first; y >= 0; y = p->vals[y].next)
        if (!cl_val_equal(p, order[i++], y, rtol, depth + 1)) return 0;
    return 1;
}

/* Two ratios of constants with the same number of terms are the same
 * ratio when one is a positive multiple of the other (2:4 = 1:2), to the
 * rounding of an evaluation (a written decimal: to rtol). */
static int ratio_multiple(const cl_pool *p, const cl_val *a, const cl_val *b, double rtol) {
    double c = 0;
    int decimal = 0;
    for (int32_t x = a->first, y = b->first; x >= 0 && y >= 0; x = p->vals[x].next, y = p->vals[y].next) {
        const cl_val *vx = &p->vals[x], *vy = &p->vals[y];
        if (vx->kind != CL_V_SCALAR || vy->kind != CL_V_SCALAR) return 0;
        const cl_elem *ex = &p->elems[vx->elem], *ey = &p->elems[vy->elem];
        if (ex->has_vars || ey->has_vars || ex->has_alt || ey->has_alt) return 0;
        decimal = decimal || ex->decimal || ey->decimal;
        if (c == 0) {
            if (ey->v[0] == 0 || !isfinite(ex->v[0] / ey->v[0])) return 0;
            c = ex->v[0] / ey->v[0];
            if (!(c > 0)) return 0;
        } else if (!close_enough(ex->v[0], c * ey->v[0], decimal ? rtol : rtol * CL_TIGHT_SCALE,
                                 decimal ? CL_SCALE_FLOOR : CL_TIGHT_FLOOR)) {
            return 0;
        }
    }
    return c > 0;
}

/* A list of inequalities' solution sets ("0 < t < 1, t > 2", from "... or
 * ..."): every item an interval so made (rel = 'i'). */
static int solved_list(const cl_pool *p, const cl_val *v) {
    if (v->kind != CL_V_SET || v->count < 2) return 0;
    for (int32_t c = v->first; c >= 0; c = p->vals[c].next)
        if (p->vals[c].kind != CL_V_TUPLE || p->vals[c].rel != 'i') return 0;
    return 1;
}

int cl_val_equal(const cl_pool *p, int32_t ia, int32_t ib, double rtol, int depth) {
    if (depth > EMPO_CLUSTER_MAX_DEPTH) return 0;
    const cl_val *a = &p->vals[ia], *b = &p->vals[ib];
    /* the union of the inequalities' solutions against a written union */
    if ((solved_list(p, a) && b->kind == CL_V_UNION) || (solved_list(p, b) && a->kind == CL_V_UNION))
        return covered(p, a, b, 0, rtol, depth) && covered(p, b, a, 0, rtol, depth);
    if (a->kind == CL_V_SET && a->open == 'p' && b->kind == CL_V_TUPLE) return point_equal(p, a, b, rtol, depth);
    if (b->kind == CL_V_SET && b->open == 'p' && a->kind == CL_V_TUPLE) return point_equal(p, b, a, rtol, depth);
    if (a->kind != b->kind) return 0;
    /* x = 3 is not y = 3 (a bare 3 meets either) */
    if (a->label_len > 0 && b->label_len > 0 && !label_equal(p, a, b)) return 0;
    switch (a->kind) {
    case CL_V_SCALAR:
        return elem_equal(p, &p->elems[a->elem], &p->elems[b->elem], rtol);
    case CL_V_MATRIX:
        if (a->cols != b->cols || a->count != b->count) return 0;      /* same shape, then element by element */
        /* fall through */
    case CL_V_TUPLE: {
        if (a->open != b->open || a->close != b->close || a->count != b->count) return 0;
        int same = 1;
        for (int32_t x = a->first, y = b->first; same && x >= 0 && y >= 0; x = p->vals[x].next, y = p->vals[y].next)
            same = cl_val_equal(p, x, y, rtol, depth + 1);
        return same || (a->open == ':' && ratio_multiple(p, a, b, rtol));
    }
    case CL_V_SET: case CL_V_UNION: {
        int labels = all_labelled(p, a) && all_labelled(p, b);
        return covered(p, a, b, labels, rtol, depth) && covered(p, b, a, labels, rtol, depth);
    }
    case CL_V_REL: {
        if (a->rel != b->rel) return 0;
        int32_t al = a->first, ar = p->vals[al].next, bl = b->first, br = p->vals[bl].next;
        if (cl_val_equal(p, al, bl, rtol, depth + 1) && cl_val_equal(p, ar, br, rtol, depth + 1)) return 1;
        int symmetric = a->rel == '=' || a->rel == '!';
        if (symmetric && cl_val_equal(p, al, br, rtol, depth + 1) && cl_val_equal(p, ar, bl, rtol, depth + 1))
            return 1;
        return proportional(p, a, b, !symmetric, rtol);
    }
    default:
        return 0;
    }
}
