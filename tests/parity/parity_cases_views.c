/* parity_cases_views.c — parity cases for the view ops (reshape, view,
 * transpose, permute, narrow, slice, select, expand, unsqueeze, squeeze)
 * and the copies (contiguous, clone), with their gradients, on contiguous
 * and non-contiguous inputs. */
#include <stddef.h>
#include <string.h>
#include "parity_gen.h"

/* One case: x of shape `s` in `layout`, then the op named `op`, whose
 * parameters `set` records and `run` applies. */
typedef struct view_case {
    const char *op;
    pg_shape s;
    pg_layout layout;
    int64_t p[4];            /* dim / start / stop / step / index ... (see run) */
    pg_shape target;         /* reshape/view/expand shape; permute dims */
} view_case;

static int is(const view_case *v, const char *name) { return strcmp(v->op, name) == 0; }

static int run(const view_case *v, empo_tensor *x, empo_tensor **y, pg_case *c) {
    const int64_t *p = v->p, nd = v->target.nd;
    if (is(v, "reshape") || is(v, "view") || is(v, "expand")) {
        pg_param_shape(c, "shape", v->target.nd, v->target.s);
        if (is(v, "reshape")) return empo_reshape(y, x, v->target.nd, v->target.s);
        if (is(v, "view")) return empo_view(y, x, v->target.nd, v->target.s);
        return empo_expand(y, x, v->target.nd, v->target.s);
    }
    if (is(v, "permute")) {
        int dims[EMPO_MAX_DIMS];
        for (int i = 0; i < nd; i++) dims[i] = (int)v->target.s[i];
        pg_param_shape(c, "dims", v->target.nd, v->target.s);
        return empo_permute(y, x, v->target.nd, dims);
    }
    if (is(v, "contiguous")) return empo_contiguous(y, x);
    if (is(v, "clone")) return empo_clone(y, x);
    pg_param_i(c, "dim", p[0]);
    if (is(v, "transpose")) {
        pg_param_i(c, "dim1", p[1]);
        return empo_transpose(y, x, (int)p[0], (int)p[1]);
    }
    if (is(v, "narrow")) {
        pg_param_i(c, "start", p[1]);
        pg_param_i(c, "length", p[2]);
        return empo_narrow(y, x, (int)p[0], p[1], p[2]);
    }
    if (is(v, "slice")) {
        pg_param_i(c, "start", p[1]);
        pg_param_i(c, "stop", p[2]);
        pg_param_i(c, "step", p[3]);
        return empo_slice(y, x, (int)p[0], p[1], p[2], p[3]);
    }
    if (is(v, "select")) {
        pg_param_i(c, "index", p[1]);
        return empo_select(y, x, (int)p[0], p[1]);
    }
    if (is(v, "unsqueeze")) return empo_unsqueeze(y, x, (int)p[0]);
    return empo_squeeze(y, x, (int)p[0]);
}

void pg_cases_views(void) {
    view_case cases[] = {
        {"reshape", {3, {3, 4, 5}}, PG_PLAIN, {0}, {2, {12, 5}}},
        {"reshape", {3, {3, 4, 5}}, PG_T, {0}, {2, {3, 20}}},            /* must copy */
        {"reshape", {2, {4, 6}}, PG_SLICE, {0}, {3, {2, -1, 3}}},
        {"reshape", {2, {4, 6}}, PG_NARROW, {0}, {1, {24}}},
        {"view", {3, {3, 4, 5}}, PG_PLAIN, {0}, {3, {3, 2, 10}}},
        {"view", {2, {4, 6}}, PG_NARROW, {0}, {3, {4, 2, 3}}},
        {"transpose", {3, {3, 4, 5}}, PG_PLAIN, {0, 2}, {0}},
        {"transpose", {3, {3, 4, 5}}, PG_T, {-1, 0}, {0}},
        {"permute", {4, {2, 3, 4, 5}}, PG_PLAIN, {0}, {4, {2, 0, 3, 1}}},
        {"permute", {3, {3, 4, 5}}, PG_T, {0}, {3, {1, 2, 0}}},
        {"narrow", {2, {5, 6}}, PG_PLAIN, {1, 2, 3}, {0}},
        {"narrow", {3, {4, 5, 6}}, PG_T, {0, 1, 2}, {0}},
        {"slice", {2, {10, 4}}, PG_PLAIN, {0, 1, 9, 3}, {0}},
        {"slice", {2, {3, 11}}, PG_T, {1, 0, 11, 2}, {0}},
        {"slice", {2, {4, 10}}, PG_PLAIN, {-1, -4, 100, 2}, {0}},        /* python-style clamping */
        {"select", {3, {3, 4, 5}}, PG_PLAIN, {1, 2}, {0}},
        {"select", {3, {3, 4, 5}}, PG_T, {-1, -1}, {0}},
        {"expand", {2, {1, 4}}, PG_PLAIN, {0}, {2, {3, 4}}},
        {"expand", {3, {3, 1, 5}}, PG_PLAIN, {0}, {4, {2, 3, 4, 5}}},
        {"expand", {3, {4, 1, 3}}, PG_SLICE, {0}, {3, {-1, 6, 3}}},
        {"unsqueeze", {2, {3, 4}}, PG_PLAIN, {0}, {0}},
        {"unsqueeze", {2, {3, 4}}, PG_T, {2}, {0}},
        {"unsqueeze", {2, {3, 4}}, PG_NARROW, {-2}, {0}},
        {"squeeze", {3, {3, 1, 4}}, PG_PLAIN, {1}, {0}},
        {"squeeze", {3, {3, 1, 4}}, PG_NARROW, {-2}, {0}},
        {"squeeze", {2, {3, 4}}, PG_PLAIN, {0}, {0}},                  /* not size 1: unchanged */
        {"contiguous", {2, {3, 4}}, PG_T, {0}, {0}},
        {"contiguous", {3, {2, 3, 4}}, PG_PLAIN, {0}, {0}},
        {"contiguous", {2, {5, 4}}, PG_SLICE, {0}, {0}},
        {"clone", {3, {2, 3, 4}}, PG_T, {0}, {0}},
        {"clone", {2, {3, 4}}, PG_PLAIN, {0}, {0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin(cases[i].op);
        empo_tensor *x = pg_input(c, "x", cases[i].s.nd, cases[i].s.s, cases[i].layout, pg_unif(-1, 1)), *y = NULL;
        int st = x ? run(&cases[i], x, &y, c) : EMPO_E_ARG;
        pg_output(c, y);
        pg_end(c, st);
    }
}
