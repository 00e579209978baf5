/* tokenizer_pipeline.c — from text to pre-tokens, as HF `tokenizers` does:
 * added tokens split out first (on the raw text, then on the normalized
 * text), normalizers (utf8proc), then the pre-tokenizer stages (PCRE2 with
 * JIT; every split behaviour of HF's Split).
 *
 * Regexes in tokenizer.json are written for Oniguruma; one difference
 * matters for the patterns in use: `\s`. Oniguruma's is Unicode White_Space
 * (U+0085 yes, U+180E no), PCRE2's is not, so `\s` and `\S` are rewritten to
 * an explicit class before compiling. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "tokenizer_internal.h"

/* ---- regexes ---- */

#define TOK_WS "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static int translate_regex(const char *src, size_t n, tok_bytes *out) {
    int in_class = 0;
    out->n = 0;
    for (size_t i = 0; i < n;) {
        char c = src[i];
        if (c == '\\' && i + 1 < n) {
            char d = src[i + 1];
            if (d == 's') EMPO_TRY(tok_bytes_append(out, in_class ? TOK_WS : "[" TOK_WS "]",
                                                    in_class ? sizeof TOK_WS - 1 : sizeof TOK_WS + 1));
            else if (d == 'S' && !in_class) EMPO_TRY(tok_bytes_append(out, "[^" TOK_WS "]", sizeof TOK_WS + 2));
            else if (d == 'Q') {   /* \Q...\E is literal */
                const char *e = NULL;
                for (size_t k = i + 2; k + 1 < n; k++)
                    if (src[k] == '\\' && src[k + 1] == 'E') { e = src + k + 2; break; }
                size_t len = e ? (size_t)(e - (src + i)) : n - i;
                EMPO_TRY(tok_bytes_append(out, src + i, len));
                i += len;
                continue;
            } else EMPO_TRY(tok_bytes_append(out, src + i, 2));
            i += 2;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            size_t k = i + 1;
            if (k < n && src[k] == '^') k++;
            if (k < n && src[k] == ']') k++;   /* a leading ']' is literal */
            EMPO_TRY(tok_bytes_append(out, src + i, k - i));
            i = k;
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && src[i + 1] == ':') {   /* [:alpha:] */
            const char *e = strstr(src + i, ":]");
            size_t len = e && (size_t)(e - src) < n ? (size_t)(e - (src + i)) + 2 : 1;
            EMPO_TRY(tok_bytes_append(out, src + i, len));
            i += len;
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        EMPO_TRY(tok_bytes_append(out, &c, 1));
        i++;
    }
    return EMPO_OK;
}

int tok_compile_regex(empo_tokenizer *tok, tok_stage *st, const char *pattern, size_t len, int literal) {
    tok_bytes pat = {0};
    int st_ = literal ? tok_bytes_append(&pat, pattern, len) : translate_regex(pattern, len, &pat);
    if (st_ != EMPO_OK) {
        free(pat.p);
        return st_;
    }
    int err;
    PCRE2_SIZE at;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);   /* the pattern's UTF-8 is checked */
    st->re = pcre2_compile((PCRE2_SPTR)pat.p, pat.n, opts, &err, &at, NULL);
    free(pat.p);
    if (!st->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return empo_fail(EMPO_E_IO, "tokenizer: %s: pre_tokenizer regex /%.200s/: %s (near offset %zu)",
                         tok->name ? tok->name : "(json)", pattern, (const char *)msg, (size_t)at);
    }
    pcre2_jit_compile(st->re, PCRE2_JIT_COMPLETE);   /* the interpreter runs it when JIT is unavailable */
    st->md = pcre2_match_data_create_from_pattern(st->re, NULL);
    if (!tok->mctx) {
        tok->mctx = pcre2_match_context_create(NULL);
        /* long runs of spaces backtrack deeply: give the JIT room */
        tok->jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
        if (tok->mctx && tok->jit_stack) pcre2_jit_stack_assign(tok->mctx, NULL, tok->jit_stack);
    }
    if (!st->md || !tok->mctx) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory (regex)");
    return EMPO_OK;
}

