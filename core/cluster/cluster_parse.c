/* cluster_parse.c — the values of a normalized answer (its top level,
 * solutions and bare lists, is cluster_answer.c's).
 *
 * Recursive descent over the normalized string (cluster_normalize.c), with a
 * hand-written lexer. Grammar, loosest first:
 *
 *   answer   := solution { ';' solution }          cluster_answer.c: a set of solutions
 *   solution := value { ',' value }                bare list: an unordered set (a point when named)
 *   value    := [label ('=' | \in)] ( bracketed { \cup bracketed } | relation )
 *   label    := x | f(x) | (x, y)                  "x = 3" compares as 3
 *   bracketed:= ('(' | '[') value {',' value} (')' | ']')   tuple or interval
 *             | \{ values \} | { value , ... }     set
 *   relation := sum [relop sum [relop sum]]        x > 3 -> (3, inf); a = b; AB = 4 labels 4
 *             | sum ':' sum { ':' sum } [= ratio]  a ratio; names' ratio = numbers' labels them
 *   sum      := term { ('+' | '-' | \pm | \mp) term }
 *   term     := unary { ('*' | '/' | implicit) power }
 *   unary    := ('-' | '+') unary | power
 *   power    := postfix ['^' exponent]             right-associative
 *   postfix  := primary { '!' | '%' }
 *   primary  := number [\frac{p}{q} (mixed)] | variable | \pi | e | \infty
 *             | function arg | \frac a b | \sqrt[n] a | \binom a b | \log_b a
 *             | ( sum ) | [ sum ] | { sum } | '|' sum '|'
 *
 * Anything else (an unknown command, a word of three or more letters, a
 * stray symbol) makes the answer plain text. Nesting deeper than
 * EMPO_CLUSTER_MAX_DEPTH, or a tree deeper than CL_MAX_TREE, does too, so
 * recursion is bounded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cluster_parser.h"

static int fail(parser *P) { if (!P->failed) P->failed = 1; return -1; }

/* ---- nodes ---- */

static int needs_b(int op) {
    return op == CL_ADD || op == CL_SUB || op == CL_MUL || op == CL_DIV || op == CL_POW || op == CL_PM ||
           op == CL_BINOM || op == CL_ROOT || op == CL_LOGB || op == CL_SUM_BOUNDS || op == CL_SUM;
}

static int32_t mk(parser *P, int op, int32_t a, int32_t b, double v) {
    if (P->failed || (a < 0 && op >= CL_ADD) || (b < 0 && needs_b(op))) return fail(P);
    int32_t k = cl_new_node(P->p);
    if (k < 0) { P->failed = 2; return -1; }
    cl_node *nd = &P->p->nodes[k];
    int depth = 0;
    if (a >= 0 && P->p->nodes[a].depth > depth) depth = P->p->nodes[a].depth;
    if (b >= 0 && P->p->nodes[b].depth > depth) depth = P->p->nodes[b].depth;
    if (depth + 1 > CL_MAX_TREE) return fail(P);
    nd->op = (uint8_t)op;
    nd->a = a;
    nd->b = b;
    nd->v = v;
    nd->depth = (uint16_t)(depth + 1);
    return k;
}

static int32_t mk_fn(parser *P, int fn, int32_t a) {
    int32_t k = mk(P, CL_FUNC, a, -1, 0);
    if (k >= 0) P->p->nodes[k].fn = (uint8_t)fn;
    return k;
}

static int enter(parser *P) {
    if (++P->depth > EMPO_CLUSTER_MAX_DEPTH) return fail(P);
    return 0;
}

/* ---- expressions ---- */

static int32_t parse_sum(parser *P);
static int32_t parse_power(parser *P);
static int32_t parse_primary(parser *P);

static int32_t expect(parser *P, int32_t node, int kind) {
    if (node < 0 || P->t.kind != kind) return fail(P);
    cl_advance(P);
    return node;
}

static int32_t parse_group(parser *P, int close_kind) {
    cl_advance(P);
    return expect(P, parse_sum(P), close_kind);
}

/* An argument of \frac, \sqrt, \binom, \log_: a {group}, a (group), one
 * digit of a number (\frac12), or one primary. */
static int32_t parse_cmd_arg(parser *P) {
    if (P->t.kind == T_LC) return parse_group(P, T_RC);
    if (P->t.kind == T_LP) return parse_group(P, T_RP);
    if (P->t.kind == T_NUM && P->t.len > 1 && cl_is_digit(P->s[P->t.at])) {
        int64_t at = P->t.at;
        int32_t k = mk(P, CL_NUM, -1, -1, (double)(P->s[at] - '0'));
        cl_relex(P, at + 1);
        return k;
    }
    return parse_primary(P);
}

