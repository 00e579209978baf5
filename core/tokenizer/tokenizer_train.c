/* tokenizer_train.c — learning a byte-level BPE from text, written out as a
 * standard tokenizer.json (Qwen2's pipeline: NFC, Qwen's split regex, which
 * isolates every digit, ByteLevel; special tokens first).
 *
 * The classic algorithm, as HF's BpeTrainer: count pre-tokens ("words"),
 * count adjacent symbol pairs weighted by word counts, repeatedly merge the
 * most frequent pair (ties: the smaller pair of ids) and update only the
 * counts of the words that hold it. A max-heap with lazy re-insertion
 * finds the best pair. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer_internal.h"

static const char qwen_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef struct { int64_t count; int64_t pair; } train_heap_entry;   /* pair = a << 32 | b */

typedef struct {
    int64_t count;
    tok_i32 where;   /* words holding the pair (may repeat or be stale) */
} pair_stat;

struct empo_bpe_trainer {
    int64_t vocab_size, min_frequency;
    empo_tokenizer *pipe;          /* the pipeline only (no model) */
    char **special;
    int n_special;
    char *role[3];                 /* bos, eos, pad */
    /* words: bytes in a chunked arena (pointers never move), counts */
    tok_strmap word_map;
    char **chunks;
    size_t n_chunks, chunk_used;
    const uint8_t **word;
    uint32_t *word_len;
    int64_t *word_count;
    size_t n_words, cap_words;
    /* training state */
    int trained;
    tok_i32 *sym;                  /* [n_words] symbol ids */
    uint8_t **tok_bytes_of;        /* [vocab] token bytes */
    uint32_t *tok_len;
    int32_t n_tokens;
    tok_strmap tok_map;            /* bytes -> id */
    int32_t (*merges)[2];
    int64_t n_merges;
    char *json, *config;
};

static int tfail(int code, const char *what) {
    return empo_fail(code, "bpe_trainer: %s", what);
}

/* ---- the pipeline tokenizer ---- */

static cJSON *bytelevel_json(void) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "ByteLevel");
    cJSON_AddBoolToObject(b, "add_prefix_space", 0);
    cJSON_AddBoolToObject(b, "trim_offsets", 0);
    cJSON_AddBoolToObject(b, "use_regex", 0);
    return b;
}

/* Everything of tokenizer.json but the model. */
static cJSON *skeleton(const empo_bpe_trainer *tr) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int k = 0; k < tr->n_special; k++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", k);
        cJSON_AddStringToObject(a, "content", tr->special[k]);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
    }
    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "NFC");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *list = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", qwen_pattern);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(list, split);
    cJSON_AddItemToArray(list, bytelevel_json());
    cJSON_AddItemToObject(root, "post_processor", bytelevel_json());
    cJSON_AddItemToObject(root, "decoder", bytelevel_json());
    return root;
}

static int build_pipe(empo_bpe_trainer *tr) {
    if (tr->pipe) return EMPO_OK;
    tr->pipe = calloc(1, sizeof *tr->pipe);
    if (!tr->pipe) return tfail(EMPO_E_NOMEM, "out of memory");
    tr->pipe->name = strdup("bpe_trainer");
    cJSON *root = skeleton(tr);
    int st = root ? tok_parse_pipeline(tr->pipe, root) : tfail(EMPO_E_NOMEM, "out of memory");
    if (st == EMPO_OK) st = tok_parse_added(tr->pipe, root);
    if (st == EMPO_OK) st = tok_build_matchers(tr->pipe);
    cJSON_Delete(root);
    return st;
}

/* ---- lifetime and configuration ---- */

