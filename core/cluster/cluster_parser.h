/* cluster_parser.h — what the math rule's lexer (cluster_lex.c) and parser
 * (cluster_parse.c) share: tokens, the parser's state, the name tables.
 * Private to core/cluster/. */
#ifndef EMPO_CLUSTER_PARSER_H
#define EMPO_CLUSTER_PARSER_H
#include "cluster_internal.h"

enum { CL_MAX_TREE = 256 };

typedef enum tok_kind {
    T_END, T_ERR, T_NUM, T_VAR, T_PI, T_E, T_INF, T_FUNC, T_FRAC, T_SQRT, T_BINOM, T_LOG,
    T_PLUS, T_MINUS, T_STAR, T_SLASH, T_CARET, T_BANG, T_PCT, T_EQ, T_LT, T_LE, T_GT, T_GE, T_NE,
    T_COMMA, T_BAR, T_LP, T_RP, T_LB, T_RB, T_LC, T_RC, T_LSET, T_RSET, T_CUP, T_PM, T_IN, T_SUB,
    T_MBEGIN, T_MEND, T_AMP, T_ROWSEP,     /* \begin{matrix} \end{matrix} & \\ (normalized forms) */
    T_SEMI,                                /* ; between the solutions of an answer */
    T_COLON,                               /* : of a ratio */
    T_SUMCMD                               /* \sum */
} tok_kind;

typedef struct tok {
    int kind;
    int64_t at, len;     /* span in the string */
    double num;          /* T_NUM */
    int is_int;          /* T_NUM written with digits only */
    int fn;              /* T_FUNC */
} tok;

typedef struct parser {
    cl_pool *p;
    const char *s;
    int64_t n, pos;      /* lexer position (after t) */
    tok t;               /* current token */
    int depth, failed;   /* failed: 1 not math, 2 out of memory */
    int n_pm, abs_depth;
    int in_exponent;     /* no mixed numbers inside exponents: x^2\frac12 */
    int flags;           /* EMPO_MATH_* of the rule */
    int labelled;        /* the value being parsed follows "x =": one more = makes a chain */
    int64_t label_base;  /* offset of s in p->text */
    int32_t *close;      /* per opening bracket: its closer (or -1) */
    uint8_t *comma;      /* per opening bracket: a comma at its own level */
} parser;

typedef struct name_rule { const char *name; int kind, fn; } name_rule;
/* Names read with or without a backslash (sin, pi, sqrt, ...). */
extern const name_rule CL_NAMES[];
extern const size_t CL_N_NAMES;
const name_rule *cl_find_name(const name_rule *rules, size_t n_rules, const char *s, int64_t len);

/* Reads the token at P->pos into P->t; cl_advance is the same, cl_relex
 * re-reads from position at (to split "\\frac12" into its digits). */
void cl_lex(parser *P);
void cl_advance(parser *P);
void cl_relex(parser *P, int64_t at);
/* Fills P->close and P->comma for every opening bracket; 0 when the
 * brackets do not match (or nest too deeply). */
int cl_match_brackets(parser *P);
/* One value at the current token (cluster_parse.c): a labelled value, a
 * matrix, a bracketed tuple/interval/set (and unions), or a relation. */
int32_t cl_parse_value(parser *P);
/* A new value of kind (-1: out of memory or a failed parse), and child
 * appended to value v's children (last: the previous child, -1 at first). */
int32_t cl_val_new(parser *P, int kind);
void cl_val_append(parser *P, int32_t v, int32_t child, int32_t *last);

#endif