static int starts_primary(const parser *P) {
    switch (P->t.kind) {
    case T_NUM: case T_VAR: case T_PI: case T_E: case T_INF: case T_FUNC: case T_SQRT: case T_LOG:
    case T_FRAC: case T_BINOM: case T_LP: case T_LC:
        return 1;
    case T_BAR:
        return P->abs_depth == 0;
    default:
        return 0;
    }
}

/* The argument of sin, ln, ...: (x), {x}, or the product that follows (sin 2x). */
static int32_t parse_fn_arg(parser *P) {
    if (P->t.kind == T_LP) return parse_group(P, T_RP);
    if (P->t.kind == T_LC) return parse_group(P, T_RC);
    int32_t a = parse_power(P);
    while (a >= 0 && starts_primary(P) && P->t.kind != T_FUNC && P->t.kind != T_LOG && P->t.kind != T_LP)
        a = mk(P, CL_MUL, a, parse_power(P), 0);
    return a;
}

static int32_t parse_exponent(parser *P);

/* f^2 x = (f x)^2, then the function's value. */
static int32_t parse_function(parser *P, int fn, int32_t base) {
    int32_t power = -1;
    if (P->t.kind == T_CARET) { cl_advance(P); power = parse_exponent(P); if (power < 0) return -1; }
    int32_t arg = parse_fn_arg(P);
    int32_t v = base >= 0 ? mk(P, CL_LOGB, base, arg, 0) : mk_fn(P, fn, arg);
    return power >= 0 ? mk(P, CL_POW, v, power, 0) : v;
}

/* integer \frac{p}{q} right after an integer: a mixed number */
static int32_t mixed_or_product(parser *P, int32_t whole) {
    int32_t f = parse_primary(P);
    if (f < 0) return -1;
    const cl_node *fr = &P->p->nodes[f];
    if (fr->op == CL_DIV) {
        const cl_node *a = &P->p->nodes[fr->a], *b = &P->p->nodes[fr->b];
        if (a->op == CL_NUM && b->op == CL_NUM && a->v == floor(a->v) && b->v == floor(b->v) && b->v != 0)
            return mk(P, CL_ADD, whole, f, 0);
    }
    return mk(P, CL_MUL, whole, f, 0);
}

static int32_t parse_term(parser *P);

/* \sum_{k=a}^{b} term: a node whose value depends on the bounds and on
 * the summand as a function (k a variable like any other), so two sums
 * agree when their bounds and summands do, whatever the order of the
 * factors; a sum is not evaluated (it never meets its closed form). */
static int32_t parse_sum_command(parser *P) {
    cl_advance(P);
    if (P->t.kind != T_SUB) return fail(P);
    cl_advance(P);
    if (P->t.kind != T_LC) return fail(P);
    cl_advance(P);
    if (P->t.kind != T_VAR) return fail(P);
    int32_t k = parse_primary(P);
    if (k < 0 || P->t.kind != T_EQ) return fail(P);
    cl_advance(P);
    int32_t lo = parse_sum(P);
    if (lo < 0 || P->t.kind != T_RC) return fail(P);
    cl_advance(P);
    if (P->t.kind != T_CARET) return fail(P);
    cl_advance(P);
    int32_t hi = parse_cmd_arg(P);
    int32_t bounds = mk(P, CL_SUM_BOUNDS, mk(P, CL_ADD, lo, k, 0), hi, 0);
    int32_t body = bounds >= 0 ? parse_term(P) : -1;
    return mk(P, CL_SUM, bounds, body, 0);
}

