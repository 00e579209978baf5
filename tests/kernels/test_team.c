/* test_team.c — the work shares of kernels/team.h: over many phases with
 * uneven threads, every unit is claimed exactly once and claims stay
 * inside the phase; the others take over a slow thread's units, also when
 * that thread is late to begin its phases (its share published for it);
 * phases stay apart across regions; a team of one claims in order. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/team.h"

enum { THREADS = 4, PHASES = 200 };

/* Runs PHASES phases of n[phase] units in one region; thread 0 spins
 * `slow` iterations per unit and `late` before it begins each phase.
 * Counts each unit's claims; returns the units claimed outside their
 * owner's equal share. */
static int64_t run_phases(uint64_t *shares, const int64_t *n, int slow, int late, int *errors) {
    int64_t stolen = 0, seen[1024];
    int bad = 0;
#pragma omp parallel num_threads(THREADS) reduction(+ : stolen, bad)
    {
        empo_team w = empo_team_join(shares, omp_get_thread_num(), omp_get_num_threads());
        for (int p = 0; p < PHASES; p++) {
#pragma omp single
            memset(seen, 0, sizeof seen);   /* the implied barrier orders it before the claims */
            for (volatile int i = 0; w.t == 0 && i < late; i++) {
            }
            empo_team_begin(&w, n[p]);
            const int64_t own_lo = n[p] * w.t / w.nt, own_hi = n[p] * (w.t + 1) / w.nt;
            for (int64_t lo, hi; empo_team_claim(&w, &lo, &hi);) {
                if (lo < 0 || hi > n[p] || lo >= hi) bad++;
                for (int64_t u = lo; u < hi && u >= 0 && u < n[p]; u++) {
                    __atomic_fetch_add(&seen[u], 1, __ATOMIC_RELAXED);
                    if (u < own_lo || u >= own_hi) stolen++;
                    for (volatile int i = 0; w.t == 0 && i < slow; i++) {
                    }
                }
            }
#pragma omp barrier
#pragma omp single
            for (int64_t u = 0; u < n[p]; u++) bad += seen[u] != 1;
        }
        empo_team_leave(&w);
    }
    *errors = bad;
    return stolen;
}

int main(void) {
    const size_t bytes = sizeof(uint64_t) * (size_t)empo_team_words(THREADS);
    uint64_t *shares = aligned_alloc(64, bytes);
    memset(shares, 0, bytes);
    int64_t n[PHASES];
    for (int p = 0; p < PHASES; p++) n[p] = (p * 37) % 1000;   /* 0, 1, a few, many, not multiples of THREADS */
    int errors;
    int64_t stolen = run_phases(shares, n, 20000, 0, &errors);
    check_report(__FILE__, __LINE__, errors == 0, "every unit claimed once in each of %d phases, thread 0 slow (%d wrong)",
                 PHASES, errors);
    check_report(__FILE__, __LINE__, stolen > 0, "the others took over units of the slow thread's shares (%lld)",
                 (long long)stolen);

    /* thread 0 late to every phase (as when it is descheduled): its share
     * is published for it and taken while it is away; a second region, so
     * the phase count carried over from the first is exercised too */
    stolen = run_phases(shares, n, 0, 2000000, &errors);
    check_report(__FILE__, __LINE__, errors == 0, "thread 0 late to each phase: every unit once (%d wrong)", errors);
    check_report(__FILE__, __LINE__, stolen > 0, "and its units were taken by the others (%lld)", (long long)stolen);

    /* phases of fewer units than threads */
    for (int p = 0; p < PHASES; p++) n[p] = p % 6;
    run_phases(shares, n, 0, 0, &errors);
    check_report(__FILE__, __LINE__, errors == 0, "phases of 0 to 5 units over %d threads: every unit once (%d wrong)",
                 THREADS, errors);

    /* one thread alone takes its whole share in order */
    empo_team solo = empo_team_join(shares, 0, 1);
    empo_team_begin(&solo, 10);
    int64_t lo, hi, next = 0;
    int in_order = 1;
    while (empo_team_claim(&solo, &lo, &hi)) {
        in_order &= lo == next && hi > lo;
        next = hi;
    }
    check_report(__FILE__, __LINE__, in_order && next == 10, "a team of one claims 0..10 in order (to %lld)",
                 (long long)next);
    free(shares);
    return check_finish("test_team");
}
