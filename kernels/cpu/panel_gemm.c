/* panel_gemm.c — the decode step's products (kernels/panel_gemm.h): tiles
 * of 6 weight rows x 16 lanes in twelve AVX registers. Per step of k a
 * tile broadcasts one element of each of its 6 weight rows and loads one
 * panel row (two vectors): 12 FMAs for 8 loads. The weight rows are read
 * where they lie (6 sequential streams); while a strip is reused for the
 * panels after its first, the next strip's rows are prefetched, one cache
 * line per row every 16 steps, spread over the panels. With bf16 weights
 * (the _bf16 entry points) a 32-bit broadcast brings two neighbouring
 * weights of a row: a shift widens the first to f32, a mask the second,
 * and the chain goes on in the same order. */
#include <immintrin.h>
#include <string.h>
#include "kernels/panel_gemm.h"
#include "vec_math.h"

enum { R = EMPO_PANEL_STRIP, L = EMPO_PANEL, LINE = 16 /* floats per cache line */, WIDEN_DEPTH = 10240 };

void empo_k_panel_pack(float *xp, const float *x, int64_t M, int64_t K, int64_t ldx, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
        float *d = xp + p * K * L;
        const int64_t nm = empo_panel_start(d, p, M, K);
        for (int64_t i = 0; i < nm; i++) {
            const float *s = x + (p * L + i) * ldx;
            for (int64_t k = 0; k < K; k++) d[k * L + i] = s[k];
        }
    }
}

/* c[r] = sum_k w[r][k] xp[k][0..15] (lanes 0-7, 8-15) for the 6 rows
 * w[0..5] (f32, or with bf16 uint16_t); prefetches the npf rows pf[]
 * along the way. Inlined into its callers, so c stays in registers.
 * wide = 0 (a panel with at most 8 rows: a batch of few sequences)
 * computes lanes 0-7 only, the same arithmetic per lane, and gives zeros
 * for 8-15. */
static inline __attribute__((always_inline)) void tile(__m256 c[R][2], const void *const w[R], const float *xp,
                                                       int64_t K, const void *const *pf, int npf, const int wide,
                                                       const int bf16) {
    __m256 a0[R], a1[R];   /* local and never addressed: GCC keeps them in registers (c would be spilled) */
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) a0[r] = a1[r] = _mm256_setzero_ps();
    if (!bf16) {
        for (int64_t k = 0; k < K; k++) {
            if ((k & (LINE - 1)) == 0)
                for (int i = 0; i < npf; i++) _mm_prefetch((const char *)((const float *)pf[i] + k), _MM_HINT_T0);
            const __m256 b0 = _mm256_loadu_ps(xp + k * L), b1 = wide ? _mm256_loadu_ps(xp + k * L + 8) : b0;
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                const __m256 a = _mm256_broadcast_ss((const float *)w[r] + k);
                a0[r] = _mm256_fmadd_ps(a, b0, a0[r]);
                if (wide) a1[r] = _mm256_fmadd_ps(a, b1, a1[r]);
            }
        }
    } else {
        const __m256 high = _mm256_castsi256_ps(_mm256_set1_epi32((int)0xFFFF0000u));
        int64_t k = 0;
        for (; k + 1 < K; k += 2) {
            if ((k & (2 * LINE - 1)) == 0)   /* a line holds 32 bf16 weights */
                for (int i = 0; i < npf; i++) _mm_prefetch((const char *)((const uint16_t *)pf[i] + k), _MM_HINT_T0);
            __m256 b0 = _mm256_loadu_ps(xp + k * L), b1 = wide ? _mm256_loadu_ps(xp + k * L + 8) : b0;
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {   /* weight k: the pair's low half, shifted up */
                const __m256 pair = _mm256_broadcast_ss((const float *)((const uint16_t *)w[r] + k));
                const __m256 a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(pair), 16));
                a0[r] = _mm256_fmadd_ps(a, b0, a0[r]);
                if (wide) a1[r] = _mm256_fmadd_ps(a, b1, a1[r]);
            }
            b0 = _mm256_loadu_ps(xp + (k + 1) * L), b1 = wide ? _mm256_loadu_ps(xp + (k + 1) * L + 8) : b0;
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {   /* weight k + 1: its high half, as it lies */
                const __m256 pair = _mm256_broadcast_ss((const float *)((const uint16_t *)w[r] + k));
                const __m256 a = _mm256_and_ps(pair, high);
                a0[r] = _mm256_fmadd_ps(a, b0, a0[r]);
                if (wide) a1[r] = _mm256_fmadd_ps(a, b1, a1[r]);
            }
        }
        if (k < K) {   /* an odd depth's last weight: read alone (reading a pair would pass the row's end) */
            const __m256 b0 = _mm256_loadu_ps(xp + k * L), b1 = wide ? _mm256_loadu_ps(xp + k * L + 8) : b0;
            for (int r = 0; r < R; r++) {
                const uint32_t bits = (uint32_t)((const uint16_t *)w[r])[k] << 16;
                const __m256 a = _mm256_castsi256_ps(_mm256_set1_epi32((int)bits));
                a0[r] = _mm256_fmadd_ps(a, b0, a0[r]);
                if (wide) a1[r] = _mm256_fmadd_ps(a, b1, a1[r]);
            }
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) c[r][0] = a0[r], c[r][1] = a1[r];
}