int empo_bpe_trainer_new(empo_bpe_trainer **out, int64_t vocab_size, int64_t min_frequency) {
    if (!out) return tfail(EMPO_E_ARG, "NULL argument");
    *out = NULL;
    if (vocab_size < 1 || vocab_size > 2000000000)
        return empo_fail(EMPO_E_ARG, "bpe_trainer: vocab_size %lld is out of range", (long long)vocab_size);
    empo_bpe_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return tfail(EMPO_E_NOMEM, "out of memory");
    tr->vocab_size = vocab_size;
    tr->min_frequency = min_frequency < 1 ? 1 : min_frequency;
    int st = tok_strmap_init(&tr->word_map, 1024);
    if (st != EMPO_OK) {
        free(tr);
        return st;
    }
    *out = tr;
    return EMPO_OK;
}

void empo_bpe_trainer_free(empo_bpe_trainer *tr) {
    if (!tr) return;
    empo_tokenizer_free(tr->pipe);
    for (int k = 0; k < tr->n_special; k++) free(tr->special[k]);
    free(tr->special);
    for (int k = 0; k < 3; k++) free(tr->role[k]);
    tok_strmap_free(&tr->word_map);
    for (size_t k = 0; k < tr->n_chunks; k++) free(tr->chunks[k]);
    free(tr->chunks);
    free(tr->word);
    free(tr->word_len);
    free(tr->word_count);
    if (tr->sym)
        for (size_t w = 0; w < tr->n_words; w++) free(tr->sym[w].p);
    free(tr->sym);
    for (int32_t k = 0; k < tr->n_tokens; k++) free(tr->tok_bytes_of[k]);
    free(tr->tok_bytes_of);
    free(tr->tok_len);
    tok_strmap_free(&tr->tok_map);
    free(tr->merges);
    free(tr->json);
    free(tr->config);
    free(tr);
}

int empo_bpe_trainer_add_special(empo_bpe_trainer *tr, const char *token, int64_t nbytes) {
    if (!tr || !token) return tfail(EMPO_E_ARG, "add_special: NULL argument");
    if (tr->pipe || tr->trained) return tfail(EMPO_E_STATE, "add_special: add special tokens before feeding text");
    size_t n = nbytes < 0 ? strlen(token) : (size_t)nbytes;
    if (n == 0 || memchr(token, 0, n) || tok_utf8_invalid_at((const uint8_t *)token, n) >= 0)
        return tfail(EMPO_E_ARG, "add_special: a special token must be non-empty UTF-8 without NUL");
    for (int k = 0; k < tr->n_special; k++)
        if (strlen(tr->special[k]) == n && memcmp(tr->special[k], token, n) == 0)
            return empo_fail(EMPO_E_ARG, "bpe_trainer: special token '%.*s' added twice", (int)n, token);
    char **s = realloc(tr->special, (size_t)(tr->n_special + 1) * sizeof *s);
    if (!s) return tfail(EMPO_E_NOMEM, "out of memory");
    tr->special = s;
    if (!(s[tr->n_special] = strndup(token, n))) return tfail(EMPO_E_NOMEM, "out of memory");
    tr->n_special++;
    return EMPO_OK;
}

int empo_bpe_trainer_set_roles(empo_bpe_trainer *tr, const char *bos, const char *eos, const char *pad) {
    if (!tr) return tfail(EMPO_E_ARG, "set_roles: NULL trainer");
    const char *names[3] = {bos, eos, pad};
    static const char *what[3] = {"bos", "eos", "pad"};
    for (int r = 0; r < 3; r++) {
        if (!names[r]) continue;
        int found = 0;
        for (int k = 0; k < tr->n_special; k++) found |= strcmp(tr->special[k], names[r]) == 0;
        if (!found)
            return empo_fail(EMPO_E_ARG, "bpe_trainer: %s token '%s' is not one of the special tokens", what[r],
                             names[r]);
    }
    for (int r = 0; r < 3; r++) {
        free(tr->role[r]);
        tr->role[r] = names[r] ? strdup(names[r]) : NULL;
    }
    return EMPO_OK;
}

/* ---- counting words ---- */

