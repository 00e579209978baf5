/* bench_cluster.c — how long clustering a group of answers takes.
 *
 *     build/tests/bench_cluster [repeats]
 *
 * Groups of G = 8, 16 and 64 answers drawn (fixed xorshift seed) from pools
 * of realistic answers to one question each: a fraction written six ways,
 * an integer with units and near misses, surds, a polynomial, intervals,
 * sets, choice letters. The draw is skewed towards a few forms, as a
 * model's samples are, so strings repeat (each distinct string is parsed
 * once); the "distinct" rows have no repeated string at all, the worst
 * case. Each group is clustered with the math rule (normalize + parse +
 * evaluate every distinct answer, union-find over the pairs) and the exact
 * rule; the median and the 90th percentile per group are printed, with
 * groups per second. Extraction is timed on a 2 KB completion. The issue's
 * target: a group of 16 in <= 20 us (median). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "empo/empo.h"

static const char *POOLS[][10] = {
    {"\\frac{1}{2}", "0.5", "\\dfrac12", "1/2", "\\frac{2}{4}", "0.50", "50\\%", "\\frac{1}{3}", "2", "0.25"},
    {"42", "42.0", "\\$42", "42 dollars", "41", "43", "\\text{42}", "42.", "4.2", "420"},
    {"2\\sqrt{3}", "\\sqrt{12}", "3.4641016", "\\sqrt{3}", "2\\sqrt3", "\\frac{6}{\\sqrt{3}}", "3.46", "12", "4\\sqrt{3}", "\\sqrt{6}"},
    {"x^2+2x+1", "(x+1)^2", "x^2+1", "(x-1)^2", "x^2 + 2x + 1", "1+2x+x^2", "(1+x)^2", "x^2+2x", "2x+1", "(x+1)(x+1)"},
    {"(1, 5]", "1 < x \\le 5", "(1,5]", "[1,5]", "(1,5)", "\\left(1, 5\\right]", "x > 1", "(1, \\infty)", "[1, 5)", "(-1, 5]"},
    {"\\{1, 2, 3\\}", "\\{3, 2, 1\\}", "1, 2, 3", "\\{1, 2\\}", "x = 1, 2, 3", "\\{1,2,3,4\\}", "3, 2, 1", "(1,2,3)", "\\{2,3\\}", "1,2"},
    {"B", "(B)", "\\text{(B)}", "A", "C", "b)", "(C)", "D", "\\textbf{(B)}", "E"},
    {"\\frac{\\pi}{4}", "0.785398163", "\\pi/4", "45", "\\frac{1}{4}\\pi", "\\frac{\\pi}{2}", "0.79", "\\frac{\\pi}4", "\\pi", "1"},
    /* exact long integers, matrices, relations, chains, several boxes */
    {"12345678901234567890", "12345678901234567891", "1.2345678901234567890e19", "2^{64}", "18446744073709551616",
     "20!", "2432902008176640000", "\\binom{50}{25}", "126410606437752", "10^{20}"},
    {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}",
     "\\begin{pmatrix}12\\\\34\\end{pmatrix}", "1&2\\\\3&4", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}",
     "\\begin{pmatrix}3\\\\-1\\end{pmatrix}", "(1, 2, 3, 4)", "\\begin{array}{cc}1&2\\\\3&4\\end{array}",
     "\\begin{pmatrix}0.5&0\\\\0&2\\end{pmatrix}", "\\begin{pmatrix}\\frac12&0\\\\0&2\\end{pmatrix}"},
    {"x < 1", "-x > -1", "2x < 2", "x \\le 1", "(-\\infty, 1)", "34x+45y-20z+100=0", "-34x-45y+20z-100=0",
     "x = 5+5+1 = 7 = 11", "11", "3 = x"},
};
enum { N_POOLS = sizeof POOLS / sizeof POOLS[0] };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and p90 (us per group) of clustering fresh groups of G answers;
 * distinct: no two answers are the same string (drawn without replacement
 * from two pools, G <= 20), so nothing is saved by skipping repeats. */
static void bench_groups(int rule, const char *rule_name, int G, int repeats, int distinct) {
    const char *answers[64];
    int64_t lens[64];
    int32_t ids[64], k;
    double *t = malloc((size_t)repeats * sizeof *t);
    long clusters = 0;
    for (int r = 0; r < repeats; r++) {
        int pool = (int)(next_random() % N_POOLS), pool2 = (pool + 1) % N_POOLS;
        int order[20];
        for (int i = 0; i < 20; i++) order[i] = i;
        for (int i = 0; i < G; i++) {
            if (distinct) {      /* a shuffled prefix of the 20 forms of two pools */
                int j = i + (int)(next_random() % (uint64_t)(20 - i)), tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
                answers[i] = order[i] < 10 ? POOLS[pool][order[i]] : POOLS[pool2][order[i] - 10];
            } else {             /* a skewed draw: the first few forms are the likely ones */
                int pick = (int)(next_random() % 10);
                if (next_random() % 3) pick %= 4;
                answers[i] = POOLS[pool][pick];
            }
            lens[i] = (int64_t)strlen(answers[i]);
        }
        double t0 = now_us();
        if (empo_cluster_group(rule, G, answers, lens, 0.0, ids, &k) != EMPO_OK) {
            fprintf(stderr, "bench_cluster: %s\n", empo_last_error());
            exit(1);
        }
        t[r] = now_us() - t0;
        clusters += k;
    }
    qsort(t, (size_t)repeats, sizeof *t, cmp_double);
    double median = t[repeats / 2], p90 = t[repeats * 9 / 10];
    printf("%-6s G = %2d %-9s median %7.2f us   p90 %7.2f us   %9.0f groups/s   (%.2f clusters/group)\n", rule_name,
           G, distinct ? "distinct" : "", median, p90, 1e6 / median, (double)clusters / repeats);
    free(t);
}

static void bench_extract(int repeats) {
    char text[2200];
    size_t n = 0;
    const char *step = "We add the two numbers: $17 + 25 = 42$, then divide by $\\frac{84}{2}$. ";
    while (n + strlen(step) < 2000) { memcpy(text + n, step, strlen(step)); n += strlen(step); }
    n += (size_t)snprintf(text + n, sizeof text - n, "So the answer is $\\boxed{\\frac{1}{2}}$.");
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        int64_t at, len;
        double t0 = now_us();
        empo_cluster_extract(text, (int64_t)n, EMPO_EXTRACT_PHRASE, &at, &len, NULL);
        double dt = now_us() - t0;
        if (dt < best) best = dt;
    }
    printf("extract: %zu-byte completion   best %.2f us   (%.0f MB/s)\n", n, best, n / best);
}

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 20000;
    if (repeats < 10) repeats = 10;
    printf("clustering, 1 thread (no kernel table: the clustering is plain C)\n");
    static const int sizes[] = {8, 16, 64};
    for (int s = 0; s < 3; s++) bench_groups(EMPO_RULE_MATH, "math", sizes[s], sizes[s] == 64 ? repeats / 4 : repeats, 0);
    bench_groups(EMPO_RULE_MATH, "math", 8, repeats, 1);
    bench_groups(EMPO_RULE_MATH, "math", 16, repeats, 1);
    for (int s = 0; s < 3; s++) bench_groups(EMPO_RULE_EXACT, "exact", sizes[s], repeats, 0);
    bench_extract(repeats / 10);
    return 0;
}
