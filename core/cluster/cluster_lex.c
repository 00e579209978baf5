/* cluster_lex.c — the math rule's lexer: number literals, names (with or
 * without a backslash), Greek letters and subscripts, commands, the
 * operators and brackets of a normalized answer; and the bracket tables
 * the parser looks ahead with. */
#include <math.h>
#include <string.h>
#include "cluster_parser.h"

/* Names read with or without a backslash. */
const name_rule CL_NAMES[] = {
    {"sin", T_FUNC, CL_SIN}, {"cos", T_FUNC, CL_COS}, {"tan", T_FUNC, CL_TAN}, {"sec", T_FUNC, CL_SEC},
    {"csc", T_FUNC, CL_CSC}, {"cot", T_FUNC, CL_COT}, {"arcsin", T_FUNC, CL_ASIN},
    {"arccos", T_FUNC, CL_ACOS}, {"arctan", T_FUNC, CL_ATAN}, {"sinh", T_FUNC, CL_SINH},
    {"cosh", T_FUNC, CL_COSH}, {"tanh", T_FUNC, CL_TANH}, {"ln", T_FUNC, CL_LN}, {"exp", T_FUNC, CL_EXP},
    {"abs", T_FUNC, CL_ABS}, {"sqrt", T_SQRT, 0}, {"log", T_LOG, 0}, {"pi", T_PI, 0}, {"inf", T_INF, 0},
    {"infty", T_INF, 0}, {"infinity", T_INF, 0},
};
/* Names read only after a backslash. */
static const name_rule COMMANDS[] = {
    {"frac", T_FRAC, 0}, {"binom", T_BINOM, 0}, {"cup", T_CUP, 0}, {"pm", T_PM, 0}, {"mp", T_PM, 0},
    {"in", T_IN, 0}, {"sum", T_SUMCMD, 0},
};
static const char *GREEK[] = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
    "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi",
    "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Upsilon", "Phi",
    "Psi", "Omega",
};

const name_rule *cl_find_name(const name_rule *rules, size_t n_rules, const char *s, int64_t len) {
    for (size_t k = 0; k < n_rules; k++)
        if (cl_name_is(rules[k].name, s, len)) return &rules[k];
    return NULL;
}

static int is_greek(const char *s, int64_t len) {
    for (size_t k = 0; k < sizeof GREEK / sizeof GREEK[0]; k++)
        if (cl_name_is(GREEK[k], s, len)) return 1;
    return 0;
}

/* A decimal number at s[i]: digits [. digits] [e[+-]digits]. Locale-free. */
static int64_t lex_number(const char *s, int64_t n, int64_t i, double *value, int *is_int) {
    uint64_t mant = 0;
    int digits = 0, exp10 = 0, frac = 0;
    *is_int = 1;
    int64_t j = i;
    for (; j < n && (cl_is_digit(s[j]) || (s[j] == '.' && !frac)); j++) {
        if (s[j] == '.') {
            if (j + 1 >= n || !cl_is_digit(s[j + 1])) break;
            frac = 1;
            *is_int = 0;
            continue;
        }
        if (digits < 19) { mant = mant * 10 + (uint64_t)(s[j] - '0'); digits += mant > 0; if (frac) exp10--; }
        else if (!frac) exp10++;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        int64_t k = j + 1;
        int sign = 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) { sign = s[k] == '-' ? -1 : 1; k++; }
        if (k < n && cl_is_digit(s[k])) {
            int e = 0;
            for (; k < n && cl_is_digit(s[k]); k++)
                if (e < 100000) e = e * 10 + (s[k] - '0');
            exp10 += sign * e;
            *is_int = 0;
            j = k;
        }
    }
    double v = (double)mant;
    if (mant == 0) exp10 = 0;
    if (exp10 > 0) v *= pow(10.0, exp10 > 400 ? 400 : exp10);
    else if (exp10 < 0) v /= pow(10.0, exp10 < -400 ? 400 : -exp10);
    *value = v;
    return j;
}

/* A subscript after a variable: _x or _{...}; returns the end. */
static int64_t lex_subscript(const char *s, int64_t n, int64_t j) {
    if (j + 1 >= n || s[j] != '_') return j;
    if (s[j + 1] != '{') return (cl_is_digit(s[j + 1]) || cl_is_alpha(s[j + 1])) ? j + 2 : j;
    int depth = 0;
    for (int64_t k = j + 1; k < n; k++) {
        if (s[k] == '{') depth++;
        else if (s[k] == '}' && --depth == 0) return k + 1;
    }
    return j;
}

static void lex_letters(parser *P, int64_t i) {
    const char *s = P->s;
    tok *t = &P->t;
    int64_t j = i;
    while (j < P->n && cl_is_alpha(s[j])) j++;
    const name_rule *r = cl_find_name(CL_NAMES, sizeof CL_NAMES / sizeof CL_NAMES[0], s + i, j - i);
    if (!r && j - i >= 3) {             /* "sinx": a function name then at most two letters */
        for (int64_t k = j - 1; k >= j - 2 && k > i && !r; k--) {
            r = cl_find_name(CL_NAMES, sizeof CL_NAMES / sizeof CL_NAMES[0], s + i, k - i);
            if (r && r->kind != T_FUNC && r->kind != T_SQRT && r->kind != T_LOG) r = NULL;
            if (r) j = k;
        }
    }
    if (r) { t->kind = r->kind; t->fn = r->fn; t->len = j - i; return; }
    if (j - i >= 3) { t->kind = T_ERR; return; }   /* a word: plain text */
    int64_t end = lex_subscript(s, P->n, i + 1);
    t->kind = (s[i] == 'e' && end == i + 1) ? T_E : T_VAR;
    t->len = end - i;
}

