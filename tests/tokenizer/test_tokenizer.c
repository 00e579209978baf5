/* test_tokenizer.c — the tokenizer's C API on hand-made and trained
 * tokenizers (no network, no npm): BPE merge order, byte-level spelling,
 * added tokens (special on/off, lstrip/rstrip/single_word), normalization,
 * split behaviours, lossy and raw decoding, batch offsets, BOS/EOS/PAD,
 * very long pre-tokens; the trainer (determinism, digits stay single,
 * round trips, files and JSONL); and every error path: malformed or
 * unsupported tokenizer.json, invalid UTF-8, bad ids, missing files.
 * Parity with Hugging Face is tests/tokenizer/test_tokenizer_parity.lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

/* ---- building tokenizer.json text ---- */

typedef struct { char *p; size_t n, cap; } sbuf;

static void put(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n + 1);
    b->n += n;
}

/* GPT-2's byte-level spelling of byte b, as UTF-8 into out (NUL-terminated). */
static void spell_byte(int b, char *out) {
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    int cp = b;
    if (!printable) {
        int k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

/* A byte-level BPE: ids 0..255 are the bytes, then one token per merge
 * ("a b" in the byte-level spelling; ASCII letters spell themselves).
 * `pipeline` is spliced in before "model" (normalizer, pre_tokenizer, ...). */
static char *make_json(const char *const *merges, int n_merges, const char *pipeline, const char *added,
                       const char *model_extra) {
    sbuf b = {0};
    char tok[8], num[32];
    put(&b, "{\"version\": \"1.0\", \"added_tokens\": [");
    put(&b, added ? added : "");
    put(&b, "], ");
    put(&b, pipeline ? pipeline
                     : "\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\", "
                       "\"add_prefix_space\": false, \"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\"}, ");
    put(&b, "\"model\": {\"type\": \"BPE\", ");
    put(&b, model_extra ? model_extra : "");
    put(&b, "\"vocab\": {");
    for (int i = 0; i < 256; i++) {
        spell_byte(i, tok);
        put(&b, i ? ", \"" : "\"");
        put(&b, strcmp(tok, "\"") == 0 ? "\\\"" : strcmp(tok, "\\") == 0 ? "\\\\" : tok);
        snprintf(num, sizeof num, "\": %d", i);
        put(&b, num);
    }
    for (int m = 0; m < n_merges; m++) {
        char joined[64];
        const char *sp = strchr(merges[m], ' ');
        snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - merges[m]), merges[m], sp + 1);
        put(&b, ", \"");
        put(&b, joined);
        snprintf(num, sizeof num, "\": %d", 256 + m);
        put(&b, num);
    }
    put(&b, "}, \"merges\": [");
    for (int m = 0; m < n_merges; m++) {
        put(&b, m ? ", \"" : "\"");
        put(&b, merges[m]);
        put(&b, "\"");
    }
    put(&b, "]}}");
    return b.p;
}

static empo_tokenizer *load(const char *json) {
    empo_tokenizer *tok = NULL;
    int st = empo_tokenizer_load_json(&tok, json, -1, NULL, "test.json");
    check_report(__FILE__, __LINE__, st == EMPO_OK, "load: %s", empo_last_error());
    return tok;
}

/* encode text and compare with want[0..n) */
#define CHECK_IDS(tok, text, flags, ...) do { \
    const int32_t want_[] = {__VA_ARGS__}; \
    const int32_t *ids_; int64_t n_; \
    int st_ = empo_tokenizer_encode((tok), (text), -1, (flags), &ids_, &n_); \
    int same_ = st_ == EMPO_OK && n_ == (int64_t)(sizeof want_ / sizeof want_[0]) && \
                memcmp(ids_, want_, sizeof want_) == 0; \
    check_report(__FILE__, __LINE__, same_, "encode(%s): status %d (%s), %lld ids, first %d", #text, st_, \
                 empo_last_error(), (long long)n_, n_ > 0 ? ids_[0] : -1); } while (0)

