/* tokenizer_bpe.c — the BPE model (merges by rank, as HF's word.rs:
 * a heap of candidate merges ordered by (rank, position)), the pre-token
 * cache, encode / encode_batch / decode and the vocabulary queries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer_internal.h"

/* ---- the merge heap: min on key = rank << 32 | position ---- */

static void heap_push(tok_heap_entry *h, size_t *n, tok_heap_entry e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent].key <= e.key) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static tok_heap_entry heap_pop(tok_heap_entry *h, size_t *n) {
    tok_heap_entry top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1].key < h[c].key) c++;
        if (last.key <= h[c].key) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

static void push_pair(const empo_tokenizer *tok, tok_heap_entry *h, size_t *nh, const tok_symbol *sym, int32_t pos) {
    int32_t next = sym[pos].next;
    if (next < 0) return;
    const tok_merge *m = tok_mergemap_get(&tok->merges, sym[pos].c, sym[next].c);
    if (m) heap_push(h, nh, (tok_heap_entry){(uint64_t)m->rank << 32 | (uint32_t)pos, m->id});
}

/* BPE of one pre-token's bytes; appends the ids to tok->ids. */
static int bpe_word(empo_tokenizer *tok, const uint8_t *p, size_t n) {
    if (n > tok->sym_cap) {
        size_t cap = n < 64 ? 64 : n;
        tok_symbol *s = realloc(tok->sym, cap * sizeof *s);
        if (s) tok->sym = s;
        /* each merge pops one entry and pushes at most two: at most 2n live */
        tok_heap_entry *h = realloc(tok->heap, 2 * cap * sizeof *h);
        if (h) tok->heap = h;
        if (!s || !h) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory (a %zu-byte pre-token)", n);
        tok->sym_cap = cap;
    }
    tok_symbol *sym = tok->sym;
    tok_heap_entry *heap = tok->heap;
    int32_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = tok->byte_id[p[i]];
        if (id < 0) continue;   /* a byte missing from the vocab is dropped (HF without unk_token) */
        sym[ns] = (tok_symbol){id, ns - 1, -1};
        if (ns > 0) sym[ns - 1].next = ns;
        ns++;
    }
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < ns; i++) push_pair(tok, heap, &nh, sym, i);
    while (nh) {
        tok_heap_entry top = heap_pop(heap, &nh);
        int32_t pos = (int32_t)(uint32_t)top.key, next = sym[pos].next;
        if (sym[pos].c < 0 || next < 0) continue;   /* merged away, or now last */
        const tok_merge *m = tok_mergemap_get(&tok->merges, sym[pos].c, sym[next].c);
        if (!m || m->id != top.id) continue;        /* a stale entry */
        sym[pos].c = top.id;
        sym[pos].next = sym[next].next;
        if (sym[next].next >= 0) sym[sym[next].next].prev = pos;
        sym[next].c = -1;
        if (sym[pos].prev >= 0) push_pair(tok, heap, &nh, sym, sym[pos].prev);
        push_pair(tok, heap, &nh, sym, pos);
    }
    EMPO_TRY(tok_i32_reserve(&tok->ids, tok->ids.n + (size_t)ns));
    for (int32_t i = ns ? 0 : -1; i >= 0; i = sym[i].next) tok->ids.p[tok->ids.n++] = sym[i].c;
    return EMPO_OK;
}

/* ---- the cache: pre-token bytes -> ids, cleared when half full ---- */

static void cache_clear(empo_tokenizer *tok) {
    memset(tok->cache, 0, TOK_CACHE_SLOTS * sizeof *tok->cache);
    tok->cache_used = 0;
    tok->cache_keys.n = 0;
    tok->cache_ids.n = 0;
}

