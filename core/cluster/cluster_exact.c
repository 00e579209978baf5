/* cluster_exact.c — exact values of constant expressions: integers of any
 * length and rationals, so that answers that are exact compare exactly
 * (1234567 != 1234568, two 20-digit integers one apart differ, 355/113 is
 * not pi).
 *
 * An integer is a sign and a magnitude of 32-bit limbs (little-endian) in
 * the pool's limb arena, addressed by offset like everything else of a
 * group. A rational is num / den with den > 0, never reduced: two are
 * compared by cross products (a/b = c/d iff a*d = c*b), so no division is
 * needed. What is exact: number literals (digits, a decimal point, an
 * exponent), + - * /, integer powers, n!, binom(n, k) of integers, |x|, and
 * the sign choices of \pm. Anything else (pi, e, roots, functions,
 * variables) makes the scalar inexact: it compares by its double values.
 * Sizes are capped (CL_MAX_LIMBS per integer); a value past the cap is
 * inexact, never an error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cluster_internal.h"

enum { CL_MAX_LIMBS = 2048,     /* 65,536 bits: any literal an answer can hold, and its products */
       CL_MAX_POW = 100000,      /* |exponent| of an exact power */
       CL_MAX_FACT = 2000,       /* n! and binom(n, k) computed exactly up to this n */
       CL_EXACT_BUDGET = 16384 };   /* limbs one scalar may use: bounds the work of a hostile answer */

/* Room for n more limbs; returns the offset of the first, or -1 (out of memory). */
static int64_t alloc_limbs(cl_pool *p, int64_t n) {
    if (p->n_limbs + n > p->cap_limbs) {
        int64_t want = p->cap_limbs ? 2 * p->cap_limbs : 1024;
        while (want < p->n_limbs + n) want *= 2;
        uint32_t *q = realloc(p->limbs, (size_t)want * sizeof *q);
        if (!q) return -1;
        p->limbs = q;
        p->cap_limbs = want;
    }
    int64_t off = p->n_limbs;
    p->n_limbs += n;
    return off;
}

/* Drops leading zero limbs. */
static cl_big trimmed(const cl_pool *p, cl_big x) {
    while (x.len > 0 && p->limbs[x.off + x.len - 1] == 0) x.len--;
    if (x.len == 0) x.neg = 0;
    return x;
}

static int new_big(cl_pool *p, int32_t len, cl_big *out) {
    int64_t off = len > 0 ? alloc_limbs(p, len) : p->n_limbs;
    if (off < 0) return -1;
    out->off = (int32_t)off;
    out->len = len;
    out->neg = 0;
    if (len > 0) memset(p->limbs + off, 0, sizeof(uint32_t) * (size_t)len);
    return 0;
}

static int small_big(cl_pool *p, uint64_t v, int neg, cl_big *out) {
    if (new_big(p, 2, out) < 0) return -1;
    p->limbs[out->off] = (uint32_t)v;
    p->limbs[out->off + 1] = (uint32_t)(v >> 32);
    out->neg = (int8_t)neg;
    *out = trimmed(p, *out);
    return 0;
}

/* |a| vs |b|: -1, 0, 1 */
static int cmp_mag(const cl_pool *p, cl_big a, cl_big b) {
    if (a.len != b.len) return a.len < b.len ? -1 : 1;
    for (int32_t i = a.len - 1; i >= 0; i--) {
        uint32_t x = p->limbs[a.off + i], y = p->limbs[b.off + i];
        if (x != y) return x < y ? -1 : 1;
    }
    return 0;
}

/* a + b (signs included); 1 ok, 0 too large, -1 out of memory */
static int add_big(cl_pool *p, cl_big a, cl_big b, cl_big *out) {
    int32_t n = (a.len > b.len ? a.len : b.len) + 1;
    if (n > CL_MAX_LIMBS) return 0;
    if (new_big(p, n, out) < 0) return -1;
    const uint32_t *x = p->limbs + a.off, *y = p->limbs + b.off;
    uint32_t *z = p->limbs + out->off;
    if (a.neg == b.neg) {
        uint64_t carry = 0;
        for (int32_t i = 0; i < n; i++) {
            uint64_t s = carry + (i < a.len ? x[i] : 0) + (i < b.len ? y[i] : 0);
            z[i] = (uint32_t)s;
            carry = s >> 32;
        }
        out->neg = a.neg;
    } else {
        if (cmp_mag(p, a, b) < 0) { cl_big t = a; a = b; b = t; x = p->limbs + a.off; y = p->limbs + b.off; }
        int64_t borrow = 0;
        for (int32_t i = 0; i < n; i++) {
            int64_t d = (int64_t)(i < a.len ? x[i] : 0) - (i < b.len ? y[i] : 0) - borrow;
            borrow = d < 0;
            z[i] = (uint32_t)(d + (borrow ? ((int64_t)1 << 32) : 0));
        }
        out->neg = a.neg;
    }
    *out = trimmed(p, *out);
    return 1;
}

