/* cluster_normalize.c — the canonical string of an answer.
 *
 * Two passes over bytes (no locale, no UTF-8 decoding beyond a few fixed
 * sequences, so invalid UTF-8 just passes through):
 *   1. LaTeX: drop $ and \( \) \[ \] delimiters, \left/\right and sizing
 *      commands, spacing (\! \, \; \: \quad ~), degree marks (^\circ, °);
 *      unwrap \text{}, \mathrm{}, \boxed{} and friends (a trailing \text{...}
 *      of unit words after a number is dropped: 5\text{ cm} -> 5);
 *      \dfrac/\tfrac -> \frac, \cdot/\times -> *, \le -> <=, ...;
 *      a few Unicode signs (− × ÷ ≤ ≥ π ∞ √ ²) to their ASCII forms.
 *   2. Words and numbers: " or " / " and " -> ","; trailing unit words
 *      after a number (5 apples, 3 km/h); "2 1/2" -> 2\frac{1}{2} (a mixed
 *      number); thousands separators (1,000,000 and 1 000 when no brackets);
 *      every space except one that ends a command before a letter
 *      (\pi r); a trailing period.
 * It never lowercases: case matters for variables and choice letters; the
 * text comparison lowercases on its own. docs/clustering.md lists every rule. */
#include <string.h>
#include "cluster_internal.h"

typedef struct wbuf { char *p; int64_t n; } wbuf;

static void put(wbuf *w, char c) { w->p[w->n++] = c; }
static void put_str(wbuf *w, const char *s) { while (*s) w->p[w->n++] = *s++; }
static void put_space(wbuf *w) { if (w->n > 0 && w->p[w->n - 1] != ' ') put(w, ' '); }

/* Pass 1 turns one input byte into at most 2 output bytes and pass 2 one
 * byte into at most 2.4 (a mixed number), so 5n is always enough. */
int64_t cl_normalize_cap(int64_t n) { return 5 * n + 64; }

enum { CL_NORMALIZE_ROUNDS = 8 };   /* more than any input seen needs (the random test: 3) */

/* ---- pass 1: LaTeX ---- */

enum { A_DROP, A_REPL, A_WRAP, A_DEGREE, A_LEFTRIGHT };
typedef struct cmd_rule { const char *name; uint8_t action; const char *repl; } cmd_rule;

