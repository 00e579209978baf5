/* elementwise_math.h — what each elementwise op computes, in double,
 * straight from the definitions: the reference kernels
 * (ref/elementwise.c) and the CUDA ones (cuda/elementwise.cu) both call
 * these, so the two cannot disagree on a definition. */
#ifndef EMPO_KERNELS_ELEMENTWISE_MATH_H
#define EMPO_KERNELS_ELEMENTWISE_MATH_H
#include <math.h>
#include "kernels/elementwise.h"
#include "kernels/host_device.h"

EMPO_HOST_DEVICE static inline double empo_binary_value(int op, double a, double b) {
    switch (op) {
    case EMPO_BIN_ADD: return a + b;
    case EMPO_BIN_SUB: return a - b;
    case EMPO_BIN_MUL: return a * b;
    case EMPO_BIN_DIV: return a / b;
    case EMPO_BIN_POW: return pow(a, b);
    case EMPO_BIN_MAX: return a > b || a != a ? a : b;
    case EMPO_BIN_MIN: return a < b || a != a ? a : b;
    case EMPO_BIN_EQ: return a == b;
    case EMPO_BIN_LT: return a < b;
    default: return a > b;
    }
}

EMPO_HOST_DEVICE static inline double empo_sigmoid_value(double x) { return 1.0 / (1.0 + exp(-x)); }
#define EMPO_SQRT_2_OVER_PI 0.7978845608028654
#define EMPO_GELU_C 0.044715

EMPO_HOST_DEVICE static inline double empo_unary_value(int op, double x, double p0, double p1) {
    switch (op) {
    case EMPO_UN_NEG: return -x;
    case EMPO_UN_EXP: return exp(x);
    case EMPO_UN_LOG: return log(x);
    case EMPO_UN_SQRT: return sqrt(x);
    case EMPO_UN_RSQRT: return 1.0 / sqrt(x);
    case EMPO_UN_TANH: return tanh(x);
    case EMPO_UN_SIGMOID: return empo_sigmoid_value(x);
    case EMPO_UN_SILU: return x * empo_sigmoid_value(x);
    case EMPO_UN_RELU: return x > 0 ? x : 0;
    case EMPO_UN_ABS: return fabs(x);
    case EMPO_UN_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case EMPO_UN_GELU_TANH: return 0.5 * x * (1 + tanh(EMPO_SQRT_2_OVER_PI * (x + EMPO_GELU_C * x * x * x)));
    case EMPO_UN_ADD_S: return x + p0;
    case EMPO_UN_MUL_S: return x * p0;
    case EMPO_UN_POW_S: return pow(x, p0);
    case EMPO_UN_RSUB_S: return p0 - x;
    case EMPO_UN_RDIV_S: return p0 / x;
    default: return x < p0 ? p0 : (x > p1 ? p1 : x);   /* clamp */
    }
}

EMPO_HOST_DEVICE static inline double empo_unary_derivative(int op, double x, double y, double p0, double p1) {
    switch (op) {
    case EMPO_UN_NEG: return -1;
    case EMPO_UN_EXP: return exp(x);
    case EMPO_UN_LOG: return 1 / x;
    case EMPO_UN_SQRT: return 0.5 / sqrt(x);
    case EMPO_UN_RSQRT: return -0.5 * pow(x, -1.5);
    case EMPO_UN_TANH: return 1 - tanh(x) * tanh(x);
    case EMPO_UN_SIGMOID: return empo_sigmoid_value(x) * (1 - empo_sigmoid_value(x));
    case EMPO_UN_SILU: return empo_sigmoid_value(x) * (1 + x * (1 - empo_sigmoid_value(x)));
    case EMPO_UN_RELU: return x > 0;
    case EMPO_UN_ABS: return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case EMPO_UN_GELU: return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / 2.5066282746310002 /* sqrt(2 pi) */;
    case EMPO_UN_GELU_TANH: {
        double u = EMPO_SQRT_2_OVER_PI * (x + EMPO_GELU_C * x * x * x), t = tanh(u);
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * EMPO_SQRT_2_OVER_PI * (1 + 3 * EMPO_GELU_C * x * x);
    }
    case EMPO_UN_ADD_S: return 1;
    case EMPO_UN_MUL_S: return p0;
    case EMPO_UN_POW_S: return p0 == 0 ? 0 : p0 * pow(x, p0 - 1);
    case EMPO_UN_RSUB_S: return -1;
    case EMPO_UN_RDIV_S: return -p0 / (x * x);
    default: return x >= p0 && x <= p1;
    }
}

#endif