static void test_merge_order(void) {
    const char *m1[] = {"a b", "b c"};
    empo_tokenizer *t = load(make_json(m1, 2, NULL, NULL, NULL));
    CHECK_IDS(t, "abc", 0, 256, 'c');              /* "ab" ranks first */
    CHECK_IDS(t, "bc", 0, 257);
    CHECK_IDS(t, "abab", 0, 256, 256);
    empo_tokenizer_free(t);
    const char *m2[] = {"b c", "a b"};
    t = load(make_json(m2, 2, NULL, NULL, NULL));
    CHECK_IDS(t, "abc", 0, 'a', 256);              /* now "bc" first */
    empo_tokenizer_free(t);
    /* chains and repeats: "a a" then "aa aa" */
    const char *m3[] = {"a a", "aa aa", "aaaa a"};
    t = load(make_json(m3, 3, NULL, NULL, NULL));
    CHECK_IDS(t, "aaa", 0, 256, 'a');
    CHECK_IDS(t, "aaaa", 0, 257);
    CHECK_IDS(t, "aaaaa", 0, 258);
    CHECK_IDS(t, "aaaaaaa", 0, 257, 256, 'a');
    /* a pre-token of 200,000 bytes goes through the heap, not quadratic time */
    size_t big = 200000;
    char *s = malloc(big + 1);
    memset(s, 'a', big);
    s[big] = 0;
    const int32_t *ids;
    int64_t n;
    CHECK_OK(empo_tokenizer_encode(t, s, (int64_t)big, 0, &ids, &n));
    int all_257 = n == 50000;                      /* a a -> aa, then aa aa -> aaaa */
    for (int64_t i = 0; all_257 && i < n; i++) all_257 = ids[i] == 257;
    CHECK(all_257);
    const char *text;
    int64_t len;
    CHECK_OK(empo_tokenizer_decode(t, ids, n, 0, &text, &len));
    CHECK(len == (int64_t)big && memcmp(text, s, big) == 0);
    free(s);
    empo_tokenizer_free(t);
}

static void test_bytelevel(void) {
    const char *m[] = {"\xc4\xa0 w", "\xc4\xa0w o"};   /* "Ġ w", "Ġw o" */
    empo_tokenizer *t = load(make_json(m, 2, NULL, NULL, NULL));
    CHECK(empo_tokenizer_token_to_id(t, "\xc4\xa0", -1) == ' ');     /* space is spelled Ġ */
    CHECK(empo_tokenizer_token_to_id(t, "\xc4\x8a", -1) == '\n');    /* newline is Ċ */
    CHECK(empo_tokenizer_token_to_id(t, "A", -1) == 'A');
    CHECK(empo_tokenizer_token_to_id(t, " ", -1) == -1);             /* raw space is no token */
    CHECK_IDS(t, "a wo", 0, 'a', 257);
    const char *tok;
    int64_t n;
    CHECK_OK(empo_tokenizer_id_to_token(t, 257, &tok, &n));
    CHECK(n == 4 && memcmp(tok, "\xc4\xa0wo", 4) == 0);
    CHECK_FAIL(empo_tokenizer_id_to_token(t, 258, &tok, &n), EMPO_E_INDEX, "no token has id 258");
    CHECK(empo_tokenizer_vocab_size(t) == 258);
    /* every byte round-trips */
    char all[256];
    for (int i = 0; i < 255; i++) all[i] = (char)(i + 1);
    all[255] = 0;
    const int32_t *ids;
    int64_t nid;
    CHECK_FAIL(empo_tokenizer_encode(t, all, 255, 0, &ids, &nid), EMPO_E_ARG, "invalid UTF-8 at byte 127");
    int32_t bytes[256];
    for (int i = 0; i < 256; i++) bytes[i] = i;
    const char *text;
    int64_t len;
    CHECK_OK(empo_tokenizer_decode(t, bytes, 256, EMPO_TOK_RAW_BYTES, &text, &len));
    int same = len == 256;
    for (int i = 0; same && i < 256; i++) same = (unsigned char)text[i] == i;
    CHECK(same);
    /* lossy: ids ending inside a character give U+FFFD, as Rust's from_utf8_lossy */
    int32_t cut[3] = {0xE4, 0xB8, 'x'};            /* two of the three bytes of 中 */
    CHECK_OK(empo_tokenizer_decode(t, cut, 3, 0, &text, &len));
    CHECK(len == 4 && memcmp(text, "\xef\xbf\xbdx", 4) == 0);
    int32_t bad[4] = {0xFF, 0xC3, 0x28, 0xE0};    /* invalid lead, bad continuation, truncated */
    CHECK_OK(empo_tokenizer_decode(t, bad, 4, 0, &text, &len));
    CHECK(len == 10 && memcmp(text, "\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd", 10) == 0);
    CHECK_OK(empo_tokenizer_decode(t, cut, 3, EMPO_TOK_RAW_BYTES, &text, &len));
    CHECK(len == 3 && memcmp(text, "\xe4\xb8x", 3) == 0);
    int32_t out_of_range[2] = {1, 258};
    CHECK_FAIL(empo_tokenizer_decode(t, out_of_range, 2, 0, &text, &len), EMPO_E_INDEX, "id 258 (position 2)");
    int32_t negative[1] = {-1};
    CHECK_FAIL(empo_tokenizer_decode(t, negative, 1, 0, &text, &len), EMPO_E_INDEX, "out of range");
    CHECK_OK(empo_tokenizer_decode(t, NULL, 0, 0, &text, &len));
    CHECK(len == 0 && text[0] == 0);
    CHECK_OK(empo_tokenizer_encode(t, "", 0, 0, &ids, &nid));
    CHECK(nid == 0);
    empo_tokenizer_free(t);
}

