/* convert.h — dtype conversion of contiguous elements, one definition for
 * the host and the GPU: bf16 and f16 rounded to nearest even (NaN stays
 * NaN, f16 overflow to inf), integers truncated toward zero, u8 the truth
 * of a value (nonzero is 1). core/base/dtype.c converts through these; the
 * convert slot runs them where the tensor lives:
 *   empo_ref_convert    kernels/ref/convert.c (every CPU table);
 *   the CUDA table's    kernels/cuda/convert.cu (a thread per element). */
#ifndef EMPO_KERNELS_CONVERT_H
#define EMPO_KERNELS_CONVERT_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "empo/tensor.h"
#include "kernels/host_device.h"

EMPO_HOST_DEVICE static inline float empo_bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

EMPO_HOST_DEVICE static inline uint16_t empo_bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   /* a quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

EMPO_HOST_DEVICE static inline float empo_f16_value(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
    float f;
    if (exp == 0) {   /* zero or subnormal: man * 2^-24, exact */
        f = (float)man * 5.9604644775390625e-08f;
        return sign ? -f : f;
    }
    uint32_t u = exp == 31 ? (sign | 0x7f800000u | (man << 13)) : (sign | ((exp + 112) << 23) | (man << 13));
    memcpy(&f, &u, 4);
    return f;
}

EMPO_HOST_DEVICE static inline uint16_t empo_f16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return sign | 0x7e00;   /* NaN */
    const float a = f < 0 ? -f : f;
    if (a >= 65520.0f) return sign | 0x7c00;                      /* overflow: inf */
    if (a < 6.103515625e-05f) return sign | (uint16_t)lrintf(a * 16777216.0f);   /* subnormal */
    uint32_t au = u & 0x7fffffffu;
    au += 0xfffu + ((au >> 13) & 1u);
    return sign | (uint16_t)(((au >> 23) - 112) << 10 | ((au >> 13) & 0x3ffu));
}

/* element i of p, as a double */
EMPO_HOST_DEVICE static inline double empo_element_load(const void *p, int dtype, int64_t i) {
    switch (dtype) {
    case EMPO_F32: return ((const float *)p)[i];
    case EMPO_F64: return ((const double *)p)[i];
    case EMPO_BF16: return empo_bf16_value(((const uint16_t *)p)[i]);
    case EMPO_F16: return empo_f16_value(((const uint16_t *)p)[i]);
    case EMPO_I32: return ((const int32_t *)p)[i];
    case EMPO_I64: return (double)((const int64_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}

EMPO_HOST_DEVICE static inline void empo_element_store(void *p, int dtype, int64_t i, double v) {
    switch (dtype) {
    case EMPO_F32: ((float *)p)[i] = (float)v; break;
    case EMPO_F64: ((double *)p)[i] = v; break;
    case EMPO_BF16: ((uint16_t *)p)[i] = empo_bf16_bits((float)v); break;
    case EMPO_F16: ((uint16_t *)p)[i] = empo_f16_bits((float)v); break;
    case EMPO_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case EMPO_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    default: ((uint8_t *)p)[i] = (uint8_t)(v != 0); break;
    }
}

/* element i of src into element i of dst: the same dtype bit for bit, i64
 * to i32 by keeping the low 32 bits, every other pair through a double */
EMPO_HOST_DEVICE static inline void empo_element_convert(void *dst, int dst_dtype, const void *src, int src_dtype,
                                                         int64_t i) {
    if (src_dtype == EMPO_I64 && (dst_dtype == EMPO_I32 || dst_dtype == EMPO_I64)) {
        const int64_t x = ((const int64_t *)src)[i];
        if (dst_dtype == EMPO_I32) ((int32_t *)dst)[i] = (int32_t)x;
        else ((int64_t *)dst)[i] = x;
        return;
    }
    if (src_dtype == dst_dtype && (src_dtype == EMPO_BF16 || src_dtype == EMPO_F16)) {
        ((uint16_t *)dst)[i] = ((const uint16_t *)src)[i];   /* (a NaN's payload kept) */
        return;
    }
    empo_element_store(dst, dst_dtype, i, empo_element_load(src, src_dtype, i));
}

/* dst[i] = src[i] in dst's dtype, i < n (the two arrays do not overlap) */
typedef void empo_convert_fn(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t n);
empo_convert_fn empo_ref_convert;

#endif