static const uint8_t *arena_copy(empo_bpe_trainer *tr, const uint8_t *p, size_t n) {
    enum { CHUNK = 1 << 20 };
    if (!tr->n_chunks || tr->chunk_used + n > CHUNK) {
        size_t size = n > CHUNK ? n : CHUNK;
        char **c = realloc(tr->chunks, (tr->n_chunks + 1) * sizeof *c);
        if (!c) return NULL;
        tr->chunks = c;
        if (!(c[tr->n_chunks] = malloc(size))) return NULL;
        tr->n_chunks++;
        tr->chunk_used = n > CHUNK ? CHUNK : 0;
        memcpy(c[tr->n_chunks - 1], p, n);
        if (n > CHUNK) return (const uint8_t *)c[tr->n_chunks - 1];
        tr->chunk_used = n;
        return (const uint8_t *)c[tr->n_chunks - 1];
    }
    char *dst = tr->chunks[tr->n_chunks - 1] + tr->chunk_used;
    memcpy(dst, p, n);
    tr->chunk_used += n;
    return (const uint8_t *)dst;
}

static int count_word(void *ctx, const uint8_t *p, size_t n) {
    empo_bpe_trainer *tr = ctx;
    int32_t w = tok_strmap_get(&tr->word_map, p, n);
    if (w >= 0) {
        tr->word_count[w]++;
        return EMPO_OK;
    }
    if (n > UINT32_MAX || tr->n_words >= INT32_MAX) return tfail(EMPO_E_ARG, "corpus too large");
    if (tr->n_words == tr->cap_words) {   /* three arrays of one capacity */
        size_t cap = tr->cap_words, cap2 = cap, cap3 = cap;
        EMPO_TRY(tok_grow((void **)&tr->word, &cap, tr->n_words + 1, sizeof *tr->word));
        EMPO_TRY(tok_grow((void **)&tr->word_len, &cap2, cap, sizeof *tr->word_len));
        EMPO_TRY(tok_grow((void **)&tr->word_count, &cap3, cap, sizeof *tr->word_count));
        tr->cap_words = cap;
    }
    const uint8_t *key = arena_copy(tr, p, n);
    if (!key) return tfail(EMPO_E_NOMEM, "out of memory");
    tr->word[tr->n_words] = key;
    tr->word_len[tr->n_words] = (uint32_t)n;
    tr->word_count[tr->n_words] = 1;
    EMPO_TRY(tok_strmap_put(&tr->word_map, key, n, (int32_t)tr->n_words));
    tr->n_words++;
    return EMPO_OK;
}

int empo_bpe_trainer_feed(empo_bpe_trainer *tr, const char *text, int64_t nbytes) {
    if (!tr || !text) return tfail(EMPO_E_ARG, "feed: NULL argument");
    if (tr->trained) return tfail(EMPO_E_STATE, "feed: the trainer has already trained");
    EMPO_TRY(build_pipe(tr));
    size_t n = nbytes < 0 ? strlen(text) : (size_t)nbytes;
    int64_t bad = tok_utf8_invalid_at((const uint8_t *)text, n);
    if (bad >= 0) return empo_fail(EMPO_E_ARG, "bpe_trainer: feed: invalid UTF-8 at byte %lld", (long long)bad);
    return tok_run_pipeline(tr->pipe, (const uint8_t *)text, n, EMPO_TOK_SPECIAL, count_word, tr, 0);
}