/* ---- added tokens ---- */

/* a before b: by first byte, then longest first (leftmost-longest matching) */
static int added_before(const tok_added *a, const tok_added *b) {
    if (a->content[0] != b->content[0]) return a->content[0] < b->content[0];
    return a->len > b->len;
}

static int build_matcher(empo_tokenizer *tok, tok_matcher *m, int normalized) {
    memset(m, 0, sizeof *m);
    m->order = malloc(((size_t)tok->n_added + 1) * sizeof *m->order);
    if (!m->order) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory");
    for (int32_t k = 0; k < tok->n_added; k++)
        if (tok->added[k].normalized == normalized && tok->added[k].len > 0) m->order[m->n++] = k;
    for (int32_t i = 1; i < m->n; i++) {   /* insertion sort: stable, and a few hundred tokens at most */
        int32_t k = m->order[i], j = i;
        for (; j > 0 && added_before(&tok->added[k], &tok->added[m->order[j - 1]]); j--) m->order[j] = m->order[j - 1];
        m->order[j] = k;
    }
    for (int b = 0, k = 0; b < 256; b++) {
        m->start[b] = k;
        while (k < m->n && tok->added[m->order[k]].content[0] == b) k++;
        m->first[b] = (uint8_t)(k > m->start[b]);
        m->start[b + 1] = k;
    }
    return EMPO_OK;
}

int tok_build_matchers(empo_tokenizer *tok) {
    EMPO_TRY(build_matcher(tok, &tok->match_raw, 0));
    return build_matcher(tok, &tok->match_norm, 1);
}

static int is_word_char(int32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ND) || c == UTF8PROC_CATEGORY_PC;
}

static int32_t last_cp(const uint8_t *s, size_t n) {
    size_t i = n - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    int32_t cp;
    tok_utf8_decode(s + i, &cp);
    return cp;
}

static int seg_push(tok_segs *v, size_t off, size_t len, int32_t id) {
    if (v->n == v->cap) EMPO_TRY(tok_grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p));
    v->p[v->n++] = (tok_seg){(uint32_t)off, (uint32_t)len, id};
    return EMPO_OK;
}

/* Splits s into text segments and added tokens: leftmost-longest matches,
 * with lstrip/rstrip/single_word handled as HF's AddedVocabulary does. A
 * special token's match is consumed even when EMPO_TOK_SPECIAL is off (its
 * text then stays in the segment), also as HF. */
static int split_added(const empo_tokenizer *tok, const tok_matcher *m, const uint8_t *s, size_t n, int flags,
                       tok_segs *out) {
    out->n = 0;
    size_t start_offset = 0, i = 0;
    while (m->n && i < n) {
        if (!m->first[s[i]]) {
            i++;
            continue;
        }
        const tok_added *a = NULL;
        for (int32_t k = m->start[s[i]]; k < m->start[s[i] + 1]; k++) {
            const tok_added *c = &tok->added[m->order[k]];
            if (c->len <= n - i && memcmp(s + i, c->content, c->len) == 0) {
                a = c;
                break;
            }
        }
        if (!a) {
            i++;
            continue;
        }
        size_t start = i, stop = i + a->len;
        i = stop;
        if (a->special && !(flags & EMPO_TOK_SPECIAL)) continue;
        if (a->single_word) {
            int start_space = start == 0 || !is_word_char(last_cp(s, start));
            int32_t next = 0;
            if (stop < n) tok_utf8_decode(s + stop, &next);
            int stop_space = stop == n || !is_word_char(next);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t k = start;
            while (k > 0) {
                size_t j = k - 1;
                while (j > 0 && (s[j] & 0xC0) == 0x80) j--;
                int32_t cp;
                tok_utf8_decode(s + j, &cp);
                if (!tok_is_white_space(cp)) break;
                k = j;
            }
            start = k > start_offset ? k : start_offset;
        }
        if (a->rstrip) {
            while (stop < n) {
                int32_t cp;
                int len = tok_utf8_decode(s + stop, &cp);
                if (!tok_is_white_space(cp)) break;
                stop += (size_t)len;
            }
        }
        if (start > start_offset) EMPO_TRY(seg_push(out, start_offset, start - start_offset, -1));
        EMPO_TRY(seg_push(out, start, stop - start, a->id));
        start_offset = stop;
        if (i < stop) i = stop;
    }
    if (start_offset < n) EMPO_TRY(seg_push(out, start_offset, n - start_offset, -1));
    return EMPO_OK;
}