static int32_t parse_primary(parser *P) {
    if (enter(P) < 0) return -1;
    tok t = P->t;
    int32_t r = -1;
    switch (t.kind) {
    case T_NUM:
        cl_advance(P);
        r = mk(P, CL_NUM, -1, -1, t.num);
        if (r >= 0) {                         /* its digits, for the exact value */
            P->p->nodes[r].lit_off = (int32_t)(P->label_base + t.at);
            P->p->nodes[r].lit_len = (int32_t)t.len;
        }
        if (r >= 0 && t.is_int && !P->in_exponent && P->t.kind == T_FRAC && P->t.at == t.at + t.len)
            r = mixed_or_product(P, r);
        break;
    case T_VAR:
        cl_advance(P);
        r = mk(P, CL_VAR, -1, -1, (double)(cl_hash(P->s + t.at, t.len) >> 11));
        if (r >= 0) {                         /* its name, for "3 = x" (a label) */
            P->p->nodes[r].lit_off = (int32_t)(P->label_base + t.at);
            P->p->nodes[r].lit_len = (int32_t)t.len;
        }
        break;
    case T_PI: cl_advance(P); r = mk(P, CL_PI, -1, -1, 0); break;
    case T_E: cl_advance(P); r = mk(P, CL_E, -1, -1, 0); break;
    case T_INF: cl_advance(P); r = mk(P, CL_INF, -1, -1, 0); break;
    case T_FUNC: cl_advance(P); r = parse_function(P, t.fn, -1); break;
    case T_SUMCMD: r = parse_sum_command(P); break;
    case T_LOG: {
        cl_advance(P);
        int32_t base = -1;
        if (P->t.kind == T_SUB) { cl_advance(P); base = parse_cmd_arg(P); if (base < 0) break; }
        r = parse_function(P, CL_LN, base);
        break;
    }
    case T_SQRT: {
        cl_advance(P);
        int32_t degree = -1;
        if (P->t.kind == T_LB) { degree = parse_group(P, T_RB); if (degree < 0) break; }
        int32_t arg = parse_cmd_arg(P);
        r = degree >= 0 ? mk(P, CL_ROOT, degree, arg, 0) : mk_fn(P, CL_SQRT, arg);
        break;
    }
    case T_FRAC: case T_BINOM: {
        cl_advance(P);
        int32_t a = parse_cmd_arg(P);
        int32_t b = a >= 0 ? parse_cmd_arg(P) : -1;
        r = mk(P, t.kind == T_FRAC ? CL_DIV : CL_BINOM, a, b, 0);
        break;
    }
    case T_LP: case T_LB:
        if (P->comma[t.at]) { fail(P); break; }     /* a tuple inside an expression */
        cl_advance(P);
        r = parse_sum(P);
        if (r >= 0 && P->t.kind != T_RP && P->t.kind != T_RB) r = fail(P);
        else if (r >= 0) cl_advance(P);
        break;
    case T_LC:
        if (P->comma[t.at]) { fail(P); break; }
        r = parse_group(P, T_RC);
        break;
    case T_BAR:
        cl_advance(P);
        P->abs_depth++;
        r = parse_sum(P);
        P->abs_depth--;
        r = mk_fn(P, CL_ABS, expect(P, r, T_BAR));
        break;
    default:
        fail(P);
    }
    P->depth--;
    return r;
}

/* r followed by any number of '!' and '%' */
static int32_t postfix_ops(parser *P, int32_t r) {
    while (r >= 0 && (P->t.kind == T_BANG || P->t.kind == T_PCT)) {
        int op = P->t.kind == T_BANG ? CL_FACT : CL_PERCENT;
        cl_advance(P);
        r = mk(P, op, r, -1, 0);
    }
    return r;
}

static int32_t parse_postfix(parser *P) { return postfix_ops(P, parse_primary(P)); }

/* After '^': {group}, a whole number (2^10 = 1024), -x, or one primary. */
static int32_t parse_exponent(parser *P) {
    if (enter(P) < 0) return -1;
    int32_t r;
    P->in_exponent++;
    if (P->t.kind == T_MINUS) { cl_advance(P); r = mk(P, CL_NEG, parse_exponent(P), -1, 0); }
    else if (P->t.kind == T_LC) r = parse_group(P, T_RC);
    else r = parse_postfix(P);
    P->in_exponent--;
    if (r >= 0 && P->t.kind == T_CARET) { cl_advance(P); r = mk(P, CL_POW, r, parse_exponent(P), 0); }
    P->depth--;
    return r;
}

static int32_t parse_power(parser *P) {
    int32_t r = parse_postfix(P);
    if (r >= 0 && P->t.kind == T_CARET) {
        cl_advance(P);
        r = postfix_ops(P, mk(P, CL_POW, r, parse_exponent(P), 0));
    }
    return r;
}

static int32_t parse_unary(parser *P) {
    if (enter(P) < 0) return -1;
    int32_t r;
    if (P->t.kind == T_MINUS) { cl_advance(P); r = mk(P, CL_NEG, parse_unary(P), -1, 0); }
    else if (P->t.kind == T_PLUS) { cl_advance(P); r = parse_unary(P); }
    else r = parse_power(P);
    P->depth--;
    return r;
}

