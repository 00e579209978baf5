/* test_cluster_api.c — the cluster C API beyond the case files: argument
 * errors, normalize's buffer contract, union-find groups (ids in order of
 * first appearance, empty answers, transitive chains, rules, rtol), group
 * statistics against written-down values, and hostile input (huge answers
 * and completions, deep nesting, invalid UTF-8, NUL bytes): each must give a
 * clean answer quickly, never a crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "check.h"

static int64_t len_of(const char *s) { return (int64_t)strlen(s); }

static int eqv(const char *a, const char *b, double rtol) {
    int e = -1;
    CHECK_OK(empo_cluster_equivalent(a, len_of(a), b, len_of(b), rtol, &e));
    return e;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ids of a group under rule; returns the number of clusters */
static int32_t group(int rule, int n, const char *const *answers, int32_t *ids) {
    int64_t lens[64];
    for (int i = 0; i < n; i++) lens[i] = len_of(answers[i]);
    int32_t k = -1;
    CHECK_OK(empo_cluster_group(rule, n, answers, lens, 0.0, ids, &k));
    return k;
}

static void check_ids(const int32_t *got, const int32_t *want, int n, int line) {
    int same = 1;
    for (int i = 0; i < n; i++) same &= got[i] == want[i];
    char g[256] = "", w[256] = "";
    for (int i = 0; i < n; i++) {
        snprintf(g + strlen(g), sizeof g - strlen(g), "%d ", got[i]);
        snprintf(w + strlen(w), sizeof w - strlen(w), "%d ", want[i]);
    }
    check_report(__FILE__, line, same, "ids %s, want %s", g, w);
}

static void test_errors(void) {
    int64_t at, len;
    int e;
    int32_t ids[2], k;
    double share[2];
    empo_group_stats st;
    CHECK_FAIL(empo_cluster_extract(NULL, 5, 0, &at, &len, NULL), EMPO_E_ARG, "cluster_extract: bad text");
    CHECK_FAIL(empo_cluster_extract("x", -1, 0, &at, &len, NULL), EMPO_E_ARG, "cluster_extract");
    CHECK_FAIL(empo_cluster_extract("x", 1, 8, &at, &len, NULL), EMPO_E_ARG, "unknown flags 0x8");
    CHECK_FAIL(empo_cluster_extract("x", 1, 0, NULL, &len, NULL), EMPO_E_ARG, "must not be NULL");
    CHECK_FAIL(empo_cluster_extract("x", (int64_t)EMPO_CLUSTER_MAX_TEXT + 1, 0, &at, &len, NULL), EMPO_E_ARG,
               "exceeds the limit");
    CHECK_FAIL(empo_cluster_equivalent(NULL, 3, "1", 1, 0, &e), EMPO_E_ARG, "answer a is NULL");
    CHECK_FAIL(empo_cluster_equivalent("1", 1, "1", -2, 0, &e), EMPO_E_ARG, "answer b has negative length");
    CHECK_FAIL(empo_cluster_equivalent("1", 1, "1", 1, 0, NULL), EMPO_E_ARG, "equal is NULL");
    CHECK_FAIL(empo_cluster_normalize("1", 1, NULL, 4, &len), EMPO_E_ARG, "cluster_normalize");
    const char *two[2] = {"1", "2"};
    int64_t lens[2] = {1, 1};
    CHECK_FAIL(empo_cluster_group(7, 2, two, lens, 0, ids, &k), EMPO_E_ARG, "unknown rule 7");
    CHECK_FAIL(empo_cluster_group(EMPO_RULE_MATH, -1, two, lens, 0, ids, &k), EMPO_E_ARG, "-1 answers");
    CHECK_FAIL(empo_cluster_group(EMPO_RULE_MATH, EMPO_CLUSTER_MAX_GROUP + 1, two, lens, 0, ids, &k), EMPO_E_ARG,
               "answers (0..4096 allowed)");
    CHECK_FAIL(empo_cluster_group(EMPO_RULE_MATH, 2, NULL, lens, 0, ids, &k), EMPO_E_ARG, "must not be NULL");
    int64_t bad_lens[2] = {1, -5};
    CHECK_FAIL(empo_cluster_group(EMPO_RULE_MATH, 2, two, bad_lens, 0, ids, &k), EMPO_E_ARG, "negative length -5");
    int32_t bad_ids[2] = {0, 2};
    CHECK_FAIL(empo_cluster_stats(2, bad_ids, EMPO_EMPTY_SINGLETON, share, &st), EMPO_E_INDEX, "ids[1] = 2");
    CHECK_FAIL(empo_cluster_stats(2, ids, 9, share, &st), EMPO_E_ARG, "unknown empty mode 9");
    CHECK_FAIL(empo_cluster_stats(2, ids, EMPO_EMPTY_DROP, share, NULL), EMPO_E_ARG, "must not be NULL");
    /* an empty group is fine */
    CHECK_OK(empo_cluster_group(EMPO_RULE_MATH, 0, NULL, NULL, 0, NULL, &k));
    CHECK(k == 0);
    CHECK_OK(empo_cluster_stats(0, NULL, EMPO_EMPTY_SINGLETON, NULL, &st));
    CHECK(st.entropy == 0 && st.max_share == 0 && st.n_clusters == 0 && st.n_empty == 0);
}