/* ---- normalizers ---- */

static int needs_norm(int op, const uint8_t *s, size_t n) {
    /* ASCII is invariant under every normal form; below U+0300 (lead bytes
     * < 0xCC) nothing composes or decomposes under NFC */
    uint8_t limit = op == TOK_NORM_NFC ? 0xCC : 0x80;
    if (op == TOK_NORM_LOWERCASE) {
        for (size_t i = 0; i < n; i++)
            if (s[i] >= 0x80 || (s[i] >= 'A' && s[i] <= 'Z')) return 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (s[i] >= limit) return 1;
    return 0;
}

static int normalize_one(empo_tokenizer *tok, int op, const uint8_t *s, size_t n, tok_bytes *out) {
    out->n = 0;
    if (op == TOK_NORM_LOWERCASE) {
        EMPO_TRY(tok_bytes_reserve(out, n * 3 / 2 + 8));
        for (size_t i = 0; i < n;) {
            int32_t cp;
            i += (size_t)tok_utf8_decode(s + i, &cp);
            uint8_t u[8];
            int len;
            if (cp == 0x130) {   /* the one lowercase mapping to two characters: i + combining dot */
                memcpy(u, "i\xCC\x87", 3);
                len = 3;
            } else {
                len = tok_utf8_encode(utf8proc_tolower(cp), u);
            }
            EMPO_TRY(tok_bytes_append(out, u, (size_t)len));
        }
        return EMPO_OK;
    }
    utf8proc_option_t opts = UTF8PROC_STABLE;
    if (op == TOK_NORM_NFC || op == TOK_NORM_NFKC) opts |= UTF8PROC_COMPOSE;
    else opts |= UTF8PROC_DECOMPOSE;
    if (op == TOK_NORM_NFKC || op == TOK_NORM_NFKD) opts |= UTF8PROC_COMPAT;
    /* Normal forms are local: a character below `limit` (ASCII; for NFC any
     * character below U+0300) is a starter that never composes with what
     * precedes it and is its own normal form (for NFC), so the text splits
     * before such characters into pieces normalized independently. Runs of
     * them are copied; only the spans around other characters go through
     * utf8proc. */
    uint8_t limit = op == TOK_NORM_NFC ? 0xCC : 0x80;
    EMPO_TRY(tok_bytes_reserve(out, n + 16));
    size_t i = 0;
    while (i < n) {
        size_t k = i;
        while (k < n && s[k] < limit) k++;   /* stops on a lead byte >= limit */
        if (k == n) return tok_bytes_append(out, s + i, n - i);
        /* back to the start of the previous character: it may compose with s[k] */
        size_t b = k;
        if (b > i) {
            b--;
            while (b > i && (s[b] & 0xC0) == 0x80) b--;
        }
        size_t e = k;
        while (e < n && !(s[e] < 0x80 || (s[e] >= 0xC2 && s[e] < limit))) e++;
        EMPO_TRY(tok_bytes_append(out, s + i, b - i));
        for (;;) {
            utf8proc_ssize_t r = utf8proc_decompose(s + b, (utf8proc_ssize_t)(e - b), tok->cp_buf,
                                                    (utf8proc_ssize_t)tok->cp_cap, opts);
            if (r < 0)
                return empo_fail(EMPO_E_ARG, "tokenizer.encode: normalization failed: %s", utf8proc_errmsg(r));
            if ((size_t)r <= tok->cp_cap) {
                r = utf8proc_reencode(tok->cp_buf, r, opts);
                if (r < 0)
                    return empo_fail(EMPO_E_ARG, "tokenizer.encode: normalization failed: %s", utf8proc_errmsg(r));
                EMPO_TRY(tok_bytes_append(out, tok->cp_buf, (size_t)r));
                break;
            }
            size_t cap = (size_t)r + 64;
            int32_t *p = realloc(tok->cp_buf, cap * sizeof *p);
            if (!p) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory");
            tok->cp_buf = p;
            tok->cp_cap = cap;
        }
        i = e;
    }
    return EMPO_OK;
}

/* Normalizes s (n bytes); the result is s itself or tok->norm_buf. */
static int normalize(empo_tokenizer *tok, const uint8_t *s, size_t n, const uint8_t **out, size_t *out_n) {
    *out = s;
    *out_n = n;
    for (int k = 0; k < tok->n_norm; k++) {
        if (!needs_norm(tok->norm[k], *out, *out_n)) continue;
        tok_bytes tmp = tok->norm_tmp;
        EMPO_TRY(normalize_one(tok, tok->norm[k], *out, *out_n, &tmp));
        tok->norm_tmp = tok->norm_buf;   /* ping-pong: the input may be norm_buf */
        tok->norm_buf = tmp;
        *out = tok->norm_buf.p;
        *out_n = tok->norm_buf.n;
    }
    return EMPO_OK;
}

/* ---- pre-tokenizer stages ---- */

static int piece_push(tok_pieces *v, size_t off, size_t len, int match) {
    if (v->n == v->cap) EMPO_TRY(tok_grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p));
    v->p[v->n++] = (tok_piece){(uint32_t)off, (uint32_t)len, match};
    return EMPO_OK;
}