static int32_t parse_term(parser *P) {
    int32_t r = parse_unary(P);
    while (r >= 0) {
        if (P->t.kind == T_STAR || P->t.kind == T_SLASH) {
            int op = P->t.kind == T_STAR ? CL_MUL : CL_DIV;
            cl_advance(P);
            r = mk(P, op, r, parse_unary(P), 0);
        } else if (starts_primary(P)) {
            r = mk(P, CL_MUL, r, parse_power(P), 0);
        } else {
            break;
        }
    }
    return r;
}

static int32_t parse_sum(parser *P) {
    int32_t r;
    if (P->t.kind == T_PM) {           /* \pm 2: the values 2 and -2 */
        cl_advance(P);
        r = mk(P, CL_PM, mk(P, CL_NUM, -1, -1, 0), parse_term(P), 0);
        if (r >= 0) P->p->nodes[r].pm_bit = P->n_pm++;
    } else {
        r = parse_term(P);
    }
    while (r >= 0 && (P->t.kind == T_PLUS || P->t.kind == T_MINUS || P->t.kind == T_PM)) {
        int kind = P->t.kind;
        cl_advance(P);
        int32_t b = parse_term(P);
        if (kind == T_PM) {
            r = mk(P, CL_PM, r, b, 0);
            if (r >= 0) P->p->nodes[r].pm_bit = P->n_pm++;
        } else {
            r = mk(P, kind == T_PLUS ? CL_ADD : CL_SUB, r, b, 0);
        }
    }
    return r;
}

/* ---- values ---- */

int32_t cl_val_new(parser *P, int kind) {
    if (P->failed) return -1;
    int32_t v = cl_new_val(P->p);
    if (v < 0) { P->failed = 2; return -1; }
    cl_val *x = &P->p->vals[v];
    x->kind = (uint8_t)kind;
    x->elem = x->first = x->next = -1;
    return v;
}

static int32_t new_scalar(parser *P, int32_t root, int32_t mask) {
    int32_t v = cl_val_new(P, CL_V_SCALAR);
    int32_t e = v >= 0 ? cl_new_elem(P->p) : -1;
    if (v >= 0 && e < 0) { P->failed = 2; return -1; }
    if (v < 0) return -1;
    P->p->elems[e].root = root;
    P->p->elems[e].mask = mask;
    if (cl_eval_elem(P->p, &P->p->elems[e]) < 0) { P->failed = 2; return -1; }
    P->p->vals[v].elem = e;
    return v;
}

/* Appends child to the list of val v (children kept in order). */
void cl_val_append(parser *P, int32_t v, int32_t child, int32_t *last) {
    cl_val *x = &P->p->vals[v];
    if (*last < 0) x->first = child; else P->p->vals[*last].next = child;
    *last = child;
    x->count++;
}

/* An expression as a value: a scalar, or the set of its \pm choices. */
static int32_t scalar_value(parser *P, int32_t root) {
    if (root < 0) return -1;
    if (P->n_pm == 0) return new_scalar(P, root, 0);
    if (P->n_pm > CL_MAX_PM) return fail(P);
    int32_t set = cl_val_new(P, CL_V_SET), last = -1;
    for (int32_t mask = 0; set >= 0 && mask < (1 << P->n_pm); mask++) {
        int32_t c = new_scalar(P, root, mask);
        if (c < 0) return -1;
        cl_val_append(P, set, c, &last);
    }
    return set;
}

static int32_t inf_scalar(parser *P, int negative) {
    int32_t k = mk(P, CL_INF, -1, -1, 0);
    if (negative) k = mk(P, CL_NEG, k, -1, 0);
    return k < 0 ? -1 : new_scalar(P, k, 0);
}

static int32_t interval(parser *P, int32_t lo, char open, int32_t hi, char close) {
    int32_t v = cl_val_new(P, CL_V_TUPLE), last = -1;
    if (v < 0 || lo < 0 || hi < 0) return fail(P);
    P->p->vals[v].open = open;
    P->p->vals[v].close = close;
    cl_val_append(P, v, lo, &last);
    cl_val_append(P, v, hi, &last);
    return v;
}

/* lo <= |x| <= hi with 0 <= lo: the x of both signs, [-hi, -lo] U [lo, hi]
 * (lo = 0 closed: [-hi, hi]); -1 when the ends are not such constants. */