static const cmd_rule CMDS[] = {
    {"left", A_LEFTRIGHT, 0}, {"right", A_LEFTRIGHT, 0},
    {"big", A_DROP, 0}, {"Big", A_DROP, 0}, {"bigg", A_DROP, 0}, {"Bigg", A_DROP, 0},
    {"bigl", A_DROP, 0}, {"bigr", A_DROP, 0}, {"Bigl", A_DROP, 0}, {"Bigr", A_DROP, 0},
    {"biggl", A_DROP, 0}, {"biggr", A_DROP, 0}, {"displaystyle", A_DROP, 0}, {"textstyle", A_DROP, 0},
    {"scriptstyle", A_DROP, 0}, {"limits", A_DROP, 0}, {"nolimits", A_DROP, 0}, {"mathstrut", A_DROP, 0},
    {"strut", A_DROP, 0}, {"nonumber", A_DROP, 0}, {"dollar", A_DROP, 0},
    {"quad", A_REPL, " "}, {"qquad", A_REPL, " "}, {"space", A_REPL, " "}, {"enspace", A_REPL, " "},
    {"text", A_WRAP, "t"}, {"textbf", A_WRAP, "t"}, {"textit", A_WRAP, "t"}, {"textrm", A_WRAP, "t"},
    {"textnormal", A_WRAP, "t"}, {"textsf", A_WRAP, 0}, {"texttt", A_WRAP, 0}, {"mathrm", A_WRAP, "t"},
    {"mathbf", A_WRAP, 0}, {"mathit", A_WRAP, 0}, {"mathsf", A_WRAP, 0}, {"mathtt", A_WRAP, 0},
    {"mathbb", A_WRAP, 0}, {"mathcal", A_WRAP, 0}, {"mbox", A_WRAP, "t"}, {"hbox", A_WRAP, 0},
    {"operatorname", A_WRAP, 0}, {"boxed", A_WRAP, 0}, {"fbox", A_WRAP, 0}, {"bm", A_WRAP, 0},
    {"boldsymbol", A_WRAP, 0}, {"emph", A_WRAP, 0},
    {"dfrac", A_REPL, "\\frac"}, {"tfrac", A_REPL, "\\frac"}, {"cfrac", A_REPL, "\\frac"},
    {"dbinom", A_REPL, "\\binom"}, {"tbinom", A_REPL, "\\binom"},
    {"cdot", A_REPL, "*"}, {"times", A_REPL, "*"}, {"ast", A_REPL, "*"}, {"div", A_REPL, "/"},
    {"le", A_REPL, "<="}, {"leq", A_REPL, "<="}, {"leqslant", A_REPL, "<="},
    {"ge", A_REPL, ">="}, {"geq", A_REPL, ">="}, {"geqslant", A_REPL, ">="},
    {"lt", A_REPL, "<"}, {"gt", A_REPL, ">"}, {"ne", A_REPL, "!="}, {"neq", A_REPL, "!="},
    {"approx", A_REPL, "="}, {"simeq", A_REPL, "="},
    {"circ", A_DEGREE, 0}, {"degree", A_DEGREE, 0},
    {"emptyset", A_REPL, "\\{\\}"}, {"varnothing", A_REPL, "\\{\\}"},
    {"lbrace", A_REPL, "\\{"}, {"rbrace", A_REPL, "\\}"}, {"lbrack", A_REPL, "["}, {"rbrack", A_REPL, "]"},
    {"langle", A_REPL, "("}, {"rangle", A_REPL, ")"},
    {"lvert", A_REPL, "|"}, {"rvert", A_REPL, "|"}, {"vert", A_REPL, "|"},
    {"infin", A_REPL, "\\infty"},
};

/* Unicode sequences read as ASCII (UTF-8 bytes). */
static const struct { const char *from, *to; } UTF8[] = {
    {"\xc2\xb0", ""},            /* ° */
    {"\xe2\x88\x92", "-"},       /* − minus */
    {"\xc3\x97", "*"},           /* × */
    {"\xc2\xb7", "*"},           /* · */
    {"\xe2\x8b\x85", "*"},       /* ⋅ */
    {"\xc3\xb7", "/"},           /* ÷ */
    {"\xe2\x89\xa4", "<="},      /* ≤ */
    {"\xe2\x89\xa5", ">="},      /* ≥ */
    {"\xe2\x89\xa0", "!="},      /* ≠ */
    {"\xcf\x80", "\\pi "},       /* π */
    {"\xe2\x88\x9e", "\\infty "},/* ∞ */
    {"\xe2\x88\xaa", "\\cup "},  /* ∪ */
    {"\xc2\xb1", "\\pm "},       /* ± */
    {"\xc2\xb2", "^2"},          /* ² */
    {"\xc2\xb3", "^3"},          /* ³ */
    {"\xe2\x82\xac", ""},        /* € */
    {"\xc2\xa3", ""},            /* £ */
    {"\xc2\xa5", ""},            /* ¥ */
    {"\xc2\xa0", " "},           /* no-break space */
    {"\xe2\x80\x89", " "},       /* thin space */
    {"\xe2\x80\xaf", " "},       /* narrow no-break space */
};

/* Index of the '}' matching the '{' at s[open], or -1. */
static int64_t find_close(const char *s, int64_t n, int64_t open) {
    int64_t depth = 0;
    for (int64_t j = open; j < n; j++) {
        if (s[j] == '\\') { j++; continue; }
        if (s[j] == '{') depth++;
        else if (s[j] == '}' && --depth == 0) return j;
    }
    return -1;
}

