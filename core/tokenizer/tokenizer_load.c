/* tokenizer_load.c — reading a Hugging Face tokenizer.json (and
 * tokenizer_config.json) into an empo_tokenizer: the BPE model, added
 * tokens, normalizer, pre-tokenizer, post-processor and decoder.
 *
 * Anything the encoder would not reproduce exactly is refused with a
 * message naming the file and the field (model types other than BPE,
 * SentencePiece-style BPE with byte_fallback or without a ByteLevel
 * pre-tokenizer, unknown normalizers, ...), never silently approximated. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "tokenizer_internal.h"

static int bad(const empo_tokenizer *tok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const empo_tokenizer *tok, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return empo_fail(EMPO_E_IO, "tokenizer: %s: %s", tok->name ? tok->name : "(json)", msg);
}

static const cJSON *field(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static int is_null(const cJSON *j) { return !j || cJSON_IsNull(j); }

static const char *str_field(const cJSON *obj, const char *key) {
    const cJSON *j = field(obj, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* A boolean field, `def` when absent or null; -1 when of another type. */
static int bool_field(const cJSON *obj, const char *key, int def) {
    const cJSON *j = field(obj, key);
    if (is_null(j)) return def;
    if (!cJSON_IsBool(j)) return -1;
    return cJSON_IsTrue(j);
}

static int bool_of(const empo_tokenizer *tok, const cJSON *obj, const char *key, int def, const char *where,
                   int *out) {
    int v = bool_field(obj, key, def);
    if (v < 0) return bad(tok, "%s.%s must be true or false", where, key);
    *out = v;
    return EMPO_OK;
}

/* An id: an integral number in [0, 2^31 - 1). */
static int id_of(const cJSON *j, int32_t *id) {
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0 && v < 2147483647.0) || v != (double)(int64_t)v) return 0;
    *id = (int32_t)v;
    return 1;
}

/* ---- normalizer ---- */

