/* cluster_group.c — the public cluster API: normalize, equivalent,
 * union-find clustering of a group, and group statistics (shares,
 * semantic entropy). Extraction is in cluster_extract.c; the stages of the
 * math rule in cluster_normalize.c, cluster_parse.c and cluster_eval.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cluster_internal.h"

static int reserve_bytes(char **buf, int64_t *cap, int64_t need) {
    if (need <= *cap) return 1;
    int64_t want = need > 2 * *cap ? need : 2 * *cap;
    char *q = realloc(*buf, (size_t)want);
    if (!q) return 0;
    *buf = q;
    *cap = want;
    return 1;
}

/* ---- answers ---- */

static void trim(const char **s, int64_t *n) {
    while (*n > 0 && cl_is_space((*s)[0])) { (*s)++; (*n)--; }
    while (*n > 0 && cl_is_space((*s)[*n - 1])) (*n)--;
}

int cl_answer_prepare(cl_pool *p, cl_answer *a, const char *s, int64_t n, int rule) {
    memset(a, 0, sizeof *a);
    trim(&s, &n);
    a->raw = s;
    a->raw_len = n;
    a->val = -1;
    if (n == 0) { a->kind = CL_EMPTY; return EMPO_OK; }
    a->kind = CL_RAW;
    const int base = rule & EMPO_RULE_MASK;
    if (base == EMPO_RULE_EXACT || n > EMPO_CLUSTER_MAX_ANSWER) return EMPO_OK;
    int64_t cap = cl_normalize_cap(n);
    if (!reserve_bytes(&p->text, &p->cap_text, p->n_text + cap) ||
        !reserve_bytes(&p->scratch, &p->cap_scratch, 2 * cap))
        return empo_fail(EMPO_E_NOMEM, "cluster: out of memory normalizing an answer of %lld bytes", (long long)n);
    int64_t m = cl_normalize(s, n, p->text + p->n_text, p->scratch);
    if (m < 0) return EMPO_OK;                 /* nested too deeply: compared byte for byte */
    a->norm_off = p->n_text;
    a->norm_len = m;
    p->n_text += m;
    if (m == 0) { a->kind = CL_EMPTY; return EMPO_OK; }
    a->kind = CL_TEXT;
    if (base != EMPO_RULE_MATH) return EMPO_OK;
    if (!reserve_bytes(&p->scratch, &p->cap_scratch, 5 * m + 8))   /* the parser's bracket tables */
        return empo_fail(EMPO_E_NOMEM, "cluster: out of memory parsing an answer");
    return cl_parse_answer(p, a, p->text + a->norm_off, m, rule & ~EMPO_RULE_MASK);
}

static int text_equal_nocase(const char *a, const char *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (cl_lower((unsigned char)a[i]) != cl_lower((unsigned char)b[i])) return 0;
    return 1;
}

int cl_answer_equal(const cl_pool *p, const cl_answer *a, const cl_answer *b, int rule, double rtol) {
    if (a->kind == CL_EMPTY || b->kind == CL_EMPTY) return a->kind == b->kind;
    if (a->kind == CL_RAW || b->kind == CL_RAW)
        return a->raw_len == b->raw_len && memcmp(a->raw, b->raw, (size_t)a->raw_len) == 0;
    const char *na = p->text + a->norm_off, *nb = p->text + b->norm_off;
    int same_len = a->norm_len == b->norm_len;
    if (same_len && memcmp(na, nb, (size_t)a->norm_len) == 0) return 1;
    if ((rule & EMPO_RULE_MASK) != EMPO_RULE_MATH) return 0;
    if (a->kind == CL_TEXT && b->kind == CL_TEXT) {
        /* words compare as words, and those that also parse as math as math: xy = yx */
        if (same_len && text_equal_nocase(na, nb, a->norm_len)) return 1;
        return a->val >= 0 && b->val >= 0 && cl_val_equal(p, a->val, b->val, rtol, 0);
    }
    if (a->kind == CL_TEXT || b->kind == CL_TEXT) {   /* words against math: "xy" vs "x*y" */
        const cl_answer *t = a->kind == CL_TEXT ? a : b, *o = a->kind == CL_TEXT ? b : a;
        if (t->val >= 0 && o->kind == CL_MATH) return cl_val_equal(p, t->val, o->val, rtol, 0);
        return same_len && text_equal_nocase(na, nb, a->norm_len);
    }
    if (a->kind == CL_CHOICE || b->kind == CL_CHOICE) return a->kind == b->kind && a->choice == b->choice;
    if (cl_val_equal(p, a->val, b->val, rtol, 0)) return 1;
    if (rule & EMPO_MATH_KEEP_LHS) return 0;
    /* \frac{NO}{BO} = \frac{1}{\sqrt6} against a bare \frac{1}{\sqrt6}: the side
     * before = is a name for the value, as the reference reads it */
    const cl_val *va = &p->vals[a->val], *vb = &p->vals[b->val];
    if (va->kind == CL_V_REL && va->rel == '=' && vb->kind != CL_V_REL)
        return cl_val_equal(p, p->vals[va->first].next, b->val, rtol, 0);
    if (vb->kind == CL_V_REL && vb->rel == '=' && va->kind != CL_V_REL)
        return cl_val_equal(p, a->val, p->vals[vb->first].next, rtol, 0);
    return 0;
}

