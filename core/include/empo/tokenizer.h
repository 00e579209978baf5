/* empo/tokenizer.h — Hugging Face byte-level BPE tokenizers and a BPE trainer.
 *
 * Reads a `tokenizer.json` as written by Hugging Face `tokenizers` for
 * byte-level BPE models (Qwen2/2.5/3, GPT-2, Llama-3): the normalizer (NFC,
 * NFD, NFKC, NFKD, Lowercase), the pre-tokenizer (Split regexes run by PCRE2
 * with JIT, ByteLevel, Digits), the BPE model (merges by rank, ignore_merges),
 * added and special tokens (matched before pre-tokenization, as HF does),
 * the post-processor's BOS/EOS and the ByteLevel decoder. Token ids equal
 * those of HF `tokenizers` on the same file. A directory may also hold
 * tokenizer_config.json, which names the BOS/EOS/PAD tokens.
 *
 *     empo_tokenizer *tok;
 *     if (empo_tokenizer_load(&tok, "models/qwen") != EMPO_OK)
 *         fprintf(stderr, "%s\n", empo_last_error());
 *     const int32_t *ids; int64_t n;
 *     empo_tokenizer_encode(tok, "Hello world", -1, EMPO_TOK_SPECIAL, &ids, &n);
 *     const char *text; int64_t len;
 *     empo_tokenizer_decode(tok, ids, n, 0, &text, &len);
 *     empo_tokenizer_free(tok);
 *
 * Results (ids, text) point into buffers owned by the tokenizer, valid until
 * the next call on it. A tokenizer caches pre-token -> ids, so one handle is
 * used by one thread at a time; use one handle per thread.
 *
 * The trainer learns a byte-level BPE of a given size from text (Qwen's
 * pre-tokenizer, so every digit stays a single token) and writes a standard
 * tokenizer.json:
 *
 *     empo_bpe_trainer *tr;
 *     empo_bpe_trainer_new(&tr, 1024, 2);
 *     empo_bpe_trainer_add_special(tr, "<|endoftext|>", -1);
 *     empo_bpe_trainer_feed_file(tr, "corpus.jsonl", "text");
 *     empo_bpe_trainer_train(tr);
 *     empo_bpe_trainer_save(tr, "models/arith");     // tokenizer.json + tokenizer_config.json
 *     empo_bpe_trainer_free(tr);
 *
 * Lengths given as -1 mean "NUL-terminated". */
#ifndef EMPO_TOKENIZER_H
#define EMPO_TOKENIZER_H
#ifndef EMPO_FFI
#include <stdint.h>
#endif

typedef struct empo_tokenizer empo_tokenizer;
typedef struct empo_bpe_trainer empo_bpe_trainer;

/* Flags of encode and decode (bitwise or). */
enum {
    EMPO_TOK_SPECIAL = 1,      /* encode: special tokens in the text are control tokens (HF's
                                * default); without it their text is split like any text */
    EMPO_TOK_ADD_SPECIAL = 2,  /* encode: add the post-processor's tokens (e.g. Llama-3's BOS) */
    EMPO_TOK_SKIP_SPECIAL = 4, /* decode: leave special tokens out */
    EMPO_TOK_RAW_BYTES = 8     /* decode: the bytes as they are, even when ids end inside a
                                * character (default: such bytes become U+FFFD, as HF does) */
};

/* --- loading --- */
/* `path` is a tokenizer.json, or a directory holding tokenizer.json and
 * optionally tokenizer_config.json. */
int empo_tokenizer_load(empo_tokenizer **out, const char *path);
/* From text in memory: `json` is a tokenizer.json, `config_json` a
 * tokenizer_config.json or NULL; `name` is used in error messages. */
int empo_tokenizer_load_json(empo_tokenizer **out, const char *json, int64_t nbytes,
                             const char *config_json, const char *name);
void empo_tokenizer_free(empo_tokenizer *tok);

/* --- vocabulary --- */
/* Largest id + 1, added tokens included (the embedding rows a model needs). */
int64_t empo_tokenizer_vocab_size(const empo_tokenizer *tok);
/* The id of a token as spelled in tokenizer.json (byte-level alphabet,
 * e.g. "Ġworld"), added tokens included; -1 when there is none. */
