/* cluster_internal.h — what the cluster_*.c files share (not public).
 *
 * An answer goes through three stages, each in its own files:
 *   cluster_normalize.c  LaTeX/text clean-up into a canonical string (a fixed point)
 *   cluster_lex.c,       the string -> choice letter, plain text, or a
 *   cluster_parse.c      structure of values (scalars, tuples, sets,
 *                        relations, matrices) over expression trees
 *   cluster_eval.c,      expression values at CL_POINTS fixed points, exact
 *   cluster_exact.c      values (big integers, rationals) of constant ones,
 *                        and the comparison of two parsed answers
 * cluster_group.c holds the public entry points (equivalent, union-find
 * clustering, stats); cluster_extract.c finds answers in completions;
 * cluster_pool.c is the arena a group lives in.
 *
 * Everything of a group lives in one cl_pool and is referred to by index,
 * so the pool can grow (realloc) while answers are parsed. */
#ifndef EMPO_CLUSTER_INTERNAL_H
#define EMPO_CLUSTER_INTERNAL_H
#include "base/base_internal.h"
#include "empo/cluster.h"

enum { CL_POINTS = 8 };            /* evaluation points of expressions with variables */
enum { CL_MAX_PM = 3 };            /* at most 2^3 values from \pm signs in one scalar */
enum { CL_MAX_ITEMS = 1024 };      /* elements of one tuple/set */
#define CL_DEFAULT_RTOL 1e-6

/* ---- normalization (cluster_normalize.c) ---- */
/* Output capacity always enough for an input of n bytes. */
int64_t cl_normalize_cap(int64_t n);
/* Writes the normalized form of s[0..n) (n <= EMPO_CLUSTER_MAX_ANSWER) to
 * out (capacity cl_normalize_cap(n), plus scratch of twice that) and
 * returns its length, or -1 when the input is nested too deeply. The form
 * is a fixed point: normalizing it again gives it back. */
int64_t cl_normalize(const char *s, int64_t n, char *out, char *scratch);

/* ---- expression trees ---- */
enum cl_op {
    CL_NUM, CL_VAR, CL_PI, CL_E, CL_INF,            /* leaves */
    CL_ADD, CL_SUB, CL_MUL, CL_DIV, CL_POW,         /* binary */
    CL_NEG, CL_FUNC, CL_FACT, CL_PERCENT,           /* unary */
    CL_PM,                                          /* a +- b, one bit of the sign mask */
    CL_BINOM, CL_ROOT, CL_LOGB,                     /* binom(a, b), a-th root of b, log_a b */
    CL_SUM_BOUNDS, CL_SUM                           /* \sum_{k=a}^{b} t: (bounds a, b) and (bounds, t) */
};
enum cl_fn {
    CL_SIN, CL_COS, CL_TAN, CL_SEC, CL_CSC, CL_COT, CL_ASIN, CL_ACOS, CL_ATAN,
    CL_SINH, CL_COSH, CL_TANH, CL_LN, CL_EXP, CL_SQRT, CL_ABS
};

typedef struct cl_node {
    uint8_t op, fn;
    uint16_t depth;        /* 1 + deepest child */
    int32_t a, b;          /* children (-1 none) */
    int32_t pm_bit;        /* CL_PM: bit of the sign mask */
    int32_t lit_off, lit_len;   /* CL_NUM: its literal in pool->text (len 0: an integer
                                 * written otherwise, e.g. a \frac12 digit; -1: a
                                 * computed value, inexact) */
    double v;              /* CL_NUM value; CL_VAR: the variable's hash as a seed */
} cl_node;

/* ---- exact values (cluster_exact.c) ---- */
/* An integer of any size: its magnitude is limbs[off .. off + len) of the
 * pool (base 2^32, little-endian; len 0 is zero), neg its sign. */
typedef struct cl_big { int32_t off, len; int8_t neg; } cl_big;
/* num / den, den > 0, not reduced (compared by cross products). */
typedef struct cl_rat { cl_big num, den; } cl_rat;

/* A scalar: one expression evaluated at the points. */
typedef struct cl_elem {
    int32_t root;
    int32_t mask;          /* signs chosen for the \pm nodes */
    uint8_t has_vars, has_alt;
    uint8_t exact;         /* q (and q_alt) hold the exact value */
    uint8_t decimal;       /* a finite decimal is written in it (0.5, 1e3): may be rounded */
    double v[CL_POINTS];   /* values (all equal when has_vars == 0) */
    double alt[CL_POINTS]; /* x% read as x / 100 (when has_alt) */
    cl_rat q, q_alt;
} cl_elem;

/* A value: a scalar, an ordered tuple/interval, an unordered set, a
 * relation, or a matrix (its elements row by row). */