static int parse_normalizer(empo_tokenizer *tok, const cJSON *n, int depth) {
    if (is_null(n)) return EMPO_OK;
    const char *type = str_field(n, "type");
    if (!type) return bad(tok, "normalizer has no \"type\"");
    static const char *names[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase"};
    for (int k = 0; k < 5; k++) {
        if (strcmp(type, names[k]) == 0) {
            if (tok->n_norm == TOK_MAX_NORM) return bad(tok, "too many normalizers (at most %d)", TOK_MAX_NORM);
            tok->norm[tok->n_norm++] = TOK_NORM_NFC + k;
            return EMPO_OK;
        }
    }
    if (strcmp(type, "Sequence") == 0 && depth < 4) {
        const cJSON *list = field(n, "normalizers"), *e;
        if (!cJSON_IsArray(list)) return bad(tok, "normalizer Sequence has no \"normalizers\" array");
        cJSON_ArrayForEach(e, list) EMPO_TRY(parse_normalizer(tok, e, depth + 1));
        return EMPO_OK;
    }
    return bad(tok, "normalizer type '%s' is not supported (empo reads NFC, NFD, NFKC, NFKD, Lowercase "
                    "and Sequence; SentencePiece-style Prepend/Replace normalizers are not byte-level BPE)",
               type);
}

/* ---- pre-tokenizer ---- */

/* GPT-2's pattern, which ByteLevel applies when use_regex is true. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int behavior_of(const char *s) {
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int k = 0; k < 5; k++)
        if (s && strcmp(s, names[k]) == 0) return k;
    return -1;
}

static int add_split(empo_tokenizer *tok, const char *pattern, size_t len, int literal, int behavior,
                     int invert) {
    if (tok->n_stages == TOK_MAX_STAGES) return bad(tok, "too many pre-tokenizers (at most %d)", TOK_MAX_STAGES);
    tok_stage *st = &tok->stage[tok->n_stages];
    memset(st, 0, sizeof *st);
    st->kind = TOK_STAGE_SPLIT;
    st->behavior = behavior;
    st->invert = invert;
    EMPO_TRY(tok_compile_regex(tok, st, pattern, len, literal));
    tok->n_stages++;
    return EMPO_OK;
}

static int parse_pretokenizer(empo_tokenizer *tok, const cJSON *p, int depth, int *bytelevel) {
    if (is_null(p)) return EMPO_OK;
    const char *type = str_field(p, "type");
    if (!type) return bad(tok, "pre_tokenizer has no \"type\"");
    if (*bytelevel) return bad(tok, "pre-tokenizer '%s' after ByteLevel is not supported", type);
    if (strcmp(type, "Sequence") == 0 && depth < 4) {
        const cJSON *list = field(p, "pretokenizers"), *e;
        if (!cJSON_IsArray(list)) return bad(tok, "pre_tokenizer Sequence has no \"pretokenizers\" array");
        cJSON_ArrayForEach(e, list) EMPO_TRY(parse_pretokenizer(tok, e, depth + 1, bytelevel));
        return EMPO_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = field(p, "pattern");
        const char *re = str_field(pat, "Regex"), *lit = str_field(pat, "String");
        if (!re && !lit) return bad(tok, "pre_tokenizer Split: \"pattern\" must be {\"Regex\": ...} or {\"String\": ...}");
        int behavior = behavior_of(str_field(p, "behavior"));
        if (behavior < 0) return bad(tok, "pre_tokenizer Split: unknown \"behavior\" (want Removed, Isolated, "
                                          "MergedWithPrevious, MergedWithNext or Contiguous)");
        int invert;
        EMPO_TRY(bool_of(tok, p, "invert", 0, "pre_tokenizer Split", &invert));
        const char *s = re ? re : lit;
        return add_split(tok, s, strlen(s), re == NULL, behavior, invert);
    }
    if (strcmp(type, "Digits") == 0) {
        int individual;
        EMPO_TRY(bool_of(tok, p, "individual_digits", 0, "pre_tokenizer Digits", &individual));
        const char *s = individual ? "\\p{N}" : "\\p{N}+";
        return add_split(tok, s, strlen(s), 0, TOK_ISOLATED, 0);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        int prefix, use_regex;
        EMPO_TRY(bool_of(tok, p, "add_prefix_space", 1, "pre_tokenizer ByteLevel", &prefix));
        EMPO_TRY(bool_of(tok, p, "use_regex", 1, "pre_tokenizer ByteLevel", &use_regex));
        if (prefix) {
            if (tok->n_stages == TOK_MAX_STAGES) return bad(tok, "too many pre-tokenizers");
            memset(&tok->stage[tok->n_stages], 0, sizeof tok->stage[0]);
            tok->stage[tok->n_stages++].kind = TOK_STAGE_PREFIX_SPACE;
        }
        if (use_regex) EMPO_TRY(add_split(tok, gpt2_pattern, sizeof gpt2_pattern - 1, 0, TOK_ISOLATED, 0));
        *bytelevel = 1;
        return EMPO_OK;
    }
    return bad(tok, "pre_tokenizer type '%s' is not supported (empo reads Split, ByteLevel, Digits and "
                    "Sequence: byte-level BPE as in Qwen, GPT-2 and Llama-3)", type);
}

/* ---- post-processor: the ids added around a text (EMPO_TOK_ADD_SPECIAL) ---- */

static int template_ids(empo_tokenizer *tok, const cJSON *specials, const char *name, tok_i32 *dst) {
    const cJSON *ids = field(field(specials, name), "ids"), *e;
    if (!cJSON_IsArray(ids)) return bad(tok, "post_processor: special token '%s' has no \"ids\"", name);
    cJSON_ArrayForEach(e, ids) {
        int32_t id;
        if (!id_of(e, &id)) return bad(tok, "post_processor: special token '%s': bad id", name);
        EMPO_TRY(tok_i32_push(dst, id));
    }
    return EMPO_OK;
}

static int pair_id(empo_tokenizer *tok, const cJSON *p, const char *key, tok_i32 *dst) {
    const cJSON *pair = field(p, key);
    int32_t id;
    if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !id_of(cJSON_GetArrayItem(pair, 1), &id))
        return bad(tok, "post_processor: \"%s\" must be [token, id]", key);
    return tok_i32_push(dst, id);
}

