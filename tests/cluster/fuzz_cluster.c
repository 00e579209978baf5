/* fuzz_cluster.c — arbitrary bytes through every cluster entry point.
 *
 * A libFuzzer target (LLVMFuzzerTestOneInput); fuzz_cluster_gen.c
 * drives the same function without libFuzzer. The input is used whole as a
 * completion (extraction, every flag combination) and as an answer
 * (normalization), split at its first 0x01 byte into two answers
 * (equivalence), and split at newlines into a group (clustering, stats).
 * Beyond "no crash, no hang, no sanitizer report" it checks invariants and
 * aborts when one breaks: spans inside the text, equivalence reflexive and
 * symmetric, cluster ids in range and numbered in order of appearance,
 * shares and entropy in range. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "empo/empo.h"

#define FUZZ_CHECK(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_cluster: %s failed at line %d\n", #cond, __LINE__); abort(); } } while (0)

static void check_extract(const char *s, int64_t n) {
    for (int flags = 0; flags < 4; flags++) {
        int64_t at = -1, len = -1;
        int how = -1;
        FUZZ_CHECK(empo_cluster_extract(s, n, flags, &at, &len, &how) == EMPO_OK);
        FUZZ_CHECK(at >= 0 && len >= 0 && at + len <= n);
        FUZZ_CHECK(how >= EMPO_ANSWER_NONE && how <= EMPO_ANSWER_NUMBER);
    }
}

static void check_pair(const char *a, int64_t na, const char *b, int64_t nb) {
    int ab = -1, ba = -1, aa = -1;
    FUZZ_CHECK(empo_cluster_equivalent(a, na, b, nb, 0.0, &ab) == EMPO_OK);
    FUZZ_CHECK(empo_cluster_equivalent(b, nb, a, na, 0.0, &ba) == EMPO_OK);
    FUZZ_CHECK(empo_cluster_equivalent(a, na, a, na, 0.0, &aa) == EMPO_OK);
    FUZZ_CHECK(ab == ba);
    FUZZ_CHECK(aa == 1);
}

static void check_group(const char *s, int64_t n) {
    enum { MAX = 32 };
    const char *answers[MAX];
    int64_t lens[MAX];
    int k = 0;
    int64_t start = 0;
    for (int64_t i = 0; i <= n && k < MAX; i++) {
        if (i == n || s[i] == '\n') {
            answers[k] = s + start;
            lens[k++] = i - start;
            start = i + 1;
        }
    }
    for (int rule = EMPO_RULE_EXACT; rule <= EMPO_RULE_MATH; rule++) {
        int32_t ids[MAX], n_clusters = -1;
        FUZZ_CHECK(empo_cluster_group(rule, k, answers, lens, 0.0, ids, &n_clusters) == EMPO_OK);
        int32_t next = 0;
        for (int i = 0; i < k; i++) {
            FUZZ_CHECK(ids[i] >= -1 && ids[i] <= next && ids[i] < n_clusters);
            if (ids[i] == next) next++;
        }
        FUZZ_CHECK(next == n_clusters);
        for (int mode = EMPO_EMPTY_SINGLETON; mode <= EMPO_EMPTY_DROP; mode++) {
            double share[MAX];
            empo_group_stats st;
            FUZZ_CHECK(empo_cluster_stats(k, ids, mode, share, &st) == EMPO_OK);
            FUZZ_CHECK(st.entropy >= 0 && st.entropy <= log((double)k) + 1e-9);
            FUZZ_CHECK(st.max_share >= 0 && st.max_share <= 1 && st.n_clusters == n_clusters);
            for (int i = 0; i < k; i++) FUZZ_CHECK(share[i] >= 0 && share[i] <= 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = size ? (const char *)data : "";   /* libFuzzer passes NULL for the empty input */
    int64_t n = (int64_t)size;
    check_extract(s, n);
    char out[256];
    int64_t m = -1;
    FUZZ_CHECK(empo_cluster_normalize(s, n, out, sizeof out, &m) == EMPO_OK && m >= 0);
    const char *cut = memchr(s, 1, size);
    int64_t na = cut ? cut - s : n / 2;
    check_pair(s, na, s + na + (cut ? 1 : 0), n - na - (cut ? 1 : 0));
    check_group(s, n);
    return 0;
}
