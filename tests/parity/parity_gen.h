/* parity_gen.h — the harness behind parity_gen, the generator half of the
 * PyTorch parity test (the oracle half is check_torch.py).
 *
 * A case builds random inputs (leaves, possibly seen through a view so the
 * op gets non-contiguous or broadcast data), runs one empo op, then
 * backpropagates loss = sum_k sum(out_k * W_k) with fixed random W_k, and
 * writes everything check_torch.py needs to redo it in float64:
 *
 *     pg_case *c = pg_begin("softmax");
 *     pg_param_i(c, "dim", 1);
 *     empo_tensor *x = pg_input(c, "x", 2, (int64_t[]){4, 6}, PG_T, pg_unif(-2, 2));
 *     empo_tensor *y = NULL;
 *     int st = empo_softmax(&y, x, 1);
 *     pg_output(c, y);
 *     pg_end(c, st);
 *
 * Output directory layout: manifest.jsonl (one JSON object per case) and
 * case_NNNN.bin (the raw values, little-endian f32 or i64, at the byte
 * offsets the manifest gives). Every input is stored as its contiguous
 * base tensor plus the chain of view ops that turns it into what the op
 * saw; gradients are those of the base tensors. */
#ifndef EMPO_PARITY_GEN_H
#define EMPO_PARITY_GEN_H
#include <stdint.h>
#include "empo/empo.h"

typedef struct pg_case pg_case;

/* How an input's values are drawn. */
typedef struct pg_dist {
    int kind;            /* PG_UNIF, PG_AWAY, PG_DISTINCT, PG_LEVELS */
    double lo, hi;       /* see the constructors below */
} pg_dist;
enum { PG_UNIF, PG_AWAY, PG_DISTINCT, PG_LEVELS, PG_BANNED };
pg_dist pg_unif(double lo, double hi);
pg_dist pg_away(double lo, double hi);   /* magnitude in [lo, hi), either sign */
pg_dist pg_distinct(void);               /* all values distinct and well apart: no ties for max */
/* 0.2 k + offset + noise < 0.01: two inputs with offsets 0 and 0.1 never
 * come closer than 0.08 (maximum/minimum stay away from their kink). */
pg_dist pg_levels(double offset);
/* values in {-1, -0.5, 0, 0.5, 1}: many exact ties (for eq/lt/gt) */
pg_dist pg_ties(void);
/* uniform in [lo, hi), but -inf at every flat position i with i % 3 == 1 */
pg_dist pg_banned(double lo, double hi);

/* How an input of logical shape `shape` is laid out in memory. */
typedef struct pg_layout {
    int kind;            /* PG_K_* */
    int d0, d1;          /* SWAP: dims exchanged (negative from the end) */
} pg_layout;
enum { PG_K_PLAIN, PG_K_SWAP, PG_K_NARROW, PG_K_SLICE, PG_K_EXPAND };
#define PG_PLAIN ((pg_layout){PG_K_PLAIN, 0, 0})     /* contiguous */
#define PG_T ((pg_layout){PG_K_SWAP, -2, -1})        /* transpose of a tensor made with the last two dims swapped */
#define PG_NARROW ((pg_layout){PG_K_NARROW, 0, 0})   /* narrow(-1, 1, n) of a tensor 3 wider in the last dim */
#define PG_SLICE ((pg_layout){PG_K_SLICE, 0, 0})     /* [1::2] along dim 0 of a tensor 2n+1 long there */
#define PG_EXPAND ((pg_layout){PG_K_EXPAND, 0, 0})   /* expand of a tensor with size 1 in dim 0 (stride 0) */
#define PG_SWAP(d0, d1) ((pg_layout){PG_K_SWAP, (d0), (d1)})   /* transpose(d0, d1) of the swapped tensor */

/* A logical shape, for tables of cases: {2, {4, 5}}. */
typedef struct pg_shape {
    int nd;
    int64_t s[EMPO_MAX_DIMS];
} pg_shape;

pg_case *pg_begin(const char *op);
void pg_param_i(pg_case *c, const char *key, int64_t v);
void pg_param_f(pg_case *c, const char *key, double v);
void pg_param_shape(pg_case *c, const char *key, int n, const int64_t *v);

/* A float input: a fresh f32 leaf (requires grad) seen through `layout`.
 * Returns the tensor the op should get (owned by the case), or NULL after
 * recording the error. */
empo_tensor *pg_input(pg_case *c, const char *name, int ndim, const int64_t *shape, pg_layout layout,
                      pg_dist dist);
/* Same, but not requiring grad (an input PyTorch also treats as constant). */
empo_tensor *pg_const(pg_case *c, const char *name, int ndim, const int64_t *shape, pg_dist dist);
/* An integer input of `dtype` (i32, i64 or u8) with values uniform in [lo, hi). */
empo_tensor *pg_ints(pg_case *c, const char *name, int ndim, const int64_t *shape, int dtype, int64_t lo,
                     int64_t hi);
/* Same, with explicit values (row-major). */
empo_tensor *pg_ints_of(pg_case *c, const char *name, int ndim, const int64_t *shape, int dtype,
                        const int64_t *values);

/* Hands an output (one reference) to the case; NULL is ignored. */
void pg_output(pg_case *c, empo_tensor *y);
/* Finishes the case: `status` is what the op returned. Writes it (or the
 * error) and frees everything. */
void pg_end(pg_case *c, int status);
/* Records that an op is absent from this libempo (weak symbol unresolved). */
void pg_skip(const char *op);

/* the case families (parity_cases_*.c) */
void pg_cases_elementwise(void);
void pg_cases_reduce(void);
void pg_cases_linalg(void);
void pg_cases_views(void);
void pg_cases_index(void);
void pg_cases_fused(void);

#endif