static int parse_post(empo_tokenizer *tok, const cJSON *p, int depth) {
    if (is_null(p)) return EMPO_OK;
    const char *type = str_field(p, "type");
    if (!type) return bad(tok, "post_processor has no \"type\"");
    if (strcmp(type, "ByteLevel") == 0) return EMPO_OK;   /* offsets only */
    if (strcmp(type, "Sequence") == 0 && depth < 4) {
        const cJSON *list = field(p, "processors"), *e;
        if (!cJSON_IsArray(list)) return bad(tok, "post_processor Sequence has no \"processors\" array");
        cJSON_ArrayForEach(e, list) EMPO_TRY(parse_post(tok, e, depth + 1));
        return EMPO_OK;
    }
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        EMPO_TRY(pair_id(tok, p, "cls", &tok->prefix_ids));
        return pair_id(tok, p, "sep", &tok->suffix_ids);
    }
    if (strcmp(type, "TemplateProcessing") == 0) {
        const cJSON *single = field(p, "single"), *specials = field(p, "special_tokens"), *e;
        if (!cJSON_IsArray(single)) return bad(tok, "post_processor TemplateProcessing has no \"single\" array");
        int seen_a = 0;
        cJSON_ArrayForEach(e, single) {
            const cJSON *sp = field(e, "SpecialToken"), *seq = field(e, "Sequence");
            if (sp) {
                const char *name = str_field(sp, "id");
                if (!name) return bad(tok, "post_processor: SpecialToken without \"id\"");
                EMPO_TRY(template_ids(tok, specials, name, seen_a ? &tok->suffix_ids : &tok->prefix_ids));
            } else if (seq) {
                const char *which = str_field(seq, "id");
                if (!which || strcmp(which, "A") != 0 || seen_a)
                    return bad(tok, "post_processor: the single template must hold sequence A once");
                seen_a = 1;
            } else {
                return bad(tok, "post_processor: template pieces are SpecialToken or Sequence");
            }
        }
        return EMPO_OK;
    }
    return bad(tok, "post_processor type '%s' is not supported (empo reads ByteLevel, TemplateProcessing, "
                    "RobertaProcessing, BertProcessing and Sequence)", type);
}

/* ---- decoder ---- */

static int parse_decoder(empo_tokenizer *tok, const cJSON *d, int depth) {
    if (is_null(d)) return EMPO_OK;
    const char *type = str_field(d, "type");
    if (!type) return bad(tok, "decoder has no \"type\"");
    if (strcmp(type, "ByteLevel") == 0) {
        tok->decoder_bytelevel = 1;
        return EMPO_OK;
    }
    if (strcmp(type, "Sequence") == 0 && depth < 4) {
        const cJSON *list = field(d, "decoders"), *e;
        if (!cJSON_IsArray(list)) return bad(tok, "decoder Sequence has no \"decoders\" array");
        cJSON_ArrayForEach(e, list) EMPO_TRY(parse_decoder(tok, e, depth + 1));
        return EMPO_OK;
    }
    return bad(tok, "decoder type '%s' is not supported (empo decodes ByteLevel)", type);
}

int tok_parse_pipeline(empo_tokenizer *tok, const cJSON *root) {
    int bytelevel = 0;
    EMPO_TRY(parse_normalizer(tok, field(root, "normalizer"), 0));
    EMPO_TRY(parse_pretokenizer(tok, field(root, "pre_tokenizer"), 0, &bytelevel));
    if (!bytelevel)
        return bad(tok, "the pre_tokenizer has no ByteLevel step: empo reads byte-level BPE only (not "
                        "SentencePiece-style BPE such as Llama-2's)");
    EMPO_TRY(parse_post(tok, field(root, "post_processor"), 0));
    return parse_decoder(tok, field(root, "decoder"), 0);
}

/* ---- added tokens ---- */

