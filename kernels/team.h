/* team.h — work shares for the phases of one OpenMP parallel region (the C
 * decode step): each phase's units start out in equal shares, so a
 * thread's share stays warm in its core's caches from one call to the
 * next, and a thread that has finished its own share takes from the back
 * of one still running. These machines share cores with other guests and
 * one thread often runs at 60% of the other's speed; a static split would
 * leave the fast thread waiting at every barrier.
 *
 * A share is one word, front | back << 32, on a cache line of its own. Each
 * thread writes its share as a phase begins; the phase before left every
 * share empty (front >= back: its threads stop claiming only then), so a
 * thief that looks too early just finds nothing. Phases must be separated
 * by a barrier, and every thread must claim until empo_team_claim returns 0.
 *
 *     uint64_t shares[threads * EMPO_TEAM_STRIDE];   // 64-byte aligned, zeroed once
 *     #pragma omp parallel
 *     {
 *         empo_team w = {shares, omp_get_thread_num(), omp_get_num_threads()};
 *         empo_team_begin(&w, n);
 *         for (int64_t lo, hi; empo_team_claim(&w, &lo, &hi);) work(lo, hi);
 *         #pragma omp barrier
 *         ...
 *     }
 *
 * Which thread computes a unit is not fixed, so a unit's result must not
 * depend on it (every kernel of the decode step is written that way). */
#ifndef EMPO_KERNELS_TEAM_H
#define EMPO_KERNELS_TEAM_H
#include <stdint.h>

enum { EMPO_TEAM_STRIDE = 8 };   /* words per share: one 64-byte line */

typedef struct {
    uint64_t *share;   /* [nt * EMPO_TEAM_STRIDE] */
    int t, nt;         /* this thread, the team's size */
} empo_team;

/* A new phase of n (< 2^32) units: this thread's share is n*t/nt .. n*(t+1)/nt. */
void empo_team_begin(const empo_team *w, int64_t n);

/* The next units [lo, hi) for this thread: from the front of its own share
 * (half of what is left: few claims, and the rest still there to be
 * taken), else from the back of another's (half of what is left); 0 when
 * every share is empty. */
int empo_team_claim(const empo_team *w, int64_t *lo, int64_t *hi);

#endif