/* s[a..b) reads as unit words: letters (at least one), spaces, '.', '/',
 * '-', and digits or braces only after '^' (cm^2, m/s, sq. ft). */
static int unit_text(const char *s, int64_t a, int64_t b) {
    int letters = 0, after_caret = 0;
    for (int64_t i = a; i < b; i++) {
        char c = s[i];
        if (cl_is_alpha(c)) { letters++; after_caret = 0; }
        else if (c == '^') after_caret = 1;
        else if ((cl_is_digit(c) || c == '{' || c == '}') && after_caret) continue;
        else if (c == ' ' || c == '.' || c == '/' || c == '-') after_caret = 0;
        else return 0;
    }
    return letters > 0;
}

/* Nothing but closing marks after s[from]: spaces, $, '.', '}', and an
 * exponent of digits (^2, ^{3}). */
static int only_tail(const char *s, int64_t from, int64_t n) {
    int exponent = 0;
    for (int64_t i = from; i < n; i++) {
        char c = s[i];
        if (c == '^') exponent = 1;
        else if (cl_is_digit(c) || c == '{') { if (!exponent) return 0; }
        else if (cl_is_space(c) || c == '$' || c == '.' || c == '}') exponent = 0;
        else return 0;
    }
    return 1;
}

static int numeric_end(const char *s, int64_t n);

/* \text{ cm} after a number, with nothing but closing marks after it. */
static int trailing_unit(const wbuf *w, const char *s, int64_t n, int64_t open, int64_t close) {
    int64_t m = w->n;
    while (m > 0 && w->p[m - 1] == ' ') m--;
    return numeric_end(w->p, m) && unit_text(s, open + 1, close) && only_tail(s, close + 1, n);
}

static const cmd_rule *find_cmd(const char *name, int64_t len) {
    for (size_t k = 0; k < sizeof CMDS / sizeof CMDS[0]; k++)
        if (cl_name_is(CMDS[k].name, name, len)) return &CMDS[k];
    return NULL;
}

/* √ followed by a run of digits/letters: \sqrt{run}; else plain \sqrt. */
static int64_t put_unicode_sqrt(wbuf *w, const char *s, int64_t n, int64_t i) {
    int64_t j = i;
    while (j < n && (cl_is_digit(s[j]) || cl_is_alpha(s[j]) || s[j] == '.')) j++;
    if (j == i) { put_str(w, "\\sqrt"); return i; }
    put_str(w, "\\sqrt{");
    for (int64_t k = i; k < j; k++) put(w, s[k]);
    put(w, '}');
    return j;
}

/* A backslash command at s[i] ('\\'); returns the next input position, or
 * -1 when wrappers nest deeper than the limit. */
/* "{name}" at s[i] (after spaces): the name's span, and the position after it. */
static int64_t env_name(const char *s, int64_t n, int64_t i, int64_t *at, int64_t *len) {
    while (i < n && cl_is_space(s[i])) i++;
    if (i >= n || s[i] != '{') return -1;
    int64_t j = i + 1;
    while (j < n && (cl_is_alpha(s[j]) || s[j] == '*')) j++;
    if (j >= n || s[j] != '}') return -1;
    *at = i + 1;
    *len = j - i - 1;
    return j + 1;
}

static int contains(const char *s, int64_t n, const char *what) {
    int64_t m = (int64_t)strlen(what);
    for (int64_t i = 0; i + m <= n; i++)
        if (memcmp(s + i, what, (size_t)m) == 0) return 1;
    return 0;
}