static void test_normalize_buffer(void) {
    const char *s = "\\left( \\dfrac{1}{2}, 3 \\right]";
    char out[64];
    int64_t m = -1;
    CHECK_OK(empo_cluster_normalize(s, len_of(s), out, sizeof out, &m));
    CHECK(m == 15 && strcmp(out, "(\\frac{1}{2},3]") == 0);
    char small[5];
    CHECK_OK(empo_cluster_normalize(s, len_of(s), small, sizeof small, &m));
    CHECK(m == 15 && strcmp(small, "(\\fr") == 0);    /* truncated, NUL-terminated, full length reported */
    CHECK_OK(empo_cluster_normalize(s, len_of(s), NULL, 0, &m));
    CHECK(m == 15);
    CHECK_OK(empo_cluster_normalize("  ", 2, out, sizeof out, &m));
    CHECK(m == 0 && out[0] == '\0');
    /* over the answer cap: the trimmed bytes themselves */
    size_t n = EMPO_CLUSTER_MAX_ANSWER + 10;
    char *big = malloc(n);
    memset(big, '7', n);
    big[0] = ' ';
    CHECK_OK(empo_cluster_normalize(big, (int64_t)n, out, sizeof out, &m));
    CHECK(m == (int64_t)n - 1);
    free(big);
}

static void test_groups(void) {
    int32_t ids[16];
    const char *g1[] = {"3", "\\frac{1}{2}", "", "0.5", "3.0", "  ", "$1/2$", "x"};
    const int32_t w1[] = {0, 1, -1, 1, 0, -1, 1, 2};
    CHECK(group(EMPO_RULE_MATH, 8, g1, ids) == 3);
    check_ids(ids, w1, 8, __LINE__);
    /* exact: byte-equal after trimming; normalized: equal normalized forms */
    const char *g2[] = {"1/2", " 1/2 ", "0.5", "\\frac{1}{2}", "\\dfrac{1}{2}", "$\\frac12$"};
    const int32_t w_exact[] = {0, 0, 1, 2, 3, 4}, w_norm[] = {0, 0, 1, 2, 2, 3}, w_math[] = {0, 0, 0, 0, 0, 0};
    CHECK(group(EMPO_RULE_EXACT, 6, g2, ids) == 5);
    check_ids(ids, w_exact, 6, __LINE__);
    CHECK(group(EMPO_RULE_NORMALIZED, 6, g2, ids) == 4);
    check_ids(ids, w_norm, 6, __LINE__);
    CHECK(group(EMPO_RULE_MATH, 6, g2, ids) == 1);
    check_ids(ids, w_math, 6, __LINE__);
    /* union-find closes chains: 50 ~ 50% ~ 0.5 although 50 !~ 0.5 */
    CHECK(eqv("50", "0.5", 0) == 0);
    const char *g3[] = {"50", "0.5", "50\\%", "7"};
    const int32_t w3[] = {0, 0, 0, 1};
    CHECK(group(EMPO_RULE_MATH, 4, g3, ids) == 2);
    check_ids(ids, w3, 4, __LINE__);
    /* but never two percentages of different numbers: 30% ~ 0.3 ~ 0.3% would
     * chain 30% to 0.3%, and the second union is refused (in either order) */
    CHECK(eqv("30\\%", "0.3\\%", 0) == 0);
    const char *g7[] = {"30\\%", "0.3", "0.3\\%", "30"}, *g8[] = {"0.3\\%", "0.3", "30\\%", "0.30"};
    const int32_t w7[] = {0, 0, 1, 0}, w8[] = {0, 0, 1, 0};
    CHECK(group(EMPO_RULE_MATH, 4, g7, ids) == 2);
    check_ids(ids, w7, 4, __LINE__);
    CHECK(group(EMPO_RULE_MATH, 4, g8, ids) == 2);
    check_ids(ids, w8, 4, __LINE__);
    /* "$$" normalizes to nothing: an empty answer for the math rule, not for exact */
    const char *g4[] = {"$$", "\\text{}", "$$"};
    const int32_t w4m[] = {-1, -1, -1}, w4e[] = {0, 1, 0};
    CHECK(group(EMPO_RULE_MATH, 3, g4, ids) == 0);
    check_ids(ids, w4m, 3, __LINE__);
    CHECK(group(EMPO_RULE_EXACT, 3, g4, ids) == 2);
    check_ids(ids, w4e, 3, __LINE__);
    /* all distinct, all the same */
    const char *g5[] = {"1", "2", "3", "4"}, *g6[] = {"2", "2.0", "4/2", "\\sqrt{4}"};
    const int32_t w5[] = {0, 1, 2, 3}, w6[] = {0, 0, 0, 0};
    CHECK(group(EMPO_RULE_MATH, 4, g5, ids) == 4);
    check_ids(ids, w5, 4, __LINE__);
    CHECK(group(EMPO_RULE_MATH, 4, g6, ids) == 1);
    check_ids(ids, w6, 4, __LINE__);
}