static int32_t abs_interval(parser *P, int32_t lo, int lo_open, int32_t hi, int hi_open) {
    int32_t lo_v = new_scalar(P, lo, 0), hi_v = new_scalar(P, hi, 0);
    if (lo_v < 0 || hi_v < 0) return -1;
    const cl_elem *l = &P->p->elems[P->p->vals[lo_v].elem], *h = &P->p->elems[P->p->vals[hi_v].elem];
    if (l->has_vars || h->has_vars || !(l->v[0] >= 0) || !(h->v[0] >= l->v[0])) return -1;
    int32_t neg_hi = new_scalar(P, mk(P, CL_NEG, hi, -1, 0), 0);
    if (l->v[0] == 0 && !lo_open) return interval(P, neg_hi, hi_open ? '(' : '[', hi_v, hi_open ? ')' : ']');
    int32_t neg_lo = new_scalar(P, mk(P, CL_NEG, lo, -1, 0), 0);
    int32_t left = interval(P, neg_hi, hi_open ? '(' : '[', neg_lo, lo_open ? ')' : ']');
    int32_t right = interval(P, lo_v, lo_open ? '(' : '[', hi_v, hi_open ? ')' : ']');
    int32_t u = cl_val_new(P, CL_V_UNION), last = -1;
    if (u < 0 || left < 0 || right < 0) return -1;
    cl_val_append(P, u, left, &last);
    cl_val_append(P, u, right, &last);
    return u;
}

static int is_rel(int k) { return k == T_EQ || k == T_NE || k == T_LT || k == T_LE || k == T_GT || k == T_GE; }
static int is_less(int k) { return k == T_LT || k == T_LE; }
static int is_more(int k) { return k == T_GT || k == T_GE; }

static int32_t single_var(const parser *P, int32_t root) {
    return root >= 0 && P->p->nodes[root].op == CL_VAR;
}

/* A scalar of the tree at root named by the variable node var ("3 = x"). */
static int32_t labelled_scalar(parser *P, int32_t root, int32_t var) {
    int32_t v = new_scalar(P, root, 0);
    if (v >= 0) {
        P->p->vals[v].label_off = P->p->nodes[var].lit_off;
        P->p->vals[v].label_len = P->p->nodes[var].lit_len;
    }
    return v;
}

/* The one variable of the tree at i (its hash in *seed): 1, or 0 when it
 * has none or several. */
static int one_variable(const cl_pool *p, int32_t i, double *seed, int *seen) {
    const cl_node *n = &p->nodes[i];
    if (n->op == CL_VAR) {
        if (*seen && *seed != n->v) return 0;
        *seen = 1;
        *seed = n->v;
        return 1;
    }
    return (n->a < 0 || one_variable(p, n->a, seed, seen)) && (n->b < 0 || one_variable(p, n->b, seed, seen));
}

/* lhs < rhs (or <=) in one variable x with lhs - rhs = c x + d, c != 0:
 * the interval of x it describes (-x > -1 is x < 1), or -1 when the
 * inequality is not of that form (then it stays a relation). */
static int32_t linear_interval(parser *P, int32_t lhs, int32_t rhs, int strict) {
    double seed = 0;
    int seen = 0;
    if (!one_variable(P->p, lhs, &seed, &seen) || !one_variable(P->p, rhs, &seed, &seen) || !seen) return -1;
    int32_t d = mk(P, CL_SUB, lhs, rhs, 0);
    if (d < 0) return -1;
    cl_elem f = {.root = d};
    if (cl_eval_elem(P->p, &f) < 0) { P->failed = 2; return -1; }
    double t0 = cl_var_value(seed, 0), t1 = cl_var_value(seed, 1);
    double c = (f.v[1] - f.v[0]) / (t1 - t0), off = f.v[0] - c * t0;
    if (!isfinite(c) || !isfinite(off) || fabs(c) < 1e-12) return -1;
    for (int k = 0; k < CL_POINTS; k++) {
        double want = c * cl_var_value(seed, k) + off;
        if (!(fabs(f.v[k] - want) <= 1e-9 * fmax(fmax(fabs(f.v[k]), fabs(want)), 1.0))) return -1;
    }
    int32_t root = mk(P, CL_NUM, -1, -1, -off / c);
    if (root < 0) return -1;
    P->p->nodes[root].lit_len = -1;            /* computed: compared as an evaluation */
    int32_t end = new_scalar(P, root, 0);
    if (end < 0) return -1;
    P->p->elems[P->p->vals[end].elem].decimal = (uint8_t)f.decimal;
    char closing = strict ? ')' : ']', opening = strict ? '(' : '[';
    if (c > 0) return interval(P, inf_scalar(P, 1), '(', end, closing);      /* x < r */
    return interval(P, end, opening, inf_scalar(P, 0), ')');                 /* x > r */
}