int32_t empo_tokenizer_token_to_id(const empo_tokenizer *tok, const char *token, int64_t nbytes);
/* The token of an id as spelled in tokenizer.json; fails for an unknown id. */
int empo_tokenizer_id_to_token(const empo_tokenizer *tok, int32_t id, const char **token,
                               int64_t *nbytes);
/* 1 when id is an added token marked special (e.g. <|im_end|>), else 0. */
int empo_tokenizer_is_special(const empo_tokenizer *tok, int32_t id);
/* From tokenizer_config.json (bos_token, eos_token, pad_token); -1 if unset. */
int32_t empo_tokenizer_bos_id(const empo_tokenizer *tok);
int32_t empo_tokenizer_eos_id(const empo_tokenizer *tok);
int32_t empo_tokenizer_pad_id(const empo_tokenizer *tok);
/* Added tokens, in file order: i in [0, count). */
int64_t empo_tokenizer_added_count(const empo_tokenizer *tok);
int empo_tokenizer_added_token(const empo_tokenizer *tok, int64_t i, int32_t *id,
                               const char **content, int64_t *nbytes, int *special);

/* Offset of the first byte of s[0..n) that is not valid UTF-8 (overlong
 * forms, surrogates and code points past U+10FFFF included), or -1 when
 * all of it is; the same check encode makes. */
int64_t empo_utf8_invalid_at(const char *s, int64_t n);

/* --- encode / decode --- */
/* text (UTF-8; invalid UTF-8 fails naming the byte) -> *ids (n of them). */
int empo_tokenizer_encode(empo_tokenizer *tok, const char *text, int64_t nbytes, int flags,
                          const int32_t **ids, int64_t *n);
/* count texts -> ids of text i at (*ids)[(*offsets)[i] .. (*offsets)[i+1]).
 * nbytes may be NULL (all NUL-terminated). */
int empo_tokenizer_encode_batch(empo_tokenizer *tok, int64_t count, const char *const *texts,
                                const int64_t *nbytes, int flags, const int32_t **ids,
                                const int64_t **offsets);
/* ids -> *text (nbytes of UTF-8, NUL-terminated). */
int empo_tokenizer_decode(empo_tokenizer *tok, const int32_t *ids, int64_t n, int flags,
                          const char **text, int64_t *nbytes);

/* --- training --- */
/* vocab_size counts special tokens, the 256 byte tokens and the merges;
 * pairs seen fewer than min_frequency times are never merged. */
int empo_bpe_trainer_new(empo_bpe_trainer **out, int64_t vocab_size, int64_t min_frequency);
void empo_bpe_trainer_free(empo_bpe_trainer *tr);
/* Special tokens get the first ids, in the order added; their text in the
 * corpus is never split or merged. Add them before feeding text. */
int empo_bpe_trainer_add_special(empo_bpe_trainer *tr, const char *token, int64_t nbytes);
/* Names (already added special tokens, or NULL) written to
 * tokenizer_config.json as bos_token, eos_token, pad_token. */
int empo_bpe_trainer_set_roles(empo_bpe_trainer *tr, const char *bos, const char *eos,
                               const char *pad);
/* Counts the pre-tokens of one text (one document: nothing merges across
 * two calls). */
int empo_bpe_trainer_feed(empo_bpe_trainer *tr, const char *text, int64_t nbytes);
/* A plain text file (field NULL: the whole file is one text) or a JSONL
 * file (each line an object; its string `field` is one text). */
int empo_bpe_trainer_feed_file(empo_bpe_trainer *tr, const char *path, const char *field);
int empo_bpe_trainer_train(empo_bpe_trainer *tr);
/* The trained tokenizer.json / tokenizer_config.json as text (owned by tr). */
int empo_bpe_trainer_json(empo_bpe_trainer *tr, const char **tokenizer_json,
                          const char **config_json);
/* Writes tokenizer.json and tokenizer_config.json into dir (created if
 * missing). */
int empo_bpe_trainer_save(empo_bpe_trainer *tr, const char *dir);
/* Merges learned so far (after train). */
int64_t empo_bpe_trainer_num_merges(const empo_bpe_trainer *tr);

#endif