static void lex_command(parser *P, int64_t i) {
    const char *s = P->s;
    tok *t = &P->t;
    int64_t j = i + 1;
    if (j >= P->n) { t->kind = T_ERR; return; }
    if (!cl_is_alpha(s[j])) {
        t->len = 2;
        t->kind = s[j] == '{' ? T_LSET : s[j] == '}' ? T_RSET : s[j] == '|' ? T_BAR : s[j] == '\\' ? T_ROWSEP : T_ERR;
        return;
    }
    while (j < P->n && cl_is_alpha(s[j])) j++;
    static const char mb[] = "\\begin{matrix}", me[] = "\\end{matrix}";
    if (P->n - i >= (int64_t)sizeof mb - 1 && memcmp(s + i, mb, sizeof mb - 1) == 0) {
        t->kind = T_MBEGIN;
        t->len = (int64_t)sizeof mb - 1;
        return;
    }
    if (P->n - i >= (int64_t)sizeof me - 1 && memcmp(s + i, me, sizeof me - 1) == 0) {
        t->kind = T_MEND;
        t->len = (int64_t)sizeof me - 1;
        return;
    }
    const name_rule *r = cl_find_name(CL_NAMES, sizeof CL_NAMES / sizeof CL_NAMES[0], s + i + 1, j - i - 1);
    if (!r) r = cl_find_name(COMMANDS, sizeof COMMANDS / sizeof COMMANDS[0], s + i + 1, j - i - 1);
    if (r) { t->kind = r->kind; t->fn = r->fn; t->len = j - i; return; }
    if (is_greek(s + i + 1, j - i - 1)) {
        t->kind = T_VAR;
        t->len = lex_subscript(s, P->n, j) - i;
        return;
    }
    t->kind = T_ERR;
}

/* Reads the token at P->pos into P->t. */
void cl_lex(parser *P) {
    const char *s = P->s;
    int64_t i = P->pos;
    while (i < P->n && s[i] == ' ') i++;
    tok *t = &P->t;
    t->at = i;
    t->len = 1;
    if (i >= P->n) { t->kind = T_END; t->len = 0; P->pos = i; return; }
    char c = s[i], d = i + 1 < P->n ? s[i + 1] : 0;
    if (cl_is_digit(c) || (c == '.' && cl_is_digit(d))) {
        t->kind = T_NUM;
        t->len = lex_number(s, P->n, i, &t->num, &t->is_int) - i;
    } else if (cl_is_alpha(c)) {
        lex_letters(P, i);
    } else if (c == '\\') {
        lex_command(P, i);
    } else {
        static const char singles[] = "+-*/^!%=<>,|()[]{}_&;:";
        static const int kinds[] = {T_PLUS, T_MINUS, T_STAR, T_SLASH, T_CARET, T_BANG, T_PCT, T_EQ, T_LT,
                                    T_GT, T_COMMA, T_BAR, T_LP, T_RP, T_LB, T_RB, T_LC, T_RC, T_SUB, T_AMP, T_SEMI,
                                    T_COLON};
        const char *f = c ? strchr(singles, c) : NULL;
        t->kind = f ? kinds[f - singles] : T_ERR;
        if (c == '*' && d == '*') { t->kind = T_CARET; t->len = 2; }     /* 2**3 */
        if (d == '=' && (c == '<' || c == '>' || c == '!')) {
            t->kind = c == '<' ? T_LE : c == '>' ? T_GE : T_NE;
            t->len = 2;
        }
    }
    P->pos = i + t->len;
}

void cl_advance(parser *P) { cl_lex(P); }

/* Re-reads from position at (used to split "\frac12" into its digits). */
void cl_relex(parser *P, int64_t at) { P->pos = at; cl_lex(P); }


/* Bracket pairs and the commas at their own level, in one pass. Round and
 * square brackets pair with either (intervals); braces only with braces. */
int cl_match_brackets(parser *P) {
    int32_t stack[EMPO_CLUSTER_MAX_DEPTH];
    int depth = 0;
    const char *s = P->s;
    for (int64_t i = 0; i < P->n; i++) {
        char c = s[i];
        int set = c == '\\' && i + 1 < P->n && (s[i + 1] == '{' || s[i + 1] == '}');
        if (c == '\\' && !set) { i++; continue; }
        char b = set ? s[i + 1] : c;
        if (b == '(' || b == '[' || b == '{') {
            if (depth >= EMPO_CLUSTER_MAX_DEPTH) return 0;
            P->close[i] = -1;
            P->comma[i] = 0;
            stack[depth++] = (int32_t)i;
        } else if (b == ')' || b == ']' || b == '}') {
            if (depth == 0) return 0;
            int32_t o = stack[--depth];
            char ob = s[o] == '\\' ? s[o + 1] : s[o];
            if ((b == '}') != (ob == '{') || (s[o] == '\\') != set) return 0;
            P->close[o] = (int32_t)i;
        } else if (c == ',' && depth > 0) {
            P->comma[stack[depth - 1]] = 1;
        }
        if (set) i++;
    }
    return depth == 0;
}

const size_t CL_N_NAMES = sizeof CL_NAMES / sizeof CL_NAMES[0];
