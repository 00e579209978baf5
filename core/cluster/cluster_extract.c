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
#include <stdlib.h>
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

/* The boxes of s: each box as it closes goes to out[0 .. max) (a box that
 * closes takes the place of the boxes inside it), so out ends up with the
 * outermost complete boxes in order, and the last is the box that closed
 * last. Returns how many there are (it may exceed max: the rest are not
 * stored, but the last one always is, in out[max - 1]). */
static int64_t scan_boxes(const char *s, int64_t n, span *out, int64_t max) {
    int64_t open_at[MAX_OPEN_BOXES], open_depth[MAX_OPEN_BOXES];
    int n_open = 0;
    int64_t depth = 0, count = 0;
    for (int64_t i = 0; i < n; i++) {
        char c = s[i];
        span got = {0, -1};
        if (c == '\\') {
            int64_t j = box_command(s, n, i);
            if (!j) { if (i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '}' || s[i + 1] == '\\')) i++; continue; }
            int64_t k = j;
            while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
            if (k < n && s[k] == '{') {
                depth++;
                if (n_open < MAX_OPEN_BOXES) { open_at[n_open] = k + 1; open_depth[n_open++] = depth; }
                i = k;
                continue;
            } else if (k < n && (k > j || cl_is_digit(s[k]))) {     /* \boxed 5, \boxed5 */
                int64_t e = k;
                while (e < n && !cl_is_space(s[e]) && s[e] != '$' && s[e] != '}') e++;
                if (e > k) { got.at = k; got.len = e - k; }
                i = e - 1;
            } else {
                i = j - 1;
                continue;
            }
        } else if (c == '{') {
            depth++;
            continue;
        } else if (c == '}' && depth > 0) {
            if (n_open > 0 && open_depth[n_open - 1] == depth) {
                n_open--;
                got.at = open_at[n_open];
                got.len = i - open_at[n_open];
            }
            depth--;
        }
        if (got.len < 0) continue;
        while (count > 0 && count <= max && out[count - 1].at >= got.at) count--;   /* boxes inside this one */
        if (count < max) out[count] = got;
        else out[max - 1] = got;
        count++;
    }
    return count;
}

static span last_box(const char *s, int64_t n) {
    span one = {0, -1};
    scan_boxes(s, n, &one, 1);
    return one;
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

static int check_text(const char *fn, const char *text, int64_t len, int flags) {
    if (len < 0 || (len > 0 && !text))
        return empo_fail(EMPO_E_ARG, "%s: bad text (pointer %p, length %lld)", fn, (const void *)text, (long long)len);
    if (len > EMPO_CLUSTER_MAX_TEXT)
        return empo_fail(EMPO_E_ARG, "%s: a completion of %lld bytes exceeds the limit of %d", fn, (long long)len,
                         EMPO_CLUSTER_MAX_TEXT);
    if (flags & ~(EMPO_EXTRACT_PHRASE | EMPO_EXTRACT_LAST_NUMBER))
        return empo_fail(EMPO_E_ARG, "%s: unknown flags 0x%x", fn, (unsigned)flags);
    return EMPO_OK;
}

static span trim_span(const char *text, span r) {
    while (r.len > 0 && cl_is_space(text[r.at])) { r.at++; r.len--; }
    while (r.len > 0 && cl_is_space(text[r.at + r.len - 1])) r.len--;
    return r;
}

int empo_cluster_extract_all(const char *text, int64_t len, int flags, int64_t *starts, int64_t *lengths,
                             int max, int *n, int *how) {
    EMPO_TRY(check_text("cluster_extract_all", text, len, flags));
    if (max < 1 || !starts || !lengths || !n)
        return empo_fail(EMPO_E_ARG, "cluster_extract_all: needs starts, lengths and n, and max >= 1 (got %d)", max);
    span stack[16];
    span *boxes = max <= 16 ? stack : malloc(sizeof *boxes * (size_t)max);
    if (!boxes) return empo_fail(EMPO_E_NOMEM, "cluster_extract_all: out of memory for %d spans", max);
    int64_t count = scan_boxes(text, len, boxes, max);
    if (count > 0) {
        *n = (int)(count < max ? count : max);
        for (int i = 0; i < *n; i++) {
            span r = trim_span(text, boxes[i]);
            starts[i] = r.at;
            lengths[i] = r.len;
        }
        if (how) *how = EMPO_ANSWER_BOXED;
    } else {
        int64_t at, l;
        int kind = EMPO_ANSWER_NONE;
        int st = empo_cluster_extract(text, len, flags, &at, &l, &kind);
        if (st != EMPO_OK) { if (boxes != stack) free(boxes); return st; }
        *n = kind != EMPO_ANSWER_NONE ? 1 : 0;
        if (how) *how = kind;
        starts[0] = at;
        lengths[0] = l;
    }
    if (boxes != stack) free(boxes);
    return EMPO_OK;
}

int empo_cluster_extract(const char *text, int64_t len, int flags, int64_t *start, int64_t *length, int *how) {
    EMPO_TRY(check_text("cluster_extract", text, len, flags));
    if (!start || !length) return empo_fail(EMPO_E_ARG, "cluster_extract: start and length must not be NULL");
    int kind = EMPO_ANSWER_BOXED;
    span r = last_box(text, len);
    if (r.len < 0 && (flags & EMPO_EXTRACT_PHRASE)) { r = last_phrase(text, len); kind = EMPO_ANSWER_PHRASE; }
    if (r.len < 0 && (flags & EMPO_EXTRACT_LAST_NUMBER)) { r = last_number(text, len); kind = EMPO_ANSWER_NUMBER; }
    if (r.len < 0) { r.at = 0; r.len = 0; kind = EMPO_ANSWER_NONE; }
    r = trim_span(text, r);
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