static int matrix_env(const char *s, int64_t len) {
    static const char *names[] = {"matrix", "pmatrix", "bmatrix", "Bmatrix", "smallmatrix", "array"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (cl_name_is(names[k], s, len)) return 1;
    return 0;
}

/* \begin{pmatrix} .. \end{pmatrix} (any bracket style, and array with its
 * column spec dropped) -> \begin{matrix} .. \end{matrix}, keeping & and \\
 * inside; *matrix counts the open ones. Returns the next input position,
 * or 0 when s[i] is no such environment. */
static int64_t matrix_command(const char *s, int64_t n, int64_t i, int64_t name_end, wbuf *w, int *matrix) {
    int begin = name_end - i == 6 && memcmp(s + i, "\\begin", 6) == 0;
    int end = name_end - i == 4 && memcmp(s + i, "\\end", 4) == 0;
    int64_t at, len;
    int64_t next = (begin || end) ? env_name(s, n, name_end, &at, &len) : -1;
    if (next < 0 || !matrix_env(s + at, len) || (end && *matrix == 0)) return 0;
    if (begin && cl_name_is("array", s + at, len)) {       /* the column spec: {cc}, {c|c} */
        int64_t spec = next;
        while (spec < n && cl_is_space(s[spec])) spec++;
        if (spec < n && s[spec] == '{') {
            int64_t close = find_close(s, n, spec);
            if (close > 0) next = close + 1;
        }
    }
    put_str(w, begin ? "\\begin{matrix}" : "\\end{matrix}");
    *matrix += begin ? 1 : -1;
    return next;
}

static int64_t latex_command(const char *s, int64_t n, int64_t i, wbuf *w, int64_t *drops, int *nd, int *matrix) {
    int64_t j = i + 1;
    if (j >= n) return n;
    if (s[j] == '\\' && *matrix > 0) { put_str(w, "\\\\"); return j + 1; }   /* a matrix row ends */
    if (!cl_is_alpha(s[j])) {          /* \! \, \% \{ ... */
        char c = s[j];
        if (c == '!' && w->n > 0 && w->p[w->n - 1] == ',') {   /* 32,\! 349: a thousands comma */
            for (j++; j < n && cl_is_space(s[j]); j++) {}
            return j;
        }
        if (c == '%') put(w, '%');
        else if (c == ' ' || c == '\\') put_space(w);
        else if (c == '{' || c == '}' || c == '|') { put(w, '\\'); put(w, c); }
        else if (!strchr("!,;:>$&()[]", c)) { put(w, '\\'); put(w, c); }
        return j + 1;
    }
    while (j < n && cl_is_alpha(s[j])) j++;
    int64_t after = matrix_command(s, n, i, j, w, matrix);
    if (after > 0) return after;
    const cmd_rule *r = find_cmd(s + i + 1, j - i - 1);
    if (!r) {                          /* keep it for the parser */
        for (int64_t k = i; k < j; k++) put(w, s[k]);
        if (j < n && cl_is_space(s[j])) put(w, ' ');
        return j;
    }
    switch (r->action) {
    case A_DROP: return j;
    case A_REPL:
        put_str(w, r->repl);
        if (r->repl[0] == '\\' && j < n && cl_is_space(s[j])) put(w, ' ');
        return j;
    case A_DEGREE:
        while (w->n > 0 && w->p[w->n - 1] == ' ') w->n--;
        if (w->n > 0 && w->p[w->n - 1] == '^') w->n--;
        return j;
    case A_LEFTRIGHT:
        return (j < n && s[j] == '.') ? j + 1 : j;
    default: break;
    }
    /* A_WRAP: \text{...} -> its content (or nothing, when it is a trailing unit) */
    int64_t open = j;
    while (open < n && cl_is_space(s[open])) open++;
    if (open >= n || s[open] != '{') return j;    /* \text without a group: drop the name */
    int64_t close = find_close(s, n, open);
    if (close < 0) return open + 1;
    if (r->repl && trailing_unit(w, s, n, open, close)) return n;
    if (*nd >= EMPO_CLUSTER_MAX_DEPTH) return -1;
    drops[(*nd)++] = close;
    if (r->repl) put_space(w);     /* text: keep words apart */
    return open + 1;
}

static int64_t latex_pass(const char *s, int64_t n, char *out) {
    wbuf w = {out, 0};
    int64_t drops[EMPO_CLUSTER_MAX_DEPTH];
    int nd = 0, matrix = 0;
    int64_t i = 0;
    /* 1 & 0 \\ 0 & 1 with no environment: a matrix all the same (but not an
     * aligned x &= 3 \\ y &= 4) */
    int bare = memchr(s, '&', (size_t)n) != NULL && contains(s, n, "\\\\") && !contains(s, n, "\\begin") &&
               !contains(s, n, "&=");
    if (bare) { put_str(&w, "\\begin{matrix}"); matrix = 1; }
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (nd > 0 && i == drops[nd - 1]) { nd--; i++; continue; }
        if (c == '\\') {
            i = latex_command(s, n, i, &w, drops, &nd, &matrix);
            if (i < 0) return -1;
            continue;
        }
        if (c == '&' && matrix > 0) { put(&w, '&'); i++; continue; }   /* a matrix column ends */
        if (c == '$' || c == '&') { i++; continue; }
        if (cl_is_space(c) || c == '~') { put_space(&w); i++; continue; }
        if (c == '{' && i + 2 < n && s[i + 1] == ',' && s[i + 2] == '}') { i += 3; continue; }   /* 1{,}000 */
        if (c >= 0x80) {
            if (i + 2 < n && memcmp(s + i, "\xe2\x88\x9a", 3) == 0) {   /* √ */
                i = put_unicode_sqrt(&w, s, n, i + 3);
                continue;
            }
            size_t k = 0;
            for (; k < sizeof UTF8 / sizeof UTF8[0]; k++) {
                if ((unsigned char)UTF8[k].from[0] != c) continue;
                int64_t len = (int64_t)strlen(UTF8[k].from);
                if (i + len <= n && memcmp(s + i, UTF8[k].from, (size_t)len) == 0) {
                    put_str(&w, UTF8[k].to);
                    i += len;
                    break;
                }
            }
            if (k < sizeof UTF8 / sizeof UTF8[0]) continue;
        }
        put(&w, (char)c);
        i++;
    }
    if (bare) put_str(&w, "\\end{matrix}");
    return w.n;
}

