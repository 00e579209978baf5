/* empo/rng.h — counter-based random numbers (Philox-4x32-10).
 *
 * A generator is (seed, stream, counter). Element i of a draw uses counter
 * value (start + i), so results do not depend on thread count or on how a
 * draw is split. Streams with different ids are independent, so a per-run
 * seed can give each sequence its own stream:
 *
 *     empo_rng *r; empo_rng_new(&r, 1234, 0);
 *     empo_randn(&t, r, 2, shape);
 *     empo_rng_free(r); */
#ifndef EMPO_RNG_H
#define EMPO_RNG_H
#include "empo/tensor.h"

typedef struct empo_rng empo_rng;

int empo_rng_new(empo_rng **out, uint64_t seed, uint64_t stream);
void empo_rng_free(empo_rng *r);
/* state = (seed, stream, counter), for checkpoints */
void empo_rng_get_state(const empo_rng *r, uint64_t *seed, uint64_t *stream, uint64_t *counter);
void empo_rng_set_state(empo_rng *r, uint64_t seed, uint64_t stream, uint64_t counter);
/* Four raw 32-bit words of Philox for (key, counter) — the primitive, for tests. */
void empo_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]);
double empo_rng_uniform(empo_rng *r);   /* one draw in [0, 1) */

int empo_rand(empo_tensor **out, empo_rng *r, int ndim, const int64_t *shape);        /* U[0,1) f32 */
int empo_randn(empo_tensor **out, empo_rng *r, int ndim, const int64_t *shape);       /* N(0,1) f32 */
/* integers in [low, high) as i64 */
int empo_randint(empo_tensor **out, empo_rng *r, int64_t low, int64_t high, int ndim,
                 const int64_t *shape);
/* probs [N, V] or [V] (non-negative, not all zero; need not sum to 1)
 * -> i64 [N, num] / [num] draws */
int empo_multinomial(empo_tensor **out, empo_rng *r, empo_tensor *probs, int64_t num,
                     int replacement);

#endif