static void test_rtol_and_identity(void) {
    CHECK(eqv("3.14", "\\pi", 0) == 0);
    CHECK(eqv("3.14", "\\pi", 1e-3) == 1);
    CHECK(eqv("3.14", "\\pi", -1) == 0);          /* <= 0: the default */
    /* rtol is the tolerance of rounded values (written decimals); exact
     * values compare exactly whatever it is */
    CHECK(eqv("100", "101", 0.02) == 0);
    CHECK(eqv("100", "101.0", 0.02) == 1);
    CHECK(eqv("\\frac{355}{113}", "\\pi", 1e-3) == 1);   /* not exact, no decimal: rtol * 1e-4 */
    CHECK(eqv("\\frac{355}{113}", "\\pi", 0) == 0);
    CHECK(eqv("", "", 0) == 1);                   /* the pairwise test: two empty answers are the same */
    CHECK(eqv("", "0", 0) == 0);
    CHECK(eqv("\\frac{0}{0}", "\\frac{0}{0}", 0) == 1);    /* NaN values, same form */
    CHECK(eqv("\\frac{0}{0}", "\\frac{1}{0}-\\frac{1}{0}", 0) == 0);
    CHECK(eqv("\\sqrt{-1}", "\\sqrt{-1}", 0) == 1);
    CHECK(eqv("\\sqrt{-1}", "i", 0) == 0);        /* no complex numbers */
}

static void check_stats(const int32_t *ids, int n, int mode, double want_h, double want_max, int want_k,
                        int want_empty, const double *want_share, int line) {
    double share[16];
    empo_group_stats st;
    CHECK_OK(empo_cluster_stats(n, ids, mode, share, &st));
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(share[i] - want_share[i]));
    check_report(__FILE__, line,
                 fabs(st.entropy - want_h) < 1e-12 && fabs(st.max_share - want_max) < 1e-15 &&
                     st.n_clusters == want_k && st.n_empty == want_empty && worst < 1e-15,
                 "mode %d: H %.17g (want %.17g), max %.17g (want %.17g), k %d (want %d), empty %d (want %d), "
                 "share error %g", mode, st.entropy, want_h, st.max_share, want_max, st.n_clusters, want_k,
                 st.n_empty, want_empty, worst);
}

/* G = 8 answers {a, a, a, b, b, c, none, none}, by hand:
 *   singleton: p = 3/8, 2/8, 1/8 and 1/8 for each empty answer;
 *              H = -(3/8 ln 3/8 + 1/4 ln 1/4 + 3/8 ln 1/8) = 1.4941751382893083
 *   cluster:   the two empties are one cluster of 2/8;
 *              H = -(3/8 ln 3/8 + 2 * 1/4 ln 1/4 + 1/8 ln 1/8) = 1.3208883431493221
 *   drop:      over the 6 answers: 1/2, 1/3, 1/6; H = 1.0114042647073516
 * max_share is the largest non-empty cluster: 3/8, 3/8, 1/2. */
