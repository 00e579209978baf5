/* tokenizer_internal.h — what the tokenizer files share (tokenizer_util.c,
 * tokenizer_load.c, tokenizer_pipeline.c, tokenizer_bpe.c, tokenizer_train.c).
 * Not part of the public API.
 *
 * The encode path: text -> UTF-8 check -> split out added tokens (raw text)
 * -> normalize each remaining segment (NFC...) -> split out normalized added
 * tokens -> pre-tokenizer stages (regex splits) -> pre-token bytes -> BPE
 * (cached) -> ids. The model works on raw bytes: vocab strings, which are
 * spelled in GPT-2's byte-level alphabet, are mapped back to bytes at load
 * time, so nothing is mapped per call. */
#ifndef EMPO_TOKENIZER_INTERNAL_H
#define EMPO_TOKENIZER_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include "base/base_internal.h"
#include "empo/tokenizer.h"

/* ---- growable buffers (never shrink; reused across calls) ---- */
/* Makes *p (an array of *cap elements of elem bytes) hold at least want,
 * doubling; fails with EMPO_E_NOMEM (and *p unchanged). */
int tok_grow(void **p, size_t *cap, size_t want, size_t elem);
typedef struct { uint8_t *p; size_t n, cap; } tok_bytes;
typedef struct { int32_t *p; size_t n, cap; } tok_i32;
typedef struct { int64_t *p; size_t n, cap; } tok_i64;
int tok_bytes_reserve(tok_bytes *b, size_t cap);
int tok_bytes_append(tok_bytes *b, const void *p, size_t n);
int tok_i32_reserve(tok_i32 *v, size_t cap);
int tok_i32_push(tok_i32 *v, int32_t x);
int tok_i64_push(tok_i64 *v, int64_t x);

/* ---- hashing and maps ---- */
uint64_t tok_hash(const void *p, size_t n);

/* Byte string -> int32 (open addressing; keys are borrowed pointers that
 * must outlive the map). Later puts of the same key overwrite. */
typedef struct {
    const uint8_t **key;
    uint32_t *len;
    uint32_t *tag;     /* high hash bits, 0 = empty slot */
    int32_t *val;
    size_t cap, n;     /* cap is a power of two */
} tok_strmap;
int tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
int tok_strmap_put(tok_strmap *m, const void *key, size_t len, int32_t val);
int32_t tok_strmap_get(const tok_strmap *m, const void *key, size_t len);   /* -1 when absent */