static void test_added_tokens(void) {
    const char *added =
        "{\"id\": 300, \"content\": \"<|end|>\", \"special\": true, \"normalized\": false},"
        "{\"id\": 301, \"content\": \"<mask>\", \"special\": true, \"lstrip\": true, \"normalized\": false},"
        "{\"id\": 302, \"content\": \"[SEP]\", \"special\": true, \"rstrip\": true, \"normalized\": false},"
        "{\"id\": 303, \"content\": \"hi\", \"special\": false, \"single_word\": true, \"normalized\": true},"
        "{\"id\": 304, \"content\": \"<|end|>x\", \"special\": false, \"normalized\": false}";
    const char *m[] = {"h i"};
    empo_tokenizer *t = load(make_json(m, 1, NULL, added, NULL));
    /* HF assigns the ids whatever the file says: a token of the vocab ("hi")
     * keeps its id, the others follow the vocab (257..) */
    CHECK(empo_tokenizer_token_to_id(t, "<|end|>", -1) == 257);
    CHECK(empo_tokenizer_token_to_id(t, "hi", -1) == 256);
    CHECK(empo_tokenizer_token_to_id(t, "<|end|>x", -1) == 260);
    CHECK(empo_tokenizer_added_count(t) == 5);
    CHECK(empo_tokenizer_is_special(t, 257) && !empo_tokenizer_is_special(t, 256) && !empo_tokenizer_is_special(t, 260));
    CHECK(empo_tokenizer_vocab_size(t) == 261);
    CHECK_IDS(t, "a<|end|>b", EMPO_TOK_SPECIAL, 'a', 257, 'b');
    CHECK_IDS(t, "a<|end|>b", 0, 'a', '<', '|', 'e', 'n', 'd', '|', '>', 'b');   /* special off: text */
    CHECK_IDS(t, "<|end|>x", EMPO_TOK_SPECIAL, 260);                            /* longest match wins */
    CHECK_IDS(t, "a  <mask>", EMPO_TOK_SPECIAL, 'a', 258);                      /* lstrip eats the spaces */
    CHECK_IDS(t, "[SEP]  b", EMPO_TOK_SPECIAL, 259, 'b');                       /* rstrip too */
    CHECK_IDS(t, "hi there", EMPO_TOK_SPECIAL, 256, ' ', 't', 'h', 'e', 'r', 'e');
    CHECK_IDS(t, "ahi", EMPO_TOK_SPECIAL, 'a', 256);                            /* single_word: not inside a word */
    const char *text;
    int64_t len;
    int32_t ids[3] = {'a', 257, 'b'};
    CHECK_OK(empo_tokenizer_decode(t, ids, 3, 0, &text, &len));
    CHECK(strcmp(text, "a<|end|>b") == 0);
    CHECK_OK(empo_tokenizer_decode(t, ids, 3, EMPO_TOK_SKIP_SPECIAL, &text, &len));
    CHECK(strcmp(text, "ab") == 0);
    int32_t id;
    const char *content;
    int64_t n;
    int special;
    CHECK_OK(empo_tokenizer_added_token(t, 1, &id, &content, &n, &special));
    CHECK(id == 258 && strcmp(content, "<mask>") == 0 && n == 6 && special == 1);
    CHECK_FAIL(empo_tokenizer_added_token(t, 5, &id, &content, &n, &special), EMPO_E_INDEX, "index 5");
    /* batch: one array, offsets */
    const char *texts[3] = {"hi", "", "a<|end|>"};
    const int32_t *bids;
    const int64_t *offs;
    CHECK_OK(empo_tokenizer_encode_batch(t, 3, texts, NULL, EMPO_TOK_SPECIAL, &bids, &offs));
    CHECK(offs[0] == 0 && offs[1] == 1 && offs[2] == 1 && offs[3] == 3 && bids[0] == 256 && bids[2] == 257);
    const char *bad_texts[2] = {"ok", "\xff"};
    CHECK_FAIL(empo_tokenizer_encode_batch(t, 2, bad_texts, NULL, 0, &bids, &offs), EMPO_E_ARG, "(text 2 of the batch)");
    empo_tokenizer_free(t);
}

