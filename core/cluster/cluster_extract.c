/* cluster_extract.c — the answer inside a completion.
 *
 * One left-to-right pass, constant memory. A brace depth counter runs over
 * the whole text (\{ \} and \\ are escapes, a stray '}' at depth 0 is
 * ignored); each \boxed{ / \fbox{ remembers the depth of its brace, and
 * closes when the counter comes back to it. The box that closes last wins,
 * which is the last complete box and, when boxes nest, the outer one; an
 * unclosed box (a completion cut off at max tokens) never counts. \boxed 5
 * takes the token up to the next space or '$'. Then, only if no box was
 * found, the fallbacks the caller asked for: the last "answer is X" /
 * "answer: X" (X up to the end of its sentence or line), the last number. */
#include <string.h>
#include "cluster_internal.h"

enum { MAX_OPEN_BOXES = 64 };   /* deeper boxes inside boxes are not tracked */

typedef struct span { int64_t at, len; } span;

/* \boxed or \fbox at s[i] (not \boxedx): the position after the name, or 0. */
static int64_t box_command(const char *s, int64_t n, int64_t i) {
    static const char *names[] = {"\\boxed", "\\fbox"};
    for (int k = 0; k < 2; k++) {
        int64_t len = (int64_t)strlen(names[k]);
        if (i + len <= n && memcmp(s + i, names[k], (size_t)len) == 0 && (i + len == n || !cl_is_alpha(s[i + len])))
            return i + len;
    }
    return 0;
}

static span last_box(const char *s, int64_t n) {
    int64_t open_at[MAX_OPEN_BOXES], open_depth[MAX_OPEN_BOXES];
    int n_open = 0;
    int64_t depth = 0;
    span best = {0, -1};
    for (int64_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') {
            int64_t j = box_command(s, n, i);
            if (!j) { if (i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '}' || s[i + 1] == '\\')) i++; continue; }
            int64_t k = j;
            while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
            if (k < n && s[k] == '{') {
                depth++;
                if (n_open < MAX_OPEN_BOXES) { open_at[n_open] = k + 1; open_depth[n_open++] = depth; }
                i = k;
            } else if (k < n && (k > j || cl_is_digit(s[k]))) {     /* \boxed 5, \boxed5 */
                int64_t e = k;
                while (e < n && !cl_is_space(s[e]) && s[e] != '$' && s[e] != '}') e++;
                if (e > k) { best.at = k; best.len = e - k; }
                i = e - 1;
            } else {
                i = j - 1;
            }
            continue;
        }
        if (c == '{') depth++;
        else if (c == '}' && depth > 0) {
            if (n_open > 0 && open_depth[n_open - 1] == depth) {
                n_open--;
                best.at = open_at[n_open];
                best.len = i - open_at[n_open];
            }
            depth--;
        }
    }
    return best;
}

static int match_nocase(const char *s, int64_t n, int64_t i, const char *word) {
    int64_t len = (int64_t)strlen(word);
    if (i + len > n) return 0;
    for (int64_t k = 0; k < len; k++)
        if (cl_lower((unsigned char)s[i + k]) != word[k]) return 0;
    return 1;
}

/* The last "answer is X" / "answer: X"; X runs to ". ", a newline or the end. */
static span last_phrase(const char *s, int64_t n) {
    span best = {0, -1};
    for (int64_t i = 0; i < n; i++) {
        int64_t j;
        if (match_nocase(s, n, i, "answer is")) j = i + 9;
        else if (match_nocase(s, n, i, "answer:")) j = i + 7;
        else continue;
        if (i > 0 && cl_is_alpha(s[i - 1])) continue;
        while (j < n && (s[j] == ' ' || s[j] == ':' || s[j] == '$' || s[j] == '\t')) j++;
        int64_t e = j;
        while (e < n && s[e] != '\n' && !(s[e] == '.' && (e + 1 == n || cl_is_space(s[e + 1])))) e++;
        while (e > j && (s[e - 1] == '$' || s[e - 1] == '.' || cl_is_space(s[e - 1]))) e--;
        if (e > j) { best.at = j; best.len = e - j; }
        i = j > i ? j - 1 : i;
    }
    return best;
}