/* every box of a completion, the outermost ones, in order */
static void test_extract_all(void) {
    int64_t at[4], len[4];
    int n = -1, how = -1;
    const char *t = "first \\boxed{1}, then \\boxed{\\boxed{2} + 1}, then \\fbox{ 3 } and \\boxed{4";
    CHECK_OK(empo_cluster_extract_all(t, (int64_t)strlen(t), 0, at, len, 4, &n, &how));
    CHECK(n == 3 && how == EMPO_ANSWER_BOXED);
    CHECK(n == 3 && strncmp(t + at[0], "1", (size_t)len[0]) == 0 && len[0] == 1);
    CHECK(n == 3 && strncmp(t + at[1], "\\boxed{2} + 1", (size_t)len[1]) == 0 && len[1] == 13);
    CHECK(n == 3 && strncmp(t + at[2], "3", (size_t)len[2]) == 0 && len[2] == 1);    /* trimmed */
    /* more boxes than room: the first max - 1 and the last */
    const char *many = "\\boxed{a} \\boxed{b} \\boxed{c} \\boxed{d} \\boxed{e}";
    CHECK_OK(empo_cluster_extract_all(many, (int64_t)strlen(many), 0, at, len, 3, &n, &how));
    CHECK(n == 3 && many[at[0]] == 'a' && many[at[1]] == 'b' && many[at[2]] == 'e');
    /* no box: the fallbacks, one span; nothing: none */
    const char *plain = "so the answer is 42. Done";
    CHECK_OK(empo_cluster_extract_all(plain, (int64_t)strlen(plain), EMPO_EXTRACT_PHRASE, at, len, 4, &n, &how));
    CHECK(n == 1 && how == EMPO_ANSWER_PHRASE && len[0] == 2 && strncmp(plain + at[0], "42", 2) == 0);
    CHECK_OK(empo_cluster_extract_all(plain, (int64_t)strlen(plain), 0, at, len, 4, &n, &how));
    CHECK(n == 0 && how == EMPO_ANSWER_NONE);
    CHECK_FAIL(empo_cluster_extract_all(plain, 5, 0, at, len, 0, &n, &how), EMPO_E_ARG, "max >= 1");
    CHECK_FAIL(empo_cluster_extract_all(NULL, 5, 0, at, len, 4, &n, &how), EMPO_E_ARG, "bad text");
    CHECK_FAIL(empo_cluster_extract_all(plain, 5, 16, at, len, 4, &n, &how), EMPO_E_ARG, "unknown flags");
    /* the math rule's options are checked */
    const char *two[] = {"1", "2"};
    const int64_t lens[] = {1, 1};
    int32_t ids[2], k;
    CHECK_FAIL(empo_cluster_group(EMPO_RULE_EXACT | EMPO_MATH_KEEP_LHS, 2, two, lens, 0, ids, &k), EMPO_E_ARG,
               "need EMPO_RULE_MATH");
    CHECK_FAIL(empo_cluster_group(EMPO_RULE_MATH | 0x4000, 2, two, lens, 0, ids, &k), EMPO_E_ARG,
               "unknown options 0x4000");
    int eq = -1;
    CHECK_OK(empo_cluster_equal(EMPO_RULE_MATH | EMPO_MATH_CHAINS_AS_TEXT, "x=1=2", 5, "2", 1, 0, &eq));
    CHECK(eq == 0);
    CHECK_OK(empo_cluster_equal(EMPO_RULE_MATH, "x=1=2", 5, "2", 1, 0, &eq));
    CHECK(eq == 1);
}

