/* cpu/elementwise.c — fast elementwise kernels. Each public kernel switches
 * on the op once and runs a loop specialised for it (always_inline makes
 * the op a constant inside the loop, so the loop vectorises). */
#include <math.h>
#include "kernels/elementwise.h"

#define INLINE static inline __attribute__((always_inline))

INLINE float binop(int op, float a, float b) {
    switch (op) {
    case EMPO_BIN_ADD: return a + b;
    case EMPO_BIN_SUB: return a - b;
    case EMPO_BIN_MUL: return a * b;
    case EMPO_BIN_DIV: return a / b;
    case EMPO_BIN_POW: return powf(a, b);
    case EMPO_BIN_MAX: return a > b || a != a ? a : b;
    case EMPO_BIN_MIN: return a < b || a != a ? a : b;
    case EMPO_BIN_EQ: return a == b ? 1.0f : 0.0f;
    case EMPO_BIN_LT: return a < b ? 1.0f : 0.0f;
    default: return a > b ? 1.0f : 0.0f;
    }
}

INLINE void binary_loop(int op, float *restrict out, const float *a, int64_t sa, const float *b, int64_t sb,
                        int64_t n) {
    if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; i++) out[i] = binop(op, a[i], b[i]);
    } else if (sa == 1 && sb == 0) {
        float bv = b[0];
        for (int64_t i = 0; i < n; i++) out[i] = binop(op, a[i], bv);
    } else if (sa == 0 && sb == 1) {
        float av = a[0];
        for (int64_t i = 0; i < n; i++) out[i] = binop(op, av, b[i]);
    } else {
        for (int64_t i = 0; i < n; i++) out[i] = binop(op, a[i * sa], b[i * sb]);
    }
}

void empo_k_binary_f32(int op, float *out, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n) {
    switch (op) {
    case EMPO_BIN_ADD: binary_loop(EMPO_BIN_ADD, out, a, sa, b, sb, n); break;
    case EMPO_BIN_SUB: binary_loop(EMPO_BIN_SUB, out, a, sa, b, sb, n); break;
    case EMPO_BIN_MUL: binary_loop(EMPO_BIN_MUL, out, a, sa, b, sb, n); break;
    case EMPO_BIN_DIV: binary_loop(EMPO_BIN_DIV, out, a, sa, b, sb, n); break;
    case EMPO_BIN_POW: binary_loop(EMPO_BIN_POW, out, a, sa, b, sb, n); break;
    case EMPO_BIN_MAX: binary_loop(EMPO_BIN_MAX, out, a, sa, b, sb, n); break;
    case EMPO_BIN_MIN: binary_loop(EMPO_BIN_MIN, out, a, sa, b, sb, n); break;
    case EMPO_BIN_EQ: binary_loop(EMPO_BIN_EQ, out, a, sa, b, sb, n); break;
    case EMPO_BIN_LT: binary_loop(EMPO_BIN_LT, out, a, sa, b, sb, n); break;
    default: binary_loop(EMPO_BIN_GT, out, a, sa, b, sb, n); break;
    }
}

INLINE float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
static const float SQRT_2_OVER_PI = 0.7978845608028654f, GELU_C = 0.044715f, INV_SQRT2 = 0.70710678118654752f;

INLINE float unop(int op, float x, float p0, float p1) {
    switch (op) {
    case EMPO_UN_NEG: return -x;
    case EMPO_UN_EXP: return expf(x);
    case EMPO_UN_LOG: return logf(x);
    case EMPO_UN_SQRT: return sqrtf(x);
    case EMPO_UN_RSQRT: return 1.0f / sqrtf(x);
    case EMPO_UN_TANH: return tanhf(x);
    case EMPO_UN_SIGMOID: return sigmoidf(x);
    case EMPO_UN_SILU: return x * sigmoidf(x);
    case EMPO_UN_RELU: return x > 0 ? x : 0.0f;
    case EMPO_UN_ABS: return fabsf(x);
    case EMPO_UN_GELU: return 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    case EMPO_UN_GELU_TANH: return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
    case EMPO_UN_ADD_S: return x + p0;
    case EMPO_UN_MUL_S: return x * p0;
    case EMPO_UN_POW_S: return p0 == 2.0f ? x * x : powf(x, p0);
    case EMPO_UN_RSUB_S: return p0 - x;
    case EMPO_UN_RDIV_S: return p0 / x;
    default: return x < p0 ? p0 : (x > p1 ? p1 : x);
    }
}

