/* parity_cases_linalg.c — parity cases for matmul (2-d, batched, broadcast
 * batch, 1-d operands, transposed/strided/expanded views) and linear. */
#include <stddef.h>
#include "parity_gen.h"

typedef struct { pg_shape a; pg_layout la; pg_shape b; pg_layout lb; } mm_case;

static void matmuls(void) {
    mm_case cases[] = {
        {{2, {5, 7}}, PG_PLAIN, {2, {7, 3}}, PG_PLAIN},
        {{3, {2, 5, 7}}, PG_PLAIN, {3, {2, 7, 3}}, PG_PLAIN},
        {{4, {2, 1, 5, 7}}, PG_PLAIN, {3, {3, 7, 4}}, PG_PLAIN},     /* broadcast batch */
        {{3, {3, 5, 7}}, PG_PLAIN, {2, {7, 4}}, PG_PLAIN},           /* shared b */
        {{1, {7}}, PG_PLAIN, {2, {7, 3}}, PG_PLAIN},
        {{2, {5, 7}}, PG_PLAIN, {1, {7}}, PG_PLAIN},
        {{1, {7}}, PG_PLAIN, {1, {7}}, PG_PLAIN},
        {{1, {7}}, PG_PLAIN, {3, {2, 7, 3}}, PG_PLAIN},
        {{3, {2, 3, 7}}, PG_PLAIN, {1, {7}}, PG_NARROW},
        {{2, {5, 7}}, PG_T, {2, {7, 3}}, PG_T},                      /* transposed views */
        {{3, {2, 5, 7}}, PG_T, {3, {2, 7, 3}}, PG_PLAIN},
        {{3, {4, 5, 7}}, PG_NARROW, {2, {7, 3}}, PG_NARROW},         /* strided rows */
        {{3, {3, 5, 7}}, PG_SLICE, {3, {3, 7, 4}}, PG_EXPAND},       /* stride-0 batch */
        {{3, {2, 5, 7}}, PG_SWAP(0, 1), {3, {2, 7, 3}}, PG_SWAP(0, 2)},
        {{2, {1, 1}}, PG_PLAIN, {2, {1, 1}}, PG_PLAIN},
        {{2, {3, 1}}, PG_PLAIN, {2, {1, 4}}, PG_T},                  /* K = 1: outer product */
        {{4, {2, 2, 3, 5}}, PG_T, {1, {5}}, PG_PLAIN},
        {{1, {5}}, PG_SLICE, {4, {2, 1, 5, 3}}, PG_T},
        {{2, {64, 128}}, PG_PLAIN, {2, {128, 96}}, PG_PLAIN},        /* the blocked kernel */
        {{3, {3, 48, 80}}, PG_T, {3, {3, 80, 40}}, PG_T},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("matmul");
        empo_tensor *a = pg_input(c, "a", cases[i].a.nd, cases[i].a.s, cases[i].la, pg_unif(-1, 1));
        empo_tensor *b = pg_input(c, "b", cases[i].b.nd, cases[i].b.s, cases[i].lb, pg_unif(-1, 1));
        empo_tensor *y = NULL;
        int st = empo_matmul(&y, a, b);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void linears(void) {
    struct { pg_shape x; pg_layout lx; int64_t out; pg_layout lw; int bias; } cases[] = {
        {{2, {4, 6}}, PG_PLAIN, 5, PG_PLAIN, 1},
        {{2, {4, 6}}, PG_PLAIN, 5, PG_PLAIN, 0},
        {{3, {2, 3, 6}}, PG_PLAIN, 5, PG_PLAIN, 1},
        {{3, {2, 3, 6}}, PG_NARROW, 5, PG_T, 0},
        {{2, {6, 4}}, PG_T, 3, PG_NARROW, 1},
        {{1, {6}}, PG_PLAIN, 4, PG_PLAIN, 1},
        {{2, {5, 1}}, PG_PLAIN, 3, PG_PLAIN, 1},                      /* in = 1 */
        {{3, {2, 16, 64}}, PG_PLAIN, 48, PG_PLAIN, 1},
        {{3, {3, 8, 64}}, PG_SLICE, 40, PG_T, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("linear");
        int nd = cases[i].x.nd;
        int64_t in = cases[i].x.s[nd - 1], out = cases[i].out;
        empo_tensor *x = pg_input(c, "x", nd, cases[i].x.s, cases[i].lx, pg_unif(-1, 1));
        empo_tensor *w = pg_input(c, "w", 2, (int64_t[]){out, in}, cases[i].lw, pg_unif(-0.5, 0.5));
        empo_tensor *b = cases[i].bias ? pg_input(c, "bias", 1, &out, PG_PLAIN, pg_unif(-1, 1)) : NULL;
        empo_tensor *y = NULL;
        int st = empo_linear(&y, x, w, b);
        pg_output(c, y);
        pg_end(c, st);
    }
}

/* a @ a^T: both operands are views of one leaf */
static void gram(void) {
    pg_case *c = pg_begin("matmul");
    pg_param_i(c, "b_is_at", 1);
    empo_tensor *a = pg_input(c, "a", 3, (int64_t[]){2, 5, 7}, PG_PLAIN, pg_unif(-1, 1)), *at = NULL, *y = NULL;
    int st = a ? empo_transpose(&at, a, -2, -1) : EMPO_E_ARG;
    if (st == EMPO_OK) st = empo_matmul(&y, a, at);
    empo_tensor_release(at);
    pg_output(c, y);
    pg_end(c, st);
}

void pg_cases_linalg(void) {
    matmuls();
    gram();
    linears();
}