/* Matches of st's regex in s, with the gaps between them, as HF's
 * find_matches over Oniguruma's find_iter (an empty match right after the
 * previous match is skipped by one character). */
static int find_matches(empo_tokenizer *tok, tok_stage *st, const uint8_t *s, size_t n) {
    st->pieces.n = 0;
    size_t last_end = 0, prev = 0;
    int64_t last_match_end = -1;
    while (last_end <= n) {
        int rc = pcre2_match(st->re, s, n, last_end, PCRE2_NO_UTF_CHECK, st->md, tok->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return empo_fail(EMPO_E_ARG, "tokenizer.encode: pre-tokenizer regex failed on a %zu-byte piece: %s", n,
                             (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && last_match_end == (int64_t)me) {
            if (last_end >= n) break;
            int32_t cp;
            last_end += (size_t)tok_utf8_decode(s + last_end, &cp);
            continue;
        }
        last_end = me;
        last_match_end = (int64_t)me;
        if (ms > prev) EMPO_TRY(piece_push(&st->pieces, prev, ms - prev, st->invert));
        EMPO_TRY(piece_push(&st->pieces, ms, me - ms, !st->invert));
        prev = me;
    }
    if (prev < n) EMPO_TRY(piece_push(&st->pieces, prev, n - prev, st->invert));
    return EMPO_OK;
}

/* HF's split behaviours, in place on st->pieces; `match` then means
 * "removed". */
static void apply_behavior(tok_stage *st) {
    tok_piece *p = st->pieces.p;
    size_t n = st->pieces.n, out = 0;
    int prev_match = 0;
    switch (st->behavior) {
    case TOK_ISOLATED:
        for (size_t i = 0; i < n; i++) p[i].match = 0;
        return;
    case TOK_REMOVED:
        return;
    case TOK_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            int m = p[i].match;
            if (m && !prev_match && out > 0) p[out - 1].len = p[i].off + p[i].len - p[out - 1].off;
            else p[out++] = (tok_piece){p[i].off, p[i].len, 0};
            prev_match = m;
        }
        break;
    case TOK_MERGED_NEXT:   /* walk backwards; a match joins the piece after it */
        out = n;
        for (size_t i = n; i-- > 0;) {
            int m = p[i].match;
            if (m && !prev_match && out < n) {
                p[out].len += p[out].off - p[i].off;
                p[out].off = p[i].off;
            } else {
                p[--out] = (tok_piece){p[i].off, p[i].len, 0};
            }
            prev_match = m;
        }
        memmove(p, p + out, (n - out) * sizeof *p);
        out = n - out;
        break;
    case TOK_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            int m = p[i].match;
            if (m == prev_match && out > 0) p[out - 1].len = p[i].off + p[i].len - p[out - 1].off;
            else p[out++] = (tok_piece){p[i].off, p[i].len, 0};
            prev_match = m;
        }
        break;
    }
    st->pieces.n = out;
}

