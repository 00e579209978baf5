/* dtype.c — dtype names, sizes and element conversion (bf16/f16 included:
 * the definitions are kernels/convert.h's, shared with the GPU). */
#include <string.h>
#include "base/base_internal.h"
#include "kernels/kernels.h"

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

float empo_bf16_to_f32(uint16_t h) { return empo_bf16_value(h); }
uint16_t empo_f32_to_bf16(float f) { return empo_bf16_bits(f); }
float empo_f16_to_f32(uint16_t h) { return empo_f16_value(h); }
uint16_t empo_f32_to_f16(float f) { return empo_f16_bits(f); }

void empo_convert(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t n) {
    empo_kernels()->convert(dst, dst_dtype, src, src_dtype, n);   /* the host's: host pointers */
}

/* element i of raw memory p */
double empo_load_element(const void *p, int dtype, int64_t i) { return empo_element_load(p, dtype, i); }
void empo_store_element(void *p, int dtype, int64_t i, double v) { empo_element_store(p, dtype, i, v); }