enum cl_kind_val { CL_V_SCALAR, CL_V_TUPLE, CL_V_SET, CL_V_UNION, CL_V_REL, CL_V_MATRIX };
typedef struct cl_val {
    uint8_t kind;
    char open, close;      /* CL_V_TUPLE: '(' or '[' and ')' or ']' */
    char rel;              /* CL_V_REL: '=', '<', 'l' (<=), '!' (!=) */
    int32_t elem;          /* CL_V_SCALAR */
    int32_t first, next;   /* children (tuple, set, union, rel: lhs then rhs), sibling */
    int32_t count;
    int32_t cols;          /* CL_V_MATRIX: elements per row (count / cols rows) */
    int32_t label_off, label_len;   /* "x = ..." items: the name x (len 0: none) */
} cl_val;

/* A parsed answer. */
enum cl_kind { CL_EMPTY, CL_RAW, CL_TEXT, CL_CHOICE, CL_MATH };
typedef struct cl_answer {
    const char *raw;       /* trimmed input */
    int64_t raw_len;
    int64_t norm_off, norm_len;   /* normalized form in pool->text */
    int kind;
    char choice;           /* CL_CHOICE: 'A'..'Z' */
    int32_t val;           /* CL_MATH: the root value */
} cl_answer;

typedef struct cl_pool {
    cl_node *nodes; int32_t n_nodes, cap_nodes;
    uint32_t *limbs; int64_t n_limbs, cap_limbs;  /* exact values' integers */
    cl_elem *elems; int32_t n_elems, cap_elems;
    cl_val *vals;   int32_t n_vals, cap_vals;
    char *text;     int64_t n_text, cap_text;     /* normalized forms, back to back */
    char *scratch;  int64_t cap_scratch;
} cl_pool;

void cl_pool_init(cl_pool *p);
void cl_pool_free(cl_pool *p);
/* Index of a fresh zeroed node / elem / val, or -1 when out of memory. */
int32_t cl_new_node(cl_pool *p);
int32_t cl_new_elem(cl_pool *p);
int32_t cl_new_val(cl_pool *p);

/* Trims s and normalizes + parses it into p under rule (EMPO_RULE_*).
 * Returns EMPO_OK or EMPO_E_NOMEM (error set). */
int cl_answer_prepare(cl_pool *p, cl_answer *a, const char *s, int64_t n, int rule);
/* Equivalence of two prepared answers under rule. */
int cl_answer_equal(const cl_pool *p, const cl_answer *a, const cl_answer *b, int rule, double rtol);

/* ---- parse (cluster_parse.c) ---- */
/* Classifies and parses the normalized form s[0..n) of a: sets a->kind
 * (CL_TEXT / CL_CHOICE / CL_MATH), a->choice and a->val. Returns EMPO_OK or
 * EMPO_E_NOMEM; an unparsable form is CL_TEXT, not an error. */
int cl_parse_answer(cl_pool *p, cl_answer *a, const char *s, int64_t n, int flags);
/* A, (a), a), (B) text..., option B (normalized): the choice letter, or 0
 * (cluster_extract.c). */
char cl_choice_letter(const char *s, int64_t n);

/* The exact value of the constant tree at root under the \pm choices mask:
 * 1 (in *out), 0 when it has none (pi, a root, too large), -1 out of memory. */
int cl_exact_value(cl_pool *p, int32_t root, int32_t mask, cl_rat *out);
int cl_rat_equal(const cl_pool *p, const cl_rat *a, const cl_rat *b);
/* A finite decimal (a point or an exponent) is written in the tree. */
int cl_tree_has_decimal(const cl_pool *p, int32_t root);

/* ---- evaluation and comparison (cluster_eval.c) ---- */
/* Fills e->v (and e->alt) from its tree, and its exact value when it has
 * one. Returns 0, or -1 when out of memory. */
int cl_eval_elem(cl_pool *p, cl_elem *e);
/* 64-bit hash of a name, for variable values. */
uint64_t cl_hash(const char *s, int64_t n);
/* The value at point k of the variable whose hash seed is given. */
double cl_var_value(double seed, int k);
/* The tree at root has a variable. */
int cl_tree_has_vars(const cl_pool *p, int32_t root);
int cl_val_equal(const cl_pool *p, int32_t a, int32_t b, double rtol, int depth);

/* ---- small string helpers ---- */
static inline int cl_is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static inline int cl_is_digit(int c) { return c >= '0' && c <= '9'; }
static inline int cl_is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline int cl_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
/* s[0..n) is exactly the NUL-terminated name (no strlen: most names differ at once) */
static inline int cl_name_is(const char *name, const char *s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (name[i] != s[i]) return 0;
    return name[n] == '\0';
}

#endif