static void test_pipeline(void) {
    /* NFC: decomposed é becomes the precomposed one before BPE */
    const char *m[] = {"\xc3\x83 \xc2\xa9"};           /* the bytes of é (C3 A9), spelled Ã + © */
    empo_tokenizer *t = load(make_json(m, 1, NULL, NULL, NULL));
    CHECK_IDS(t, "e\xcc\x81", 0, 256);
    CHECK_IDS(t, "\xc3\xa9", 0, 256);
    empo_tokenizer_free(t);
    /* Lowercase + NFKC; Split behaviours; Digits; prefix space */
    const char *pipe =
        "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFKC\"}, {\"type\": \"Lowercase\"}]},"
        "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
        "  {\"type\": \"Digits\", \"individual_digits\": true},"
        "  {\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Removed\", \"invert\": false},"
        "  {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": false}]},"
        "\"decoder\": {\"type\": \"ByteLevel\"},";
    const char *m2[] = {"\xc4\xa0 a", "\xc4\xa0" "a b"};
    t = load(make_json(m2, 2, pipe, NULL, NULL));
    /* "ab-ａ12" -> "ab-a12" -> "ab-a" "1" "2" -> "ab" "a" "1" "2", each with a space */
    CHECK_IDS(t, "AB-\xef\xbc\xa1" "12", 0, 257, 256, ' ', '1', ' ', '2');
    empo_tokenizer_free(t);
    /* MergedWithPrevious / MergedWithNext / Contiguous / invert */
    const char *behaviors[][2] = {{"MergedWithPrevious", "false"}, {"MergedWithNext", "false"},
                                  {"Contiguous", "false"}, {"Isolated", "true"}};
    const int32_t want[4][6] = {{'a', 'b', 'c', 'd', 'e', 'f'}, {0}, {0}, {0}};
    (void)want;
    for (int k = 0; k < 4; k++) {
        char p[512];
        snprintf(p, sizeof p,
                 "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                 "{\"Regex\": \"[,.]\"}, \"behavior\": \"%s\", \"invert\": %s}, {\"type\": \"ByteLevel\", "
                 "\"add_prefix_space\": false, \"use_regex\": false}]}, \"decoder\": {\"type\": \"ByteLevel\"},",
                 behaviors[k][0], behaviors[k][1]);
        const char *mm[] = {"a ,", "a b", ", b"};
        t = load(make_json(mm, 3, p, NULL, NULL));
        const int32_t *ids;
        int64_t n;
        CHECK_OK(empo_tokenizer_encode(t, "a,b", -1, 0, &ids, &n));
        /* MergedWithPrevious: "a," "b" -> 256 'b'; MergedWithNext: "a" ",b" -> 'a' 258;
         * Contiguous: "a" "," "b" (no merges across pieces); Isolated+invert: the same pieces */
        if (k == 0) CHECK(n == 2 && ids[0] == 256 && ids[1] == 'b');
        else if (k == 1) CHECK(n == 2 && ids[0] == 'a' && ids[1] == 258);
        else CHECK(n == 3 && ids[0] == 'a' && ids[1] == ',' && ids[2] == 'b');
        empo_tokenizer_free(t);
    }
    /* Oniguruma's \s: U+0085 is a space, U+180E is not (GPT-2's regex) */
    const char *none[] = {"a b"};
    t = load(make_json(none, 1, NULL, NULL, NULL));
    CHECK_IDS(t, "!\xc2\x85!", 0, '!', 0xC2, 0x85, '!');
    empo_tokenizer_free(t);
    /* a post-processor adds BOS/EOS with EMPO_TOK_ADD_SPECIAL */
    const char *tp =
        "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, \"decoder\": {\"type\": \"ByteLevel\"},"
        "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
        "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}],"
        "\"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [256], \"tokens\": [\"<s>\"]},"
        "\"</s>\": {\"id\": \"</s>\", \"ids\": [257], \"tokens\": [\"</s>\"]}}},";
    const char *added = "{\"id\": 256, \"content\": \"<s>\", \"special\": true}, {\"id\": 257, \"content\": \"</s>\", \"special\": true}";
    t = load(make_json(NULL, 0, tp, added, NULL));
    CHECK_IDS(t, "x", EMPO_TOK_ADD_SPECIAL, 256, 'x', 257);
    CHECK_IDS(t, "x", 0, 'x');
    empo_tokenizer_free(t);
}