/* r[0..7] (rows) -> r[i] = column i: the usual unpack / shuffle / lane swap */
static inline __attribute__((always_inline)) void transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

typedef struct {
    float *y;
    int64_t ldy, M;   /* ldy: a row's stride, or (panels) a panel's */
    int accumulate, panels;
    const float *bias;
} linear_ctx;

/* The tile as it lies: output column n + r of panel p is 16 lanes of y
 * (the same additions as linear_out, so the same bits). */
static inline __attribute__((always_inline)) void panel_out(const linear_ctx *x, __m256 c[R][2], int64_t n, int nr,
                                                            int64_t p) {
    for (int r = 0; r < nr; r++) {
        float *y = x->y + p * x->ldy + (n + r) * L;
        __m256 lo = c[r][0], hi = c[r][1];
        if (x->bias) {
            const __m256 b = _mm256_broadcast_ss(x->bias + n + r);
            lo = _mm256_add_ps(lo, b), hi = _mm256_add_ps(hi, b);
        }
        if (x->accumulate) lo = _mm256_add_ps(_mm256_loadu_ps(y), lo), hi = _mm256_add_ps(_mm256_loadu_ps(y + 8), hi);
        _mm256_storeu_ps(y, lo);
        _mm256_storeu_ps(y + 8, hi);
    }
}

/* The tile transposed in registers (rows 6, 7 zero): one vector per lane
 * holding its nr outputs. A full strip's 6 go out as 4 + 2 floats (AMD's
 * masked stores are microcoded: ~4x slower here); a last, shorter strip
 * one by one. */