/* sum [relop sum [relop sum]]: x > 3, -x > -1 and 1 < x <= 2 (also
 * 0 < f(x) < 1) become intervals; a = b = c is its last side (unless
 * EMPO_MATH_CHAINS_AS_TEXT); "3 = x" names x; other a = b and a < b stay
 * relations. */
/* "AB", "BC_2", "V_{1}": a name in capitals (a segment, a point, a
 * quantity), read as the label of the value after '=' ("AB = 4, CD = 5"). */
static int capital_name(const char *s, int64_t at, int64_t end) {
    if (at >= end || s[at] < 'A' || s[at] > 'Z') return 0;
    for (int64_t i = at; i < end; i++) {
        char c = s[i];
        if (c == '_' && i + 1 < end && s[i + 1] == '{') {       /* a braced subscript of letters and digits */
            for (i += 2; i < end && s[i] != '}'; i++)
                if (!cl_is_alpha(s[i]) && !cl_is_digit(s[i])) return 0;
            if (i >= end) return 0;
        } else if (c == '_' && i + 1 < end && (cl_is_alpha(s[i + 1]) || cl_is_digit(s[i + 1]))) {
            i++;
        } else if (c < 'A' || c > 'Z') {
            return 0;
        }
    }
    return 1;
}

/* The terms after a first one of a ratio a:b:c, as a tuple marked ':'
 * (compared term by term, in order). */
static int32_t ratio_of(parser *P, int32_t first) {
    int32_t v = cl_val_new(P, CL_V_TUPLE), last = -1;
    if (v < 0) return -1;
    P->p->vals[v].open = P->p->vals[v].close = ':';
    int32_t c = new_scalar(P, first, 0);
    if (c < 0) return -1;
    cl_val_append(P, v, c, &last);
    while (P->t.kind == T_COLON) {
        cl_advance(P);
        if (P->p->vals[v].count >= CL_MAX_ITEMS) return fail(P);
        int32_t t = parse_sum(P);
        if (t < 0 || (c = new_scalar(P, t, 0)) < 0) return -1;
        cl_val_append(P, v, c, &last);
    }
    return v;
}

/* A ratio "a:b" or "V_1:V_2 = 11:21" (the names' ratio labels the numbers'). */
static int32_t parse_ratio(parser *P, int64_t lhs_at, int32_t first) {
    int32_t names = ratio_of(P, first);
    if (names < 0 || P->n_pm) return fail(P);
    if (P->t.kind != T_EQ) return names;
    for (int32_t c = P->p->vals[names].first; c >= 0; c = P->p->vals[c].next)
        if (!cl_tree_has_vars(P->p, P->p->elems[P->p->vals[c].elem].root)) return fail(P);
    int64_t lhs_end = P->t.at;
    cl_advance(P);
    int32_t head = parse_sum(P);
    if (head < 0 || P->t.kind != T_COLON) return fail(P);
    int32_t v = ratio_of(P, head);
    if (v >= 0) {
        P->p->vals[v].label_off = (int32_t)(P->label_base + lhs_at);
        P->p->vals[v].label_len = (int32_t)(lhs_end - lhs_at);
    }
    return v;
}

/* v, marked as the solution set of an inequality (rel = 'i'): a list of
 * them ("0 < t < 1 or t > 2") is their union. */
static int32_t solved(parser *P, int32_t v) {
    if (v >= 0) P->p->vals[v].rel = 'i';
    return v;
}