static void test_ignore_merges_and_config(void) {
    const char *m[] = {"a b", "c d", "ab cd"};
    empo_tokenizer *t = load(make_json(m, 3, NULL, NULL, "\"ignore_merges\": true, "));
    CHECK_IDS(t, "abcd", 0, 258);
    empo_tokenizer_free(t);
    const char *added = "{\"id\": 256, \"content\": \"<eos>\", \"special\": true}";
    char *json = make_json(NULL, 0, NULL, added, NULL);
    empo_tokenizer *tk;
    CHECK_OK(empo_tokenizer_load_json(&tk, json, -1, "{\"eos_token\": \"<eos>\", \"pad_token\": {\"content\": \"<eos>\"}, \"bos_token\": null}", "t"));
    CHECK(empo_tokenizer_eos_id(tk) == 256 && empo_tokenizer_pad_id(tk) == 256 && empo_tokenizer_bos_id(tk) == -1);
    empo_tokenizer_free(tk);
    CHECK_FAIL(empo_tokenizer_load_json(&tk, json, -1, "[1]", "cfgtest"), EMPO_E_IO, "tokenizer_config.json is not a JSON object");
    CHECK(tk == NULL);
    /* from files: a directory, and a tokenizer.json with its config beside it */
    char dir[] = "/tmp/empo_tok_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    fputs(json, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    f = fopen(path, "wb");
    fputs("{\"eos_token\": \"<eos>\"}", f);
    fclose(f);
    CHECK_OK(empo_tokenizer_load(&tk, dir));
    CHECK(empo_tokenizer_eos_id(tk) == 256);
    empo_tokenizer_free(tk);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(empo_tokenizer_load(&tk, path));
    CHECK(empo_tokenizer_eos_id(tk) == 256);
    empo_tokenizer_free(tk);
    unlink(path);
    CHECK_FAIL(empo_tokenizer_load(&tk, dir), EMPO_E_IO, "tokenizer.json");
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    unlink(path);
    rmdir(dir);
    CHECK_FAIL(empo_tokenizer_load(&tk, "/nonexistent/tok"), EMPO_E_IO, "/nonexistent/tok does not exist");
    free(json);
}