/* ---- pass 2: words and numbers ---- */

static int word_is(const char *s, int64_t n, const char *word) {
    return cl_name_is(word, s, n);
}

/* Names the math rule reads (never unit words). */
static int math_word(const char *s, int64_t n) {
    static const char *names[] = {"pi", "e", "inf", "infty", "sin", "cos", "tan", "sec", "csc", "cot",
                                  "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "ln", "log",
                                  "exp", "sqrt", "abs", "or", "and", "mod", "cup"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (word_is(s, n, names[k])) return 1;
    return 0;
}

/* A trailing unit word: two or more letters (cm, km/h, m^2, sq., apples). */
static int unit_word(const char *s, int64_t n) {
    int letters = 0;
    int64_t alpha_start = -1, alpha_len = 0;
    for (int64_t i = 0; i < n; i++) {
        if (cl_is_alpha(s[i])) {
            if (alpha_start < 0) alpha_start = i;
            if (alpha_start + alpha_len == i) alpha_len++;
            letters++;
        } else if (s[i] == '^') {
            i++;
            if (i < n && s[i] == '{') i++;
            if (i >= n || !cl_is_digit(s[i])) return 0;
            while (i + 1 < n && (cl_is_digit(s[i + 1]) || s[i + 1] == '}')) i++;
        } else if (s[i] != '/' && s[i] != '.' && s[i] != '-') {
            return 0;
        }
    }
    if (letters < 2) return 0;
    return !(alpha_len == letters && math_word(s + alpha_start, alpha_len));
}

static int numeric_end(const char *s, int64_t n) {
    if (n == 0) return 0;
    char c = s[n - 1];
    if (cl_is_digit(c) || c == ')' || c == ']' || c == '}' || c == '%') return 1;
    int64_t j = n;     /* a command such as \pi */
    while (j > 0 && cl_is_alpha(s[j - 1])) j--;
    return j < n && j > 0 && s[j - 1] == '\\';
}

/* " or " / " and " -> ","; then trailing unit words after a number. */
static int64_t words_pass(const char *s, int64_t n, char *out) {
    wbuf w = {out, 0};
    for (int64_t i = 0; i < n; i++) {
        if (s[i] == ' ' && w.n > 0) {
            int64_t k = i + 1;
            while (k < n && cl_is_alpha(s[k])) k++;
            if (k < n && s[k] == ' ' && (word_is(s + i + 1, k - i - 1, "or") || word_is(s + i + 1, k - i - 1, "and"))) {
                put(&w, ',');
                i = k;
                continue;
            }
        }
        put(&w, s[i]);
    }
    int64_t end = w.n;
    while (end > 0 && w.p[end - 1] == ' ') end--;
    int64_t keep = end;
    for (;;) {
        int64_t sp = keep;
        while (sp > 0 && w.p[sp - 1] != ' ') sp--;
        if (sp == 0 || !unit_word(w.p + sp, keep - sp)) break;
        keep = sp - 1;
        while (keep > 0 && w.p[keep - 1] == ' ') keep--;
    }
    if (keep < end && numeric_end(w.p, keep)) return keep;
    return end;
}

static int64_t digit_run(const char *s, int64_t n, int64_t i) {
    int64_t j = i;
    while (j < n && cl_is_digit(s[j])) j++;
    return j - i;
}

static int has_brackets(const char *s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (s[i] == '(' || s[i] == '[' || (s[i] == '\\' && i + 1 < n && s[i + 1] == '{')) return 1;
    return 0;
}

/* 1,000,000 at s[i] (no brackets in the answer): the length of the match, 0 if none. */
static int64_t thousands_at(const char *s, int64_t n, int64_t i) {
    int64_t lead = digit_run(s, n, i);
    if (lead < 1 || lead > 3) return 0;
    int64_t j = i + lead, groups = 0;
    while (j + 3 < n && s[j] == ',' && digit_run(s, n, j + 1) == 3) { j += 4; groups++; }
    if (groups == 0 || (j < n && s[j] == ',')) return 0;
    return j - i;
}

/* Mixed numbers "2 1/2", digit groups "1 000", thousands commas. */
static int64_t numbers_pass(const char *s, int64_t n, char *out) {
    wbuf w = {out, 0};
    int brackets = has_brackets(s, n);
    for (int64_t i = 0; i < n;) {
        int starts_number = cl_is_digit(s[i]) && (i == 0 || !(cl_is_digit(s[i - 1]) || s[i - 1] == '.' ||
                                                             cl_is_alpha(s[i - 1]) || s[i - 1] == '/'));
        if (starts_number) {
            int64_t d1 = digit_run(s, n, i), j = i + d1;
            if (j + 1 < n && s[j] == ' ' && cl_is_digit(s[j + 1])) {
                int64_t d2 = digit_run(s, n, j + 1), k = j + 1 + d2;
                if (k + 1 < n && s[k] == '/' && cl_is_digit(s[k + 1])) {
                    int64_t d3 = digit_run(s, n, k + 1), l = k + 1 + d3;
                    if (l == n || !(cl_is_digit(s[l]) || s[l] == '.')) {
                        for (int64_t q = i; q < j; q++) put(&w, s[q]);
                        put_str(&w, "\\frac{");
                        for (int64_t q = j + 1; q < k; q++) put(&w, s[q]);
                        put_str(&w, "}{");
                        for (int64_t q = k + 1; q < l; q++) put(&w, s[q]);
                        put(&w, '}');
                        i = l;
                        continue;
                    }
                }
            }
            int64_t t = brackets ? 0 : thousands_at(s, n, i);
            if (t > 0) {
                for (int64_t q = i; q < i + t; q++)
                    if (s[q] != ',') put(&w, s[q]);
                i += t;
                continue;
            }
        }
        if (s[i] == ' ' && w.n > 0 && cl_is_digit(w.p[w.n - 1]) && i + 1 < n && cl_is_digit(s[i + 1])) {
            int64_t d = digit_run(s, n, i + 1), l = i + 1 + d, left = w.n;
            while (left > 0 && cl_is_digit(w.p[left - 1])) left--;
            int group = d == 3 && (l == n || s[l] != '/');
            int subscript = left > 0 && w.p[left - 1] == '_';      /* \log_2 8: one digit is the base */
            if (!group && !subscript) put(&w, '*');
            i++;
            continue;
        }
        put(&w, s[i]);
        i++;
    }
    return w.n;
}

/* Does out end with a backslash command (\pi)? */
static int ends_with_command(const wbuf *w) {
    int64_t j = w->n;
    while (j > 0 && cl_is_alpha(w->p[j - 1])) j--;
    return j < w->n && j > 0 && w->p[j - 1] == '\\';
}

/* Drop spaces (but keep "\pi r" apart), "^{}", a trailing '^' and period. */
static int64_t spaces_pass(const char *s, int64_t n, char *out) {
    wbuf w = {out, 0};
    for (int64_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            if (i + 1 < n && cl_is_alpha(s[i + 1]) && ends_with_command(&w)) put(&w, ' ');
            /* "1, 234" is a list: without the space it would read as 1234 */
            else if (w.n > 0 && w.p[w.n - 1] == ',' && digit_run(s, n, i + 1) == 3) put(&w, ' ');
            continue;
        }
        if (s[i] == '}' && w.n >= 2 && w.p[w.n - 1] == '{' && w.p[w.n - 2] == '^') { w.n -= 2; continue; }
        put(&w, s[i]);
    }
    for (;;) {
        while (w.n > 0 && (w.p[w.n - 1] == ' ' || w.p[w.n - 1] == '^')) w.n--;
        if (w.n > 0 && (w.p[w.n - 1] == '.' || w.p[w.n - 1] == ';' || w.p[w.n - 1] == ',') &&
            !(w.n >= 2 && w.p[w.n - 2] == '\\')) {
            w.n--;
            continue;
        }
        break;
    }
    int64_t start = 0;
    while (start < w.n && w.p[start] == ' ') start++;
    if (start > 0) { memmove(w.p, w.p + start, (size_t)(w.n - start)); w.n -= start; }
    return w.n;
}