typedef struct {
    tok_piece_fn fn;
    void *ctx;
} tok_sink;

static int run_stages(empo_tokenizer *tok, int k, const uint8_t *s, size_t n, const tok_sink *sink) {
    if (n == 0) return EMPO_OK;
    if (k == tok->n_stages) return sink->fn(sink->ctx, s, n);
    tok_stage *st = &tok->stage[k];
    if (st->kind == TOK_STAGE_PREFIX_SPACE) {
        if (s[0] == ' ') return run_stages(tok, k + 1, s, n, sink);
        st->buf.n = 0;
        EMPO_TRY(tok_bytes_append(&st->buf, " ", 1));
        EMPO_TRY(tok_bytes_append(&st->buf, s, n));
        return run_stages(tok, k + 1, st->buf.p, st->buf.n, sink);
    }
    EMPO_TRY(find_matches(tok, st, s, n));
    apply_behavior(st);
    /* the recursion below reuses only deeper stages' scratch */
    for (size_t i = 0; i < st->pieces.n; i++) {
        tok_piece pc = st->pieces.p[i];
        if (!pc.match) EMPO_TRY(run_stages(tok, k + 1, s + pc.off, pc.len, sink));
    }
    return EMPO_OK;
}

/* One segment of text between raw added tokens: normalize, split out the
 * normalized added tokens, pre-tokenize the rest. */
static int run_segment(empo_tokenizer *tok, const uint8_t *s, size_t n, int flags, const tok_sink *sink,
                       int emit_added) {
    const uint8_t *t;
    size_t tn;
    EMPO_TRY(normalize(tok, s, n, &t, &tn));
    if (tok->match_norm.n == 0) return run_stages(tok, 0, t, tn, sink);
    EMPO_TRY(split_added(tok, &tok->match_norm, t, tn, flags, &tok->segs2));
    for (size_t i = 0; i < tok->segs2.n; i++) {
        tok_seg sg = tok->segs2.p[i];
        if (sg.id >= 0) {
            if (emit_added) EMPO_TRY(tok_i32_push(&tok->ids, sg.id));
        } else {
            EMPO_TRY(run_stages(tok, 0, t + sg.off, sg.len, sink));
        }
    }
    return EMPO_OK;
}

int tok_run_pipeline(empo_tokenizer *tok, const uint8_t *text, size_t n, int flags, tok_piece_fn fn, void *ctx,
                     int emit_added) {
    tok_sink sink = {fn, ctx};
    if (tok->match_raw.n == 0) return run_segment(tok, text, n, flags, &sink, emit_added);
    EMPO_TRY(split_added(tok, &tok->match_raw, text, n, flags, &tok->segs));
    /* run_segment may reuse segs2 and norm buffers, never segs */
    for (size_t i = 0; i < tok->segs.n; i++) {
        tok_seg sg = tok->segs.p[i];
        if (sg.id >= 0) {
            if (emit_added) EMPO_TRY(tok_i32_push(&tok->ids, sg.id));
        } else {
            EMPO_TRY(run_segment(tok, text + sg.off, sg.len, flags, &sink, emit_added));
        }
    }
    return EMPO_OK;
}
