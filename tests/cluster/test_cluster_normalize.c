/* test_cluster_normalize.c — normalization is idempotent: normalize(normalize(s))
 * == normalize(s) for every answer of the case files (the .tsv files beside this one)
 * and for 200,000 random answers built from the pieces the rules act on
 * (digits, separators, spacing commands, wrappers, units, percent, degree
 * marks, words, brackets). A normalized form is what the math rule
 * compares and what it parses, so a second pass changing it would mean
 * the same answer reads two ways (32,\! 349 was 32,349, then 32349). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

static char once[65536], twice[65536];
static int failures_shown;

static void check_idempotent(const char *s, int64_t n) {
    int64_t m1 = 0, m2 = 0;
    if (empo_cluster_normalize(s, n, once, sizeof once, &m1) != EMPO_OK ||
        empo_cluster_normalize(once, m1, twice, sizeof twice, &m2) != EMPO_OK) {
        CHECK(!"normalize failed");
        return;
    }
    int ok = m1 == m2 && memcmp(once, twice, (size_t)m1) == 0;
    if (!ok && failures_shown++ < 20)
        check_report(__FILE__, __LINE__, 0, "not idempotent: \"%.*s\" -> \"%s\" -> \"%s\"", (int)n, s, once, twice);
    else
        check_report(__FILE__, __LINE__, ok, "idempotent");
}

/* every tab-separated field of the case files (comments and labels too: harmless) */
static int from_file(const char *name) {
    char path[4096];
    const char *here = __FILE__, *slash = strrchr(here, '/');
    snprintf(path, sizeof path, "%.*s/%s", (int)(slash ? slash - here : 0), here, name);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        for (char *field = strtok(line, "\t"); field; field = strtok(NULL, "\t")) {
            check_idempotent(field, (int64_t)strlen(field));
            n++;
        }
    }
    fclose(f);
    return n;
}

static const char *PIECES[] = {
    "1", "2", "3", "12", "345", "000", "0.5", ".", ",", ", ", " ", "  ", "\\!", "\\,", "\\;", "~", "{,}",
    "\\text{", "\\mathrm{", "}", "{", "cm", " m", " apples", "\\$", "dollars", "%", "\\%", " percent",
    "^\\circ", "^{\\circ}", " degrees", "x", "y", "=", "<", "\\le", "\\frac", "\\frac{1}{2}", "1/2", " 1/2",
    "(", ")", "[", "]", "\\{", "\\}", "\\left(", "\\right)", " or ", " and ", "$", "\\(", "\\)", "-", "+",
    "\\pi", "\\sqrt", "^", "_", "e3", ";", "\\boxed{", "\\quad", "\\cdot", "\\times", "10^", "\\infty",
    "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "\\in",
};

int main(void) {
    int from_cases = from_file("equivalence.tsv") + from_file("extraction.tsv");
    CHECK(from_cases > 1000);
    uint64_t state = 12345;
    const int n_pieces = (int)(sizeof PIECES / sizeof PIECES[0]);
    char s[512];
    for (int trial = 0; trial < 200000; trial++) {
        size_t len = 0;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int k = 1 + (int)((state >> 33) % 8);
        for (int i = 0; i < k; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const char *piece = PIECES[(state >> 33) % (uint64_t)n_pieces];
            size_t m = strlen(piece);
            if (len + m >= sizeof s) break;
            memcpy(s + len, piece, m);
            len += m;
        }
        check_idempotent(s, (int64_t)len);
    }
    printf("  %d answers from the case files, 200000 random ones\n", from_cases);
    return check_finish("test_cluster_normalize");
}