/* z[0 .. nx + ny) = x * y (z zeroed beforehand, apart from x and y) */
static void mag_mul(uint32_t *z, const uint32_t *x, int32_t nx, const uint32_t *y, int32_t ny) {
    for (int32_t i = 0; i < nx; i++) {
        uint64_t carry = 0;
        for (int32_t j = 0; j < ny; j++) {
            uint64_t t = (uint64_t)x[i] * y[j] + z[i + j] + carry;
            z[i + j] = (uint32_t)t;
            carry = t >> 32;
        }
        z[i + ny] = (uint32_t)carry;
    }
}

static int mul_big(cl_pool *p, cl_big a, cl_big b, cl_big *out) {
    int32_t n = a.len + b.len;
    if (n > CL_MAX_LIMBS) return 0;
    if (new_big(p, n, out) < 0) return -1;
    mag_mul(p->limbs + out->off, p->limbs + a.off, a.len, p->limbs + b.off, b.len);
    out->neg = (int8_t)(a.neg != b.neg);
    *out = trimmed(p, *out);
    return 1;
}

/* x = x * m + c in place (x has a spare limb) */
static void muladd_small(cl_pool *p, cl_big *x, uint32_t m, uint32_t c) {
    uint64_t carry = c;
    uint32_t *z = p->limbs + x->off;
    for (int32_t i = 0; i < x->len; i++) {
        uint64_t t = (uint64_t)z[i] * m + carry;
        z[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry) z[x->len++] = (uint32_t)carry;
}

/* x / d in place, exact when d divides x (binomials) */
static void div_small(cl_pool *p, cl_big *x, uint32_t d) {
    uint64_t rem = 0;
    uint32_t *z = p->limbs + x->off;
    for (int32_t i = x->len - 1; i >= 0; i--) {
        uint64_t cur = (rem << 32) | z[i];
        z[i] = (uint32_t)(cur / d);
        rem = cur % d;
    }
    *x = trimmed(p, *x);
}

/* ---- rationals ---- */

static int rat_int(cl_pool *p, int64_t v, cl_rat *out) {
    if (small_big(p, (uint64_t)(v < 0 ? -v : v), v < 0, &out->num) < 0) return -1;
    return small_big(p, 1, 0, &out->den) < 0 ? -1 : 1;
}

static int rat_mul(cl_pool *p, cl_rat a, cl_rat b, cl_rat *out) {
    int st = mul_big(p, a.num, b.num, &out->num);
    return st == 1 ? mul_big(p, a.den, b.den, &out->den) : st;
}

static int rat_add(cl_pool *p, cl_rat a, cl_rat b, int negate_b, cl_rat *out) {
    cl_big ad, cb;
    int st = mul_big(p, a.num, b.den, &ad);
    if (st == 1) st = mul_big(p, b.num, a.den, &cb);
    if (st != 1) return st;
    if (negate_b && cb.len > 0) cb.neg = (int8_t)!cb.neg;
    st = add_big(p, ad, cb, &out->num);
    return st == 1 ? mul_big(p, a.den, b.den, &out->den) : st;
}

static int rat_div(cl_pool *p, cl_rat a, cl_rat b, cl_rat *out) {
    if (b.num.len == 0) return 0;                   /* x / 0: left to the doubles (inf, nan) */
    cl_rat inv = {b.den, b.num};
    inv.den.neg = 0;
    inv.num.neg = (int8_t)(b.num.neg != b.den.neg);
    return rat_mul(p, a, inv, out);
}

/* the integer value of a when it is one with |a| < 2^62 */
static int rat_small_int(const cl_pool *p, cl_rat a, int64_t *v) {
    if (a.den.len != 1 || p->limbs[a.den.off] != 1 || a.num.len > 2) return 0;
    uint64_t m = 0;
    for (int32_t i = a.num.len - 1; i >= 0; i--) m = (m << 32) | p->limbs[a.num.off + i];
    if (m >> 62) return 0;
    *v = a.num.neg ? -(int64_t)m : (int64_t)m;
    return 1;
}

/* den may be any nonzero integer after cross products: make it positive */
static cl_rat positive_den(cl_rat a) {
    if (a.den.neg) {
        a.den.neg = 0;
        if (a.num.len > 0) a.num.neg = (int8_t)!a.num.neg;
    }
    return a;
}

static int rat_pow(cl_pool *p, cl_rat base, int64_t n, cl_rat *out) {
    if (n < 0) {
        cl_rat one;
        if (rat_int(p, 1, &one) < 0) return -1;
        int st = rat_div(p, one, base, &base);
        if (st != 1) return st;
        base = positive_den(base);
        n = -n;
    }
    int st = rat_int(p, 1, out);
    while (st == 1 && n > 0) {     /* square and multiply */
        if (n & 1) st = rat_mul(p, *out, base, out);
        n >>= 1;
        if (st == 1 && n > 0) st = rat_mul(p, base, base, &base);
    }
    return st;
}

/* n! for 0 <= n <= CL_MAX_FACT, or binom(n, k) = prod (n-k+i)/i exactly */
static int rat_falling(cl_pool *p, int64_t n, int64_t k, int binom, cl_rat *out) {
    int st = rat_int(p, 1, out);
    if (st != 1) return st;
    cl_big *x = &out->num;
    if (new_big(p, CL_MAX_LIMBS, x) < 0) return -1;      /* room to grow in place */
    p->limbs[x->off] = 1;
    x->len = 1;
    for (int64_t i = 1; i <= k; i++) {
        if (x->len >= CL_MAX_LIMBS - 1) return 0;
        muladd_small(p, x, (uint32_t)(binom ? n - k + i : i), 0);
        if (binom) div_small(p, x, (uint32_t)i);
    }
    return 1;
}

/* digits [. digits] [e [+-] digits] -> mantissa * 10^exp */
static int rat_literal(cl_pool *p, const char *s, int64_t n, cl_rat *out) {
    int64_t digits = 0, exp10 = 0, i = 0;
    for (int64_t j = 0; j < n && (cl_is_digit(s[j]) || s[j] == '.'); j++) digits += cl_is_digit(s[j]);
    if ((digits * 4 + 31) / 32 + 2 > CL_MAX_LIMBS) return 0;
    cl_big m;
    if (new_big(p, (int32_t)((digits * 4 + 31) / 32 + 2), &m) < 0) return -1;
    m.len = 0;
    int frac = 0;
    for (; i < n && (cl_is_digit(s[i]) || s[i] == '.'); i++) {
        if (s[i] == '.') { frac = 1; continue; }
        muladd_small(p, &m, 10, (uint32_t)(s[i] - '0'));
        if (frac) exp10--;
    }
    m = trimmed(p, m);
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int sign = 1;
        int64_t e = 0;
        if (++i < n && (s[i] == '+' || s[i] == '-')) sign = s[i++] == '-' ? -1 : 1;
        for (; i < n && cl_is_digit(s[i]); i++)
            if ((e = e * 10 + (s[i] - '0')) > CL_MAX_POW) return 0;
        exp10 += sign * e;
    }
    cl_rat ten, scale, mant = {m, {0, 0, 0}};
    int st = rat_int(p, 10, &ten);
    if (st == 1) st = small_big(p, 1, 0, &mant.den) < 0 ? -1 : 1;
    if (st == 1) st = rat_pow(p, ten, exp10, &scale);
    return st == 1 ? rat_mul(p, mant, scale, out) : st;
}

