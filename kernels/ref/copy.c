/* ref/copy.c — the naive strided copy (kernels/copy.h), element by element. */
#include <string.h>
#include "kernels/copy.h"

void empo_ref_copy_strided(void *dst, const void *src, const empo_strided_copy *c) {
    int64_t n = 1;
    for (int d = 0; d < c->ndim; d++) n *= c->shape[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t rest = i, doff = 0, soff = 0;
        for (int d = c->ndim - 1; d >= 0; d--) {
            int64_t k = rest % c->shape[d];
            rest /= c->shape[d];
            doff += k * c->dst_strides[d];
            soff += k * c->src_strides[d];
        }
        memcpy((char *)dst + doff * c->esize, (const char *)src + soff * c->esize, (size_t)c->esize);
    }
}
