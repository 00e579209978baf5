/* ref/elementwise.c — naive references for the elementwise kernels: one
 * element at a time, in double, straight from the definitions. */
#include <math.h>
#include "kernels/elementwise.h"

static double binary(int op, double a, double b) {
    switch (op) {
    case EMPO_BIN_ADD: return a + b;
    case EMPO_BIN_SUB: return a - b;
    case EMPO_BIN_MUL: return a * b;
    case EMPO_BIN_DIV: return a / b;
    case EMPO_BIN_POW: return pow(a, b);
    case EMPO_BIN_MAX: return a > b || isnan(a) ? a : b;
    case EMPO_BIN_MIN: return a < b || isnan(a) ? a : b;
    case EMPO_BIN_EQ: return a == b;
    case EMPO_BIN_LT: return a < b;
    default: return a > b;
    }
}

void empo_ref_binary_f32(int op, float *out, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)binary(op, a[i * sa], b[i * sb]);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static const double SQRT_2_OVER_PI = 0.7978845608028654, GELU_C = 0.044715;

static double unary(int op, double x, double p0, double p1) {
    switch (op) {
    case EMPO_UN_NEG: return -x;
    case EMPO_UN_EXP: return exp(x);
    case EMPO_UN_LOG: return log(x);
    case EMPO_UN_SQRT: return sqrt(x);
    case EMPO_UN_RSQRT: return 1.0 / sqrt(x);
    case EMPO_UN_TANH: return tanh(x);
    case EMPO_UN_SIGMOID: return sigmoid(x);
    case EMPO_UN_SILU: return x * sigmoid(x);
    case EMPO_UN_RELU: return x > 0 ? x : 0;
    case EMPO_UN_ABS: return fabs(x);
    case EMPO_UN_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case EMPO_UN_GELU_TANH: return 0.5 * x * (1 + tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
    case EMPO_UN_ADD_S: return x + p0;
    case EMPO_UN_MUL_S: return x * p0;
    case EMPO_UN_POW_S: return pow(x, p0);
    case EMPO_UN_RSUB_S: return p0 - x;
    case EMPO_UN_RDIV_S: return p0 / x;
    default: return x < p0 ? p0 : (x > p1 ? p1 : x);   /* clamp */
    }
}

void empo_ref_unary_f32(int op, float *out, const float *x, int64_t n, float p0, float p1) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)unary(op, x[i], p0, p1);
}

static double derivative(int op, double x, double y, double p0, double p1) {
    switch (op) {
    case EMPO_UN_NEG: return -1;
    case EMPO_UN_EXP: return exp(x);
    case EMPO_UN_LOG: return 1 / x;
    case EMPO_UN_SQRT: return 0.5 / sqrt(x);
    case EMPO_UN_RSQRT: return -0.5 * pow(x, -1.5);
    case EMPO_UN_TANH: return 1 - tanh(x) * tanh(x);
    case EMPO_UN_SIGMOID: return sigmoid(x) * (1 - sigmoid(x));
    case EMPO_UN_SILU: return sigmoid(x) * (1 + x * (1 - sigmoid(x)));
    case EMPO_UN_RELU: return x > 0;
    case EMPO_UN_ABS: return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case EMPO_UN_GELU: return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
    case EMPO_UN_GELU_TANH: {
        double u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x), t = tanh(u);
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * x * x);
    }
    case EMPO_UN_ADD_S: return 1;
    case EMPO_UN_MUL_S: return p0;
    case EMPO_UN_POW_S: return p0 == 0 ? 0 : p0 * pow(x, p0 - 1);
    case EMPO_UN_RSUB_S: return -1;
    case EMPO_UN_RDIV_S: return -p0 / (x * x);
    default: return x >= p0 && x <= p1;
    }
}

void empo_ref_unary_backward_f32(int op, float *gx, const float *g, const float *x, const float *y, int64_t n,
                                 float p0, float p1) {
    for (int64_t i = 0; i < n; i++) gx[i] = (float)(g[i] * derivative(op, x[i], y[i], p0, p1));
}
