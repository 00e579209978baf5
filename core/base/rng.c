/* rng.c — counter-based random numbers: Philox-4x32-10 and the generator
 * object (empo/rng.h). Its tensor draws (rand, randn, randint,
 * multinomial) are ops: ops/op_random.c.
 *
 * Layout of the random stream. Philox maps (key, 128-bit counter) to four
 * 32-bit words. The key is the seed; the counter's high 64 bits are the
 * stream id and its low 64 bits a block number. The generator's `counter`
 * counts 32-bit *words* consumed, so word w is lane w % 4 of block w / 4.
 * A draw of n elements that needs k words each gives element i the words
 * counter + k*i .. counter + k*i + k-1 and then advances counter by k*n.
 * Hence a draw split in two gives the same numbers as one draw, and
 * results do not depend on the thread count (threads own tiles of
 * elements and compute the words of their tile themselves). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/base_internal.h"

/* ---- Philox-4x32-10 (Salmon et al., SC'11; constants of Random123) ---- */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void empo_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]) {
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
    uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;   /* the bump after the last round is unused, harmless */
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* Words w0 .. w0+n-1 of the stream into out (w0 need not be block-aligned). */
void empo_philox_words(const empo_rng *r, uint64_t w0, int64_t n, uint32_t *out) {
    uint64_t block = w0 >> 2;
    int lane = (int)(w0 & 3);
    uint32_t buf[4];
    for (int64_t k = 0; k < n; block++, lane = 0) {
        empo_philox4x32(r->seed, r->stream, block, buf);
        for (; lane < 4 && k < n; lane++) out[k++] = buf[lane];
    }
}

/* ---- generator objects ---- */
int empo_rng_new(empo_rng **out, uint64_t seed, uint64_t stream) {
    if (!out) return empo_fail(EMPO_E_ARG, "rng_new: NULL output pointer");
    *out = calloc(1, sizeof **out);
    if (!*out) return empo_fail(EMPO_E_NOMEM, "rng_new: out of memory");
    (*out)->seed = seed;
    (*out)->stream = stream;
    return EMPO_OK;
}

void empo_rng_free(empo_rng *r) { free(r); }

void empo_rng_get_state(const empo_rng *r, uint64_t *seed, uint64_t *stream, uint64_t *counter) {
    if (seed) *seed = r->seed;
    if (stream) *stream = r->stream;
    if (counter) *counter = r->counter;
}

void empo_rng_set_state(empo_rng *r, uint64_t seed, uint64_t stream, uint64_t counter) {
    r->seed = seed;
    r->stream = stream;
    r->counter = counter;
}

double empo_rng_uniform(empo_rng *r) {
    uint32_t w[2];
    empo_philox_words(r, r->counter, 2, w);
    r->counter += 2;
    return empo_u53(w[0], w[1]);
}