/* ---- argument checks ---- */

static int check_string(const char *fn, const char *what, const char *s, int64_t n, int64_t limit) {
    if (n < 0) return empo_fail(EMPO_E_ARG, "%s: %s has negative length %lld", fn, what, (long long)n);
    if (n > 0 && !s) return empo_fail(EMPO_E_ARG, "%s: %s is NULL with length %lld", fn, what, (long long)n);
    if (n > limit)
        return empo_fail(EMPO_E_ARG, "%s: %s of %lld bytes exceeds the limit of %lld", fn, what, (long long)n,
                         (long long)limit);
    return EMPO_OK;
}

static int check_rule(const char *fn, int rule) {
    const int base = rule & EMPO_RULE_MASK, options = rule & ~EMPO_RULE_MASK;
    if (base < EMPO_RULE_EXACT || base > EMPO_RULE_MATH)
        return empo_fail(EMPO_E_ARG, "%s: unknown rule %d (EMPO_RULE_EXACT, _NORMALIZED or _MATH)", fn, base);
    if (options & ~(EMPO_MATH_CHAINS_AS_TEXT | EMPO_MATH_KEEP_LHS))
        return empo_fail(EMPO_E_ARG, "%s: unknown options 0x%x in rule 0x%x", fn,
                         (unsigned)(options & ~(EMPO_MATH_CHAINS_AS_TEXT | EMPO_MATH_KEEP_LHS)), (unsigned)rule);
    if (options && base != EMPO_RULE_MATH)
        return empo_fail(EMPO_E_ARG, "%s: EMPO_MATH_* options need EMPO_RULE_MATH (rule 0x%x)", fn, (unsigned)rule);
    return EMPO_OK;
}

static double pick_rtol(double rtol) { return (rtol > 0 && isfinite(rtol)) ? rtol : CL_DEFAULT_RTOL; }

/* ---- public entry points ---- */

int empo_cluster_normalize(const char *s, int64_t len, char *out, int64_t cap, int64_t *out_len) {
    EMPO_TRY(check_string("cluster_normalize", "the answer", s, len, EMPO_CLUSTER_MAX_TEXT));
    if (!out_len || (cap > 0 && !out) || cap < 0)
        return empo_fail(EMPO_E_ARG, "cluster_normalize: needs out_len and an output buffer of cap >= 0 bytes");
    cl_pool p;
    cl_pool_init(&p);
    cl_answer a;
    int st = cl_answer_prepare(&p, &a, s, len, EMPO_RULE_NORMALIZED);
    if (st == EMPO_OK) {
        const char *src = a.kind == CL_RAW ? a.raw : a.kind == CL_EMPTY ? "" : p.text + a.norm_off;
        int64_t m = a.kind == CL_RAW ? a.raw_len : a.norm_len;
        *out_len = m;
        if (cap > 0) {
            int64_t k = m < cap - 1 ? m : cap - 1;
            if (k > 0) memcpy(out, src, (size_t)k);
            out[k] = '\0';
        }
    }
    cl_pool_free(&p);
    return st;
}