static void test_stats(void) {
    const int32_t ids[8] = {0, 0, 0, 1, 1, 2, -1, -1};
    const double s1[8] = {0.375, 0.375, 0.375, 0.25, 0.25, 0.125, 0.125, 0.125};
    const double s2[8] = {0.375, 0.375, 0.375, 0.25, 0.25, 0.125, 0.25, 0.25};
    const double s3[8] = {0.5, 0.5, 0.5, 1.0 / 3, 1.0 / 3, 1.0 / 6, 0, 0};
    check_stats(ids, 8, EMPO_EMPTY_SINGLETON, 1.4941751382893083, 0.375, 3, 2, s1, __LINE__);
    check_stats(ids, 8, EMPO_EMPTY_CLUSTER, 1.3208883431493221, 0.375, 3, 2, s2, __LINE__);
    check_stats(ids, 8, EMPO_EMPTY_DROP, 1.0114042647073516, 0.5, 3, 2, s3, __LINE__);
    /* all the same: H = 0, max share 1 */
    const int32_t same[4] = {0, 0, 0, 0};
    const double ones[4] = {1, 1, 1, 1}, quarter[4] = {0.25, 0.25, 0.25, 0.25}, zeros[4] = {0, 0, 0, 0};
    for (int mode = 0; mode < 3; mode++) check_stats(same, 4, mode, 0.0, 1.0, 1, 0, ones, __LINE__);
    /* all distinct: H = log 4 = 1.3862943611198906 */
    const int32_t distinct[4] = {0, 1, 2, 3};
    for (int mode = 0; mode < 3; mode++) check_stats(distinct, 4, mode, 1.3862943611198906, 0.25, 4, 0, quarter, __LINE__);
    /* all empty: singletons give log 4; one cluster gives 0; dropped gives nothing */
    const int32_t none[4] = {-1, -1, -1, -1};
    check_stats(none, 4, EMPO_EMPTY_SINGLETON, 1.3862943611198906, 0, 0, 4, quarter, __LINE__);
    check_stats(none, 4, EMPO_EMPTY_CLUSTER, 0.0, 0, 0, 4, ones, __LINE__);
    check_stats(none, 4, EMPO_EMPTY_DROP, 0.0, 0, 0, 4, zeros, __LINE__);
    /* share may be NULL */
    empo_group_stats st;
    CHECK_OK(empo_cluster_stats(8, ids, EMPO_EMPTY_SINGLETON, NULL, &st));
    CHECK_NEAR(st.entropy, 1.4941751382893083, 1e-12);
}

/* Runs fn on hostile input and checks it returned quickly. */
static void hostile_pair(const char *what, const char *a, int64_t na, const char *b, int64_t nb, int want) {
    double t0 = seconds();
    int e = -1;
    int st = empo_cluster_equivalent(a, na, b, nb, 0, &e);
    double dt = seconds() - t0;
    check_report(__FILE__, __LINE__, st == EMPO_OK && e == want && dt < 2.0,
                 "%s: status %d, equal %d (want %d), %.3f s", what, st, e, want, dt);
}

static char *repeat(const char *piece, int times, const char *tail) {
    size_t pl = strlen(piece), tl = strlen(tail);
    char *s = malloc(pl * (size_t)times + tl + 1);
    for (int i = 0; i < times; i++) memcpy(s + pl * (size_t)i, piece, pl);
    memcpy(s + pl * (size_t)times, tail, tl + 1);
    return s;
}