/* (left id, right id) -> (rank, merged id). */
typedef struct { uint64_t key; uint32_t rank; int32_t id; } tok_merge;
typedef struct { tok_merge *slot; size_t cap, n; } tok_mergemap;
int tok_mergemap_init(tok_mergemap *m, size_t expected);
void tok_mergemap_free(tok_mergemap *m);
int tok_mergemap_put(tok_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
const tok_merge *tok_mergemap_get(const tok_mergemap *m, int32_t a, int32_t b);

/* ---- UTF-8 ---- */
/* Offset of the first byte that is not valid UTF-8, or -1 when all is. */
int64_t tok_utf8_invalid_at(const uint8_t *s, size_t n);
/* Decodes one code point of valid UTF-8 at s; returns its length. */
int tok_utf8_decode(const uint8_t *s, int32_t *cp);
int tok_utf8_encode(int32_t cp, uint8_t *out);
/* Appends s with each ill-formed subsequence replaced by U+FFFD, exactly as
 * Rust's String::from_utf8_lossy (and so HF's decoders) does. */
int tok_utf8_lossy(tok_bytes *out, const uint8_t *s, size_t n);
/* Unicode White_Space (Rust's char::is_whitespace). */
int tok_is_white_space(int32_t cp);

/* ---- GPT-2 byte-level alphabet ---- */
/* byte -> code point, and code point -> byte or -1. */
int32_t tok_byte_cp(int b);
int tok_cp_to_byte(int32_t cp);
/* Maps a token spelled in the byte-level alphabet to its bytes; returns 0
 * when some character is outside the alphabet (out is then unspecified). */
int tok_bytelevel_to_bytes(const uint8_t *s, size_t n, tok_bytes *out);

/* ---- files ---- */
/* Reads a whole file (NUL-terminated). Fails with EMPO_E_IO naming path. */
int tok_read_file(const char *what, const char *path, char **data, size_t *n);

/* ---- the pipeline ---- */
enum { TOK_NORM_NFC = 1, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD, TOK_NORM_LOWERCASE };
enum { TOK_MAX_NORM = 8, TOK_MAX_STAGES = 8 };

/* Split behaviours, as HF's SplitDelimiterBehavior. */
enum { TOK_REMOVED, TOK_ISOLATED, TOK_MERGED_PREV, TOK_MERGED_NEXT, TOK_CONTIGUOUS };
enum { TOK_STAGE_SPLIT, TOK_STAGE_PREFIX_SPACE };

typedef struct { uint32_t off, len; int match; } tok_piece;
typedef struct { tok_piece *p; size_t n, cap; } tok_pieces;

typedef struct {
    int kind;
    int behavior, invert;
    pcre2_code *re;
    pcre2_match_data *md;
    tok_pieces pieces;     /* scratch for one level of the recursion */
    tok_bytes buf;         /* scratch: a piece with a space prepended */
} tok_stage;

typedef struct {
    int32_t id;
    uint8_t *content;      /* owned; NUL-terminated */
    uint32_t len;
    uint8_t special, lstrip, rstrip, single_word, normalized;
} tok_added;

/* Leftmost-longest matching of a set of added tokens. */
typedef struct {
    uint8_t first[256];    /* 1 when some token starts with this byte */
    int32_t start[257];    /* order[start[b] .. start[b+1]): tokens starting with b, longest first */
    int32_t *order;        /* indices into tok->added */
    int32_t n;
} tok_matcher;

/* Pieces of text that go on to the pre-tokenizer (id < 0) or are added
 * tokens (id >= 0). */
typedef struct { uint32_t off, len; int32_t id; } tok_seg;
typedef struct { tok_seg *p; size_t n, cap; } tok_segs;

/* One cache entry: pre-token bytes -> ids. */
typedef struct { uint64_t hash; uint32_t key_off, ids_off; uint16_t key_len, n_ids; } tok_cache_slot;
enum { TOK_CACHE_SLOTS = 1 << 15, TOK_CACHE_MAX_KEY = 64 };

typedef struct { int32_t c, prev, next; } tok_symbol;
typedef struct { uint64_t key; int32_t id; } tok_heap_entry;   /* key = rank << 32 | pos */

/* Receives each pre-token (bytes) of a text; the encoder runs BPE on it,
 * the trainer counts it. */
typedef int (*tok_piece_fn)(void *ctx, const uint8_t *p, size_t n);

struct empo_tokenizer {
    char *name;                   /* file name for messages */
    /* model */
    int32_t n_ids;                /* largest id + 1 */
    int32_t model_size;           /* entries in model.vocab */
    char *str_arena;              /* vocab strings as spelled in the file, NUL-terminated */
    uint32_t *str_off;            /* [n_ids], UINT32_MAX = no token */
    uint32_t *str_len;
    uint8_t *dec_arena;           /* what each id decodes to */
    uint32_t *dec_off, *dec_len;  /* [n_ids] */
    uint8_t *raw_arena;           /* model tokens as bytes (byte-level alphabet undone) */
    tok_strmap vocab;             /* spelled token -> id (model) */
    tok_strmap vocab_raw;         /* token bytes -> id (model), for ignore_merges */
    tok_mergemap merges;
    int32_t byte_id[256];         /* id of each single byte, -1 when absent */
    int ignore_merges;
    /* added tokens */
    tok_added *added;
    int32_t n_added;
    tok_strmap added_map;         /* content -> id */
    uint8_t *is_special;          /* [n_ids] */
    tok_matcher match_raw, match_norm;   /* normalized = false / true tokens */
    /* pipeline */
    int norm[TOK_MAX_NORM];
    int n_norm;
    tok_stage stage[TOK_MAX_STAGES];
    int n_stages;
    int decoder_bytelevel;        /* else tokens are joined with spaces */
    tok_i32 prefix_ids, suffix_ids;   /* post-processor (EMPO_TOK_ADD_SPECIAL) */
    int32_t bos_id, eos_id, pad_id;
    /* per-call scratch (a tokenizer is used by one thread at a time) */
    tok_i32 ids;
    tok_i64 offsets;
    tok_bytes norm_buf, norm_tmp, dec_buf, dec_tmp;
    int32_t *cp_buf;
    size_t cp_cap;
    tok_segs segs, segs2;
    tok_symbol *sym;
    tok_heap_entry *heap;
    size_t sym_cap;
    /* pre-token cache */
    tok_cache_slot *cache;
    size_t cache_used;
    tok_bytes cache_keys;
    tok_i32 cache_ids;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
};

/* tokenizer_load.c: the pipeline parts of a parsed tokenizer.json (also
 * used by the trainer, whose tokenizer has no model). */
struct cJSON;
int tok_parse_pipeline(empo_tokenizer *tok, const struct cJSON *root);
int tok_parse_added(empo_tokenizer *tok, const struct cJSON *root);
void tok_free_parts(empo_tokenizer *tok);

/* tokenizer_pipeline.c */
int tok_compile_regex(empo_tokenizer *tok, tok_stage *st, const char *pattern, size_t len,
                      int literal);
int tok_build_matchers(empo_tokenizer *tok);
/* Runs the pipeline on text (valid UTF-8) and hands every pre-token to fn;
 * added tokens found are appended to tok->ids when `emit_added`. */
int tok_run_pipeline(empo_tokenizer *tok, const uint8_t *text, size_t n, int flags,
                     tok_piece_fn fn, void *ctx, int emit_added);

/* tokenizer_bpe.c */
int tok_bpe_piece(void *tok, const uint8_t *p, size_t n);

#endif