int tok_bpe_piece(void *ctx, const uint8_t *p, size_t n) {
    empo_tokenizer *tok = ctx;
    if (n == 1 && tok->byte_id[p[0]] >= 0) return tok_i32_push(&tok->ids, tok->byte_id[p[0]]);
    if (n > TOK_CACHE_MAX_KEY) {
        int32_t id = tok->ignore_merges ? tok_strmap_get(&tok->vocab_raw, p, n) : -1;
        return id >= 0 ? tok_i32_push(&tok->ids, id) : bpe_word(tok, p, n);
    }
    if (!tok->cache) {
        tok->cache = calloc(TOK_CACHE_SLOTS, sizeof *tok->cache);
        if (!tok->cache) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory (cache)");
    }
    uint64_t h = tok_hash(p, n) | 1;
    size_t mask = TOK_CACHE_SLOTS - 1, i = (size_t)h & mask;
    for (; tok->cache[i].hash; i = (i + 1) & mask) {
        const tok_cache_slot *c = &tok->cache[i];
        if (c->hash == h && c->key_len == n && memcmp(tok->cache_keys.p + c->key_off, p, n) == 0) {
            EMPO_TRY(tok_i32_reserve(&tok->ids, tok->ids.n + c->n_ids));
            if (c->n_ids) memcpy(tok->ids.p + tok->ids.n, tok->cache_ids.p + c->ids_off, c->n_ids * sizeof(int32_t));
            tok->ids.n += c->n_ids;
            return EMPO_OK;
        }
    }
    size_t first = tok->ids.n;
    int32_t id = tok->ignore_merges ? tok_strmap_get(&tok->vocab_raw, p, n) : -1;
    EMPO_TRY(id >= 0 ? tok_i32_push(&tok->ids, id) : bpe_word(tok, p, n));
    if (tok->cache_used * 2 >= TOK_CACHE_SLOTS) {
        cache_clear(tok);
        for (i = (size_t)h & mask; tok->cache[i].hash; i = (i + 1) & mask) {}
    }
    size_t count = tok->ids.n - first;
    tok_cache_slot slot = {h, (uint32_t)tok->cache_keys.n, (uint32_t)tok->cache_ids.n, (uint16_t)n, (uint16_t)count};
    EMPO_TRY(tok_bytes_append(&tok->cache_keys, p, n));
    EMPO_TRY(tok_i32_reserve(&tok->cache_ids, tok->cache_ids.n + count));
    if (count) memcpy(tok->cache_ids.p + tok->cache_ids.n, tok->ids.p + first, count * sizeof(int32_t));
    tok->cache_ids.n += count;
    tok->cache[i] = slot;
    tok->cache_used++;
    return EMPO_OK;
}

/* ---- encode ---- */

static int encode_one(empo_tokenizer *tok, const char *text, int64_t nbytes, int flags) {
    if (!text) return empo_fail(EMPO_E_ARG, "tokenizer.encode: text is NULL");
    size_t n = nbytes < 0 ? strlen(text) : (size_t)nbytes;
    const uint8_t *s = (const uint8_t *)text;
    int64_t bad = tok_utf8_invalid_at(s, n);
    if (bad >= 0)
        return empo_fail(EMPO_E_ARG, "tokenizer.encode: invalid UTF-8 at byte %lld of the text (0x%02X)",
                         (long long)bad, s[bad]);
    if (flags & EMPO_TOK_ADD_SPECIAL)
        for (size_t k = 0; k < tok->prefix_ids.n; k++) EMPO_TRY(tok_i32_push(&tok->ids, tok->prefix_ids.p[k]));
    EMPO_TRY(tok_run_pipeline(tok, s, n, flags, tok_bpe_piece, tok, 1));
    if (flags & EMPO_TOK_ADD_SPECIAL)
        for (size_t k = 0; k < tok->suffix_ids.n; k++) EMPO_TRY(tok_i32_push(&tok->ids, tok->suffix_ids.p[k]));
    return EMPO_OK;
}

int empo_tokenizer_encode(empo_tokenizer *tok, const char *text, int64_t nbytes, int flags, const int32_t **ids,
                          int64_t *n) {
    if (!tok || !ids || !n) return empo_fail(EMPO_E_ARG, "tokenizer.encode: NULL argument");
    tok->ids.n = 0;
    EMPO_TRY(tok_i32_reserve(&tok->ids, 16));
    int st = encode_one(tok, text, nbytes, flags);
    if (st != EMPO_OK) tok->ids.n = 0;
    *ids = tok->ids.p;
    *n = (int64_t)tok->ids.n;
    return st;
}

int empo_tokenizer_encode_batch(empo_tokenizer *tok, int64_t count, const char *const *texts, const int64_t *nbytes,
                                int flags, const int32_t **ids, const int64_t **offsets) {
    if (!tok || !ids || !offsets || (count > 0 && !texts))
        return empo_fail(EMPO_E_ARG, "tokenizer.encode_batch: NULL argument");
    if (count < 0) return empo_fail(EMPO_E_ARG, "tokenizer.encode_batch: count %lld < 0", (long long)count);
    tok->ids.n = 0;
    tok->offsets.n = 0;
    EMPO_TRY(tok_i32_reserve(&tok->ids, 16));
    EMPO_TRY(tok_i64_push(&tok->offsets, 0));
    for (int64_t i = 0; i < count; i++) {
        int st = encode_one(tok, texts[i], nbytes ? nbytes[i] : -1, flags);
        if (st != EMPO_OK) {
            tok->ids.n = 0;
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", empo_last_error());
            return empo_fail(st, "%s (text %lld of the batch)", msg, (long long)i + 1);
        }
        EMPO_TRY(tok_i64_push(&tok->offsets, (int64_t)tok->ids.n));
    }
    *ids = tok->ids.p;
    *offsets = tok->offsets.p;
    return EMPO_OK;
}