int tok_parse_added(empo_tokenizer *tok, const cJSON *root) {
    const cJSON *list = field(root, "added_tokens"), *e;
    if (is_null(list)) return EMPO_OK;
    if (!cJSON_IsArray(list)) return bad(tok, "\"added_tokens\" must be an array");
    int n = cJSON_GetArraySize(list), i = 0;
    tok->added = calloc((size_t)n + 1, sizeof *tok->added);
    if (!tok->added) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory");
    cJSON_ArrayForEach(e, list) {
        tok_added *a = &tok->added[i];
        const char *content = str_field(e, "content");
        if (!content) return bad(tok, "added_tokens[%d] has no \"content\" string", i);
        if (!id_of(field(e, "id"), &a->id)) return bad(tok, "added_tokens[%d] (%.60s): \"id\" must be a non-negative integer", i, content);
        int special, lstrip, rstrip, single, normalized;
        EMPO_TRY(bool_of(tok, e, "special", 0, "added_tokens[]", &special));
        EMPO_TRY(bool_of(tok, e, "lstrip", 0, "added_tokens[]", &lstrip));
        EMPO_TRY(bool_of(tok, e, "rstrip", 0, "added_tokens[]", &rstrip));
        EMPO_TRY(bool_of(tok, e, "single_word", 0, "added_tokens[]", &single));
        EMPO_TRY(bool_of(tok, e, "normalized", !special, "added_tokens[]", &normalized));
        a->len = (uint32_t)strlen(content);
        if (tok_utf8_invalid_at((const uint8_t *)content, a->len) >= 0)
            return bad(tok, "added_tokens[%d]: content is not valid UTF-8", i);
        a->content = (uint8_t *)strdup(content);
        if (!a->content) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory");
        tok->n_added = i + 1;
        a->special = (uint8_t)special;
        a->lstrip = (uint8_t)lstrip;
        a->rstrip = (uint8_t)rstrip;
        a->single_word = (uint8_t)single;
        a->normalized = (uint8_t)normalized;
        i++;
    }
    return EMPO_OK;
}

/* ---- the BPE model ---- */

