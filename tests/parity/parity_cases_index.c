/* parity_cases_index.c — parity cases for embedding, gather, index_select,
 * cat, where and masked_fill (repeated indices, so gradients accumulate).
 *
 * The ops are referenced weakly: a libempo built without them yields a
 * "SKIPPED (not built)" record, which check_torch.py counts as a failure. */
#include <stddef.h>
#include "parity_gen.h"

#pragma weak empo_embedding
#pragma weak empo_gather
#pragma weak empo_index_select
#pragma weak empo_cat
#pragma weak empo_where
#pragma weak empo_masked_fill

static void embeddings(void) {
    struct { int64_t V, D; pg_layout lw; pg_shape ids; int dtype; } cases[] = {
        {10, 4, PG_PLAIN, {2, {3, 5}}, EMPO_I64},
        {6, 3, PG_T, {1, {7}}, EMPO_I32},
        {100, 32, PG_NARROW, {2, {4, 16}}, EMPO_I64},
        {5, 8, PG_PLAIN, {3, {2, 2, 3}}, EMPO_I32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("embedding");
        empo_tensor *w = pg_input(c, "weight", 2, (int64_t[]){cases[i].V, cases[i].D}, cases[i].lw, pg_unif(-1, 1));
        empo_tensor *ids = pg_ints(c, "ids", cases[i].ids.nd, cases[i].ids.s, cases[i].dtype, 0, cases[i].V);
        empo_tensor *y = NULL;
        int st = empo_embedding(&y, w, ids);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void gathers(void) {
    struct { pg_shape x; pg_layout lx; int dim; pg_shape idx; int dtype; } cases[] = {
        {{2, {4, 5}}, PG_PLAIN, 1, {2, {4, 3}}, EMPO_I64},
        {{2, {4, 5}}, PG_PLAIN, 0, {2, {2, 5}}, EMPO_I64},
        {{3, {3, 4, 5}}, PG_T, -1, {3, {3, 4, 7}}, EMPO_I32},
        {{2, {4, 5}}, PG_NARROW, 1, {2, {2, 3}}, EMPO_I64},        /* index smaller than x in dim 0 */
        {{3, {3, 4, 5}}, PG_SLICE, 1, {3, {3, 6, 5}}, EMPO_I64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("gather");
        pg_param_i(c, "dim", cases[i].dim);
        const pg_shape *xs = &cases[i].x;
        int d = cases[i].dim < 0 ? cases[i].dim + xs->nd : cases[i].dim;
        empo_tensor *x = pg_input(c, "x", xs->nd, xs->s, cases[i].lx, pg_unif(-1, 1));
        empo_tensor *ix = pg_ints(c, "index", cases[i].idx.nd, cases[i].idx.s, cases[i].dtype, 0, xs->s[d]);
        empo_tensor *y = NULL;
        int st = empo_gather(&y, x, cases[i].dim, ix);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void index_selects(void) {
    struct { pg_shape x; pg_layout lx; int dim; int64_t k; int dtype; } cases[] = {
        {{2, {5, 4}}, PG_PLAIN, 0, 3, EMPO_I64},
        {{3, {3, 6, 2}}, PG_T, 1, 5, EMPO_I32},
        {{3, {3, 4, 6}}, PG_NARROW, -1, 9, EMPO_I64},
        {{1, {8}}, PG_SLICE, 0, 4, EMPO_I64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("index_select");
        pg_param_i(c, "dim", cases[i].dim);
        const pg_shape *xs = &cases[i].x;
        int d = cases[i].dim < 0 ? cases[i].dim + xs->nd : cases[i].dim;
        empo_tensor *x = pg_input(c, "x", xs->nd, xs->s, cases[i].lx, pg_unif(-1, 1));
        empo_tensor *ix = pg_ints(c, "index", 1, &cases[i].k, cases[i].dtype, 0, xs->s[d]);
        empo_tensor *y = NULL;
        int st = empo_index_select(&y, x, cases[i].dim, ix);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void cats(void) {
    struct { int n, dim; pg_shape s[3]; pg_layout l[3]; } cases[] = {
        {3, 0, {{2, {2, 4}}, {2, {3, 4}}, {2, {1, 4}}}, {PG_PLAIN, PG_T, PG_PLAIN}},
        {2, 1, {{2, {3, 2}}, {2, {3, 5}}}, {PG_PLAIN, PG_NARROW}},
        {3, -1, {{3, {2, 3, 1}}, {3, {2, 3, 4}}, {3, {2, 3, 2}}}, {PG_EXPAND, PG_SLICE, PG_PLAIN}},
        {1, 0, {{2, {3, 4}}}, {PG_T}},
        {2, 1, {{3, {2, 3, 4}}, {3, {2, 2, 4}}}, {PG_PLAIN, PG_T}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("cat");
        pg_param_i(c, "dim", cases[i].dim);
        empo_tensor *xs[3] = {0};
        for (int k = 0; k < cases[i].n; k++) {
            char name[8] = {'x', (char)('0' + k), 0};
            xs[k] = pg_input(c, name, cases[i].s[k].nd, cases[i].s[k].s, cases[i].l[k], pg_unif(-1, 1));
        }
        empo_tensor *y = NULL;
        int st = empo_cat(&y, cases[i].n, xs, cases[i].dim);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void wheres(void) {
    struct { pg_shape cond; int cdtype; pg_shape a; pg_layout la; pg_shape b; pg_layout lb; } cases[] = {
        {{3, {3, 1, 5}}, EMPO_U8, {2, {4, 5}}, PG_PLAIN, {3, {3, 4, 5}}, PG_T},
        {{2, {4, 5}}, EMPO_I64, {2, {4, 5}}, PG_NARROW, {1, {5}}, PG_PLAIN},
        {{2, {4, 5}}, EMPO_F32, {2, {4, 5}}, PG_SLICE, {2, {4, 5}}, PG_EXPAND},
        {{1, {6}}, EMPO_I32, {2, {3, 6}}, PG_T, {0, {0}}, PG_PLAIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("where");
        empo_tensor *cond = cases[i].cdtype == EMPO_F32
                                ? pg_const(c, "cond", cases[i].cond.nd, cases[i].cond.s, pg_ties())
                                : pg_ints(c, "cond", cases[i].cond.nd, cases[i].cond.s, cases[i].cdtype, 0, 3);
        empo_tensor *a = pg_input(c, "a", cases[i].a.nd, cases[i].a.s, cases[i].la, pg_unif(-1, 1));
        empo_tensor *b = pg_input(c, "b", cases[i].b.nd, cases[i].b.s, cases[i].lb, pg_unif(-1, 1));
        empo_tensor *y = NULL;
        int st = empo_where(&y, cond, a, b);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void masked_fills(void) {
    struct { pg_shape x; pg_layout lx; pg_shape m; int mdtype; double value; } cases[] = {
        {{2, {3, 4}}, PG_PLAIN, {1, {4}}, EMPO_U8, -2.5},
        {{3, {2, 3, 4}}, PG_T, {3, {2, 3, 4}}, EMPO_U8, 0.0},
        {{3, {2, 3, 4}}, PG_NARROW, {3, {2, 1, 4}}, EMPO_I64, 1e4},
        {{2, {5, 3}}, PG_SLICE, {2, {5, 3}}, EMPO_I32, -1e9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("masked_fill");
        pg_param_f(c, "value", cases[i].value);
        empo_tensor *x = pg_input(c, "x", cases[i].x.nd, cases[i].x.s, cases[i].lx, pg_unif(-1, 1));
        empo_tensor *m = pg_ints(c, "mask", cases[i].m.nd, cases[i].m.s, cases[i].mdtype, 0, 2);
        empo_tensor *y = NULL;
        int st = empo_masked_fill(&y, x, m, cases[i].value);
        pg_output(c, y);
        pg_end(c, st);
    }
}

void pg_cases_index(void) {
    if (empo_embedding) embeddings(); else pg_skip("embedding");
    if (empo_gather) gathers(); else pg_skip("gather");
    if (empo_index_select) index_selects(); else pg_skip("index_select");
    if (empo_cat) cats(); else pg_skip("cat");
    if (empo_where) wheres(); else pg_skip("where");
    if (empo_masked_fill) masked_fills(); else pg_skip("masked_fill");
}
