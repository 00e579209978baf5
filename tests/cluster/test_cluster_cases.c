/* test_cluster_cases.c — the written-down cases of the math rule and of
 * answer extraction (the .tsv files in tests/cluster), run through the C API.
 *
 * equivalence.tsv: label ('=' or '!'), category, a, b. Every row is checked
 * in both orders (the rule is symmetric) and as a group of two (the
 * clustering agrees with the pairwise test). Each category must have both
 * kinds of rows. extraction.tsv: category, flags ('-', P phrase, N last
 * number), completion ('<NL>' for a newline), expected answer ('<NONE>' for
 * none). Counts per category are printed so a shrinking file shows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

/* tests/cluster/, found from this file's path (CMake compiles it by absolute path) */
static void data_path(char *out, size_t cap, const char *name) {
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    size_t dir = slash ? (size_t)(slash - here) : 0;     /* .../tests/c */
    snprintf(out, cap, "%.*s/../cluster/%s", (int)dir, here, name);
}

/* Splits line at tabs into at most n fields; returns the count. */
static int split_tabs(char *line, char **fields, int n) {
    int k = 0;
    char *p = line;
    while (k < n) {
        fields[k++] = p;
        char *t = strchr(p, '\t');
        if (!t) break;
        *t = '\0';
        p = t + 1;
    }
    return k;
}

static void chomp(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

static const char *norm(const char *s, char *buf, int64_t cap) {
    int64_t m;
    if (empo_cluster_normalize(s, (int64_t)strlen(s), buf, cap, &m) != EMPO_OK) return "(error)";
    return buf;
}

typedef struct cat_count { char name[32]; int equal, unequal; } cat_count;

static cat_count *count_for(cat_count *cats, int *n_cats, const char *name) {
    for (int i = 0; i < *n_cats; i++)
        if (strcmp(cats[i].name, name) == 0) return &cats[i];
    if (*n_cats >= 64) return &cats[63];     /* more categories than the table: counted together */
    cat_count *c = &cats[(*n_cats)++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->equal = c->unequal = 0;
    return c;
}

static int equivalent(const char *a, const char *b) {
    int eq = -1;
    int st = empo_cluster_equivalent(a, (int64_t)strlen(a), b, (int64_t)strlen(b), 0.0, &eq);
    return st == EMPO_OK ? eq : -1;
}

static int grouped_together(const char *a, const char *b) {
    const char *answers[2] = {a, b};
    int64_t lens[2] = {(int64_t)strlen(a), (int64_t)strlen(b)};
    int32_t ids[2], k;
    if (empo_cluster_group(EMPO_RULE_MATH, 2, answers, lens, 0.0, ids, &k) != EMPO_OK) return -1;
    return ids[0] == ids[1];
}

static void test_equivalence(void) {
    char path[1024], line[4096], na[4096], nb[4096];
    data_path(path, sizeof path, "equivalence.tsv");
    FILE *f = fopen(path, "r");
    check_report(__FILE__, __LINE__, f != NULL, "cannot open %s", path);
    if (!f) return;
    cat_count cats[64];
    int n_cats = 0, rows = 0, equal_rows = 0;
    while (fgets(line, sizeof line, f)) {
        chomp(line);
        if (line[0] == '#' || line[0] == '\0') continue;
        char *col[4];
        if (split_tabs(line, col, 4) != 4 || (strcmp(col[0], "=") != 0 && strcmp(col[0], "!") != 0)) {
            check_report(__FILE__, __LINE__, 0, "malformed row: %s", line);
            continue;
        }
        int want = col[0][0] == '=';
        int ab = equivalent(col[2], col[3]), ba = equivalent(col[3], col[2]), g = grouped_together(col[2], col[3]);
        check_report(__FILE__, __LINE__, ab == want && ba == want && g == want,
                     "[%s] \"%s\" vs \"%s\": want %s, got %d (a,b) %d (b,a) %d (group); normalized \"%s\" / \"%s\"",
                     col[1], col[2], col[3], want ? "equivalent" : "different", ab, ba, g,
                     norm(col[2], na, sizeof na), norm(col[3], nb, sizeof nb));
        if (n_cats < 64) {
            cat_count *c = count_for(cats, &n_cats, col[1]);
            if (want) c->equal++; else c->unequal++;
        }
        rows++;
        equal_rows += want;
    }
    fclose(f);
    printf("equivalence: %d cases (%d equivalent, %d different) in %d categories\n", rows, equal_rows,
           rows - equal_rows, n_cats);
    for (int i = 0; i < n_cats; i++) {
        printf("  %-12s %3d = %3d !\n", cats[i].name, cats[i].equal, cats[i].unequal);
        check_report(__FILE__, __LINE__, cats[i].equal > 0 && cats[i].unequal > 0,
                     "category %s needs equal and unequal cases", cats[i].name);
    }
    check_report(__FILE__, __LINE__, rows >= 300, "only %d equivalence cases", rows);
}

static int hex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "<NL>" -> newline, "<EMPTY>" -> nothing, "\xHH" -> that byte; in place */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r;) {
        if (strncmp(r, "<NL>", 4) == 0) { *w++ = '\n'; r += 4; }
        else if (strncmp(r, "<EMPTY>", 7) == 0) r += 7;
        else if (r[0] == '\\' && r[1] == 'x' && hex(r[2]) >= 0 && hex(r[3]) >= 0) {
            *w++ = (char)(hex(r[2]) * 16 + hex(r[3]));
            r += 4;
        } else *w++ = *r++;
    }
    *w = '\0';
}

static void test_extraction(void) {
    char path[1024], line[8192];
    data_path(path, sizeof path, "extraction.tsv");
    FILE *f = fopen(path, "r");
    check_report(__FILE__, __LINE__, f != NULL, "cannot open %s", path);
    if (!f) return;
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        chomp(line);
        if (line[0] == '#' || line[0] == '\0') continue;
        char *col[4];
        if (split_tabs(line, col, 4) != 4) {
            check_report(__FILE__, __LINE__, 0, "malformed row: %s", line);
            continue;
        }
        int flags = (strchr(col[1], 'P') ? EMPO_EXTRACT_PHRASE : 0) | (strchr(col[1], 'N') ? EMPO_EXTRACT_LAST_NUMBER : 0);
        unescape(col[2]);
        unescape(col[3]);
        const char *want = strcmp(col[3], "<NONE>") == 0 ? "" : col[3];
        int64_t at = -1, len = -1;
        int how = -1;
        int st = empo_cluster_extract(col[2], (int64_t)strlen(col[2]), flags, &at, &len, &how);
        int ok = st == EMPO_OK && len == (int64_t)strlen(want) && memcmp(col[2] + at, want, (size_t)len) == 0 &&
                 (len > 0 || how == EMPO_ANSWER_NONE || how == EMPO_ANSWER_BOXED);
        check_report(__FILE__, __LINE__, ok, "[%s] flags %s: got \"%.*s\" (how %d), want \"%s\" in: %s", col[0], col[1],
                     (int)(len > 0 ? len : 0), col[2] + (at > 0 ? at : 0), how, want, col[2]);
        rows++;
    }
    fclose(f);
    printf("extraction: %d cases\n", rows);
    check_report(__FILE__, __LINE__, rows >= 100, "only %d extraction cases", rows);
}

int main(void) {
    test_equivalence();
    test_extraction();
    return check_finish("test_cluster_cases");
}