static void test_errors(void) {
    empo_tokenizer *t = (empo_tokenizer *)1;
    struct { const char *json, *needle; } cases[] = {
        {"{\"model\": ", "invalid JSON near byte"},
        {"[1, 2]", "not a JSON object"},
        {"{}", "no \"model\" object"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "model type 'Unigram' is not supported"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "model type 'WordPiece' is not supported"},
        {"{\"model\": {\"vocab\": {}}}", "no \"type\" and no merges"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", "model.vocab must be an object"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": {}}}", "model.merges must be an array"},
        {"{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {}, \"merges\": []}}", "byte_fallback"},
        {"{\"model\": {\"type\": \"BPE\", \"dropout\": 0.1, \"vocab\": {}, \"merges\": []}}", "dropout"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "no ByteLevel step"},
        {"{\"normalizer\": {\"type\": \"Prepend\", \"prepend\": \"_\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
         "normalizer type 'Prepend' is not supported"},
        {"{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
         "pre_tokenizer type 'Metaspace' is not supported"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"}, \"model\": "
         "{\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "pre_tokenizer regex /(a/"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Sideways\"}, \"model\": "
         "{\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "unknown \"behavior\""},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"WordPiece\"}, \"model\": "
         "{\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "decoder type 'WordPiece' is not supported"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}",
         "the id must be a non-negative integer"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
         "model.merges[0]: token 'b' is not in the vocab"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}",
         "must be \"left right\""},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 999999}, \"merges\": []}}",
         "ids are too sparse"},
        {"{\"added_tokens\": [{\"id\": 1}], \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, "
         "\"merges\": []}}", "added_tokens[0] has no \"content\""},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": 3}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
         "use_regex must be true or false"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xff\": 0}, \"merges\": []}}", "not valid UTF-8 (byte"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        t = (empo_tokenizer *)1;
        int st = empo_tokenizer_load_json(&t, cases[k].json, -1, NULL, "bad.json");
        check_report(__FILE__, __LINE__,
                     st == EMPO_E_IO && t == NULL && strstr(empo_last_error(), cases[k].needle) &&
                         strstr(empo_last_error(), "bad.json"),
                     "case %zu: status %d, message \"%s\" (want \"%s\")", k, st, empo_last_error(), cases[k].needle);
    }
    CHECK_FAIL(empo_tokenizer_load_json(NULL, "{}", -1, NULL, "x"), EMPO_E_ARG, "NULL");
    const char *none[] = {"a b"};
    t = load(make_json(none, 1, NULL, NULL, NULL));
    const int32_t *ids;
    int64_t n;
    CHECK_FAIL(empo_tokenizer_encode(t, "ok\xc3(", -1, 0, &ids, &n), EMPO_E_ARG, "invalid UTF-8 at byte 2");
    CHECK(n == 0);
    CHECK_FAIL(empo_tokenizer_encode(t, "\xed\xa0\x80", -1, 0, &ids, &n), EMPO_E_ARG, "invalid UTF-8 at byte 0");
    CHECK_FAIL(empo_tokenizer_encode(t, "\xf4\x90\x80\x80", -1, 0, &ids, &n), EMPO_E_ARG, "invalid UTF-8");
    CHECK_FAIL(empo_tokenizer_encode(t, "\xc0\xaf", -1, 0, &ids, &n), EMPO_E_ARG, "invalid UTF-8");
    CHECK_FAIL(empo_tokenizer_encode(t, NULL, 0, 0, &ids, &n), EMPO_E_ARG, "NULL");
    CHECK_OK(empo_tokenizer_encode(t, "fine after errors", -1, 0, &ids, &n));
    /* NUL is a character like any other when a length is given */
    CHECK_OK(empo_tokenizer_encode(t, "a\0b", 3, 0, &ids, &n));
    CHECK(n == 3 && ids[1] == 0);
    empo_tokenizer_free(t);
    empo_tokenizer_free(NULL);
}

/* ---- the trainer ---- */

