/* parity_cases_reduce.c — parity cases for sum/mean (all and per dim),
 * max_dim/argmax/max (on tie-free inputs), softmax and log_softmax. */
#include <stddef.h>
#include "parity_gen.h"

typedef int (*all_fn)(empo_tensor **, empo_tensor *);
typedef int (*dim_fn)(empo_tensor **, empo_tensor *, int, int);

static const pg_shape SHAPES[] = {{3, {3, 4, 5}}, {3, {3, 4, 5}}, {2, {6, 7}}, {2, {120, 300}}};
static pg_layout layout_of(int i) {
    pg_layout l[] = {PG_PLAIN, PG_T, PG_SLICE, PG_NARROW};
    return l[i];
}
enum { N_SHAPES = sizeof SHAPES / sizeof SHAPES[0] };

static void reduce_all(const char *op, all_fn fn, pg_dist d) {
    for (int i = 0; i < N_SHAPES; i++) {
        pg_case *c = pg_begin(op);
        empo_tensor *x = pg_input(c, "x", SHAPES[i].nd, SHAPES[i].s, layout_of(i), d), *y = NULL;
        int st = fn(&y, x);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void reduce_dims(const char *op, dim_fn fn) {
    for (int i = 0; i < N_SHAPES; i++)
        for (int dim = -1; dim < SHAPES[i].nd; dim++)
            for (int keepdim = 0; keepdim < 2; keepdim++) {
                pg_case *c = pg_begin(op);
                pg_param_i(c, "dim", dim);
                pg_param_i(c, "keepdim", keepdim);
                empo_tensor *x = pg_input(c, "x", SHAPES[i].nd, SHAPES[i].s, layout_of(i), pg_unif(-1, 1));
                empo_tensor *y = NULL;
                int st = fn(&y, x, dim, keepdim);
                pg_output(c, y);
                pg_end(c, st);
            }
}

static void max_ops(void) {
    for (int i = 0; i < N_SHAPES; i++)
        for (int dim = -1; dim < SHAPES[i].nd; dim++)
            for (int keepdim = 0; keepdim < 2; keepdim++) {
                pg_case *c = pg_begin("max_dim");
                pg_param_i(c, "dim", dim);
                pg_param_i(c, "keepdim", keepdim);
                empo_tensor *x = pg_input(c, "x", SHAPES[i].nd, SHAPES[i].s, layout_of(i), pg_distinct());
                empo_tensor *v = NULL, *ix = NULL;
                int st = empo_max_dim(&v, &ix, x, dim, keepdim);
                pg_output(c, v);
                pg_output(c, ix);
                pg_end(c, st);

                c = pg_begin("argmax");
                pg_param_i(c, "dim", dim);
                pg_param_i(c, "keepdim", keepdim);
                x = pg_input(c, "x", SHAPES[i].nd, SHAPES[i].s, layout_of(i), pg_distinct());
                ix = NULL;
                st = empo_argmax(&ix, x, dim, keepdim);
                pg_output(c, ix);
                pg_end(c, st);
            }
    reduce_all("max", empo_max, pg_distinct());
}

static void softmaxes(void) {
    struct { const char *name; int (*fn)(empo_tensor **, empo_tensor *, int); } ops[] = {
        {"softmax", empo_softmax}, {"log_softmax", empo_log_softmax}};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < N_SHAPES; i++)
            for (int dim = -1; dim < SHAPES[i].nd; dim++) {
                pg_case *c = pg_begin(ops[k].name);
                pg_param_i(c, "dim", dim);
                empo_tensor *x = pg_input(c, "x", SHAPES[i].nd, SHAPES[i].s, layout_of(i), pg_unif(-3, 3));
                empo_tensor *y = NULL;
                int st = ops[k].fn(&y, x, dim);
                pg_output(c, y);
                pg_end(c, st);
            }
        /* a vocabulary-sized row with large logits */
        pg_case *c = pg_begin(ops[k].name);
        pg_param_i(c, "dim", 1);
        empo_tensor *x = pg_input(c, "x", 2, (int64_t[]){4, 3000}, PG_PLAIN, pg_unif(-20, 20)), *y = NULL;
        int st = ops[k].fn(&y, x, 1);
        pg_output(c, y);
        pg_end(c, st);
    }
    /* banned entries (-inf) get probability 0 and no gradient */
    pg_case *c = pg_begin("softmax");
    pg_param_i(c, "dim", -1);
    empo_tensor *x = pg_input(c, "x", 2, (int64_t[]){5, 9}, PG_PLAIN, pg_banned(-3, 3)), *y = NULL;
    int st = empo_softmax(&y, x, -1);
    pg_output(c, y);
    pg_end(c, st);
}

/* 1-d inputs (0-d results) and a reduced dim of size 1 */
static void small_shapes(void) {
    for (int keepdim = 0; keepdim < 2; keepdim++) {
        pg_case *c = pg_begin("sum_dim");
        pg_param_i(c, "dim", 0);
        pg_param_i(c, "keepdim", keepdim);
        empo_tensor *x = pg_input(c, "x", 1, (int64_t[]){7}, PG_SLICE, pg_unif(-1, 1)), *y = NULL, *ix = NULL;
        int st = empo_sum_dim(&y, x, 0, keepdim);
        pg_output(c, y);
        pg_end(c, st);

        c = pg_begin("max_dim");
        pg_param_i(c, "dim", 0);
        pg_param_i(c, "keepdim", keepdim);
        x = pg_input(c, "x", 1, (int64_t[]){7}, PG_PLAIN, pg_distinct());
        y = NULL;
        st = empo_max_dim(&y, &ix, x, 0, keepdim);
        pg_output(c, y);
        pg_output(c, ix);
        pg_end(c, st);

        c = pg_begin("mean_dim");
        pg_param_i(c, "dim", 1);
        pg_param_i(c, "keepdim", keepdim);
        x = pg_input(c, "x", 3, (int64_t[]){3, 1, 4}, PG_PLAIN, pg_unif(-1, 1));
        y = NULL;
        st = empo_mean_dim(&y, x, 1, keepdim);
        pg_output(c, y);
        pg_end(c, st);
    }
    pg_case *c = pg_begin("softmax");
    pg_param_i(c, "dim", 1);
    empo_tensor *x = pg_input(c, "x", 3, (int64_t[]){3, 1, 4}, PG_PLAIN, pg_unif(-1, 1)), *y = NULL;
    int st = empo_softmax(&y, x, 1);
    pg_output(c, y);
    pg_end(c, st);
    c = pg_begin("mean");
    x = pg_input(c, "x", 0, NULL, PG_PLAIN, pg_unif(-1, 1));
    y = NULL;
    st = empo_mean(&y, x);
    pg_output(c, y);
    pg_end(c, st);
}

void pg_cases_reduce(void) {
    small_shapes();
    reduce_all("sum", empo_sum, pg_unif(-1, 1));
    reduce_all("mean", empo_mean, pg_unif(-1, 1));
    reduce_dims("sum_dim", empo_sum_dim);
    reduce_dims("mean_dim", empo_mean_dim);
    max_ops();
    softmaxes();
}
