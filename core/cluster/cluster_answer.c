/* cluster_answer.c — an answer's top level, over the value parser
 * (cluster_parse.c): solutions separated by ';', each a value or a bare
 * list (a set; a point when its items name distinct coordinates), and the
 * classification of an answer as a choice letter, text or math
 * (cl_parse_answer). */
#include <string.h>
#include "cluster_parser.h"

static int fail(parser *P) { if (!P->failed) P->failed = 1; return -1; }

/* Whether every item of the set v is labelled, each with another name: a
 * point written by its coordinates ("x = 2, y = -1", "p = 5, q = 2"). */
static int labels_distinct(const cl_pool *p, int32_t v) {
    for (int32_t a = p->vals[v].first; a >= 0; a = p->vals[a].next) {
        const cl_val *x = &p->vals[a];
        if (x->label_len == 0) return 0;
        for (int32_t b = x->next; b >= 0; b = p->vals[b].next)
            if (p->vals[b].label_len == x->label_len &&
                memcmp(p->text + p->vals[b].label_off, p->text + x->label_off, (size_t)x->label_len) == 0)
                return 0;
    }
    return 1;
}

/* value { ',' value }: one value, or a bare list (unordered; a point when
 * its items name distinct coordinates: CL_V_SET with open = 'p'). */
static int32_t parse_solution(parser *P) {
    int32_t v = cl_parse_value(P);
    if (v >= 0 && P->t.kind == T_COMMA) {     /* a bare list: unordered */
        int32_t set = cl_val_new(P, CL_V_SET), last = -1;
        if (set >= 0) cl_val_append(P, set, v, &last);
        while (set >= 0 && P->t.kind == T_COMMA) {
            cl_advance(P);
            int32_t c = cl_parse_value(P);
            if (c < 0 || P->p->vals[set].count >= CL_MAX_ITEMS) { set = fail(P); break; }
            cl_val_append(P, set, c, &last);
        }
        if (set >= 0 && labels_distinct(P->p, set)) P->p->vals[set].open = 'p';
        v = set;
    }
    return v;
}

/* solution { ';' solution }: solutions separated by ';' are a set of them
 * ("p=5,q=2; p=7,q=2" is the two points, "-12;-11" the two values). */
static int32_t parse_answer(parser *P) {
    int32_t v = parse_solution(P);
    if (v >= 0 && P->t.kind == T_SEMI) {
        int32_t set = cl_val_new(P, CL_V_SET), last = -1;
        if (set >= 0) cl_val_append(P, set, v, &last);
        while (set >= 0 && P->t.kind == T_SEMI) {
            cl_advance(P);
            if (P->t.kind == T_END) break;            /* a trailing ; */
            int32_t c = parse_solution(P);
            if (c < 0 || P->p->vals[set].count >= CL_MAX_ITEMS) { set = fail(P); break; }
            cl_val_append(P, set, c, &last);
        }
        v = set;
    }
    if (v >= 0 && P->t.kind != T_END) v = fail(P);
    return v;
}

/* ---- classification ---- */

/* Only letters (two or more) and no math: plain text ("yes", "NewYork"). */
static int plain_words(const char *s, int64_t n) {
    int64_t letters = 0;
    for (int64_t i = 0; i < n; i++) {
        if (cl_is_alpha(s[i])) letters++;
        else if (cl_is_digit(s[i]) || strchr("+-*/^=<>()[]{}|\\_!%,", s[i])) return 0;
    }
    if (letters < 2) return 0;
    const name_rule *r = cl_find_name(CL_NAMES, CL_N_NAMES, s, n);
    return !(r && (r->kind == T_PI || r->kind == T_INF));
}

int cl_parse_answer(cl_pool *p, cl_answer *a, const char *s, int64_t n, int flags) {
    a->choice = cl_choice_letter(s, n);
    if (a->choice) { a->kind = CL_CHOICE; return EMPO_OK; }
    a->kind = CL_TEXT;
    int words = plain_words(s, n);    /* text, but "xy" may still meet x*y: parse it too */
    /* bracket tables: p->scratch is free once the answer is normalized */
    if (p->cap_scratch < n * 5 + 8) return EMPO_OK;
    parser P;
    memset(&P, 0, sizeof P);
    P.p = p;
    P.flags = flags;
    P.s = s;
    P.n = n;
    P.label_base = a->norm_off;
    P.close = (int32_t *)(void *)p->scratch;
    P.comma = (uint8_t *)p->scratch + 4 * n + 4;
    if (!cl_match_brackets(&P)) return EMPO_OK;
    int32_t nodes0 = p->n_nodes, elems0 = p->n_elems, vals0 = p->n_vals;
    cl_advance(&P);
    int32_t v = parse_answer(&P);
    if (P.failed == 2) return empo_fail(EMPO_E_NOMEM, "cluster: out of memory parsing an answer");
    if (v < 0) {      /* not math: drop what was built */
        p->n_nodes = nodes0; p->n_elems = elems0; p->n_vals = vals0;
        return EMPO_OK;
    }
    a->kind = words ? CL_TEXT : CL_MATH;
    a->val = v;
    return EMPO_OK;
}
