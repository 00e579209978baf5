/* panel_gemm.c — the decode step's products (kernels/panel_gemm.h): tiles
 * of 6 weight rows x 16 lanes in twelve AVX registers. Per step of k a
 * tile broadcasts one element of each of its 6 weight rows and loads one
 * panel row (two vectors): 12 FMAs for 8 loads. The weight rows are read
 * where they lie (6 sequential streams); while a strip is reused for the
 * panels after its first, the next strip's rows are prefetched, one cache
 * line per row every 16 steps, spread over the panels. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf. */
#pragma GCC optimize("no-trapping-math")
#include <immintrin.h>
#include <string.h>
#include "fused.h"
#include "panel_gemm.h"

enum { R = EMPO_PANEL_STRIP, L = EMPO_PANEL, LINE = 16 /* floats per cache line */ };

void empo_k_panel_pack(float *xp, const float *x, int64_t M, int64_t K, int64_t ldx, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
        float *d = xp + p * K * L;
        const int64_t m0 = p * L, nm = M - m0 < L ? M - m0 : L;
        if (nm < L) memset(d, 0, sizeof(float) * (size_t)(K * L));
        for (int64_t i = 0; i < nm; i++) {
            const float *s = x + (m0 + i) * ldx;
            for (int64_t k = 0; k < K; k++) d[k * L + i] = s[k];
        }
    }
}

/* t[r][i] = sum_k w[r][k] xp[k][i] for the 6 rows w[0..5] and 16 lanes;
 * prefetches the npf rows pf[] along the way. */
static void tile(float t[R][L], const float *const w[R], const float *xp, int64_t K, const float *const *pf,
                 int npf) {
    __m256 c[R][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        if ((k & (LINE - 1)) == 0)
            for (int i = 0; i < npf; i++) _mm_prefetch((const char *)(pf[i] + k), _MM_HINT_T0);
        const __m256 b0 = _mm256_loadu_ps(xp + k * L), b1 = _mm256_loadu_ps(xp + k * L + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m256 a = _mm256_broadcast_ss(w[r] + k);
            c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(t[r], c[r][0]);
        _mm256_storeu_ps(t[r] + 8, c[r][1]);
    }
}

/* Walks the strips of `rows` weight rows starting at rows n0, n0+rows, ..
 * below n1 (rows past n1 repeat the last one: computed, never stored) and
 * every panel, calling out(ctx, t, n, nr, p) for each tile. `second`
 * (or NULL) gives 3 more rows per strip at the same offsets (SwiGLU's up
 * rows beside its gate rows). */
typedef void tile_out_fn(void *ctx, float t[R][L], int64_t n, int nr, int64_t p);

static void strips(const float *xp, int64_t M, int64_t K, const float *w, const float *second, int rows,
                   int64_t n0, int64_t n1, tile_out_fn *out, void *ctx) {
    const int64_t P = empo_panels(M);
    float t[R][L] __attribute__((aligned(32)));
    for (int64_t n = n0; n < n1; n += rows) {
        const int nr = n1 - n < rows ? (int)(n1 - n) : rows;
        const float *wr[R], *next[R];
        int nn = 0;
        for (int r = 0; r < rows; r++) {
            wr[r] = w + (n + (r < nr ? r : nr - 1)) * K;
            if (n + rows + r < n1) next[nn++] = w + (n + rows + r) * K;
        }
        if (second) {
            for (int r = 0; r < rows; r++) wr[rows + r] = second + (n + (r < nr ? r : nr - 1)) * K;
            for (int r = 0; r < rows && n + rows + r < n1; r++) next[nn++] = second + (n + rows + r) * K;
        }
        for (int64_t p = 0; p < P; p++) {
            /* panel p prefetches next-strip rows p, p + P, ...: all of them over the panels */
            const float *pf[R];
            int npf = 0;
            for (int i = (int)p; i < nn; i += (int)P) pf[npf++] = next[i];
            tile(t, wr, xp + p * K * L, K, pf, npf);
            out(ctx, t, n, nr, p);
        }
    }
}

typedef struct {
    float *y;
    int64_t ldy, M;
    int accumulate;
    const float *bias;
} linear_ctx;

static void linear_out(void *ctx, float t[R][L], int64_t n, int nr, int64_t p) {
    const linear_ctx *c = ctx;
    const int64_t m0 = p * L, nm = c->M - m0 < L ? c->M - m0 : L;
    for (int64_t i = 0; i < nm; i++) {
        float *y = c->y + (m0 + i) * c->ldy + n;
        for (int r = 0; r < nr; r++) {
            const float v = c->bias ? t[r][i] + c->bias[n + r] : t[r][i];
            y[r] = c->accumulate ? y[r] + v : v;
        }
    }
}

void empo_k_panel_linear(float *y, int64_t ldy, int accumulate, const float *xp, int64_t M, int64_t K,
                         const float *w, const float *bias, int64_t n0, int64_t n1) {
    linear_ctx c = {y, ldy, M, accumulate, bias};
    strips(xp, M, K, w, NULL, R, n0, n1, linear_out, &c);
}

typedef struct {
    float *sp;
    int64_t F;
} swiglu_ctx;

/* rows 0..2 of t are gate rows f..f+2, rows 3..5 the matching up rows */
static void swiglu_out(void *ctx, float t[R][L], int64_t f, int nr, int64_t p) {
    const swiglu_ctx *c = ctx;
    for (int r = 0; r < nr; r++) {
        float *s = c->sp + (p * c->F + f + r) * L;
        const float *g = t[r], *u = t[EMPO_PANEL_PAIRS + r];
#pragma omp simd
        for (int i = 0; i < L; i++) s[i] = g[i] * (1.0f / (1.0f + empo_k_expf(-g[i]))) * u[i];
    }
}

void empo_k_panel_swiglu(float *sp, int64_t F, const float *xp, int64_t M, int64_t K, const float *wg,
                         const float *wu, int64_t f0, int64_t f1) {
    swiglu_ctx c = {sp, F};
    strips(xp, M, K, wg, wu, EMPO_PANEL_PAIRS, f0, f1, swiglu_out, &c);
}
