/* fused_rope.c — fast CPU kernel for the rotary embedding (half-rotation
 * layout, f32), forward and backward. One (batch, token) pair per
 * task; cos/sin are computed once per position and applied to every head
 * (and to every batch row when the rows share positions).
 * The naive version is in kernels/ref/fused_rope.c. */
#include <math.h>
#include <stdlib.h>
#include "kernels/parallel.h"
#include "kernels/fused.h"
#include "fused_rows.h"

/* Rotates pairs i0 .. i0+m-1 of the H head rows of token (b, t) by the
 * angles whose cos/sin are cs/sn (m each): +angle forward, -angle backward
 * (sn negated: the transpose of a rotation is its inverse). */
static void rotate_token(float *out, const float *x, const float *cs, const float *sn, int64_t i0, int64_t m,
                         int64_t b, int64_t t, int64_t H, int64_t T, int64_t Dh) {
    const int64_t half = Dh / 2;
    for (int64_t h = 0; h < H; h++) {
        const int64_t row = ((b * H + h) * T + t) * Dh + i0;
        empo_rope_rotate(out + row, out + row + half, x + row, x + row + half, cs, sn, m);
    }
}

typedef struct {
    float *out;
    const float *x;
    const int64_t *pos;
    const float *table;          /* (T, 2, Dh/2) cos/sin when batch rows share positions, else NULL */
    int64_t H, T, Dh;
    double theta;
    float sign;
} rope_job;

static void rope_range(void *ctx, int64_t lo, int64_t hi) {
    enum { PAIRS = 64 };   /* cos/sin of one token computed a chunk at a time */
    rope_job *j = ctx;
    const int64_t half = j->Dh / 2;
    float cs[PAIRS], sn[PAIRS];
    for (int64_t bt = lo; bt < hi; bt++) {
        int64_t b = bt / j->T, t = bt % j->T;
        if (j->table) {
            const float *row = j->table + t * j->Dh;
            rotate_token(j->out, j->x, row, row + half, 0, half, b, t, j->H, j->T, j->Dh);
            continue;
        }
        for (int64_t i0 = 0; i0 < half; i0 += PAIRS) {
            const int64_t m = half - i0 < PAIRS ? half - i0 : PAIRS;
            empo_rope_cos_sin(cs, sn, j->pos[bt], i0, m, j->Dh, j->theta, j->sign);
            rotate_token(j->out, j->x, cs, sn, i0, m, b, t, j->H, j->T, j->Dh);
        }
    }
}

/* One (batch, token) per task. When every batch row has the same positions
 * (no left padding) the cos/sin of each position are computed once per
 * call, not once per row: trig was ~5% of a training step. */
static void rope_apply(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H,
                       int64_t T, int64_t Dh, double theta, float sign) {
    rope_job j = {.out = out, .x = x, .pos = pos, .H = H, .T = T, .Dh = Dh, .theta = theta, .sign = sign};
    int shared = B > 1;
    for (int64_t b = 1; b < B && shared; b++)
        for (int64_t t = 0; t < T && shared; t++) shared = pos[b * T + t] == pos[t];
    float *table = shared ? malloc(sizeof(float) * (size_t)(T * Dh)) : NULL;   /* NULL: per-row path */
    if (table) {
        for (int64_t t = 0; t < T; t++)
            empo_rope_cos_sin(table + t * Dh, table + t * Dh + Dh / 2, pos[t], 0, Dh / 2, Dh, theta, sign);
        j.table = table;
    }
    empo_parallel_for(B * T, B * H * T * Dh, rope_range, &j);
    free(table);
}

void empo_k_rope_forward(float *out, const float *x, const int64_t *pos, int64_t B, int64_t H,
                         int64_t T, int64_t Dh, double theta) {
    rope_apply(out, x, pos, B, H, T, Dh, theta, 1.0f);
}

void empo_k_rope_backward(float *dx, const float *dout, const int64_t *pos, int64_t B,
                          int64_t H, int64_t T, int64_t Dh, double theta) {
    rope_apply(dx, dout, pos, B, H, T, Dh, theta, -1.0f);
}
