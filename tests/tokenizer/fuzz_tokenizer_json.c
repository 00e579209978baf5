/* fuzz_tokenizer_json.c — libFuzzer target for the tokenizer.json loader.
 *
 * Each input is a tokenizer.json (its first line may instead be a
 * tokenizer_config.json when it starts with "#config "). A load either
 * succeeds — then a few texts are encoded and decoded and the vocabulary
 * queried — or fails with a status and a message naming the file; never a
 * crash, a leak or an out-of-bounds access (run under ASan + UBSan).
 * Seeds: tests/tokenizer/corpus_tokenizer_json (small valid and broken files).
 *
 * Build and run: sh tests/tokenizer/tokenizer_fuzz.sh [seconds]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "empo/empo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *TEXTS[] = {
    "Hello world! It's 2024.", "<|im_start|>user\nhi<|im_end|>", "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
    "   \n\n\t x", "", "\xff bad utf-8",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    const char *json = buf, *config = NULL;
    size_t json_n = size;
    if (size > 8 && memcmp(buf, "#config ", 8) == 0) {
        char *nl = memchr(buf, '\n', size);
        if (nl) {
            *nl = 0;
            config = buf + 8;
            json = nl + 1;
            json_n = size - (size_t)(nl + 1 - buf);
        }
    }
    empo_tokenizer *tok = NULL;
    int st = empo_tokenizer_load_json(&tok, json, (int64_t)json_n, config, "fuzz.json");
    if (st != EMPO_OK) {
        if (tok != NULL || !strstr(empo_last_error(), "fuzz.json")) {
            fprintf(stderr, "load failed without a message naming the file: %s\n", empo_last_error());
            abort();
        }
        free(buf);
        return 0;
    }
    for (size_t k = 0; k < sizeof TEXTS / sizeof TEXTS[0]; k++) {
        for (int flags = 0; flags < 4; flags++) {
            const int32_t *ids;
            int64_t n;
            if (empo_tokenizer_encode(tok, TEXTS[k], -1, flags, &ids, &n) != EMPO_OK) continue;
            int32_t *copy = malloc((size_t)n * sizeof *copy + 1);
            memcpy(copy, ids, (size_t)n * sizeof *copy);
            const char *text;
            int64_t len;
            if (empo_tokenizer_decode(tok, copy, n, flags & 1 ? EMPO_TOK_SKIP_SPECIAL : 0, &text, &len) != EMPO_OK) {
                fprintf(stderr, "decode of encoded ids failed: %s\n", empo_last_error());
                abort();
            }
            free(copy);
        }
    }
    int64_t vocab = empo_tokenizer_vocab_size(tok);
    for (int64_t id = 0; id < vocab && id < 300; id++) {
        const char *s;
        int64_t n;
        if (empo_tokenizer_id_to_token(tok, (int32_t)id, &s, &n) == EMPO_OK &&
            empo_tokenizer_token_to_id(tok, s, n) < 0) {
            fprintf(stderr, "id %lld's token has no id\n", (long long)id);
            abort();
        }
    }
    for (int64_t i = 0; i < empo_tokenizer_added_count(tok); i++) {
        int32_t id;
        const char *s;
        int64_t n;
        int special;
        empo_tokenizer_added_token(tok, i, &id, &s, &n, &special);
    }
    empo_tokenizer_free(tok);
    free(buf);
    return 0;
}
