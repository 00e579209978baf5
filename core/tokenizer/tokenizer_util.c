/* tokenizer_util.c — the tokenizer's small tools: growable buffers, hash
 * maps (byte strings and merge pairs), UTF-8 checks and lossy decoding,
 * GPT-2's byte-level alphabet, whole-file reads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer_internal.h"

/* ---- growable buffers ---- */

int tok_grow(void **p, size_t *cap, size_t want, size_t elem) {
    if (want <= *cap) return EMPO_OK;
    size_t c = *cap ? *cap : 64;
    while (c < want) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory (%zu bytes)", c * elem);
    /* the new tail zeroed: PCRE2's JIT reads a little past a subject's end
     * (harmless, but valgrind reports each read of uninitialised bytes) */
    memset((char *)q + *cap * elem, 0, (c - *cap) * elem);
    *p = q;
    *cap = c;
    return EMPO_OK;
}

int tok_bytes_reserve(tok_bytes *b, size_t cap) { return tok_grow((void **)&b->p, &b->cap, cap, 1); }

int tok_bytes_append(tok_bytes *b, const void *p, size_t n) {
    EMPO_TRY(tok_grow((void **)&b->p, &b->cap, b->n + n + 1, 1));
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return EMPO_OK;
}

int tok_i32_reserve(tok_i32 *v, size_t cap) { return tok_grow((void **)&v->p, &v->cap, cap, 4); }

int tok_i32_push(tok_i32 *v, int32_t x) {
    if (v->n == v->cap) EMPO_TRY(tok_grow((void **)&v->p, &v->cap, v->n + 1, 4));
    v->p[v->n++] = x;
    return EMPO_OK;
}

int tok_i64_push(tok_i64 *v, int64_t x) {
    if (v->n == v->cap) EMPO_TRY(tok_grow((void **)&v->p, &v->cap, v->n + 1, 8));
    v->p[v->n++] = x;
    return EMPO_OK;
}

/* ---- hashing ---- */

static inline uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t tok_hash(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0x100000001b3ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9fb21c651e98df25ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * 0x9fb21c651e98df25ULL;
    }
    return mix(h);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* ---- string map ---- */

int tok_strmap_init(tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2 + 1);
    m->key = calloc(m->cap, sizeof *m->key);
    m->len = calloc(m->cap, sizeof *m->len);
    m->tag = calloc(m->cap, sizeof *m->tag);
    m->val = calloc(m->cap, sizeof *m->val);
    if (!m->key || !m->len || !m->tag || !m->val) {
        tok_strmap_free(m);
        return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory (map of %zu entries)", expected);
    }
    return EMPO_OK;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->key);
    free(m->len);
    free(m->tag);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static uint32_t tag_of(uint64_t h) {
    uint32_t t = (uint32_t)(h >> 32);
    return t ? t : 1;
}

static int strmap_rehash(tok_strmap *m) {
    tok_strmap big;
    EMPO_TRY(tok_strmap_init(&big, m->cap));
    for (size_t i = 0; i < m->cap; i++)
        if (m->tag[i]) tok_strmap_put(&big, m->key[i], m->len[i], m->val[i]);
    tok_strmap_free(m);
    *m = big;
    return EMPO_OK;
}

int tok_strmap_put(tok_strmap *m, const void *key, size_t len, int32_t val) {
    if ((m->n + 1) * 2 > m->cap) EMPO_TRY(strmap_rehash(m));
    uint64_t h = tok_hash(key, len);
    uint32_t tag = tag_of(h);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (!m->tag[i]) {
            m->tag[i] = tag;
            m->key[i] = key;
            m->len[i] = (uint32_t)len;
            m->val[i] = val;
            m->n++;
            return EMPO_OK;
        }
        if (m->tag[i] == tag && m->len[i] == len && memcmp(m->key[i], key, len) == 0) {
            m->val[i] = val;
            return EMPO_OK;
        }
    }
}

int32_t tok_strmap_get(const tok_strmap *m, const void *key, size_t len) {
    if (!m->cap) return -1;
    uint64_t h = tok_hash(key, len);
    uint32_t tag = tag_of(h);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask; m->tag[i]; i = (i + 1) & mask)
        if (m->tag[i] == tag && m->len[i] == len && memcmp(m->key[i], key, len) == 0) return m->val[i];
    return -1;
}

/* ---- merge map ---- */

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

int tok_mergemap_init(tok_mergemap *m, size_t expected) {
    m->cap = pow2_at_least(expected * 2 + 1);
    m->n = 0;
    m->slot = malloc(m->cap * sizeof *m->slot);
    if (!m->slot) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory (%zu merges)", expected);
    for (size_t i = 0; i < m->cap; i++) m->slot[i].key = UINT64_MAX;   /* empty */
    return EMPO_OK;
}

void tok_mergemap_free(tok_mergemap *m) {
    free(m->slot);
    memset(m, 0, sizeof *m);
}

