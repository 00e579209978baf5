/* empo/cluster.h — answers, math equivalence, clustering, semantic entropy.
 *
 * What EMPO needs between sampling and rewards (DESIGN.md section 1, steps
 * 2-4): find the answer in a completion, decide whether two answers mean
 * the same thing, split a group of G answers into clusters and measure how
 * spread the clusters are. Strings go in as (pointer, length) pairs and need
 * not be NUL-terminated or valid UTF-8; results go to caller buffers.
 *
 *     int64_t at, n; int how;
 *     empo_cluster_extract(text, len, EMPO_EXTRACT_PHRASE, &at, &n, &how);
 *     // the answer is text[at .. at + n)
 *
 *     int32_t ids[8], k;
 *     empo_cluster_group(EMPO_RULE_MATH, 8, answers, lens, 0.0, ids, &k);
 *     double share[8]; empo_group_stats st;
 *     empo_cluster_stats(8, ids, EMPO_EMPTY_SINGLETON, share, &st);
 *     // st.entropy = -sum p(c) log p(c), natural log
 *
 * Every convention of the math rule (what is stripped, how `x = 3`, 50%,
 * intervals, sets, choice letters and plain text compare) is documented in
 * docs/clustering.md. Bad input never crashes or hangs: completions over
 * EMPO_CLUSTER_MAX_TEXT bytes are refused with EMPO_E_ARG; answers over
 * EMPO_CLUSTER_MAX_ANSWER bytes, or nested deeper than
 * EMPO_CLUSTER_MAX_DEPTH, are compared byte for byte instead of parsed. */
#ifndef EMPO_CLUSTER_H
#define EMPO_CLUSTER_H
#ifndef EMPO_FFI
#include <stdint.h>
#endif

enum {
    EMPO_CLUSTER_MAX_TEXT = 16777216,   /* bytes of one completion given to extract */
    EMPO_CLUSTER_MAX_ANSWER = 4096,     /* longer answers are compared byte for byte */
    EMPO_CLUSTER_MAX_DEPTH = 64,        /* deeper nesting is compared as normalized text */
    EMPO_CLUSTER_MAX_GROUP = 4096       /* answers in one group */
};

/* extraction fallbacks, used only when the completion has no \boxed / \fbox */
enum {
    EMPO_EXTRACT_PHRASE = 1,        /* the last "answer is X" / "answer: X" */
    EMPO_EXTRACT_LAST_NUMBER = 2    /* the last number in the text */
};
/* where an extracted answer came from */
enum { EMPO_ANSWER_NONE = 0, EMPO_ANSWER_BOXED = 1, EMPO_ANSWER_PHRASE = 2, EMPO_ANSWER_NUMBER = 3 };

/* equivalence rules of empo_cluster_group */
enum {
    EMPO_RULE_EXACT = 0,        /* byte-equal after trimming surrounding whitespace */
    EMPO_RULE_NORMALIZED = 1,   /* equal normalized forms (empo_cluster_normalize) */
    EMPO_RULE_MATH = 2,         /* normalized forms, then parsed values (docs/clustering.md) */
    EMPO_RULE_MASK = 0xff       /* the rule; the bits above are EMPO_MATH_* options */
};

/* Options of the math rule, or-ed into it (EMPO_RULE_MATH | EMPO_MATH_...).
 * The default (none) reads answers as the EMPO reference's grader does. */
enum {
    EMPO_MATH_CHAINS_AS_TEXT = 0x100,   /* x = 5+5+1 = 11 is text, not its last side 11 */
    EMPO_MATH_KEEP_LHS = 0x200          /* \frac{NO}{BO} = \frac{1}{2} never equals a bare \frac{1}{2} */
};

/* how empty answers count in empo_cluster_stats */
enum {
    EMPO_EMPTY_SINGLETON = 0,   /* each empty answer is a cluster of its own (the reference) */
    EMPO_EMPTY_CLUSTER = 1,     /* all empty answers form one cluster */
    EMPO_EMPTY_DROP = 2         /* empty answers are left out: shares over the others */
};

/* Statistics of one clustered group of n answers. */
typedef struct empo_group_stats {
    double entropy;         /* -sum p(c) log p(c) over the clusters (natural log) */
    double max_share;       /* largest non-empty cluster's share (0 if none) */
    int32_t n_clusters;     /* clusters of non-empty answers */
    int32_t n_empty;        /* empty answers */
} empo_group_stats;

/* The answer of a completion: the last complete \boxed{...} or \fbox{...}
 * (nested braces; `\boxed 5`; nested boxes give the outer one), else the
 * fallbacks named in `flags`. Writes the span text[*start .. *start +
 * *length), trimmed of whitespace; *length = 0 when nothing was found.
 * `how` (may be NULL) gets one of EMPO_ANSWER_*. */
int empo_cluster_extract(const char *text, int64_t len, int flags, int64_t *start, int64_t *length,
                         int *how);

/* Every complete box of a completion, in order (the outermost ones: boxes
 * inside a box are part of it): spans in starts/lengths[0 .. *n), at most
 * max (more boxes than max: the first max - 1 and the last). With no box,
 * the fallbacks of `flags` as empo_cluster_extract gives them (*n = 1, or 0
 * when nothing was found). The EMPO reference reads several boxes as one
 * set answer; empo.cluster.extract joins them so. */
int empo_cluster_extract_all(const char *text, int64_t len, int flags, int64_t *starts, int64_t *lengths,
                             int max, int *n, int *how);

/* The normalized form of an answer (the first thing the math rule compares):
 * writes at most cap - 1 bytes and a NUL to out, and the full length to
 * *out_len (so a second call with a larger buffer gets all of it). */
int empo_cluster_normalize(const char *s, int64_t len, char *out, int64_t cap, int64_t *out_len);

/* *equal = 1 when a and b are equivalent under the math rule, else 0.
 * rtol <= 0 means the default relative tolerance, 1e-6. */
int empo_cluster_equivalent(const char *a, int64_t alen, const char *b, int64_t blen, double rtol,
                            int *equal);
/* The same under any rule (with its EMPO_MATH_* options). */
int empo_cluster_equal(int rule, const char *a, int64_t alen, const char *b, int64_t blen, double rtol,
                       int *equal);

/* Clusters n answers under one rule (union-find: a cluster is a connected
 * set of pairwise-equivalent answers). ids[i] gets answer i's cluster,
 * numbered 0.. in order of first appearance, or -1 for an empty answer
 * (nothing but whitespace, or an empty normalized form for the normalized
 * and math rules), which is never compared; *n_clusters gets the number of
 * clusters. rtol as in empo_cluster_equivalent. */
int empo_cluster_group(int rule, int n, const char *const *answers, const int64_t *lens, double rtol,
                       int32_t *ids, int32_t *n_clusters);

/* Shares and semantic entropy of a clustering: ids[n] from
 * empo_cluster_group (or any ids >= 0, -1 = empty). share[i] (may be NULL)
 * gets the share p(c) of answer i's cluster under empty_mode (an empty
 * answer: 1/n when SINGLETON, n_empty/n when CLUSTER, 0 when DROP). */
int empo_cluster_stats(int n, const int32_t *ids, int empty_mode, double *share, empo_group_stats *stats);

#endif
