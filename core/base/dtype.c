/* dtype.c — dtype names, sizes and element conversion (bf16/f16 included). */
#include <math.h>
#include <string.h>
#include "base/base_internal.h"

static const char *dtype_names[] = {"f32", "f64", "bf16", "f16", "i32", "i64", "u8"};
static const int dtype_sizes[] = {4, 8, 2, 2, 4, 8, 1};

const char *empo_dtype_name(int dtype) {
    if (dtype < 0 || dtype > EMPO_U8) return "?";
    return dtype_names[dtype];
}

int empo_dtype_size(int dtype) {
    if (dtype < 0 || dtype > EMPO_U8) return 0;
    return dtype_sizes[dtype];
}

int empo_is_float(int dtype) { return dtype >= EMPO_F32 && dtype <= EMPO_F16; }
int empo_is_int(int dtype) { return dtype >= EMPO_I32 && dtype <= EMPO_U8; }

float empo_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* round to nearest even; NaN stays NaN */
uint16_t empo_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float empo_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24);          /* zero or subnormal */
        return sign ? -f : f;
    }
    uint32_t u = exp == 31 ? (sign | 0x7f800000u | (man << 13))
                           : (sign | ((exp + 112) << 23) | (man << 13));
    memcpy(&f, &u, 4);
    return f;
}

uint16_t empo_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return sign | 0x7e00;      /* NaN */
    float a = fabsf(f);
    if (a >= 65520.0f) return sign | 0x7c00;                           /* overflow -> inf */
    if (a < 6.103515625e-05f) {                                         /* subnormal */
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    }
    uint32_t au = u & 0x7fffffffu;
    au += 0xfffu + ((au >> 13) & 1u);                                   /* round to nearest even */
    return sign | (uint16_t)(((au >> 23) - 112) << 10 | ((au >> 13) & 0x3ffu));
}

static double load(const void *p, int dtype, int64_t i) {
    switch (dtype) {
    case EMPO_F32: return ((const float *)p)[i];
    case EMPO_F64: return ((const double *)p)[i];
    case EMPO_BF16: return empo_bf16_to_f32(((const uint16_t *)p)[i]);
    case EMPO_F16: return empo_f16_to_f32(((const uint16_t *)p)[i]);
    case EMPO_I32: return ((const int32_t *)p)[i];
    case EMPO_I64: return (double)((const int64_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}

static void store(void *p, int dtype, int64_t i, double v) {
    switch (dtype) {
    case EMPO_F32: ((float *)p)[i] = (float)v; break;
    case EMPO_F64: ((double *)p)[i] = v; break;
    case EMPO_BF16: ((uint16_t *)p)[i] = empo_f32_to_bf16((float)v); break;
    case EMPO_F16: ((uint16_t *)p)[i] = empo_f32_to_f16((float)v); break;
    case EMPO_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case EMPO_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    default: ((uint8_t *)p)[i] = (uint8_t)(v != 0); break;
    }
}

void empo_convert(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t n) {
    if (dst_dtype == src_dtype) {
        memcpy(dst, src, (size_t)n * (size_t)empo_dtype_size(dst_dtype));
    } else if (src_dtype == EMPO_BF16 && dst_dtype == EMPO_F32) {   /* checkpoint loads */
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = empo_bf16_to_f32(((const uint16_t *)src)[i]);
    } else if (src_dtype == EMPO_F32 && dst_dtype == EMPO_BF16) {   /* the sampler's bf16 weights */
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = empo_f32_to_bf16(((const float *)src)[i]);
    } else if (src_dtype == EMPO_I64 && dst_dtype == EMPO_I32) {
        for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)((const int64_t *)src)[i];
    } else {
        for (int64_t i = 0; i < n; i++) store(dst, dst_dtype, i, load(src, src_dtype, i));
    }
}

/* element i of raw memory p */
double empo_load_element(const void *p, int dtype, int64_t i) { return load(p, dtype, i); }
void empo_store_element(void *p, int dtype, int64_t i, double v) { store(p, dtype, i, v); }
