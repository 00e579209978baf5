/* team.c — work shares with stealing (kernels/team.h). */
#include "team.h"

static uint64_t range_word(int64_t front, int64_t back) { return (uint64_t)front | (uint64_t)back << 32; }

void empo_team_begin(const empo_team *w, int64_t n) {
    __atomic_store_n(&w->share[w->t * EMPO_TEAM_STRIDE], range_word(n * w->t / w->nt, n * (w->t + 1) / w->nt),
                     __ATOMIC_RELAXED);
}

/* From one share: the front half of what is left (own), or the back half. */
static int take(uint64_t *share, int own, int64_t *lo, int64_t *hi) {
    uint64_t word = __atomic_load_n(share, __ATOMIC_RELAXED);
    int64_t front, back, chunk;
    do {
        front = (int64_t)(word & 0xffffffffu);
        back = (int64_t)(word >> 32);
        if (front >= back) return 0;
        chunk = (back - front) / 2;
        if (chunk < 1) chunk = 1;
    } while (!__atomic_compare_exchange_n(share, &word,
                                          own ? range_word(front + chunk, back) : range_word(front, back - chunk), 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    *lo = own ? front : back - chunk;
    *hi = own ? front + chunk : back;
    return 1;
}

int empo_team_claim(const empo_team *w, int64_t *lo, int64_t *hi) {
    for (int i = 0; i < w->nt; i++) {
        const int u = (w->t + i) % w->nt;
        if (take(&w->share[u * EMPO_TEAM_STRIDE], i == 0, lo, hi)) return 1;
    }
    return 0;
}