/* Trailing punctuation before the word pass, so "5 cm." loses both. */
static int64_t trim_tail(char *s, int64_t n) {
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '.' || s[n - 1] == ';' || s[n - 1] == ',') &&
           !(n >= 2 && s[n - 2] == '\\'))
        n--;
    return n;
}

static int64_t one_round(const char *s, int64_t n, char *out, char *scratch) {
    int64_t m = latex_pass(s, n, scratch);
    if (m < 0) return -1;
    m = trim_tail(scratch, m);
    m = words_pass(scratch, m, out);
    m = numbers_pass(out, m, scratch);
    return spaces_pass(scratch, m, out);
}

/* The rounds repeat until the form no longer changes, so that a normalized
 * form normalizes to itself (a rule can expose work for another: a unit
 * word after a command's argument, a separator after a dropped wrapper).
 * A round never grows an already normalized form past its input, so the
 * buffers of the first round serve them all. */
int64_t cl_normalize(const char *s, int64_t n, char *out, char *scratch) {
    int64_t m = one_round(s, n, out, scratch);
    char *input = scratch + cl_normalize_cap(n);      /* the second half of scratch */
    for (int round = 0; m >= 0 && m <= n && round < CL_NORMALIZE_ROUNDS; round++) {
        memcpy(input, out, (size_t)m);
        int64_t next = one_round(input, m, out, scratch);
        if (next == m && memcmp(input, out, (size_t)m) == 0) break;
        m = next;
    }
    return m;
}