static int check_model(empo_tokenizer *tok, const cJSON *model) {
    if (!cJSON_IsObject(model)) return bad(tok, "no \"model\" object");
    const char *type = str_field(model, "type");
    if (type && strcmp(type, "BPE") != 0)
        return bad(tok, "model type '%s' is not supported (empo reads byte-level BPE models: Qwen2/2.5/3, "
                        "GPT-2, Llama-3)", type);
    if (!type && !field(model, "merges")) return bad(tok, "model has no \"type\" and no merges: not a BPE model");
    if (!cJSON_IsObject(field(model, "vocab"))) return bad(tok, "model.vocab must be an object");
    if (!cJSON_IsArray(field(model, "merges"))) return bad(tok, "model.merges must be an array");
    const cJSON *dropout = field(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return bad(tok, "model.dropout (BPE dropout) is not supported");
    const char *p = str_field(model, "continuing_subword_prefix"), *s = str_field(model, "end_of_word_suffix");
    if ((p && *p) || (s && *s))
        return bad(tok, "model.continuing_subword_prefix / end_of_word_suffix are not supported");
    int fallback;
    EMPO_TRY(bool_of(tok, model, "byte_fallback", 0, "model", &fallback));
    if (fallback) return bad(tok, "model.byte_fallback (SentencePiece-style BPE) is not supported");
    return bool_of(tok, model, "ignore_merges", 0, "model", &tok->ignore_merges);
}

/* HF ignores the ids written in added_tokens: a token the model vocab
 * holds keeps that id, any other takes the next id after the vocab (or
 * after the largest added id); empty tokens are skipped and a repeated
 * content keeps its first id, with the later flags. */
static int assign_added_ids(empo_tokenizer *tok) {
    EMPO_TRY(tok_strmap_init(&tok->added_map, (size_t)tok->n_added));
    int32_t kept = 0, max_id = -1;
    for (int32_t k = 0; k < tok->n_added; k++) {
        tok_added a = tok->added[k];
        if (a.len == 0) {
            free(a.content);
            continue;
        }
        int32_t prev = tok_strmap_get(&tok->added_map, a.content, a.len);
        if (prev >= 0) {
            for (int32_t j = 0; j < kept; j++) {
                if (tok->added[j].id != prev) continue;
                a.id = prev;
                a.content = tok->added[j].content;   /* the map's key */
                tok->added[j] = a;
            }
            free(tok->added[k].content);
            continue;
        }
        int32_t id = tok_strmap_get(&tok->vocab, a.content, a.len);
        if (id < 0) id = max_id >= tok->model_size || tok->model_size == 0 ? max_id + 1 : tok->model_size;
        a.id = id;
        if (id > max_id) max_id = id;
        tok->added[kept++] = a;
        int st = tok_strmap_put(&tok->added_map, tok->added[kept - 1].content, a.len, id);
        if (st != EMPO_OK) {   /* keep the array consistent for tok_free_parts */
            for (int32_t j = k + 1; j < tok->n_added; j++) free(tok->added[j].content);
            tok->n_added = kept;
            return st;
        }
    }
    tok->n_added = kept;
    return EMPO_OK;
}

/* Vocab strings into one arena; the per-id tables. */
static int load_vocab(empo_tokenizer *tok, const cJSON *vocab) {
    const cJSON *e;
    size_t bytes = 1, n = 0;
    int32_t max_id = -1;
    cJSON_ArrayForEach(e, vocab) {
        int32_t id;
        if (!id_of(e, &id)) return bad(tok, "model.vocab[\"%.60s\"]: the id must be a non-negative integer", e->string);
        if (id > max_id) max_id = id;
        bytes += strlen(e->string) + 1;
        n++;
    }
    for (int32_t k = 0; k < tok->n_added; k++) bytes += tok->added[k].len + 1;
    tok->model_size = (int32_t)n;
    tok->str_arena = malloc(bytes);
    if (!tok->str_arena) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory (vocab)");
    EMPO_TRY(tok_strmap_init(&tok->vocab, n));
    size_t at = 0;
    cJSON_ArrayForEach(e, vocab) {
        int32_t id = 0;
        id_of(e, &id);
        size_t len = strlen(e->string);
        if (tok_utf8_invalid_at((const uint8_t *)e->string, len) >= 0)
            return bad(tok, "model.vocab: a token is not valid UTF-8 (id %d)", id);
        memcpy(tok->str_arena + at, e->string, len + 1);
        EMPO_TRY(tok_strmap_put(&tok->vocab, tok->str_arena + at, len, id));
        at += len + 1;
    }
    EMPO_TRY(assign_added_ids(tok));
    for (int32_t k = 0; k < tok->n_added; k++)
        if (tok->added[k].id > max_id) max_id = tok->added[k].id;
    /* per-id tables are indexed by id: refuse ids far beyond the count of
     * tokens (a damaged file), rather than allocate gigabytes */
    int64_t tokens = (int64_t)n + tok->n_added;
    if ((int64_t)max_id >= 2 * tokens + 1024)
        return bad(tok, "ids are too sparse: id %d for %lld tokens", max_id, (long long)tokens);
    tok->n_ids = max_id + 1;
    size_t ids = (size_t)tok->n_ids + 1;
    tok->str_off = malloc(ids * sizeof *tok->str_off);
    tok->str_len = calloc(ids, sizeof *tok->str_len);
    tok->is_special = calloc(ids, 1);
    if (!tok->str_off || !tok->str_len || !tok->is_special)
        return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory (%d ids)", tok->n_ids);
    memset(tok->str_off, 0xFF, ids * sizeof *tok->str_off);
    for (size_t i = 0; i < tok->vocab.cap; i++) {
        if (!tok->vocab.tag[i]) continue;
        int32_t id = tok->vocab.val[i];
        tok->str_off[id] = (uint32_t)((const char *)tok->vocab.key[i] - tok->str_arena);
        tok->str_len[id] = tok->vocab.len[i];
    }
    /* an added token's text wins over the model's for its id (as HF) */
    for (int32_t k = 0; k < tok->n_added; k++) {
        const tok_added *a = &tok->added[k];
        memcpy(tok->str_arena + at, a->content, a->len + 1);
        tok->str_off[a->id] = (uint32_t)at;
        tok->str_len[a->id] = a->len;
        tok->is_special[a->id] = a->special;
        at += a->len + 1;
    }
    return EMPO_OK;
}

/* Token bytes (byte-level alphabet undone): what BPE builds and what each
 * id decodes to. */
static int load_bytes(empo_tokenizer *tok) {
    size_t total = 1, raw_total = 1;
    for (int32_t id = 0; id < tok->n_ids; id++) total += tok->str_len[id];
    for (size_t i = 0; i < tok->vocab.cap; i++) raw_total += tok->vocab.tag[i] ? tok->vocab.len[i] : 0;
    tok->raw_arena = malloc(raw_total);
    tok->dec_arena = malloc(total);
    tok->dec_off = malloc((size_t)tok->n_ids * sizeof *tok->dec_off + 1);
    tok->dec_len = calloc((size_t)tok->n_ids + 1, sizeof *tok->dec_len);
    if (!tok->raw_arena || !tok->dec_arena || !tok->dec_off || !tok->dec_len)
        return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory");
    EMPO_TRY(tok_strmap_init(&tok->vocab_raw, (size_t)tok->model_size));
    tok_bytes b = {0};
    size_t raw_at = 0, dec_at = 0;
    int st = EMPO_OK;
    for (int32_t id = 0; id < tok->n_ids && st == EMPO_OK; id++) {
        tok->dec_off[id] = (uint32_t)dec_at;
        if (tok->str_off[id] == UINT32_MAX) continue;
        const uint8_t *s = (const uint8_t *)tok->str_arena + tok->str_off[id];
        size_t len = tok->str_len[id];
        int mapped = tok_bytelevel_to_bytes(s, len, &b);
        /* the decoder maps a token char by char, or keeps it whole when some
         * char is outside the alphabet (HF's ByteLevel decoder) */
        const uint8_t *dec = tok->decoder_bytelevel && mapped ? b.p : s;
        size_t dlen = tok->decoder_bytelevel && mapped ? b.n : len;
        if (dlen) memcpy(tok->dec_arena + dec_at, dec, dlen);
        tok->dec_len[id] = (uint32_t)dlen;
        dec_at += dlen;
    }
    /* model tokens by their bytes (the spelled form of an id overridden by
     * an added token is looked up again in the model vocab) */
    for (size_t i = 0; i < tok->vocab.cap && st == EMPO_OK; i++) {
        if (!tok->vocab.tag[i]) continue;
        if (!tok_bytelevel_to_bytes(tok->vocab.key[i], tok->vocab.len[i], &b)) continue;
        if (b.n) memcpy(tok->raw_arena + raw_at, b.p, b.n);
        st = tok_strmap_put(&tok->vocab_raw, tok->raw_arena + raw_at, b.n, tok->vocab.val[i]);
        raw_at += b.n;
    }
    free(b.p);
    EMPO_TRY(st);
    for (int byte = 0; byte < 256; byte++) {
        uint8_t u[4];
        int n = tok_utf8_encode(tok_byte_cp(byte), u);
        tok->byte_id[byte] = tok_strmap_get(&tok->vocab, u, (size_t)n);
    }
    return EMPO_OK;
}

static int load_merges(empo_tokenizer *tok, const cJSON *merges) {
    int n = cJSON_GetArraySize(merges);
    EMPO_TRY(tok_mergemap_init(&tok->merges, (size_t)n));
    tok_bytes cat = {0};
    const cJSON *e;
    int rank = 0, st = EMPO_OK;
    cJSON_ArrayForEach(e, merges) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ')) {
                a = e->valuestring, la = (size_t)(sp - a);
                b = sp + 1, lb = strlen(b);
            }
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
                   cJSON_IsString(e->child->next)) {
            a = e->child->valuestring, la = strlen(a);
            b = e->child->next->valuestring, lb = strlen(b);
        }
        if (!a) {
            st = bad(tok, "model.merges[%d] must be \"left right\" or [\"left\", \"right\"]", rank);
            break;
        }
        int32_t ia = tok_strmap_get(&tok->vocab, a, la), ib = tok_strmap_get(&tok->vocab, b, lb);
        cat.n = 0;
        if ((st = tok_bytes_append(&cat, a, la)) != EMPO_OK || (st = tok_bytes_append(&cat, b, lb)) != EMPO_OK) break;
        int32_t ic = tok_strmap_get(&tok->vocab, cat.p, cat.n);
        if (ia < 0 || ib < 0 || ic < 0) {
            st = bad(tok, "model.merges[%d]: token '%.60s' is not in the vocab", rank,
                     ia < 0 ? a : ib < 0 ? b : (const char *)cat.p);
            break;
        }
        if ((st = tok_mergemap_put(&tok->merges, ia, ib, (uint32_t)rank, ic)) != EMPO_OK) break;
        rank++;
    }
    free(cat.p);
    return st;
}