static const char *DOCS[] = {
    "The cat sat on the mat. The cat ate the rat. 12+34=46. 8*7=56.",
    "There were 1234567 cats; then there were 89. The end.",
    "<|endoftext|>the theme of the thesis: them, then, there.<|im_end|>",
};

static empo_bpe_trainer *trainer(int64_t vocab) {
    empo_bpe_trainer *tr;
    CHECK_OK(empo_bpe_trainer_new(&tr, vocab, 2));
    CHECK_OK(empo_bpe_trainer_add_special(tr, "<|endoftext|>", -1));
    CHECK_OK(empo_bpe_trainer_add_special(tr, "<|im_end|>", -1));
    CHECK_OK(empo_bpe_trainer_set_roles(tr, NULL, "<|im_end|>", "<|endoftext|>"));
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++) CHECK_OK(empo_bpe_trainer_feed(tr, DOCS[k], -1));
    return tr;
}

static void test_trainer(void) {
    empo_bpe_trainer *tr = trainer(300);
    CHECK_OK(empo_bpe_trainer_train(tr));
    CHECK(empo_bpe_trainer_num_merges(tr) > 10);
    const char *json, *config;
    CHECK_OK(empo_bpe_trainer_json(tr, &json, &config));
    empo_bpe_trainer *tr2 = trainer(300);          /* deterministic */
    CHECK_OK(empo_bpe_trainer_train(tr2));
    const char *json2;
    CHECK_OK(empo_bpe_trainer_json(tr2, &json2, NULL));
    CHECK(strcmp(json, json2) == 0);
    empo_bpe_trainer_free(tr2);
    empo_tokenizer *t;
    CHECK_OK(empo_tokenizer_load_json(&t, json, -1, config, "trained"));
    CHECK(empo_tokenizer_vocab_size(t) <= 300);
    CHECK(empo_tokenizer_eos_id(t) == 1 && empo_tokenizer_pad_id(t) == 0 && empo_tokenizer_bos_id(t) == -1);
    CHECK(empo_tokenizer_is_special(t, 0) && empo_tokenizer_is_special(t, 1));
    CHECK(empo_tokenizer_token_to_id(t, "the", -1) > 0 || empo_tokenizer_token_to_id(t, "\xc4\xa0the", -1) > 0);
    /* digits stay single tokens, and every text round-trips */
    for (int64_t id = 0; id < empo_tokenizer_vocab_size(t); id++) {
        const char *s;
        int64_t n;
        if (empo_tokenizer_id_to_token(t, (int32_t)id, &s, &n) != EMPO_OK || n < 2) continue;
        int digit = 0;
        for (int64_t i = 0; i < n; i++) digit |= s[i] >= '0' && s[i] <= '9';
        check_report(__FILE__, __LINE__, !digit || empo_tokenizer_is_special(t, (int32_t)id), "token %lld '%.*s' holds a digit",
                     (long long)id, (int)n, s);
    }
    for (int k = 0; k < 3; k++) {
        const int32_t *ids;
        int64_t n;
        CHECK_OK(empo_tokenizer_encode(t, DOCS[k], -1, EMPO_TOK_SPECIAL, &ids, &n));
        CHECK(n < (int64_t)strlen(DOCS[k]));       /* it learned something */
        const char *text;
        int64_t len;
        CHECK_OK(empo_tokenizer_decode(t, ids, n, 0, &text, &len));
        CHECK(strcmp(text, DOCS[k]) == 0);
    }
    const int32_t *ids;
    int64_t n;
    CHECK_OK(empo_tokenizer_encode(t, "<|endoftext|>", -1, EMPO_TOK_SPECIAL, &ids, &n));
    CHECK(n == 1 && ids[0] == 0);
    /* save and load back */
    char dir[] = "/tmp/empo_trained_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    CHECK_OK(empo_bpe_trainer_save(tr, sub));
    empo_tokenizer *back;
    CHECK_OK(empo_tokenizer_load(&back, sub));
    const int32_t *ids2;
    int64_t n2;
    CHECK_OK(empo_tokenizer_encode(t, DOCS[1], -1, 0, &ids, &n));
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    memcpy(copy, ids, (size_t)n * sizeof *copy);
    CHECK_OK(empo_tokenizer_encode(back, DOCS[1], -1, 0, &ids2, &n2));
    CHECK(n == n2 && memcmp(copy, ids2, (size_t)n * sizeof *copy) == 0);
    CHECK(empo_tokenizer_eos_id(back) == 1);
    free(copy);
    empo_tokenizer_free(back);
    empo_tokenizer_free(t);
    /* files: plain text and JSONL */
    char path[300], jpath[300];
    snprintf(path, sizeof path, "%s/corpus.txt", dir);
    snprintf(jpath, sizeof jpath, "%s/corpus.jsonl", dir);
    FILE *f = fopen(path, "wb");
    fputs(DOCS[0], f);
    fclose(f);
    f = fopen(jpath, "wb");
    fputs("{\"text\": \"hello there\", \"id\": 1}\n\n{\"text\": \"hello again 42\"}\n", f);
    fclose(f);
    empo_bpe_trainer *tf;
    CHECK_OK(empo_bpe_trainer_new(&tf, 270, 1));
    CHECK_OK(empo_bpe_trainer_feed_file(tf, path, NULL));
    CHECK_OK(empo_bpe_trainer_feed_file(tf, jpath, "text"));
    CHECK_FAIL(empo_bpe_trainer_feed_file(tf, jpath, "missing"), EMPO_E_IO, "corpus.jsonl:1: no string field \"missing\"");
    CHECK_FAIL(empo_bpe_trainer_feed_file(tf, "/nonexistent.txt", NULL), EMPO_E_IO, "cannot open /nonexistent.txt");
    CHECK_FAIL(empo_bpe_trainer_feed(tf, "bad \xff", -1), EMPO_E_ARG, "invalid UTF-8 at byte 4");
    CHECK_FAIL(empo_bpe_trainer_add_special(tf, "<late>", -1), EMPO_E_STATE, "before feeding");
    CHECK_FAIL(empo_bpe_trainer_set_roles(tf, "<nope>", NULL, NULL), EMPO_E_ARG, "bos token '<nope>' is not one of the special tokens");
    CHECK_FAIL(empo_bpe_trainer_save(tf, dir), EMPO_E_STATE, "call train first");
    CHECK_OK(empo_bpe_trainer_train(tf));
    CHECK(empo_bpe_trainer_num_merges(tf) == 14);
    CHECK_FAIL(empo_bpe_trainer_train(tf), EMPO_E_STATE, "already trained");
    CHECK_FAIL(empo_bpe_trainer_feed(tf, "more", -1), EMPO_E_STATE, "already trained");
    empo_bpe_trainer_free(tf);
    f = fopen(jpath, "wb");
    fputs("{\"text\": \"ok\"}\nnot json\n", f);
    fclose(f);
    CHECK_OK(empo_bpe_trainer_new(&tf, 300, 2));
    CHECK_FAIL(empo_bpe_trainer_feed_file(tf, jpath, "text"), EMPO_E_IO, "corpus.jsonl:2: invalid JSON");
    empo_bpe_trainer_free(tf);
    CHECK_FAIL(empo_bpe_trainer_new(&tf, 0, 2), EMPO_E_ARG, "vocab_size 0");
    CHECK_OK(empo_bpe_trainer_new(&tf, 100, 2));
    CHECK_FAIL(empo_bpe_trainer_train(tf), EMPO_E_ARG, "below the 0 special + 256 byte tokens");
    CHECK_OK(empo_bpe_trainer_add_special(tf, "<a>", -1));
    CHECK_FAIL(empo_bpe_trainer_add_special(tf, "<a>", -1), EMPO_E_ARG, "added twice");
    CHECK_FAIL(empo_bpe_trainer_add_special(tf, "", -1), EMPO_E_ARG, "non-empty");
    empo_bpe_trainer_free(tf);
    empo_bpe_trainer_free(tr);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void) {
    test_merge_order();
    test_bytelevel();
    test_added_tokens();
    test_pipeline();
    test_ignore_merges_and_config();
    test_errors();
    test_trainer();
    return check_finish("test_tokenizer");
}