#define UNARY_CASE(OP) case OP: for (int64_t i = 0; i < n; i++) out[i] = unop(OP, x[i], p0, p1); break

void empo_k_unary_f32(int op, float *restrict out, const float *x, int64_t n, float p0, float p1) {
    switch (op) {
    UNARY_CASE(EMPO_UN_NEG); UNARY_CASE(EMPO_UN_EXP); UNARY_CASE(EMPO_UN_LOG); UNARY_CASE(EMPO_UN_SQRT);
    UNARY_CASE(EMPO_UN_RSQRT); UNARY_CASE(EMPO_UN_TANH); UNARY_CASE(EMPO_UN_SIGMOID); UNARY_CASE(EMPO_UN_SILU);
    UNARY_CASE(EMPO_UN_RELU); UNARY_CASE(EMPO_UN_ABS); UNARY_CASE(EMPO_UN_GELU); UNARY_CASE(EMPO_UN_GELU_TANH);
    UNARY_CASE(EMPO_UN_ADD_S); UNARY_CASE(EMPO_UN_MUL_S); UNARY_CASE(EMPO_UN_POW_S); UNARY_CASE(EMPO_UN_RSUB_S);
    UNARY_CASE(EMPO_UN_RDIV_S);
    default: for (int64_t i = 0; i < n; i++) out[i] = unop(EMPO_UN_CLAMP, x[i], p0, p1); break;
    }
}

/* d op / dx, using y = op(x) where that is cheaper */
INLINE float dunop(int op, float x, float y, float p0, float p1) {
    switch (op) {
    case EMPO_UN_NEG: return -1.0f;
    case EMPO_UN_EXP: return y;
    case EMPO_UN_LOG: return 1.0f / x;
    case EMPO_UN_SQRT: return 0.5f / y;
    case EMPO_UN_RSQRT: return -0.5f * y * y * y;
    case EMPO_UN_TANH: return 1.0f - y * y;
    case EMPO_UN_SIGMOID: return y * (1.0f - y);
    case EMPO_UN_SILU: { float s = sigmoidf(x); return s * (1.0f + x * (1.0f - s)); }
    case EMPO_UN_RELU: return x > 0 ? 1.0f : 0.0f;
    case EMPO_UN_ABS: return x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f);
    case EMPO_UN_GELU:
        return 0.5f * (1.0f + erff(x * INV_SQRT2)) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
    case EMPO_UN_GELU_TANH: {
        float t = tanhf(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * x * x);
    }
    case EMPO_UN_ADD_S: return 1.0f;
    case EMPO_UN_MUL_S: return p0;
    case EMPO_UN_POW_S: return p0 == 0.0f ? 0.0f : (p0 == 2.0f ? 2.0f * x : p0 * powf(x, p0 - 1.0f));
    case EMPO_UN_RSUB_S: return -1.0f;
    case EMPO_UN_RDIV_S: return -p0 / (x * x);
    default: return x >= p0 && x <= p1 ? 1.0f : 0.0f;
    }
}

#define DUNARY_CASE(OP) case OP: for (int64_t i = 0; i < n; i++) gx[i] = g[i] * dunop(OP, x[i], y[i], p0, p1); break

void empo_k_unary_backward_f32(int op, float *restrict gx, const float *g, const float *x, const float *y, int64_t n,
                               float p0, float p1) {
    switch (op) {
    DUNARY_CASE(EMPO_UN_NEG); DUNARY_CASE(EMPO_UN_EXP); DUNARY_CASE(EMPO_UN_LOG); DUNARY_CASE(EMPO_UN_SQRT);
    DUNARY_CASE(EMPO_UN_RSQRT); DUNARY_CASE(EMPO_UN_TANH); DUNARY_CASE(EMPO_UN_SIGMOID); DUNARY_CASE(EMPO_UN_SILU);
    DUNARY_CASE(EMPO_UN_RELU); DUNARY_CASE(EMPO_UN_ABS); DUNARY_CASE(EMPO_UN_GELU); DUNARY_CASE(EMPO_UN_GELU_TANH);
    DUNARY_CASE(EMPO_UN_ADD_S); DUNARY_CASE(EMPO_UN_MUL_S); DUNARY_CASE(EMPO_UN_POW_S); DUNARY_CASE(EMPO_UN_RSUB_S);
    DUNARY_CASE(EMPO_UN_RDIV_S);
    default: for (int64_t i = 0; i < n; i++) gx[i] = g[i] * dunop(EMPO_UN_CLAMP, x[i], y[i], p0, p1); break;
    }
}