/* ---- decode ---- */

int empo_tokenizer_decode(empo_tokenizer *tok, const int32_t *ids, int64_t n, int flags, const char **text,
                          int64_t *nbytes) {
    if (!tok || !text || (n > 0 && !ids)) return empo_fail(EMPO_E_ARG, "tokenizer.decode: NULL argument");
    tok_bytes *b = &tok->dec_buf;
    b->n = 0;
    EMPO_TRY(tok_bytes_append(b, "", 0));
    int first = 1;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->n_ids)
            return empo_fail(EMPO_E_INDEX, "tokenizer.decode: id %d (position %lld) is out of range [0, %d)", id,
                             (long long)i + 1, tok->n_ids);
        if (tok->str_off[id] == UINT32_MAX) continue;   /* a hole in the id space (HF skips it too) */
        if ((flags & EMPO_TOK_SKIP_SPECIAL) && tok->is_special[id]) continue;
        if (!tok->decoder_bytelevel && !first) EMPO_TRY(tok_bytes_append(b, " ", 1));
        EMPO_TRY(tok_bytes_append(b, tok->dec_arena + tok->dec_off[id], tok->dec_len[id]));
        first = 0;
    }
    if (!(flags & EMPO_TOK_RAW_BYTES) && tok_utf8_invalid_at(b->p, b->n) >= 0) {
        tok->dec_tmp.n = 0;
        EMPO_TRY(tok_utf8_lossy(&tok->dec_tmp, b->p, b->n));
        tok_bytes t = tok->dec_buf;
        tok->dec_buf = tok->dec_tmp;
        tok->dec_tmp = t;
        b = &tok->dec_buf;
    }
    *text = (const char *)b->p;
    if (nbytes) *nbytes = (int64_t)b->n;
    return EMPO_OK;
}

/* ---- vocabulary ---- */

int64_t empo_tokenizer_vocab_size(const empo_tokenizer *tok) { return tok ? tok->n_ids : 0; }

int32_t empo_tokenizer_token_to_id(const empo_tokenizer *tok, const char *token, int64_t nbytes) {
    if (!tok || !token) return -1;
    size_t n = nbytes < 0 ? strlen(token) : (size_t)nbytes;
    int32_t id = tok_strmap_get(&tok->added_map, token, n);
    return id >= 0 ? id : tok_strmap_get(&tok->vocab, token, n);
}

int empo_tokenizer_id_to_token(const empo_tokenizer *tok, int32_t id, const char **token, int64_t *nbytes) {
    if (!tok || !token) return empo_fail(EMPO_E_ARG, "tokenizer.id_to_token: NULL argument");
    if (id < 0 || id >= tok->n_ids || tok->str_off[id] == UINT32_MAX)
        return empo_fail(EMPO_E_INDEX, "tokenizer.id_to_token: no token has id %d (vocab size %d)", id, tok->n_ids);
    *token = tok->str_arena + tok->str_off[id];
    if (nbytes) *nbytes = tok->str_len[id];
    return EMPO_OK;
}

int empo_tokenizer_is_special(const empo_tokenizer *tok, int32_t id) {
    return tok && id >= 0 && id < tok->n_ids && tok->is_special[id];
}

int32_t empo_tokenizer_bos_id(const empo_tokenizer *tok) { return tok ? tok->bos_id : -1; }
int32_t empo_tokenizer_eos_id(const empo_tokenizer *tok) { return tok ? tok->eos_id : -1; }
int32_t empo_tokenizer_pad_id(const empo_tokenizer *tok) { return tok ? tok->pad_id : -1; }

int64_t empo_tokenizer_added_count(const empo_tokenizer *tok) { return tok ? tok->n_added : 0; }

int empo_tokenizer_added_token(const empo_tokenizer *tok, int64_t i, int32_t *id, const char **content,
                               int64_t *nbytes, int *special) {
    if (!tok) return empo_fail(EMPO_E_ARG, "tokenizer.added_token: NULL tokenizer");
    if (i < 0 || i >= tok->n_added)
        return empo_fail(EMPO_E_INDEX, "tokenizer.added_token: index %lld is out of range [0, %d)", (long long)i,
                         tok->n_added);
    const tok_added *a = &tok->added[i];
    if (id) *id = a->id;
    if (content) *content = (const char *)a->content;
    if (nbytes) *nbytes = a->len;
    if (special) *special = a->special;
    return EMPO_OK;
}