/* The exact value of the tree at i under the \pm choices mask. */
static int exact(cl_pool *p, int32_t i, int32_t mask, int64_t limit, cl_rat *out) {
    if (p->n_limbs > limit) return 0;
    const cl_node nd = p->nodes[i];    /* a copy: the arenas grow below */
    cl_rat a, b;
    int st;
    switch (nd.op) {
    case CL_NUM:
        if (nd.lit_len > 0) return rat_literal(p, p->text + nd.lit_off, nd.lit_len, out);
        if (nd.lit_len < 0 || nd.v != floor(nd.v) || fabs(nd.v) > 0x1p53) return 0;
        return rat_int(p, (int64_t)nd.v, out);
    case CL_NEG: case CL_PERCENT: case CL_FACT: case CL_FUNC:
        if ((st = exact(p, nd.a, mask, limit, &a)) != 1) return st;
        if (nd.op == CL_NEG) {
            *out = a;
            if (out->num.len > 0) out->num.neg = (int8_t)!out->num.neg;
            return 1;
        }
        if (nd.op == CL_FUNC) {
            if (nd.fn != CL_ABS) return 0;
            *out = a;
            out->num.neg = 0;
            return 1;
        }
        if (nd.op == CL_PERCENT) {
            cl_rat hundred;
            if (rat_int(p, 100, &hundred) < 0) return -1;
            return rat_div(p, a, hundred, out);
        }
        int64_t n;
        if (!rat_small_int(p, a, &n) || n < 0 || n > CL_MAX_FACT) return 0;
        return rat_falling(p, n, n, 0, out);
    case CL_ADD: case CL_SUB: case CL_MUL: case CL_DIV: case CL_POW: case CL_PM: case CL_BINOM:
        if ((st = exact(p, nd.a, mask, limit, &a)) != 1) return st;
        if ((st = exact(p, nd.b, mask, limit, &b)) != 1) return st;
        break;
    default:
        return 0;                  /* pi, e, inf, variables, roots, logs */
    }
    switch (nd.op) {
    case CL_ADD: return rat_add(p, a, b, 0, out);
    case CL_SUB: return rat_add(p, a, b, 1, out);
    case CL_PM: return rat_add(p, a, b, (mask >> nd.pm_bit) & 1, out);
    case CL_MUL: return rat_mul(p, a, b, out);
    case CL_DIV:
        st = rat_div(p, a, b, out);
        if (st == 1) *out = positive_den(*out);
        return st;
    case CL_POW: {
        int64_t n;
        if (!rat_small_int(p, b, &n) || n > CL_MAX_POW || n < -CL_MAX_POW) return 0;
        if (n < 0 && a.num.len == 0) return 0;
        return rat_pow(p, a, n, out);
    }
    default: {                     /* CL_BINOM */
        int64_t n, k;
        if (!rat_small_int(p, a, &n) || !rat_small_int(p, b, &k) || n < 0 || n > CL_MAX_FACT) return 0;
        if (k < 0 || k > n) return rat_int(p, 0, out);
        return rat_falling(p, n, k < n - k ? k : n - k, 1, out);
    }
    }
}

