/* parity_cases_fused.c — parity cases for the fused transformer ops:
 * rmsnorm, swiglu, rope (offset and positions), attention (causal or not,
 * grouped KV heads, a KV cache with S > T, key masks that hide whole rows,
 * explicit scale, the [B, T, H, Dh] layout seen transposed) and
 * logprob_entropy (both outputs, or logp alone).
 *
 * The ops are referenced weakly: a libempo built without them yields a
 * "SKIPPED (not built)" record, which check_torch.py counts as a failure. */
#include <stddef.h>
#include "parity_gen.h"

#pragma weak empo_rmsnorm
#pragma weak empo_rope
#pragma weak empo_attention
#pragma weak empo_swiglu
#pragma weak empo_logprob_entropy

static void rmsnorms(void) {
    struct { pg_shape x; pg_layout lx; pg_layout lw; double eps; } cases[] = {
        {{2, {4, 8}}, PG_PLAIN, PG_PLAIN, 1e-6},
        {{3, {2, 3, 16}}, PG_T, PG_NARROW, 1e-5},
        {{2, {3, 64}}, PG_SLICE, PG_PLAIN, 1e-6},
        {{3, {2, 5, 128}}, PG_PLAIN, PG_SLICE, 1e-6},
        {{1, {12}}, PG_NARROW, PG_PLAIN, 0.1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("rmsnorm");
        pg_param_f(c, "eps", cases[i].eps);
        int64_t D = cases[i].x.s[cases[i].x.nd - 1];
        empo_tensor *x = pg_input(c, "x", cases[i].x.nd, cases[i].x.s, cases[i].lx, pg_unif(-2, 2));
        empo_tensor *w = pg_input(c, "weight", 1, &D, cases[i].lw, pg_unif(0.5, 1.5));
        empo_tensor *y = NULL;
        int st = empo_rmsnorm(&y, x, w, cases[i].eps);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void swiglus(void) {
    struct { pg_shape s; pg_layout lg, lu; } cases[] = {
        {{2, {4, 6}}, PG_PLAIN, PG_PLAIN},
        {{3, {2, 3, 8}}, PG_T, PG_NARROW},
        {{2, {64, 300}}, PG_PLAIN, PG_PLAIN},
        {{2, {5, 7}}, PG_SLICE, PG_T},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("swiglu");
        empo_tensor *g = pg_input(c, "gate", cases[i].s.nd, cases[i].s.s, cases[i].lg, pg_unif(-4, 4));
        empo_tensor *u = pg_input(c, "up", cases[i].s.nd, cases[i].s.s, cases[i].lu, pg_unif(-2, 2));
        empo_tensor *y = NULL;
        int st = empo_swiglu(&y, g, u);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void ropes(void) {
    /* positions: 0 none (offset + t), 1 per batch row [B, T], 2 shared [T] */
    struct { pg_shape x; pg_layout lx; int pos; int64_t offset, max_pos; double theta; } cases[] = {
        {{4, {2, 3, 5, 8}}, PG_PLAIN, 0, 0, 0, 10000.0},
        {{4, {2, 3, 5, 8}}, PG_SWAP(1, 2), 0, 7, 0, 1e6},        /* [B, T, H, Dh] seen as [B, H, T, Dh] */
        {{4, {2, 2, 6, 16}}, PG_PLAIN, 1, 0, 50, 10000.0},
        {{4, {1, 2, 4, 16}}, PG_T, 2, 0, 50, 10000.0},
        {{4, {1, 2, 3, 64}}, PG_NARROW, 0, 1000, 0, 10000.0},    /* long positions: f32 angles */
        {{4, {2, 4, 5, 64}}, PG_SWAP(1, 2), 1, 0, 4096, 1e6},
        {{4, {1, 1, 3, 2}}, PG_PLAIN, 0, 2, 0, 10000.0},          /* Dh = 2 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("rope");
        pg_param_i(c, "offset", cases[i].offset);
        pg_param_f(c, "theta", cases[i].theta);
        const int64_t *s = cases[i].x.s;
        empo_tensor *x = pg_input(c, "x", 4, s, cases[i].lx, pg_unif(-1, 1)), *pos = NULL;
        if (cases[i].pos == 1) pos = pg_ints(c, "positions", 2, (int64_t[]){s[0], s[2]}, EMPO_I64, 0, cases[i].max_pos);
        if (cases[i].pos == 2) pos = pg_ints(c, "positions", 1, &s[2], EMPO_I64, 0, cases[i].max_pos);
        empo_tensor *y = NULL;
        int st = empo_rope(&y, x, pos, cases[i].offset, cases[i].theta);
        pg_output(c, y);
        pg_end(c, st);
    }
}

/* key masks, row-major [B, S], for the cases below */
static const int64_t MASK_A[] = {1, 1, 0, 1, 1, 1, 0,    /* b = 0 */
                                 0, 0, 0, 0, 0, 1, 1};   /* b = 1: causal query t = 0 sees nothing */
static const int64_t MASK_B[] = {1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
static const int64_t MASK_C[] = {0, 0, 0, 0, 1, 1, 1, 1, 1,
                                 1, 1, 1, 1, 1, 1, 1, 1, 0};
static const int64_t MASK_D[] = {1, 1, 0, 1, 0, 0, 0, 0};   /* b = 1 sees no key at all */

static void attentions(void) {
    struct {
        int B, Hq, Hkv, T, S, Dh, causal;
        double scale;
        const int64_t *mask;
        int mask_dtype;
        pg_layout lq, lkv;
    } cases[] = {
        {2, 4, 2, 5, 5, 8, 1, 0.0, NULL, 0, PG_PLAIN, PG_PLAIN},
        {2, 4, 2, 5, 5, 8, 0, 0.0, NULL, 0, PG_PLAIN, PG_PLAIN},
        {1, 4, 1, 6, 6, 4, 0, 0.0, NULL, 0, PG_PLAIN, PG_PLAIN},              /* GQA 4/1 */
        {1, 4, 1, 6, 6, 4, 1, 0.0, NULL, 0, PG_PLAIN, PG_PLAIN},
        {2, 4, 2, 3, 7, 8, 1, 0.0, NULL, 0, PG_PLAIN, PG_PLAIN},              /* KV cache: S > T */
        {2, 4, 2, 3, 7, 8, 1, 0.0, MASK_A, EMPO_U8, PG_PLAIN, PG_PLAIN},     /* rows with nothing visible */
        {2, 4, 2, 3, 7, 8, 0, 0.3, MASK_A, EMPO_I64, PG_PLAIN, PG_PLAIN},    /* explicit scale */
        {2, 2, 2, 4, 6, 8, 0, 0.5, MASK_B, EMPO_F32, PG_SWAP(1, 2), PG_SWAP(1, 2)},
        {2, 4, 2, 5, 5, 8, 1, 0.0, NULL, 0, PG_SWAP(1, 2), PG_SWAP(1, 2)},    /* [B, T, H, Dh] layout */
        {2, 4, 2, 1, 9, 8, 1, 0.0, MASK_C, EMPO_U8, PG_PLAIN, PG_NARROW},    /* one decode step */
        {2, 2, 1, 3, 4, 8, 0, 0.0, MASK_D, EMPO_U8, PG_PLAIN, PG_PLAIN},
        {1, 2, 1, 1, 1, 8, 1, 0.0, NULL, 0, PG_PLAIN, PG_PLAIN},              /* T = S = 1 */
        {2, 3, 3, 4, 4, 5, 1, 0.0, NULL, 0, PG_NARROW, PG_T},                /* odd Dh */
        {1, 4, 2, 70, 70, 16, 1, 0.0, NULL, 0, PG_PLAIN, PG_PLAIN},          /* more than one block */
        {1, 4, 4, 20, 90, 16, 1, 0.0, NULL, 0, PG_T, PG_PLAIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("attention");
        int64_t B = cases[i].B, T = cases[i].T, S = cases[i].S, Dh = cases[i].Dh;
        pg_param_i(c, "causal", cases[i].causal);
        pg_param_f(c, "scale", cases[i].scale);
        empo_tensor *q = pg_input(c, "q", 4, (int64_t[]){B, cases[i].Hq, T, Dh}, cases[i].lq, pg_unif(-1.5, 1.5));
        empo_tensor *k = pg_input(c, "k", 4, (int64_t[]){B, cases[i].Hkv, S, Dh}, cases[i].lkv, pg_unif(-1.5, 1.5));
        empo_tensor *v = pg_input(c, "v", 4, (int64_t[]){B, cases[i].Hkv, S, Dh}, cases[i].lkv, pg_unif(-1, 1));
        empo_tensor *mask = NULL;
        if (cases[i].mask && cases[i].mask_dtype == EMPO_F32) {
            /* an f32 mask is a constant input; its values (0 or 1) must be exact */
            mask = pg_ints_of(c, "key_mask", 2, (int64_t[]){B, S}, EMPO_F32, cases[i].mask);
        } else if (cases[i].mask) {
            mask = pg_ints_of(c, "key_mask", 2, (int64_t[]){B, S}, cases[i].mask_dtype, cases[i].mask);
        }
        empo_tensor *y = NULL;
        int st = empo_attention(&y, q, k, v, cases[i].causal, cases[i].scale, mask);
        pg_output(c, y);
        pg_end(c, st);
    }
}

static void logprob_entropies(void) {
    struct { int64_t N, V; pg_layout l; double range; int both; } cases[] = {
        {6, 11, PG_PLAIN, 3, 1},
        {4, 1000, PG_PLAIN, 8, 1},
        {5, 7, PG_T, 3, 1},
        {3, 20, PG_NARROW, 3, 1},
        {4, 50, PG_SLICE, 5, 0},       /* logp alone */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_case *c = pg_begin("logprob_entropy");
        pg_param_i(c, "entropy", cases[i].both);
        empo_tensor *logits = pg_input(c, "logits", 2, (int64_t[]){cases[i].N, cases[i].V}, cases[i].l,
                                       pg_unif(-cases[i].range, cases[i].range));
        empo_tensor *ids = pg_ints(c, "ids", 1, &cases[i].N, EMPO_I64, 0, cases[i].V);
        empo_tensor *lp = NULL, *ent = NULL;
        int st = empo_logprob_entropy(&lp, cases[i].both ? &ent : NULL, logits, ids);
        pg_output(c, lp);
        pg_output(c, ent);
        pg_end(c, st);
    }
    /* banned tokens: logits -inf at every third entry, never at ids */
    int64_t N = 6, V = 9, ids[6];
    for (int64_t n = 0; n < N; n++) ids[n] = (2 * n) % 9 % 3 == 1 ? (2 * n) % 9 + 1 : (2 * n) % 9;
    pg_case *c = pg_begin("logprob_entropy");
    pg_param_i(c, "entropy", 1);
    empo_tensor *logits = pg_input(c, "logits", 2, (int64_t[]){N, V}, PG_PLAIN, pg_banned(-3, 3));
    empo_tensor *id = pg_ints_of(c, "ids", 1, &N, EMPO_I64, ids), *lp = NULL, *ent = NULL;
    int st = empo_logprob_entropy(&lp, &ent, logits, id);
    pg_output(c, lp);
    pg_output(c, ent);
    pg_end(c, st);
}

void pg_cases_fused(void) {
    if (empo_rmsnorm) rmsnorms(); else pg_skip("rmsnorm");
    if (empo_swiglu) swiglus(); else pg_skip("swiglu");
    if (empo_rope) ropes(); else pg_skip("rope");
    if (empo_attention) attentions(); else pg_skip("attention");
    if (empo_logprob_entropy) logprob_entropies(); else pg_skip("logprob_entropy");
}
