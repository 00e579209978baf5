/* team.h — work shares for the phases of one OpenMP parallel region (the C
 * decoder): each phase's units start out in equal shares, so a thread's
 * share stays warm in its core's caches from one call to the next, and a
 * thread that has finished its own share takes from the back of one still
 * running. These machines share cores with other guests and one thread
 * often runs at 60% of the other's speed; a static split would leave the
 * fast thread waiting at every barrier.
 *
 * A share is one word on a cache line of its own: the phase it belongs to
 * (16 bits), its back and its front (24 bits each). The team's phase count
 * lives on the line before the shares, so that the phases of successive
 * regions are told apart. A thread publishes its share as it begins a
 * phase; a thief that finds a share still of the phase before (its owner
 * not there yet: descheduled, or slow to leave the last barrier) publishes
 * it on the owner's behalf and takes from it. Phases must be separated by
 * a barrier, every thread must claim until empo_team_claim returns 0, and
 * every thread of the region takes part in every phase.
 *
 *     uint64_t shares[empo_team_words(threads)];   // 64-byte aligned, zeroed once
 *     #pragma omp parallel
 *     {
 *         empo_team w = empo_team_join(shares, omp_get_thread_num(), omp_get_num_threads());
 *         empo_team_begin(&w, n);
 *         for (int64_t lo, hi; empo_team_claim(&w, &lo, &hi);) work(lo, hi);
 *         #pragma omp barrier
 *         ...
 *         empo_team_leave(&w);
 *     }
 *
 * Which thread computes a unit is not fixed, so a unit's result must not
 * depend on it (every kernel of the decoder is written that way). */
#ifndef EMPO_KERNELS_TEAM_H
#define EMPO_KERNELS_TEAM_H
#include <stdint.h>

enum { EMPO_TEAM_STRIDE = 8 };   /* words per line: 64 bytes */
#define EMPO_TEAM_MAX_UNITS ((int64_t)1 << 24)   /* units a phase may have */

/* Words for a team of up to `threads`: the phase count, then one share each. */
static inline int64_t empo_team_words(int threads) { return (int64_t)(threads + 1) * EMPO_TEAM_STRIDE; }

typedef struct {
    uint64_t *shares;   /* [empo_team_words(threads)] */
    int t, nt;          /* this thread, the team's size */
    uint64_t phase;     /* the phase this thread is in */
    int64_t n;          /* its units */
} empo_team;

/* This thread's place in the team, at the start of a region. */
empo_team empo_team_join(uint64_t *shares, int t, int nt);

/* A new phase of n (< EMPO_TEAM_MAX_UNITS) units: this thread's share is
 * n*t/nt .. n*(t+1)/nt. */
void empo_team_begin(empo_team *w, int64_t n);

/* The next units [lo, hi) for this thread: from the front of its own share
 * (half of what is left: few claims, and the rest still there to be
 * taken), else from the back of another's (half of what is left); 0 when
 * every share is empty. */
int empo_team_claim(empo_team *w, int64_t *lo, int64_t *hi);

/* At the end of the region, by every thread: a barrier, then thread 0
 * keeps the phase count for the next region. */
void empo_team_leave(const empo_team *w);

#endif