int empo_cluster_equal(int rule, const char *a, int64_t alen, const char *b, int64_t blen, double rtol,
                       int *equal) {
    EMPO_TRY(check_rule("cluster_equal", rule));
    EMPO_TRY(check_string("cluster_equal", "answer a", a, alen, EMPO_CLUSTER_MAX_TEXT));
    EMPO_TRY(check_string("cluster_equal", "answer b", b, blen, EMPO_CLUSTER_MAX_TEXT));
    if (!equal) return empo_fail(EMPO_E_ARG, "cluster_equal: equal is NULL");
    cl_pool p;
    cl_pool_init(&p);
    cl_answer x, y;
    int st = cl_answer_prepare(&p, &x, a, alen, rule);
    if (st == EMPO_OK) st = cl_answer_prepare(&p, &y, b, blen, rule);
    if (st == EMPO_OK) *equal = cl_answer_equal(&p, &x, &y, rule, pick_rtol(rtol));
    cl_pool_free(&p);
    return st;
}

int empo_cluster_equivalent(const char *a, int64_t alen, const char *b, int64_t blen, double rtol, int *equal) {
    return empo_cluster_equal(EMPO_RULE_MATH, a, alen, b, blen, rtol, equal);
}

/* The elem of a prepared answer that is a lone percentage (50%), or NULL. */
static const cl_elem *percent_of(const cl_pool *p, const cl_answer *a) {
    if (a->kind != CL_MATH || p->vals[a->val].kind != CL_V_SCALAR) return NULL;
    const cl_elem *e = &p->elems[p->vals[a->val].elem];
    return e->has_alt ? e : NULL;
}

static int32_t find_root(int32_t *parent, int32_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];     /* path halving */
        i = parent[i];
    }
    return i;
}

int empo_cluster_group(int rule, int n, const char *const *answers, const int64_t *lens, double rtol,
                       int32_t *ids, int32_t *n_clusters) {
    EMPO_TRY(check_rule("cluster_group", rule));
    if (n < 0 || n > EMPO_CLUSTER_MAX_GROUP)
        return empo_fail(EMPO_E_ARG, "cluster_group: %d answers (0..%d allowed)", n, EMPO_CLUSTER_MAX_GROUP);
    if (n > 0 && (!answers || !lens || !ids))
        return empo_fail(EMPO_E_ARG, "cluster_group: answers, lens and ids must not be NULL");
    if (!n_clusters) return empo_fail(EMPO_E_ARG, "cluster_group: n_clusters is NULL");
    for (int i = 0; i < n; i++)
        EMPO_TRY(check_string("cluster_group", "an answer", answers[i], lens[i], EMPO_CLUSTER_MAX_TEXT));
    *n_clusters = 0;
    if (n == 0) return EMPO_OK;
    cl_answer *ans = malloc((size_t)n * sizeof *ans);
    /* parent, first occurrence, ids of roots, a percentage in the cluster */
    int32_t *parent = malloc((size_t)n * 4 * sizeof *parent);
    cl_pool p;
    cl_pool_init(&p);
    int st = (ans && parent) ? EMPO_OK : empo_fail(EMPO_E_NOMEM, "cluster_group: out of memory for %d answers", n);
    /* Each distinct string is prepared once and compared with the other
     * distinct strings only; a repeat joins its first occurrence. */
    int32_t *first = parent + n;
    for (int32_t i = 0; i < n && st == EMPO_OK; i++) {
        const char *si = answers[i];
        int64_t ni = lens[i];
        trim(&si, &ni);
        parent[i] = first[i] = i;
        for (int32_t j = 0; j < i && first[i] == i; j++)
            if (first[j] == j && ans[j].raw_len == ni && (ni == 0 || memcmp(ans[j].raw, si, (size_t)ni) == 0)) {
                ans[i] = ans[j];
                parent[i] = first[i] = j;
            }
        if (first[i] == i) st = cl_answer_prepare(&p, &ans[i], si, ni, rule);
    }
    if (st == EMPO_OK) {
        double tol = pick_rtol(rtol);
        /* x% equals x and x / 100, so 30% = 0.3 and 0.3 = 0.3%: a cluster
         * holds percentages of one number only, and a union that would
         * join two (30% and 0.3% through 0.3) is refused */
        int32_t *pct = parent + 3 * n;
        for (int32_t i = 0; i < n; i++) pct[i] = percent_of(&p, &ans[i]) ? i : -1;
        for (int32_t i = 0; i < n; i++) {
            if (ans[i].kind == CL_EMPTY || first[i] != i) continue;
            for (int32_t j = i + 1; j < n; j++) {
                if (ans[j].kind == CL_EMPTY || first[j] != j) continue;
                int32_t ri = find_root(parent, i), rj = find_root(parent, j);
                if (ri == rj || !cl_answer_equal(&p, &ans[i], &ans[j], rule, tol)) continue;
                if (pct[ri] >= 0 && pct[rj] >= 0 && !cl_answer_equal(&p, &ans[pct[ri]], &ans[pct[rj]], rule, tol))
                    continue;
                int32_t lo = rj < ri ? rj : ri, hi = rj < ri ? ri : rj;
                parent[hi] = lo;
                if (pct[lo] < 0) pct[lo] = pct[hi];
            }
        }
        int32_t *id_of_root = parent + 2 * n, k = 0;
        for (int32_t i = 0; i < n; i++) id_of_root[i] = -1;
        for (int32_t i = 0; i < n; i++) {
            if (ans[i].kind == CL_EMPTY) { ids[i] = -1; continue; }
            int32_t r = find_root(parent, i);
            if (id_of_root[r] < 0) id_of_root[r] = k++;
            ids[i] = id_of_root[r];
        }
        *n_clusters = k;
    }
    cl_pool_free(&p);
    free(ans);
    free(parent);
    return st;
}