int cl_exact_value(cl_pool *p, int32_t root, int32_t mask, cl_rat *out) {
    int64_t mark = p->n_limbs;
    int st = exact(p, root, mask, mark + CL_EXACT_BUDGET, out);
    if (st != 1) p->n_limbs = mark;       /* inexact: give the arena back */
    return st;
}

static int32_t mag_len(const uint32_t *z, int32_t n) {
    while (n > 0 && z[n - 1] == 0) n--;
    return n;
}

int cl_rat_equal(const cl_pool *p, const cl_rat *a, const cl_rat *b) {
    if ((a->num.len == 0) != (b->num.len == 0)) return 0;
    if (a->num.len == 0) return 1;
    if (a->num.neg != b->num.neg) return 0;
    /* a.num * b.den = b.num * a.den, the products in scratch of their own
     * (the stack for the usual small values) */
    const int32_t n1 = a->num.len + b->den.len, n2 = b->num.len + a->den.len;
    uint32_t stack[256];
    uint32_t *z = n1 + n2 <= 256 ? stack : malloc(sizeof *z * (size_t)(n1 + n2));
    if (!z) return 0;
    memset(z, 0, sizeof *z * (size_t)(n1 + n2));
    mag_mul(z, p->limbs + a->num.off, a->num.len, p->limbs + b->den.off, b->den.len);
    mag_mul(z + n1, p->limbs + b->num.off, b->num.len, p->limbs + a->den.off, a->den.len);
    int32_t l1 = mag_len(z, n1), l2 = mag_len(z + n1, n2);
    int eq = l1 == l2 && memcmp(z, z + n1, sizeof *z * (size_t)l1) == 0;
    if (z != stack) free(z);
    return eq;
}

int cl_tree_has_decimal(const cl_pool *p, int32_t i) {
    const cl_node *n = &p->nodes[i];
    if (n->op == CL_NUM && n->lit_len > 0) {
        const char *s = p->text + n->lit_off;
        for (int32_t k = 0; k < n->lit_len; k++)
            if (s[k] == '.' || s[k] == 'e' || s[k] == 'E') return 1;
        return 0;
    }
    return (n->a >= 0 && cl_tree_has_decimal(p, n->a)) || (n->b >= 0 && cl_tree_has_decimal(p, n->b));
}