static inline __attribute__((always_inline)) void linear_out(const linear_ctx *x, __m256 c[R][2], int64_t n, int nr,
                                                             int64_t p) {
    const int64_t m0 = p * L, nm = x->M - m0 < L ? x->M - m0 : L;
    float b[8] = {0};
    if (x->bias)
        for (int r = 0; r < nr; r++) b[r] = x->bias[n + r];
    const __m128 b0 = _mm_loadu_ps(b), b1 = _mm_loadu_ps(b + 4);
    for (int half = 0; half < 2 && half * 8 < nm; half++) {
        __m256 v[8];
        for (int r = 0; r < R; r++) v[r] = c[r][half];
        v[6] = v[7] = _mm256_setzero_ps();
        transpose8(v);
        for (int i = 0; i < 8 && half * 8 + i < nm; i++) {
            float *y = x->y + (m0 + half * 8 + i) * x->ldy + n;
            __m128 lo = _mm256_castps256_ps128(v[i]), hi = _mm256_extractf128_ps(v[i], 1);
            if (x->bias) lo = _mm_add_ps(lo, b0), hi = _mm_add_ps(hi, b1);
            if (nr == R) {
                if (x->accumulate) {
                    lo = _mm_add_ps(_mm_loadu_ps(y), lo);
                    hi = _mm_add_ps(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i_u *)(y + 4))), hi);
                }
                _mm_storeu_ps(y, lo);
                _mm_storel_epi64((__m128i_u *)(y + 4), _mm_castps_si128(hi));
            } else {
                float o[8];
                _mm_storeu_ps(o, lo);
                _mm_storeu_ps(o + 4, hi);
                for (int r = 0; r < nr; r++) y[r] = x->accumulate ? y[r] + o[r] : o[r];
            }
        }
    }
}

typedef struct {
    float *sp;
    int64_t F;
} swiglu_ctx;

/* rows 0..2 of the tile are gate rows f..f+2, rows 3..5 the matching up
 * rows: SwiGLU straight from the registers */
static inline __attribute__((always_inline)) void swiglu_out(const swiglu_ctx *x, __m256 c[R][2], int64_t f, int nr,
                                                             int64_t p) {
    for (int r = 0; r < nr; r++) {
        float *s = x->sp + (p * x->F + f + r) * L;
        _mm256_storeu_ps(s, empo_swiglu8(c[r][0], c[EMPO_PANEL_PAIRS + r][0]));
        _mm256_storeu_ps(s + 8, empo_swiglu8(c[r][1], c[EMPO_PANEL_PAIRS + r][1]));
    }
}

/* a tile's outputs, as the product or SwiGLU wants them */
static inline __attribute__((always_inline)) void epilogue(const linear_ctx *lin, const swiglu_ctx *glu,
                                                           __m256 c[R][2], int64_t n, int nr, int64_t p) {
    if (glu) swiglu_out(glu, c, n, nr, p);
    else if (lin->panels) panel_out(lin, c, n, nr, p);
    else linear_out(lin, c, n, nr, p);
}

#ifdef __AVX512F__
/* The tile for the AVX-512 build: a panel row is one 16-lane register, and
 * two panels (x0, and x1 when `two`) share each weight broadcast, so 12
 * independent chains hide the FMA latency. f32 weights only. Each output
 * is the same FMA chain over k as tile()'s, so the same bits; the results
 * leave as tile()'s halves for the same epilogues. */
static inline __attribute__((always_inline)) void tile16(__m256 c0[R][2], __m256 c1[R][2], const void *const w[R],
                                                         const float *x0p, const float *x1p, int64_t K,
                                                         const void *const *pf, int npf, const int two) {
    __m512 a[R], b[R];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) a[r] = b[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        if ((k & (LINE - 1)) == 0)
            for (int i = 0; i < npf; i++) _mm_prefetch((const char *)((const float *)pf[i] + k), _MM_HINT_T0);
        const __m512 x0 = _mm512_loadu_ps(x0p + k * L), x1 = two ? _mm512_loadu_ps(x1p + k * L) : x0;
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m512 s = _mm512_set1_ps(((const float *)w[r])[k]);
            a[r] = _mm512_fmadd_ps(s, x0, a[r]);
            if (two) b[r] = _mm512_fmadd_ps(s, x1, b[r]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        c0[r][0] = _mm512_castps512_ps256(a[r]), c0[r][1] = _mm512_extractf32x8_ps(a[r], 1);
        c1[r][0] = _mm512_castps512_ps256(b[r]), c1[r][1] = _mm512_extractf32x8_ps(b[r], 1);
    }
}
#endif