/* bos_token / eos_token / pad_token: a string or {"content": ...}. */
static int32_t config_token(const empo_tokenizer *tok, const cJSON *cfg, const char *key) {
    const cJSON *j = field(cfg, key);
    const char *s = cJSON_IsString(j) ? j->valuestring : str_field(j, "content");
    if (!s) return -1;
    return empo_tokenizer_token_to_id(tok, s, -1);
}

static int parse_config(empo_tokenizer *tok, const char *config) {
    tok->bos_id = tok->eos_id = tok->pad_id = -1;
    if (!config) return EMPO_OK;
    if (tok_utf8_invalid_at((const uint8_t *)config, strlen(config)) >= 0)
        return bad(tok, "tokenizer_config.json is not valid UTF-8");
    cJSON *cfg = cJSON_Parse(config);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return bad(tok, "tokenizer_config.json is not a JSON object");
    }
    tok->bos_id = config_token(tok, cfg, "bos_token");
    tok->eos_id = config_token(tok, cfg, "eos_token");
    tok->pad_id = config_token(tok, cfg, "pad_token");
    cJSON_Delete(cfg);
    return EMPO_OK;
}

void tok_free_parts(empo_tokenizer *tok) {
    free(tok->name);
    free(tok->str_arena);
    free(tok->str_off);
    free(tok->str_len);
    free(tok->dec_arena);
    free(tok->dec_off);
    free(tok->dec_len);
    free(tok->raw_arena);
    tok_strmap_free(&tok->vocab);
    tok_strmap_free(&tok->vocab_raw);
    tok_mergemap_free(&tok->merges);
    for (int32_t k = 0; k < tok->n_added; k++) free(tok->added[k].content);
    free(tok->added);
    tok_strmap_free(&tok->added_map);
    free(tok->is_special);
    free(tok->match_raw.order);
    free(tok->match_norm.order);
    for (int k = 0; k < tok->n_stages; k++) {
        pcre2_match_data_free(tok->stage[k].md);
        pcre2_code_free(tok->stage[k].re);
        free(tok->stage[k].pieces.p);
        free(tok->stage[k].buf.p);
    }
    free(tok->prefix_ids.p);
    free(tok->suffix_ids.p);
    free(tok->ids.p);
    free(tok->offsets.p);
    free(tok->norm_buf.p);
    free(tok->norm_tmp.p);
    free(tok->dec_buf.p);
    free(tok->dec_tmp.p);
    free(tok->cp_buf);
    free(tok->segs.p);
    free(tok->segs2.p);
    free(tok->sym);
    free(tok->heap);
    free(tok->cache);
    free(tok->cache_keys.p);
    free(tok->cache_ids.p);
    if (tok->jit_stack) pcre2_jit_stack_free(tok->jit_stack);
    if (tok->mctx) pcre2_match_context_free(tok->mctx);
}

