/* convert.c — dtype conversion on the host (kernels/convert.h): the
 * conversions the runtime makes often (bf16 weights and checkpoints, i64 to
 * i32) as plain loops, every other pair through a double. Every CPU table's
 * convert slot. */
#include "kernels/convert.h"

void empo_ref_convert(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t n) {
    if (dst_dtype == src_dtype) {
        const int size = dst_dtype == EMPO_F64 || dst_dtype == EMPO_I64 ? 8
                         : dst_dtype == EMPO_F32 || dst_dtype == EMPO_I32 ? 4
                         : dst_dtype == EMPO_U8 ? 1 : 2;
        memcpy(dst, src, (size_t)n * (size_t)size);
    } else if (src_dtype == EMPO_BF16 && dst_dtype == EMPO_F32) {   /* checkpoint loads */
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = empo_bf16_value(((const uint16_t *)src)[i]);
    } else if (src_dtype == EMPO_F32 && dst_dtype == EMPO_BF16) {   /* the sampler's bf16 weights */
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = empo_bf16_bits(((const float *)src)[i]);
    } else if (src_dtype == EMPO_I64 && dst_dtype == EMPO_I32) {
        for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)((const int64_t *)src)[i];
    } else {
        for (int64_t i = 0; i < n; i++) empo_element_convert(dst, dst_dtype, src, src_dtype, i);
    }
}