int tok_mergemap_put(tok_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    if ((m->n + 1) * 2 > m->cap) {
        tok_mergemap big;
        EMPO_TRY(tok_mergemap_init(&big, m->cap));
        for (size_t i = 0; i < m->cap; i++)
            if (m->slot[i].key != UINT64_MAX)
                tok_mergemap_put(&big, (int32_t)(m->slot[i].key >> 32), (int32_t)(uint32_t)m->slot[i].key,
                                 m->slot[i].rank, m->slot[i].id);
        tok_mergemap_free(m);
        *m = big;
    }
    uint64_t key = pair_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)mix(key) & mask;; i = (i + 1) & mask) {
        if (m->slot[i].key == UINT64_MAX) {
            m->slot[i] = (tok_merge){key, rank, id};
            m->n++;
            return EMPO_OK;
        }
        if (m->slot[i].key == key) {
            m->slot[i].rank = rank;
            m->slot[i].id = id;
            return EMPO_OK;
        }
    }
}

const tok_merge *tok_mergemap_get(const tok_mergemap *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t key = pair_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)mix(key) & mask; m->slot[i].key != UINT64_MAX; i = (i + 1) & mask)
        if (m->slot[i].key == key) return &m->slot[i];
    return NULL;
}

/* ---- UTF-8 ---- */

/* Length of the valid sequence starting at s[0] (which is >= 0x80) within
 * n bytes, or -(bytes of its maximal valid prefix, at least 1) when it is
 * ill-formed or cut short. */
static int utf8_seq(const uint8_t *s, size_t n) {
    uint8_t b = s[0];
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b == 0xE0) need = 2, lo = 0xA0;
    else if (b == 0xED) need = 2, hi = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF) need = 2;
    else if (b == 0xF0) need = 3, lo = 0x90;
    else if (b == 0xF4) need = 3, hi = 0x8F;
    else if (b >= 0xF1 && b <= 0xF3) need = 3;
    else return -1;
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) return -k;
        uint8_t c = s[k];
        if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return -k;
    }
    return need + 1;
}

int64_t tok_utf8_invalid_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_seq(s + i, n - i);
        if (k < 0) return (int64_t)i;
        i += (size_t)k;
    }
    return -1;
}

int64_t empo_utf8_invalid_at(const char *s, int64_t n) {
    if (!s || n <= 0) return -1;
    return tok_utf8_invalid_at((const uint8_t *)s, (size_t)n);
}

int tok_utf8_decode(const uint8_t *s, int32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80) { *cp = b; return 1; }
    if (b < 0xE0) { *cp = (b & 0x1F) << 6 | (s[1] & 0x3F); return 2; }
    if (b < 0xF0) { *cp = (b & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F); return 3; }
    *cp = (b & 0x07) << 18 | (s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    return 4;
}

int tok_utf8_encode(int32_t cp, uint8_t *out) {
    if (cp < 0x80) { out[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { out[0] = (uint8_t)(0xC0 | cp >> 6); out[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

int tok_utf8_lossy(tok_bytes *out, const uint8_t *s, size_t n) {
    static const uint8_t fffd[3] = {0xEF, 0xBF, 0xBD};
    size_t i = 0, run = 0;   /* s[run, i) is valid and not yet copied */
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_seq(s + i, n - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        EMPO_TRY(tok_bytes_append(out, s + run, i - run));
        EMPO_TRY(tok_bytes_append(out, fffd, 3));
        i += (size_t)(-k);
        run = i;
    }
    return tok_bytes_append(out, s + run, i - run);
}

int tok_is_white_space(int32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return 0;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---- byte-level alphabet: printable Latin-1 bytes stand for themselves,
 * the others are shifted to U+0100.. in byte order (GPT-2's bytes_to_unicode) */

static uint16_t b2c[256];
static int16_t c2b[324];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        b2c[b] = (uint16_t)(printable ? b : 256 + n++);
    }
    for (int c = 0; c < 324; c++) c2b[c] = -1;
    for (int b = 0; b < 256; b++) c2b[b2c[b]] = (int16_t)b;
}

static void ensure_tables(void) { pthread_once(&table_once, build_tables); }

int32_t tok_byte_cp(int b) {
    ensure_tables();
    return b2c[b & 0xFF];
}

int tok_cp_to_byte(int32_t cp) {
    ensure_tables();
    return cp >= 0 && cp < 324 ? c2b[cp] : -1;
}

int tok_bytelevel_to_bytes(const uint8_t *s, size_t n, tok_bytes *out) {
    ensure_tables();
    out->n = 0;
    if (tok_bytes_reserve(out, n + 1) != EMPO_OK) return 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        i += (size_t)tok_utf8_decode(s + i, &cp);
        int b = cp < 324 ? c2b[cp] : -1;
        if (b < 0) return 0;
        uint8_t byte = (uint8_t)b;
        if (tok_bytes_append(out, &byte, 1) != EMPO_OK) return 0;
    }
    return 1;
}

/* ---- files ---- */

int tok_read_file(const char *what, const char *path, char **data, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return empo_fail(EMPO_E_IO, "%s: cannot open %s: %s", what, path, strerror(errno));
    tok_bytes b = {0};
    char chunk[1 << 16];
    size_t got;
    int st = EMPO_OK;
    while (st == EMPO_OK && (got = fread(chunk, 1, sizeof chunk, f)) > 0) st = tok_bytes_append(&b, chunk, got);
    if (st == EMPO_OK && ferror(f)) st = empo_fail(EMPO_E_IO, "%s: cannot read %s", what, path);
    fclose(f);
    if (st == EMPO_OK && !b.p) st = tok_bytes_append(&b, "", 0);
    if (st != EMPO_OK) {
        free(b.p);
        return st;
    }
    *data = (char *)b.p;
    *n = b.n;
    return EMPO_OK;
}