void empo_tokenizer_free(empo_tokenizer *tok) {
    if (!tok) return;
    tok_free_parts(tok);
    free(tok);
}

static int load_parsed(empo_tokenizer *tok, const cJSON *root, const char *config) {
    if (!cJSON_IsObject(root)) return bad(tok, "not a JSON object");
    const cJSON *model = field(root, "model");
    EMPO_TRY(check_model(tok, model));
    EMPO_TRY(tok_parse_pipeline(tok, root));
    EMPO_TRY(tok_parse_added(tok, root));
    EMPO_TRY(load_vocab(tok, field(model, "vocab")));
    EMPO_TRY(load_bytes(tok));
    EMPO_TRY(load_merges(tok, field(model, "merges")));
    EMPO_TRY(tok_build_matchers(tok));
    for (size_t k = 0; k < tok->prefix_ids.n; k++)
        if (tok->prefix_ids.p[k] >= tok->n_ids) return bad(tok, "post_processor: id %d is not in the vocab", tok->prefix_ids.p[k]);
    for (size_t k = 0; k < tok->suffix_ids.n; k++)
        if (tok->suffix_ids.p[k] >= tok->n_ids) return bad(tok, "post_processor: id %d is not in the vocab", tok->suffix_ids.p[k]);
    return parse_config(tok, config);
}