int empo_bpe_trainer_feed_file(empo_bpe_trainer *tr, const char *path, const char *field) {
    if (!tr || !path) return tfail(EMPO_E_ARG, "feed_file: NULL argument");
    char *data;
    size_t n;
    EMPO_TRY(tok_read_file("bpe_trainer", path, &data, &n));
    int st = EMPO_OK;
    int64_t bad = tok_utf8_invalid_at((const uint8_t *)data, n);
    if (bad >= 0) {
        st = empo_fail(EMPO_E_IO, "bpe_trainer: %s: invalid UTF-8 at byte %lld", path, (long long)bad);
    } else if (!field) {
        st = empo_bpe_trainer_feed(tr, data, (int64_t)n);
    } else {
        long line = 0;
        for (char *p = data, *end = data + n; p < end && st == EMPO_OK;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            char *stop = nl ? nl : end;
            line++;
            size_t len = (size_t)(stop - p);
            int blank = 1;
            for (size_t k = 0; k < len && blank; k++) blank = p[k] == ' ' || p[k] == '\t' || p[k] == '\r';
            if (!blank) {
                cJSON *j = cJSON_ParseWithLength(p, len);
                const cJSON *f = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, field) : NULL;
                if (!j) st = empo_fail(EMPO_E_IO, "bpe_trainer: %s:%ld: invalid JSON", path, line);
                else if (!cJSON_IsString(f))
                    st = empo_fail(EMPO_E_IO, "bpe_trainer: %s:%ld: no string field \"%s\"", path, line, field);
                else st = empo_bpe_trainer_feed(tr, f->valuestring, -1);
                cJSON_Delete(j);
            }
            p = stop + 1;
        }
    }
    free(data);
    return st;
}

/* ---- training ---- */

static int add_token(empo_bpe_trainer *tr, const uint8_t *p, size_t n, int32_t *id) {
    int32_t have = tok_strmap_get(&tr->tok_map, p, n);
    if (have >= 0) {
        *id = have;
        return EMPO_OK;
    }
    int32_t k = tr->n_tokens;
    uint8_t *copy = malloc(n + 1);
    if (!copy) return tfail(EMPO_E_NOMEM, "out of memory");
    memcpy(copy, p, n);
    copy[n] = 0;
    tr->tok_bytes_of[k] = copy;
    tr->tok_len[k] = (uint32_t)n;
    tr->n_tokens++;
    EMPO_TRY(tok_strmap_put(&tr->tok_map, copy, n, k));
    *id = k;
    return EMPO_OK;
}

typedef struct {
    tok_mergemap index;   /* pair -> slot in stats (rank field) */
    pair_stat *stats;
    int64_t *pairs;
    size_t n, cap;
    train_heap_entry *heap;
    size_t nh, cap_h;
} pair_table;

static int heap_better(train_heap_entry a, train_heap_entry b) {
    return a.count > b.count || (a.count == b.count && a.pair < b.pair);
}