static void test_hostile(void) {
    /* piece repeated `times`, then tail, against `other` (or the same pieces with other_tail) */
    static const struct { const char *what, *piece; int times; const char *tail, *other, *other_tail; int want; } cases[] = {
        {"5000 open parentheses", "(", 5000, "1", "1", NULL, 0},
        {"5000 open parentheses, same text", "(", 5000, "1", NULL, "1", 1},
        {"5000 open parentheses, other text", "(", 5000, "1", NULL, "2", 0},
        {"300 nested fractions", "\\frac{1}{", 300, "2", "0.5", NULL, 0},
        {"800 \\frac in a row", "\\frac", 800, "12", "1", NULL, 0},
        {"3000 unclosed \\text{", "\\text{", 3000, "5", "5", NULL, 0},
        {"2000 minus signs", "-", 2000, "5", "5", NULL, 0},
        {"a 1500-story power tower", "2^", 1500, "2", "4", NULL, 0},
        {"a sum of 1501 ones (tree deeper than the cap)", "1+", 1500, "1", "1501", NULL, 0},
        {"the same sum twice", "1+", 1500, "1", NULL, "1", 1},
        {"a set of 2001 ones", "1,", 2000, "1", "\\{1\\}", NULL, 0},
        {"40 \\pm signs (over the expansion cap)", "1\\pm", 40, "1", "1", NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *a = repeat(cases[i].piece, cases[i].times, cases[i].tail);
        char *b = cases[i].other ? NULL : repeat(cases[i].piece, cases[i].times, cases[i].other_tail);
        const char *other = b ? b : cases[i].other;
        hostile_pair(cases[i].what, a, len_of(a), other, len_of(other), cases[i].want);
        free(a);
        free(b);
    }
    /* over the answer cap: byte comparison */
    size_t n = EMPO_CLUSTER_MAX_ANSWER + 1;
    char *big = malloc(n), *big2 = malloc(n);
    memset(big, '1', n);
    memcpy(big2, big, n);
    hostile_pair("an answer over the cap, same bytes", big, (int64_t)n, big2, (int64_t)n, 1);
    big2[n - 1] = '2';
    hostile_pair("an answer over the cap, other bytes", big, (int64_t)n, big2, (int64_t)n, 0);
    free(big); free(big2);
    /* invalid UTF-8, NUL bytes, control characters */
    hostile_pair("invalid UTF-8", "\xff\xfe\xc3", 3, "\xff\xfe\xc3", 3, 1);
    hostile_pair("invalid UTF-8 vs a number", "5\xc3", 2, "5", 1, 0);
    hostile_pair("embedded NUL", "1\0002", 3, "1", 1, 0);
    hostile_pair("control bytes", "\x01\x02\x03", 3, "\x01\x02\x03", 3, 1);
    hostile_pair("huge exponent", "10^{99999999}", 13, "10^{99999998}", 13, 1);   /* both infinite */
    hostile_pair("huge number", "1e400", 5, "2e400", 5, 1);
    /* a 16 MB completion of braces and boxes: linear time */
    int64_t tn = EMPO_CLUSTER_MAX_TEXT;
    char *text = malloc((size_t)tn);
    for (int64_t i = 0; i < tn; i++) text[i] = "{\\boxed{x}}"[i % 11];
    int64_t at = -1, len = -1;
    double t0 = seconds();
    CHECK_OK(empo_cluster_extract(text, tn, EMPO_EXTRACT_PHRASE | EMPO_EXTRACT_LAST_NUMBER, &at, &len, NULL));
    double dt = seconds() - t0;
    check_report(__FILE__, __LINE__, at >= 0 && at + len <= tn && dt < 2.0, "16 MB extraction: at %lld len %lld, %.3f s",
                 (long long)at, (long long)len, dt);
    for (int64_t i = 0; i < tn; i++) text[i] = "\\boxed{"[i % 7];    /* 2.4 M unclosed boxes */
    t0 = seconds();
    CHECK_OK(empo_cluster_extract(text, tn, 0, &at, &len, NULL));
    dt = seconds() - t0;
    check_report(__FILE__, __LINE__, len == 0 && dt < 2.0, "unclosed boxes: len %lld, %.3f s", (long long)len, dt);
    free(text);
    /* a full group of the largest allowed size stays fast */
    static const char *forms[] = {"\\frac{1}{2}", "0.5", "x+1", "(1,2]", "\\{1,2\\}", "A", "yes", "3"};
    const char **many = malloc(EMPO_CLUSTER_MAX_GROUP * sizeof *many);
    int64_t *lens = malloc(EMPO_CLUSTER_MAX_GROUP * sizeof *lens);
    int32_t *ids = malloc(EMPO_CLUSTER_MAX_GROUP * sizeof *ids), k = 0;
    for (int i = 0; i < EMPO_CLUSTER_MAX_GROUP; i++) { many[i] = forms[i % 8]; lens[i] = len_of(many[i]); }
    t0 = seconds();
    CHECK_OK(empo_cluster_group(EMPO_RULE_MATH, EMPO_CLUSTER_MAX_GROUP, many, lens, 0, ids, &k));
    dt = seconds() - t0;
    check_report(__FILE__, __LINE__, k == 7 && dt < 5.0, "4096 answers: %d clusters, %.3f s", k, dt);
    free(many); free(lens); free(ids);
}

int main(void) {
    test_errors();
    test_normalize_buffer();
    test_groups();
    test_rtol_and_identity();
    test_extract_all();
    test_stats();
    test_hostile();
    return check_finish("test_cluster_api");
}