/* The last number: [-]digits with thousands commas and a decimal part. */
static span last_number(const char *s, int64_t n) {
    span best = {0, -1};
    int64_t e = n;
    while (e > 0 && !cl_is_digit(s[e - 1])) e--;
    if (e == 0) return best;
    int64_t b = e;
    int dots = 0;
    while (b > 0) {
        char c = s[b - 1];
        if (cl_is_digit(c)) b--;
        else if (c == '.' && !dots && b >= 2 && cl_is_digit(s[b - 2])) { b--; dots++; }
        else if (c == ',' && b >= 2 && cl_is_digit(s[b - 2]) && e - b >= 3 && cl_is_digit(s[b]) &&
                 cl_is_digit(s[b + 1]) && cl_is_digit(s[b + 2]) && (b + 3 == n || !cl_is_digit(s[b + 3])))
            b--;
        else break;
    }
    if (b > 0 && s[b - 1] == '-' && (b == 1 || !(cl_is_alpha(s[b - 2]) || cl_is_digit(s[b - 2])))) b--;
    best.at = b;
    best.len = e - b;
    return best;
}

int empo_cluster_extract(const char *text, int64_t len, int flags, int64_t *start, int64_t *length, int *how) {
    if (len < 0 || (len > 0 && !text))
        return empo_fail(EMPO_E_ARG, "cluster_extract: bad text (pointer %p, length %lld)", (const void *)text,
                         (long long)len);
    if (len > EMPO_CLUSTER_MAX_TEXT)
        return empo_fail(EMPO_E_ARG, "cluster_extract: a completion of %lld bytes exceeds the limit of %d",
                         (long long)len, EMPO_CLUSTER_MAX_TEXT);
    if (!start || !length) return empo_fail(EMPO_E_ARG, "cluster_extract: start and length must not be NULL");
    if (flags & ~(EMPO_EXTRACT_PHRASE | EMPO_EXTRACT_LAST_NUMBER))
        return empo_fail(EMPO_E_ARG, "cluster_extract: unknown flags 0x%x", (unsigned)flags);
    int kind = EMPO_ANSWER_BOXED;
    span r = last_box(text, len);
    if (r.len < 0 && (flags & EMPO_EXTRACT_PHRASE)) { r = last_phrase(text, len); kind = EMPO_ANSWER_PHRASE; }
    if (r.len < 0 && (flags & EMPO_EXTRACT_LAST_NUMBER)) { r = last_number(text, len); kind = EMPO_ANSWER_NUMBER; }
    if (r.len < 0) { r.at = 0; r.len = 0; kind = EMPO_ANSWER_NONE; }
    while (r.len > 0 && cl_is_space(text[r.at])) { r.at++; r.len--; }
    while (r.len > 0 && cl_is_space(text[r.at + r.len - 1])) r.len--;
    *start = r.at;
    *length = r.len;
    if (how) *how = kind;
    return EMPO_OK;
}

/* ---- the kind of an answer ---- */

/* A, (a), a), (B) text..., option B: the choice letter, or 0. */
char cl_choice_letter(const char *s, int64_t n) {
    static const char *prefixes[] = {"option", "choice", "answer"};
    for (size_t k = 0; k < 3; k++) {
        int64_t len = (int64_t)strlen(prefixes[k]);
        int ok = n > len;
        for (int64_t i = 0; ok && i < len; i++) ok = cl_lower(s[i]) == prefixes[k][i];
        if (ok) { s += len; n -= len; break; }
    }
    if (n == 1 && s[0] >= 'A' && s[0] <= 'Z') return s[0];
    if (n == 2 && cl_is_alpha(s[0]) && s[1] == ')') return (char)(cl_lower(s[0]) - 32);
    if (n >= 3 && s[0] == '(' && cl_is_alpha(s[1]) && s[2] == ')') {
        if (n == 3) return (char)(cl_lower(s[1]) - 32);
        if (s[1] >= 'A' && s[1] <= 'Z') return s[1];    /* "(B) Paris" */
    }
    return 0;
}