static double plogp(double p) { return p > 0 ? p * log(p) : 0.0; }

int empo_cluster_stats(int n, const int32_t *ids, int empty_mode, double *share, empo_group_stats *stats) {
    if (n < 0 || n > EMPO_CLUSTER_MAX_GROUP)
        return empo_fail(EMPO_E_ARG, "cluster_stats: %d answers (0..%d allowed)", n, EMPO_CLUSTER_MAX_GROUP);
    if ((n > 0 && !ids) || !stats) return empo_fail(EMPO_E_ARG, "cluster_stats: ids and stats must not be NULL");
    if (empty_mode < EMPO_EMPTY_SINGLETON || empty_mode > EMPO_EMPTY_DROP)
        return empo_fail(EMPO_E_ARG, "cluster_stats: unknown empty mode %d (EMPO_EMPTY_SINGLETON, _CLUSTER or _DROP)",
                         empty_mode);
    for (int i = 0; i < n; i++)
        if (ids[i] < -1 || ids[i] >= n)
            return empo_fail(EMPO_E_INDEX, "cluster_stats: ids[%d] = %d is outside -1..%d", i, ids[i], n - 1);
    memset(stats, 0, sizeof *stats);
    if (n == 0) return EMPO_OK;
    int32_t *size = calloc((size_t)n, sizeof *size);
    if (!size) return empo_fail(EMPO_E_NOMEM, "cluster_stats: out of memory");
    int32_t n_empty = 0, biggest = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0) n_empty++;
        else if (size[ids[i]]++ == 0) stats->n_clusters++;
    }
    for (int c = 0; c < n; c++)
        if (size[c] > biggest) biggest = size[c];
    int32_t total = empty_mode == EMPO_EMPTY_DROP ? n - n_empty : n;
    double h = 0.0;
    if (total > 0) {
        for (int c = 0; c < n; c++) h -= plogp((double)size[c] / total);
        if (empty_mode == EMPO_EMPTY_SINGLETON) h -= n_empty * plogp(1.0 / total);
        if (empty_mode == EMPO_EMPTY_CLUSTER) h -= plogp((double)n_empty / total);
        stats->max_share = (double)biggest / total;
    }
    stats->entropy = h;
    stats->n_empty = n_empty;
    if (share) {
        double empty_share = empty_mode == EMPO_EMPTY_SINGLETON ? 1.0 / n
                           : empty_mode == EMPO_EMPTY_CLUSTER ? (double)n_empty / n : 0.0;
        for (int i = 0; i < n; i++) share[i] = ids[i] < 0 ? empty_share : (total > 0 ? (double)size[ids[i]] / total : 0.0);
    }
    free(size);
    return EMPO_OK;
}