static int heap_add(pair_table *t, train_heap_entry e) {
    if (t->nh == t->cap_h) EMPO_TRY(tok_grow((void **)&t->heap, &t->cap_h, t->nh + 1, sizeof *t->heap));
    size_t i = t->nh++;
    while (i > 0 && heap_better(e, t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = e;
    return EMPO_OK;
}

static train_heap_entry heap_take(pair_table *t) {
    train_heap_entry top = t->heap[0], last = t->heap[--t->nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->nh) break;
        if (c + 1 < t->nh && heap_better(t->heap[c + 1], t->heap[c])) c++;
        if (!heap_better(t->heap[c], last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->nh) t->heap[i] = last;
    return top;
}

/* The stats slot of pair (a, b), created on first use. */
static int pair_slot(pair_table *t, int32_t a, int32_t b, size_t *slot) {
    const tok_merge *m = tok_mergemap_get(&t->index, a, b);
    if (m) {
        *slot = m->rank;
        return EMPO_OK;
    }
    if (t->n == t->cap) {   /* two arrays of one capacity */
        size_t cap = t->cap, cap2 = t->cap;
        EMPO_TRY(tok_grow((void **)&t->stats, &cap, t->n + 1, sizeof *t->stats));
        EMPO_TRY(tok_grow((void **)&t->pairs, &cap2, cap, sizeof *t->pairs));
        t->cap = cap;
    }
    memset(&t->stats[t->n], 0, sizeof t->stats[0]);
    t->pairs[t->n] = (int64_t)a << 32 | (uint32_t)b;
    EMPO_TRY(tok_mergemap_put(&t->index, a, b, (uint32_t)t->n, 0));
    *slot = t->n++;
    return EMPO_OK;
}

static int pair_add(pair_table *t, int32_t a, int32_t b, int64_t delta, int32_t word, int push) {
    size_t s;
    EMPO_TRY(pair_slot(t, a, b, &s));
    t->stats[s].count += delta;
    if (delta > 0) {
        EMPO_TRY(tok_i32_push(&t->stats[s].where, word));
        if (push) EMPO_TRY(heap_add(t, (train_heap_entry){t->stats[s].count, t->pairs[s]}));
    }
    return EMPO_OK;
}

static void pair_table_free(pair_table *t) {
    tok_mergemap_free(&t->index);
    for (size_t k = 0; k < t->n; k++) free(t->stats[k].where.p);
    free(t->stats);
    free(t->pairs);
    free(t->heap);
}

/* Merges (a, b) -> c in word w, updating the pair counts. */
static int merge_word(empo_bpe_trainer *tr, pair_table *t, int32_t w, int32_t a, int32_t b, int32_t c) {
    tok_i32 *s = &tr->sym[w];
    int64_t cnt = tr->word_count[w];
    size_t i = 0;
    while (i + 1 < s->n) {
        if (s->p[i] != a || s->p[i + 1] != b) {
            i++;
            continue;
        }
        EMPO_TRY(pair_add(t, a, b, -cnt, w, 0));
        if (i > 0) {
            EMPO_TRY(pair_add(t, s->p[i - 1], a, -cnt, w, 0));
            EMPO_TRY(pair_add(t, s->p[i - 1], c, cnt, w, 1));
        }
        s->p[i] = c;
        memmove(s->p + i + 1, s->p + i + 2, (s->n - i - 2) * sizeof *s->p);
        s->n--;
        if (i + 1 < s->n) {
            EMPO_TRY(pair_add(t, b, s->p[i + 1], -cnt, w, 0));
            EMPO_TRY(pair_add(t, c, s->p[i + 1], cnt, w, 1));
        }
        i++;
    }
    return EMPO_OK;
}

static int train(empo_bpe_trainer *tr, pair_table *t) {
    size_t max_tokens = (size_t)tr->n_special + 256 + (size_t)tr->vocab_size;
    tr->tok_bytes_of = calloc(max_tokens, sizeof *tr->tok_bytes_of);
    tr->tok_len = calloc(max_tokens, sizeof *tr->tok_len);
    tr->merges = malloc((size_t)tr->vocab_size * sizeof *tr->merges + 1);
    tr->sym = calloc(tr->n_words + 1, sizeof *tr->sym);
    if (!tr->tok_bytes_of || !tr->tok_len || !tr->merges || !tr->sym) return tfail(EMPO_E_NOMEM, "out of memory");
    EMPO_TRY(tok_strmap_init(&tr->tok_map, max_tokens));
    EMPO_TRY(tok_mergemap_init(&t->index, 1 << 16));
    /* special tokens, then the 256 bytes in the order of their byte-level characters */
    int32_t id, byte_tok[256];
    for (int k = 0; k < tr->n_special; k++) {
        EMPO_TRY(add_token(tr, (const uint8_t *)tr->special[k], strlen(tr->special[k]), &id));
        tr->tok_len[id] |= 0x80000000u;   /* marks a special token, never part of a word */
    }
    for (int32_t cp = 0; cp < 324; cp++) {
        int b = tok_cp_to_byte(cp);
        if (b < 0) continue;
        uint8_t byte = (uint8_t)b;
        /* a special token may be a single byte: keep the byte its own id */
        int32_t k = tr->n_tokens;
        uint8_t *copy = malloc(2);
        if (!copy) return tfail(EMPO_E_NOMEM, "out of memory");
        copy[0] = byte;
        tr->tok_bytes_of[k] = copy;
        tr->tok_len[k] = 1;
        tr->n_tokens++;
        byte_tok[b] = k;
    }
    for (int b = 0; b < 256; b++) EMPO_TRY(tok_strmap_put(&tr->tok_map, tr->tok_bytes_of[byte_tok[b]], 1, byte_tok[b]));
    /* words as symbols, and the first pair counts */
    for (size_t w = 0; w < tr->n_words; w++) {
        tok_i32 *s = &tr->sym[w];
        EMPO_TRY(tok_i32_reserve(s, tr->word_len[w]));
        for (uint32_t i = 0; i < tr->word_len[w]; i++) s->p[s->n++] = byte_tok[tr->word[w][i]];
        for (size_t i = 0; i + 1 < s->n; i++) EMPO_TRY(pair_add(t, s->p[i], s->p[i + 1], tr->word_count[w], (int32_t)w, 0));
    }
    for (size_t k = 0; k < t->n; k++)
        if (t->stats[k].count > 0) EMPO_TRY(heap_add(t, (train_heap_entry){t->stats[k].count, t->pairs[k]}));
    int32_t *seen = calloc(tr->n_words + 1, sizeof *seen);
    if (!seen) return tfail(EMPO_E_NOMEM, "out of memory");
    int st = EMPO_OK;
    tok_bytes cat = {0};
    while (st == EMPO_OK && tr->n_tokens < tr->vocab_size && t->nh) {
        train_heap_entry top = heap_take(t);
        int32_t a = (int32_t)(top.pair >> 32), b = (int32_t)(uint32_t)top.pair;
        size_t s;
        if ((st = pair_slot(t, a, b, &s)) != EMPO_OK) break;
        int64_t now = t->stats[s].count;
        if (now != top.count) {   /* stale: re-queue with the current count */
            if (now > 0) st = heap_add(t, (train_heap_entry){now, top.pair});
            continue;
        }
        if (now < tr->min_frequency) break;
        cat.n = 0;
        if ((st = tok_bytes_append(&cat, tr->tok_bytes_of[a], tr->tok_len[a])) != EMPO_OK) break;
        if ((st = tok_bytes_append(&cat, tr->tok_bytes_of[b], tr->tok_len[b])) != EMPO_OK) break;
        int32_t c;
        if ((st = add_token(tr, cat.p, cat.n, &c)) != EMPO_OK) break;
        tr->merges[tr->n_merges][0] = a;
        tr->merges[tr->n_merges][1] = b;
        tr->n_merges++;
        /* the where-list may grow while we walk it: walk a snapshot length */
        size_t nw = t->stats[s].where.n;
        for (size_t k = 0; k < nw && st == EMPO_OK; k++) {
            int32_t w = t->stats[s].where.p[k];
            if (seen[w] == tr->n_merges) continue;
            seen[w] = (int32_t)tr->n_merges;
            st = merge_word(tr, t, w, a, b, c);
        }
        /* every occurrence is gone; its where-list is no longer needed */
        free(t->stats[s].where.p);
        memset(&t->stats[s].where, 0, sizeof t->stats[s].where);
    }
    free(seen);
    free(cat.p);
    return st;
}

/* ---- output ---- */

static char *spell(const uint8_t *p, size_t n) {
    char *s = malloc(n * 2 + 1), *o = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) o += tok_utf8_encode(tok_byte_cp(p[i]), (uint8_t *)o);
    *o = 0;
    return s;
}

static int build_json(empo_bpe_trainer *tr) {
    cJSON *root = skeleton(tr);
    cJSON *model = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "model", model);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
    cJSON_AddStringToObject(model, "end_of_word_suffix", "");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    char **spelled = calloc((size_t)tr->n_tokens + 1, sizeof *spelled);
    int st = spelled ? EMPO_OK : tfail(EMPO_E_NOMEM, "out of memory");
    for (int32_t k = 0; k < tr->n_tokens && st == EMPO_OK; k++) {
        int special = (tr->tok_len[k] & 0x80000000u) != 0;
        spelled[k] = special ? strdup((const char *)tr->tok_bytes_of[k])
                             : spell(tr->tok_bytes_of[k], tr->tok_len[k]);
        if (!spelled[k]) st = tfail(EMPO_E_NOMEM, "out of memory");
        else cJSON_AddNumberToObject(vocab, spelled[k], k);
    }
    for (int64_t m = 0; m < tr->n_merges && st == EMPO_OK; m++) {
        const char *pair[2] = {spelled[tr->merges[m][0]], spelled[tr->merges[m][1]]};
        cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
    }
    if (st == EMPO_OK) {
        tr->json = cJSON_Print(root);
        cJSON *cfg = cJSON_CreateObject();
        cJSON_AddBoolToObject(cfg, "add_bos_token", 0);
        cJSON_AddBoolToObject(cfg, "add_prefix_space", 0);
        static const char *keys[3] = {"bos_token", "eos_token", "pad_token"};
        for (int r = 0; r < 3; r++) {
            if (tr->role[r]) cJSON_AddStringToObject(cfg, keys[r], tr->role[r]);
            else cJSON_AddNullToObject(cfg, keys[r]);
        }
        cJSON_AddNullToObject(cfg, "unk_token");
        cJSON_AddBoolToObject(cfg, "clean_up_tokenization_spaces", 0);
        cJSON_AddStringToObject(cfg, "errors", "replace");
        cJSON_AddStringToObject(cfg, "tokenizer_class", "PreTrainedTokenizerFast");
        tr->config = cJSON_Print(cfg);
        cJSON_Delete(cfg);
        if (!tr->json || !tr->config) st = tfail(EMPO_E_NOMEM, "out of memory");
    }
    for (int32_t k = 0; spelled && k < tr->n_tokens; k++) free(spelled[k]);
    free(spelled);
    cJSON_Delete(root);
    return st;
}

int empo_bpe_trainer_train(empo_bpe_trainer *tr) {
    if (!tr) return tfail(EMPO_E_ARG, "train: NULL trainer");
    if (tr->trained) return tfail(EMPO_E_STATE, "train: already trained");
    if (tr->vocab_size < tr->n_special + 256)
        return empo_fail(EMPO_E_ARG, "bpe_trainer: vocab_size %lld is below the %d special + 256 byte tokens",
                         (long long)tr->vocab_size, tr->n_special);
    EMPO_TRY(build_pipe(tr));
    pair_table t;
    memset(&t, 0, sizeof t);
    int st = train(tr, &t);
    pair_table_free(&t);
    if (st == EMPO_OK) st = build_json(tr);
    if (st == EMPO_OK) tr->trained = 1;
    return st;
}

int64_t empo_bpe_trainer_num_merges(const empo_bpe_trainer *tr) { return tr ? tr->n_merges : 0; }

int empo_bpe_trainer_json(empo_bpe_trainer *tr, const char **tokenizer_json, const char **config_json) {
    if (!tr) return tfail(EMPO_E_ARG, "json: NULL trainer");
    if (!tr->trained) return tfail(EMPO_E_STATE, "json: call train first");
    if (tokenizer_json) *tokenizer_json = tr->json;
    if (config_json) *config_json = tr->config;
    return EMPO_OK;
}

/* dir/name holding text and a newline, written atomically */
static int write_text(const char *dir, const char *name, const char *text) {
    size_t n = strlen(dir) + strlen(name) + 2, len = strlen(text);
    char *path = malloc(n), *body = malloc(len + 1);
    int st = path && body ? EMPO_OK : tfail(EMPO_E_NOMEM, "out of memory");
    if (st == EMPO_OK) {
        snprintf(path, n, "%s/%s", dir, name);
        memcpy(body, text, len);
        body[len] = '\n';
        st = empo_write_file_atomic(path, body, (int64_t)len + 1);
    }
    free(path);
    free(body);
    return st;
}

int empo_bpe_trainer_save(empo_bpe_trainer *tr, const char *dir) {
    if (!tr || !dir || !*dir) return tfail(EMPO_E_ARG, "save: NULL argument");
    if (!tr->trained) return tfail(EMPO_E_STATE, "save: call train first");
    EMPO_TRY(empo_make_dirs(dir));
    EMPO_TRY(write_text(dir, "tokenizer.json", tr->json));
    return write_text(dir, "tokenizer_config.json", tr->config);
}