/* Walks the strips of `rows` weight rows starting at rows n0, n0+rows, ..
 * below n1 (rows past n1 repeat the last one: computed, never stored) and
 * every panel, handing each tile to its epilogue: linear_out, or with
 * `second` (3 more rows per strip at the same offsets: SwiGLU's up rows
 * beside its gate rows) swiglu_out. Weights are f32, or bf16 (es = 2
 * bytes an element). Everything is inlined, so the accumulators never
 * leave the registers. */

/* bf16 rows of a strip widened to f32 (what tile() then reads as it
 * reads f32 weights): r rows of K at dst, 8 at a time */
static void widen_rows(float *dst, const void *const src[R], int64_t K) {
    for (int r = 0; r < R; r++) {
        const uint16_t *s = src[r];
        float *d = dst + r * K;
        int64_t k = 0;
        for (; k + 8 <= K; k += 8) {
            const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i_u *)(s + k)));
            _mm256_storeu_ps(d + k, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        }
        for (; k < K; k++) {
            const uint32_t bits = (uint32_t)s[k] << 16;
            memcpy(d + k, &bits, sizeof bits);
        }
    }
}

static inline __attribute__((always_inline)) void strips(const float *xp, int64_t M, int64_t K, const void *w,
                                                         const void *second, int rows, int64_t n0, int64_t n1,
                                                         const linear_ctx *lin, const swiglu_ctx *glu, const int bf16) {
    const int64_t P = empo_panels(M), row_bytes = K * (bf16 ? 2 : 4);
    const char *wb = w, *sb = second;
    /* bf16 at depths up to WIDEN_DEPTH: each strip widened once into f32
     * on the stack and read by the f32 tile from there (the widening then
     * costs once per strip, not once per panel); deeper ones widen in the
     * registers, where on AVX2 the mask and the pair leave too few of the
     * 16 registers for the 12 accumulators (spilled: 2-4x slower). 10240
     * covers Qwen2.5-1.5B's MLP (8960): a 240 KB strip, within the
     * threads' stacks and L2. */
    const int buffered = bf16 && K <= WIDEN_DEPTH;
    float widened[buffered ? R * K : 1];
    const void *wf[R];   /* its rows, where the tile reads them */
    for (int r = 0; r < R; r++) wf[r] = widened + (buffered ? r * K : 0);
    for (int64_t n = n0; n < n1; n += rows) {
        const int nr = n1 - n < rows ? (int)(n1 - n) : rows;
        const void *wr[R], *next[R];
        int nn = 0;
        for (int r = 0; r < rows; r++) {
            wr[r] = wb + (n + (r < nr ? r : nr - 1)) * row_bytes;
            if (n + rows + r < n1) next[nn++] = wb + (n + rows + r) * row_bytes;
        }
        if (second) {
            for (int r = 0; r < rows; r++) wr[rows + r] = sb + (n + (r < nr ? r : nr - 1)) * row_bytes;
            for (int r = 0; r < rows && n + rows + r < n1; r++) next[nn++] = sb + (n + rows + r) * row_bytes;
        }
        for (int64_t p = 0; p < P; p++) {
            /* panel p prefetches next-strip rows p, p + P, ...: all of them over the panels */
            const void *pf[2 * R];
            int npf = 0;
            for (int i = (int)p; i < nn; i += (int)P) pf[npf++] = next[i];
            __m256 c[R][2];
            const void *const *ws = buffered ? wf : wr;
            if (buffered && p == 0) widen_rows(widened, wr, K);
#ifdef __AVX512F__
            /* the AVX-512 build: full panels 16 lanes to a register, two at a time */
            if ((buffered || !bf16) && M - p * L > 8) {
                const int two = p + 1 < P && M - (p + 1) * L > 8;
                if (two)
                    for (int i = (int)p + 1; i < nn; i += (int)P) pf[npf++] = next[i];
                __m256 c1[R][2];
                tile16(c, c1, ws, xp + p * K * L, xp + (p + 1) * K * L, K, pf, npf, two);
                epilogue(lin, glu, c, n, nr, p);
                if (two) epilogue(lin, glu, c1, n, nr, ++p);
                continue;
            }
#endif
            /* constant flags at each call: every inlined tile holds one loop, whose 12 accumulators GCC
             * then keeps in the 16 AVX2 registers (a runtime flag inlined both loops, and it spilled
             * them to the stack: the bf16 decoder ran 4x slower than the f32 one at 0.5B) */
            const int wide = M - p * L > 8;
            if (bf16 && !buffered) {
                if (wide) tile(c, ws, xp + p * K * L, K, pf, npf, 1, 1);
                else tile(c, ws, xp + p * K * L, K, pf, npf, 0, 1);
            } else {
                if (wide) tile(c, ws, xp + p * K * L, K, pf, npf, 1, 0);
                else tile(c, ws, xp + p * K * L, K, pf, npf, 0, 0);
            }
            epilogue(lin, glu, c, n, nr, p);
        }
    }
}