static int32_t parse_relation(parser *P) {
    int32_t a = -1;
    const int labelled = P->labelled;
    P->labelled = 0;
    P->n_pm = 0;
    const int64_t lhs_at = P->t.at;
    int32_t first = parse_sum(P);
    if (first < 0) return -1;
    if (P->t.kind == T_COLON) return parse_ratio(P, lhs_at, first);
    if (!is_rel(P->t.kind)) return scalar_value(P, first);   /* the common case */
    enum { MAX_CHAIN = 16 };
    int ops[MAX_CHAIN], n_ops = 0, all_eq = 1;
    const int64_t lhs_end = P->t.at;
    int32_t sums[MAX_CHAIN + 1] = {first};
    while (is_rel(P->t.kind) && n_ops < MAX_CHAIN && (n_ops < 2 || all_eq)) {
        ops[n_ops] = P->t.kind;
        all_eq = all_eq && ops[n_ops] == T_EQ;
        n_ops++;
        cl_advance(P);
        sums[n_ops] = parse_sum(P);
        if (sums[n_ops] < 0) return -1;
    }
    if (is_rel(P->t.kind) || P->n_pm) return fail(P);
    if ((n_ops >= 2 || (n_ops == 1 && labelled)) && all_eq) {   /* x = 5+5+1 = 7 = 11: the last side */
        if (P->flags & EMPO_MATH_CHAINS_AS_TEXT) return fail(P);
        return new_scalar(P, sums[n_ops], 0);
    }
    if (n_ops == 2) {                /* lo < x < hi (or hi > x > lo), also lo < f(x) < hi */
        int less = is_less(ops[0]) && is_less(ops[1]), more = is_more(ops[0]) && is_more(ops[1]);
        if (!(less || more) || !cl_tree_has_vars(P->p, sums[1])) return fail(P);
        int lo = less ? 0 : 2, hi = less ? 2 : 0;
        int lo_open = (less ? ops[0] : ops[1]) == (less ? T_LT : T_GT);
        int hi_open = (less ? ops[1] : ops[0]) == (less ? T_LT : T_GT);
        const cl_node *mid = &P->p->nodes[sums[1]];
        if (mid->op == CL_FUNC && mid->fn == CL_ABS && single_var(P, mid->a)) {
            int32_t u = abs_interval(P, sums[lo], lo_open, sums[hi], hi_open);
            if (u >= 0 || P->failed) return solved(P, u);
        }
        return solved(P, interval(P, new_scalar(P, sums[lo], 0), lo_open ? '(' : '[', new_scalar(P, sums[hi], 0),
                        hi_open ? ')' : ']'));
    }
    int op = ops[0];
    int32_t lhs = sums[0], rhs = sums[1];
    if (is_more(op)) { int32_t tmp = lhs; lhs = rhs; rhs = tmp; op = op == T_GT ? T_LT : T_LE; }
    if (op == T_LT || op == T_LE) {
        char end = op == T_LT ? ')' : ']', start = op == T_LT ? '(' : '[';
        if (single_var(P, lhs)) return solved(P, interval(P, inf_scalar(P, 1), '(', new_scalar(P, rhs, 0), end));
        if (single_var(P, rhs)) return solved(P, interval(P, new_scalar(P, lhs, 0), start, inf_scalar(P, 0), ')'));
        int32_t in = linear_interval(P, lhs, rhs, op == T_LT);
        if (in >= 0 || P->failed) return solved(P, in);
    }
    if (op == T_EQ && single_var(P, rhs) && !single_var(P, lhs)) return labelled_scalar(P, lhs, rhs);
    if (op == T_EQ && n_ops == 1 && !(P->flags & EMPO_MATH_KEEP_LHS) && !cl_tree_has_vars(P->p, rhs) &&
        capital_name(P->s, lhs_at, lhs_end)) {
        int32_t v = new_scalar(P, rhs, 0);
        if (v >= 0) {
            P->p->vals[v].label_off = (int32_t)(P->label_base + lhs_at);
            P->p->vals[v].label_len = (int32_t)(lhs_end - lhs_at);
        }
        return v;
    }
    a = cl_val_new(P, CL_V_REL);
    if (a < 0) return -1;
    P->p->vals[a].rel = op == T_EQ ? '=' : op == T_NE ? '!' : op == T_LT ? '<' : 'l';
    int32_t last = -1, l = new_scalar(P, lhs, 0), r = new_scalar(P, rhs, 0);
    if (l < 0 || r < 0) return -1;
    cl_val_append(P, a, l, &last);
    cl_val_append(P, a, r, &last);
    return a;
}


/* ( ... ) [ ... ] \{ ... \} { ... , ... } with their elements. */
static int32_t parse_bracketed(parser *P) {
    if (enter(P) < 0) return -1;
    int open = P->t.kind;
    int32_t v = cl_val_new(P, (open == T_LP || open == T_LB) ? CL_V_TUPLE : CL_V_SET), last = -1;
    cl_advance(P);
    int closes = open == T_LSET ? T_RSET : open == T_LC ? T_RC : -1;
    if (v >= 0 && open == T_LSET && P->t.kind == T_RSET) { cl_advance(P); P->depth--; return v; }   /* \{\} */
    while (v >= 0) {
        if (P->p->vals[v].count >= CL_MAX_ITEMS) { v = fail(P); break; }
        int32_t c = cl_parse_value(P);
        if (c < 0) { v = -1; break; }
        cl_val_append(P, v, c, &last);
        if (P->t.kind == T_COMMA) { cl_advance(P); continue; }
        int k = P->t.kind;
        if (closes >= 0 ? k != closes : (k != T_RP && k != T_RB)) { v = fail(P); break; }
        if (closes < 0) {
            P->p->vals[v].open = open == T_LP ? '(' : '[';
            P->p->vals[v].close = k == T_RP ? ')' : ']';
        }
        cl_advance(P);
        break;
    }
    P->depth--;
    return v;
}