int empo_tokenizer_load_json(empo_tokenizer **out, const char *json, int64_t nbytes, const char *config_json,
                             const char *name) {
    if (!out || !json) return empo_fail(EMPO_E_ARG, "tokenizer: NULL argument");
    *out = NULL;
    size_t n = nbytes < 0 ? strlen(json) : (size_t)nbytes;
    empo_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return empo_fail(EMPO_E_NOMEM, "tokenizer: out of memory");
    tok->name = strdup(name ? name : "(json)");
    tok->bos_id = tok->eos_id = tok->pad_id = -1;
    int64_t bad_at = tok_utf8_invalid_at((const uint8_t *)json, n);
    cJSON *root = bad_at < 0 ? cJSON_ParseWithLength(json, n) : NULL;
    int st;
    if (bad_at >= 0) {
        st = bad(tok, "not valid UTF-8 (byte %lld)", (long long)bad_at);
    } else if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= json && at <= json + n ? (long)(at - json) : -1;
        st = bad(tok, "invalid JSON near byte %ld", off);
    } else {
        st = load_parsed(tok, root, config_json);
    }
    cJSON_Delete(root);
    if (st != EMPO_OK) {
        empo_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return EMPO_OK;
}

int empo_tokenizer_load(empo_tokenizer **out, const char *path) {
    if (!out || !path) return empo_fail(EMPO_E_ARG, "tokenizer.load: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return empo_fail(EMPO_E_IO, "tokenizer.load: %s does not exist", path);
    char *file = NULL, *cfg_file = NULL, *json = NULL, *cfg = NULL;
    size_t n = 0, cn = 0;
    int st = EMPO_OK;
    size_t plen = strlen(path);
    if (S_ISDIR(sb.st_mode)) {
        file = malloc(plen + 32);
        cfg_file = malloc(plen + 32);
        if (!file || !cfg_file) st = empo_fail(EMPO_E_NOMEM, "tokenizer.load: out of memory");
        else {
            snprintf(file, plen + 32, "%s/tokenizer.json", path);
            snprintf(cfg_file, plen + 32, "%s/tokenizer_config.json", path);
        }
    } else {
        /* a tokenizer.json: tokenizer_config.json may sit beside it */
        file = strdup(path);
        cfg_file = malloc(plen + 32);
        if (!file || !cfg_file) st = empo_fail(EMPO_E_NOMEM, "tokenizer.load: out of memory");
        else {
            const char *slash = strrchr(path, '/');
            size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
            memcpy(cfg_file, path, dir);
            strcpy(cfg_file + dir, "tokenizer_config.json");
        }
    }
    if (st == EMPO_OK) st = tok_read_file("tokenizer.load", file, &json, &n);
    if (st == EMPO_OK && stat(cfg_file, &sb) == 0 && S_ISREG(sb.st_mode))
        st = tok_read_file("tokenizer.load", cfg_file, &cfg, &cn);
    if (st == EMPO_OK) st = empo_tokenizer_load_json(out, json, (int64_t)n, cfg, file);
    free(file);
    free(cfg_file);
    free(json);
    free(cfg);
    return st;
}