/* the entry points: the product (rows or panels) and SwiGLU, each on f32 or bf16 weights */
static inline __attribute__((always_inline)) void linear(float *y, int64_t ldy, int accumulate, const float *xp,
                                                         int64_t M, int64_t K, const void *w, const float *bias,
                                                         int64_t n0, int64_t n1, int panels, const int bf16) {
    const linear_ctx c = {y, ldy, M, accumulate, panels, bias};
    strips(xp, M, K, w, NULL, R, n0, n1, &c, NULL, bf16);
}

static inline __attribute__((always_inline)) void swiglu(float *sp, int64_t F, const float *xp, int64_t M, int64_t K,
                                                         const void *wg, const void *wu, int64_t f0, int64_t f1,
                                                         const int bf16) {
    const swiglu_ctx c = {sp, F};
    strips(xp, M, K, wg, wu, EMPO_PANEL_PAIRS, f0, f1, NULL, &c, bf16);
}

void empo_k_panel_linear(float *y, int64_t ldy, int accumulate, const float *xp, int64_t M, int64_t K,
                         const float *w, const float *bias, int64_t n0, int64_t n1) {
    linear(y, ldy, accumulate, xp, M, K, w, bias, n0, n1, 0, 0);
}

void empo_k_panel_linear_panels(float *yp, int64_t ldp, int accumulate, const float *xp, int64_t M, int64_t K,
                                const float *w, const float *bias, int64_t n0, int64_t n1) {
    linear(yp, ldp, accumulate, xp, M, K, w, bias, n0, n1, 1, 0);
}

void empo_k_panel_swiglu(float *sp, int64_t F, const float *xp, int64_t M, int64_t K, const float *wg,
                         const float *wu, int64_t f0, int64_t f1) {
    swiglu(sp, F, xp, M, K, wg, wu, f0, f1, 0);
}

void empo_k_panel_linear_bf16(float *y, int64_t ldy, int accumulate, const float *xp, int64_t M, int64_t K,
                              const uint16_t *w, const float *bias, int64_t n0, int64_t n1) {
    linear(y, ldy, accumulate, xp, M, K, w, bias, n0, n1, 0, 1);
}

void empo_k_panel_linear_panels_bf16(float *yp, int64_t ldp, int accumulate, const float *xp, int64_t M, int64_t K,
                                     const uint16_t *w, const float *bias, int64_t n0, int64_t n1) {
    linear(yp, ldp, accumulate, xp, M, K, w, bias, n0, n1, 1, 1);
}

void empo_k_panel_swiglu_bf16(float *sp, int64_t F, const float *xp, int64_t M, int64_t K, const uint16_t *wg,
                              const uint16_t *wu, int64_t f0, int64_t f1) {
    swiglu(sp, F, xp, M, K, wg, wu, f0, f1, 1);
}
