/* generate_internal.h — what the sampler's files share (kv_cache.c,
 * decoder.c). Private to core/generate/. */
#ifndef EMPO_GENERATE_INTERNAL_H
#define EMPO_GENERATE_INTERNAL_H
#include <stdint.h>

/* Rows grouped by prefix row: order [B + 1], start [P + 2] (group p is
 * order[start[p] .. start[p+1])); prow NULL: one group per row. */
void empo_kv_group_rows(int64_t *order, int64_t *start, int64_t B, int64_t P, const int64_t *prow);

#endif