static int starts_bracketed(const parser *P) {
    int k = P->t.kind;
    return k == T_LSET || ((k == T_LP || k == T_LB || k == T_LC) && P->comma[P->t.at]);
}

/* \cup or a lone U between two bracketed values */
static int at_union(const parser *P) {
    if (P->t.kind == T_CUP) return 1;
    return P->t.kind == T_VAR && P->t.len == 1 && P->s[P->t.at] == 'U' && P->pos < P->n &&
           (P->s[P->pos] == '(' || P->s[P->pos] == '[');
}

/* \begin{matrix} a & b \\ c & d \end{matrix}: every row as long as the first
 * (a \\ before \end{matrix} ends the last row, nothing more). */
static int32_t parse_matrix(parser *P) {
    if (enter(P) < 0) return -1;
    int32_t m = cl_val_new(P, CL_V_MATRIX), last = -1;
    int32_t in_row = 0;
    cl_advance(P);
    while (m >= 0) {
        if (P->t.kind == T_MEND && in_row == 0 && P->p->vals[m].count > 0) { cl_advance(P); break; }
        if (P->p->vals[m].count >= CL_MAX_ITEMS) { m = fail(P); break; }
        int32_t c = cl_parse_value(P);
        if (c < 0) { m = -1; break; }
        cl_val_append(P, m, c, &last);
        in_row++;
        if (P->t.kind == T_AMP) { cl_advance(P); continue; }
        if (P->t.kind != T_ROWSEP && P->t.kind != T_MEND) { m = fail(P); break; }
        cl_val *x = &P->p->vals[m];
        if (x->cols == 0) x->cols = in_row;
        else if (in_row != x->cols) { m = fail(P); break; }   /* ragged rows */
        in_row = 0;
        if (P->t.kind == T_ROWSEP) cl_advance(P);
    }
    P->depth--;
    return m;
}

/* "x =", "x \in", "f(x) =", "(x, y) =" at the current token: skips it and
 * returns 1 with the label's span. */
static int take_label(parser *P, int64_t *at, int64_t *len) {
    int64_t start = P->t.at, save = P->pos;
    tok t0 = P->t;
    if (P->t.kind == T_VAR || P->t.kind == T_E) {     /* e = 5 names a variable e */
        cl_advance(P);
        if (P->t.kind == T_LP && P->close[P->t.at] > 0) cl_relex(P, P->close[P->t.at] + 1);
    } else if (P->t.kind == T_LP && P->comma[P->t.at]) {
        int64_t end = P->close[P->t.at];
        cl_advance(P);
        while (P->t.kind == T_VAR || P->t.kind == T_COMMA) cl_advance(P);
        if (P->t.at != end) goto no;
        cl_advance(P);
    } else {
        return 0;
    }
    if ((P->t.kind == T_EQ || P->t.kind == T_IN) && P->pos < P->n) {
        *at = start;
        *len = P->t.at - start;
        cl_advance(P);
        return 1;
    }
no:
    P->t = t0;
    P->pos = save;
    return 0;
}

int32_t cl_parse_value(parser *P) {
    if (enter(P) < 0) return -1;
    int64_t label_at = 0, label_len = 0;
    int32_t v;
    if (take_label(P, &label_at, &label_len)) {
        P->labelled = 1;
        v = cl_parse_value(P);
        P->labelled = 0;
    } else if (P->t.kind == T_MBEGIN) {
        v = parse_matrix(P);
    } else if (starts_bracketed(P)) {
        v = parse_bracketed(P);
        if (v >= 0 && at_union(P)) {
            int32_t u = cl_val_new(P, CL_V_UNION), last = -1;
            if (u >= 0) cl_val_append(P, u, v, &last);
            while (u >= 0 && at_union(P)) {
                cl_advance(P);
                if (!starts_bracketed(P)) { u = fail(P); break; }
                int32_t c = parse_bracketed(P);
                if (c < 0 || P->p->vals[u].count >= CL_MAX_ITEMS) { u = fail(P); break; }
                cl_val_append(P, u, c, &last);
            }
            v = u;
        }
    } else {
        v = parse_relation(P);
    }
    if (v >= 0 && label_len > 0) {
        P->p->vals[v].label_off = (int32_t)(P->label_base + label_at);
        P->p->vals[v].label_len = (int32_t)label_len;
    }
    P->depth--;
    return v;
}
