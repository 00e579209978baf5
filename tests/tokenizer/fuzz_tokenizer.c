/* fuzz_tokenizer.c — libFuzzer target for the tokenizer's encoder and
 * decoder.
 *
 * At start-up a small byte-level BPE is trained in-process (NFC, Qwen's
 * split regex, three special tokens), and variants of it are loaded with
 * other pipelines (GPT-2's ByteLevel regex with a prefix space, split
 * behaviours, NFKC + Lowercase, ignore_merges, lstrip/rstrip/single_word
 * added tokens). With EMPO_FUZZ_TOKENIZER=path/to/tokenizer.json a real
 * tokenizer (e.g. Qwen's) joins them.
 *
 * Input: byte 0 picks the tokenizer and flags, the rest is the text.
 * Checked on every input:
 *   - invalid UTF-8 fails with EMPO_E_ARG and a message, valid UTF-8 encodes;
 *   - on the lossless tokenizers, decode(encode(text)) == NFC(text) with
 *     special tokens off (text stays text);
 *   - encode_batch gives the same ids as encode;
 *   - decode of arbitrary ids (the text's bytes) never fails for ids in range.
 * A failed check aborts (libFuzzer reports it with the input).
 *
 * Build and run: sh tests/tokenizer/tokenizer_fuzz.sh [seconds]. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "empo/empo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *CORPUS[] = {
    "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it? We'll see.",
    "47+26=73. 8*7=56. 100-1=99. The answer is \\boxed{42}.",
    "def f(x):\n    return x ** 2  # square\n\tprint('done')\n",
    "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n5<|im_end|><|endoftext|>",
    "caf\xc3\xa9 na\xc3\xafve \xe6\x95\xb0\xe5\xad\xa6 \xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf \xf0\x9f\x98\x80",
    "   multiple   spaces\n\n\nand newlines\r\n\ttabs  ",
};

enum { MAX_TOKS = 8 };
static empo_tokenizer *toks[MAX_TOKS];
static int lossless[MAX_TOKS];
static int n_toks;

static void die(const char *what) {
    fprintf(stderr, "fuzz_tokenizer: %s: %s\n", what, empo_last_error());
    abort();
}

static void add(const char *json, int is_lossless) {
    empo_tokenizer *t;
    if (empo_tokenizer_load_json(&t, json, -1, NULL, "fuzz") != EMPO_OK) die("variant does not load");
    lossless[n_toks] = is_lossless;
    toks[n_toks++] = t;
}

static cJSON *item(cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static cJSON *split(const char *regex, const char *behavior, int invert) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(s, "pattern"), "Regex", regex);
    cJSON_AddStringToObject(s, "behavior", behavior);
    cJSON_AddBoolToObject(s, "invert", invert);
    return s;
}

static cJSON *bytelevel(int prefix, int regex) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "ByteLevel");
    cJSON_AddBoolToObject(b, "add_prefix_space", prefix);
    cJSON_AddBoolToObject(b, "use_regex", regex);
    return b;
}

static void add_variant(const char *base, int which) {
    cJSON *j = cJSON_Parse(base);
    int is_lossless = 1;
    if (which == 0) {         /* GPT-2: ByteLevel's own regex, a prefix space, no normalizer */
        cJSON_ReplaceItemInObject(j, "normalizer", cJSON_CreateNull());
        cJSON_ReplaceItemInObject(j, "pre_tokenizer", bytelevel(1, 1));
        is_lossless = 0;      /* the prefix space is decoded too */
    } else if (which == 1) {  /* split behaviours, NFKC + Lowercase, ignore_merges */
        cJSON *norm = cJSON_CreateObject();
        cJSON_AddStringToObject(norm, "type", "Sequence");
        cJSON *list = cJSON_AddArrayToObject(norm, "normalizers");
        cJSON *a = cJSON_CreateObject(), *b = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "type", "NFKC");
        cJSON_AddStringToObject(b, "type", "Lowercase");
        cJSON_AddItemToArray(list, a);
        cJSON_AddItemToArray(list, b);
        cJSON_ReplaceItemInObject(j, "normalizer", norm);
        cJSON *pre = cJSON_CreateObject();
        cJSON_AddStringToObject(pre, "type", "Sequence");
        cJSON *stages = cJSON_AddArrayToObject(pre, "pretokenizers");
        cJSON_AddItemToArray(stages, split("\\s+", "MergedWithPrevious", 0));
        cJSON_AddItemToArray(stages, split("\\p{P}", "MergedWithNext", 0));
        cJSON_AddItemToArray(stages, split("[aeiou]", "Contiguous", 1));
        cJSON_AddItemToArray(stages, split("q", "Removed", 0));
        cJSON_AddItemToArray(stages, split("\\b", "Isolated", 0));
        cJSON_AddItemToArray(stages, bytelevel(0, 0));
        cJSON_ReplaceItemInObject(j, "pre_tokenizer", pre);
        cJSON_ReplaceItemInObject(item(j, "model"), "ignore_merges", cJSON_CreateTrue());
        is_lossless = 0;
    } else {                  /* added tokens with lstrip / rstrip / single_word */
        cJSON *added = item(j, "added_tokens");
        const char *contents[3] = {"<mask>", "hello", "[SEP]"};
        for (int k = 0; k < 3; k++) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", 5000 + k);
            cJSON_AddStringToObject(a, "content", contents[k]);
            cJSON_AddBoolToObject(a, "single_word", k == 1);
            cJSON_AddBoolToObject(a, "lstrip", k == 0);
            cJSON_AddBoolToObject(a, "rstrip", k == 2);
            cJSON_AddBoolToObject(a, "normalized", k == 1);
            cJSON_AddBoolToObject(a, "special", k != 1);
            cJSON_AddItemToArray(added, a);
        }
        is_lossless = 0;
    }
    char *text = cJSON_PrintUnformatted(j);
    add(text, is_lossless);
    free(text);
    cJSON_Delete(j);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    empo_bpe_trainer *tr;
    if (empo_bpe_trainer_new(&tr, 600, 1) != EMPO_OK) die("trainer");
    const char *specials[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (int k = 0; k < 3; k++)
        if (empo_bpe_trainer_add_special(tr, specials[k], -1) != EMPO_OK) die("add_special");
    for (int rep = 0; rep < 20; rep++)
        for (size_t k = 0; k < sizeof CORPUS / sizeof CORPUS[0]; k++)
            if (empo_bpe_trainer_feed(tr, CORPUS[k], -1) != EMPO_OK) die("feed");
    if (empo_bpe_trainer_train(tr) != EMPO_OK) die("train");
    const char *json;
    if (empo_bpe_trainer_json(tr, &json, NULL) != EMPO_OK) die("json");
    add(json, 1);
    for (int v = 0; v < 3; v++) add_variant(json, v);
    empo_bpe_trainer_free(tr);
    const char *real = getenv("EMPO_FUZZ_TOKENIZER");
    if (real && *real) {
        empo_tokenizer *t;
        if (empo_tokenizer_load(&t, real) != EMPO_OK) die("EMPO_FUZZ_TOKENIZER does not load");
        /* a non-special added token splits the text before NFC (as HF):
         * NFC across its edge may then differ */
        int all_special = 1;
        for (int64_t i = 0; i < empo_tokenizer_added_count(t); i++) {
            int special;
            empo_tokenizer_added_token(t, i, NULL, NULL, NULL, &special);
            all_special &= special;
        }
        lossless[n_toks] = all_special;
        toks[n_toks++] = t;
    }
    return 0;
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!n_toks) LLVMFuzzerInitialize(NULL, NULL);
    if (size == 0) return 0;
    empo_tokenizer *tok = toks[data[0] % n_toks];
    int is_lossless = lossless[data[0] % n_toks];
    int flags = (data[0] >> 4) & (EMPO_TOK_SPECIAL | EMPO_TOK_ADD_SPECIAL);
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    int valid = valid_utf8(data + 1, n);

    const int32_t *ids;
    int64_t n_ids;
    int st = empo_tokenizer_encode(tok, text, (int64_t)n, flags, &ids, &n_ids);
    if (!valid) {
        if (st != EMPO_E_ARG || !strstr(empo_last_error(), "invalid UTF-8")) die("invalid UTF-8 was not refused");
        return 0;
    }
    if (st != EMPO_OK) die("encode failed on valid UTF-8");
    int32_t *copy = malloc((size_t)n_ids * sizeof *copy + 1);
    memcpy(copy, ids, (size_t)n_ids * sizeof *copy);

    /* the batch path agrees */
    const char *texts[2] = {text, text};
    int64_t lens[2] = {(int64_t)n, (int64_t)n};
    const int64_t *offs;
    if (empo_tokenizer_encode_batch(tok, 2, texts, lens, flags, &ids, &offs) != EMPO_OK) die("encode_batch");
    if (offs[1] != n_ids || offs[2] != 2 * n_ids || memcmp(ids, copy, (size_t)n_ids * sizeof *copy) ||
        memcmp(ids + n_ids, copy, (size_t)n_ids * sizeof *copy))
        die("encode_batch differs from encode");

    /* round trip: text (special tokens as text) comes back as its NFC */
    if (is_lossless) {
        if (empo_tokenizer_encode(tok, text, (int64_t)n, 0, &ids, &n_ids) != EMPO_OK) die("encode (special off)");
        const char *out;
        int64_t out_n;
        if (empo_tokenizer_decode(tok, ids, n_ids, 0, &out, &out_n) != EMPO_OK) die("decode");
        utf8proc_uint8_t *nfc = NULL;
        utf8proc_ssize_t nn = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)n, &nfc,
                                           UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (nn < 0) die("utf8proc refused valid UTF-8");
        if (nn != out_n || memcmp(nfc, out, (size_t)nn) != 0) {
            fprintf(stderr, "round trip: %lld bytes in, NFC %lld, decoded %lld\n", (long long)n, (long long)nn,
                    (long long)out_n);
            die("decode(encode(text)) != NFC(text)");
        }
        free(nfc);
    }

    /* decode arbitrary in-range ids: the input's bytes as ids */
    int64_t vocab = empo_tokenizer_vocab_size(tok);
    int32_t raw[64];
    int64_t k = 0;
    for (size_t i = 1; i + 1 < size && k < 64; i += 2) raw[k++] = (int32_t)((data[i] << 8 | data[i + 1]) % vocab);
    const char *out;
    int64_t out_n;
    if (empo_tokenizer_decode(tok, raw, k, EMPO_TOK_SKIP_SPECIAL, &out, &out_n) != EMPO_OK) die("decode of ids in range");
    if (!valid_utf8((const uint8_t *)out, (size_t)out_n)) die("lossy decode gave invalid UTF-8");
    free(copy);
    return 0;
}
