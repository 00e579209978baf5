/* team.c — work shares with stealing (kernels/team.h). */
#include "kernels/team.h"

enum { PHASE_BITS = 16, RANGE_BITS = 24 };
#define RANGE_MASK (((uint64_t)1 << RANGE_BITS) - 1)

static uint64_t word_of(uint64_t phase, int64_t front, int64_t back) {
    return phase << (2 * RANGE_BITS) | (uint64_t)back << RANGE_BITS | (uint64_t)front;
}

static uint64_t phase_of(uint64_t word) { return word >> (2 * RANGE_BITS); }

static uint64_t *share_of(const empo_team *w, int u) { return &w->shares[(u + 1) * EMPO_TEAM_STRIDE]; }

empo_team empo_team_join(uint64_t *shares, int t, int nt) {
    return (empo_team){shares, t, nt, __atomic_load_n(&shares[0], __ATOMIC_RELAXED), 0};
}

/* share u for this phase, unless its owner or a thief has written it */
static void publish(const empo_team *w, int u) {
    uint64_t *s = share_of(w, u), word = __atomic_load_n(s, __ATOMIC_RELAXED);
    const uint64_t fresh = word_of(w->phase, w->n * u / w->nt, w->n * (u + 1) / w->nt);
    while (phase_of(word) != w->phase)
        if (__atomic_compare_exchange_n(s, &word, fresh, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) break;
}

void empo_team_begin(empo_team *w, int64_t n) {
    w->phase = (w->phase + 1) & (((uint64_t)1 << PHASE_BITS) - 1);
    w->n = n;
    publish(w, w->t);
}

/* From share u (published): the front half of what is left (own), or the back half. */
static int take(const empo_team *w, int u, int own, int64_t *lo, int64_t *hi) {
    uint64_t *s = share_of(w, u), word = __atomic_load_n(s, __ATOMIC_RELAXED);
    int64_t front, back, chunk;
    do {
        front = (int64_t)(word & RANGE_MASK);
        back = (int64_t)(word >> RANGE_BITS & RANGE_MASK);
        if (front >= back) return 0;
        chunk = (back - front) / 2;
        if (chunk < 1) chunk = 1;
    } while (!__atomic_compare_exchange_n(s, &word,
                                          own ? word_of(w->phase, front + chunk, back)
                                              : word_of(w->phase, front, back - chunk),
                                          1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    *lo = own ? front : back - chunk;
    *hi = own ? front + chunk : back;
    return 1;
}

int empo_team_claim(empo_team *w, int64_t *lo, int64_t *hi) {
    for (int i = 0; i < w->nt; i++) {
        const int u = (w->t + i) % w->nt;
        if (i > 0) publish(w, u);   /* its owner may not have begun this phase yet */
        if (take(w, u, i == 0, lo, hi)) return 1;
    }
    return 0;
}

void empo_team_leave(const empo_team *w) {
#pragma omp barrier
    if (w->t == 0) __atomic_store_n(&w->shares[0], w->phase, __ATOMIC_RELAXED);
}
