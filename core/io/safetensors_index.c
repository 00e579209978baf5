/* safetensors_index.c — reads model.safetensors.index.json, the map from
 * tensor name to shard file of a sharded Hugging Face checkpoint:
 *     {"metadata": {"total_size": 123}, "weight_map": {"name": "model-00001-of-00002.safetensors"}}
 * Opening the shards themselves is the caller's (empo_safetensors_open). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/tensor_internal.h"

enum { MAX_INDEX = 100000000 };

typedef struct ix_entry {
    char *name;
    int shard;              /* into shards */
} ix_entry;

struct empo_safetensors_index {
    char *path;
    int64_t n;
    ix_entry *entries;      /* sorted by name */
    int64_t n_shards;
    char **shards;          /* directory + file, sorted */
    int64_t total_size;
};

static int by_name(const void *a, const void *b) {
    return strcmp(((const ix_entry *)a)->name, ((const ix_entry *)b)->name);
}
static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int read_text(const char *path, char **out, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return empo_fail(EMPO_E_IO, "%s: cannot open: %s", path, strerror(errno));
    char *p = NULL;
    size_t n = 0, cap = 0;
    int st = EMPO_OK;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 65536 * 2;
            char *q = realloc(p, cap);
            if (!q) { st = empo_fail(EMPO_E_NOMEM, "%s: out of memory", path); break; }
            p = q;
        }
        size_t got = fread(p + n, 1, 65536, fp);
        n += got;
        if (n > MAX_INDEX) { st = empo_fail(EMPO_E_IO, "%s: larger than %d bytes", path, MAX_INDEX); break; }
        if (got < 65536) {
            if (ferror(fp)) st = empo_fail(EMPO_E_IO, "%s: read failed", path);
            break;
        }
    }
    fclose(fp);
    if (st != EMPO_OK) { free(p); return st; }
    p[n] = '\0';
    *out = p;
    *len = n;
    return EMPO_OK;
}

/* a shard must be a plain file name beside the index */
static int plain_file_name(const char *s) {
    return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Fills ix from the parsed JSON. */
static int parse_index(empo_safetensors_index *ix, const cJSON *root) {
    const char *path = ix->path;
    if (!cJSON_IsObject(root)) return empo_fail(EMPO_E_IO, "%s: must be a JSON object", path);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *ts = cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "total_size") : NULL;
    ix->total_size = cJSON_IsNumber(ts) && ts->valuedouble >= 0 && ts->valuedouble < 9.2e18 ? (int64_t)ts->valuedouble : -1;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) return empo_fail(EMPO_E_IO, "%s: no \"weight_map\" object", path);
    int64_t n = cJSON_GetArraySize(map);
    ix->entries = calloc((size_t)n + 1, sizeof *ix->entries);
    char **files = calloc((size_t)n + 1, sizeof *files);           /* borrowed from the JSON */
    if (!ix->entries || !files) { free(files); return empo_fail(EMPO_E_NOMEM, "%s: out of memory", path); }
    int st = EMPO_OK;
    const cJSON *v;
    cJSON_ArrayForEach(v, map) {
        if (!cJSON_IsString(v)) {
            st = empo_fail(EMPO_E_IO, "%s: tensor '%.200s': shard must be a file name string", path, v->string);
            break;
        }
        if (!plain_file_name(v->valuestring)) {
            st = empo_fail(EMPO_E_IO, "%s: tensor '%.200s': shard '%.200s' is not a plain file name in the index's directory",
                           path, v->string, v->valuestring);
            break;
        }
        files[ix->n] = v->valuestring;
        ix->entries[ix->n].name = strdup(v->string);
        if (!ix->entries[ix->n].name) { st = empo_fail(EMPO_E_NOMEM, "%s: out of memory", path); break; }
        ix->entries[ix->n].shard = -1;
        ix->n++;
    }
    /* shard of entry i: position of files[i] among the distinct names */
    char **uniq = st == EMPO_OK ? malloc(sizeof *uniq * ((size_t)ix->n + 1)) : NULL;
    if (st == EMPO_OK && !uniq) st = empo_fail(EMPO_E_NOMEM, "%s: out of memory", path);
    if (st == EMPO_OK) {
        memcpy(uniq, files, sizeof *uniq * (size_t)ix->n);
        qsort(uniq, (size_t)ix->n, sizeof *uniq, by_str);
        int64_t k = 0;
        for (int64_t i = 0; i < ix->n; i++)
            if (k == 0 || strcmp(uniq[k - 1], uniq[i]) != 0) uniq[k++] = uniq[i];
        for (int64_t i = 0; i < ix->n; i++) {
            char **hit = bsearch(&files[i], uniq, (size_t)k, sizeof *uniq, by_str);
            ix->entries[i].shard = (int)(hit - uniq);
        }
        ix->shards = calloc((size_t)k + 1, sizeof *ix->shards);
        const char *slash = strrchr(path, '/');
        int dirlen = slash ? (int)(slash - path) + 1 : 0;
        for (int64_t s = 0; ix->shards && s < k; s++) {
            size_t len = (size_t)dirlen + strlen(uniq[s]) + 1;
            ix->shards[s] = malloc(len);
            if (!ix->shards[s]) break;
            snprintf(ix->shards[s], len, "%.*s%s", dirlen, path, uniq[s]);
            ix->n_shards++;
        }
        if (ix->n_shards != k) st = empo_fail(EMPO_E_NOMEM, "%s: out of memory", path);
    }
    free(uniq);
    free(files);
    if (st != EMPO_OK) return st;
    qsort(ix->entries, (size_t)ix->n, sizeof *ix->entries, by_name);
    for (int64_t i = 1; i < ix->n; i++)
        if (strcmp(ix->entries[i - 1].name, ix->entries[i].name) == 0)
            return empo_fail(EMPO_E_IO, "%s: tensor '%.200s' appears twice in the weight_map", path,
                             ix->entries[i].name);
    return EMPO_OK;
}

int empo_safetensors_index_open(empo_safetensors_index **out, const char *path) {
    if (!out || !path) return empo_fail(EMPO_E_ARG, "safetensors_index_open: out and path must not be NULL");
    *out = NULL;
    empo_safetensors_index *ix = calloc(1, sizeof *ix);
    if (!ix || !(ix->path = strdup(path))) {
        free(ix);
        return empo_fail(EMPO_E_NOMEM, "%s: out of memory", path);
    }
    char *text = NULL;
    size_t len = 0;
    int st = read_text(path, &text, &len);
    if (st == EMPO_OK) {
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        if (!root) {
            st = empo_fail(EMPO_E_IO, "%s: not valid JSON (error near byte %ld)", path, end ? (long)(end - text) : -1L);
        } else {
            st = parse_index(ix, root);
            cJSON_Delete(root);
        }
        free(text);
    }
    if (st != EMPO_OK) {
        empo_safetensors_index_close(ix);
        return st;
    }
    *out = ix;
    return EMPO_OK;
}

void empo_safetensors_index_close(empo_safetensors_index *ix) {
    if (!ix) return;
    for (int64_t i = 0; i < ix->n; i++) free(ix->entries[i].name);
    free(ix->entries);
    for (int64_t s = 0; s < ix->n_shards; s++) free(ix->shards[s]);
    free(ix->shards);
    free(ix->path);
    free(ix);
}

int64_t empo_safetensors_index_count(const empo_safetensors_index *ix) { return ix ? ix->n : 0; }

const char *empo_safetensors_index_name(const empo_safetensors_index *ix, int64_t i) {
    return ix && i >= 0 && i < ix->n ? ix->entries[i].name : NULL;
}

int64_t empo_safetensors_index_find(const empo_safetensors_index *ix, const char *name) {
    if (!ix || !name) return -1;
    ix_entry key = {(char *)name, 0};
    ix_entry *hit = bsearch(&key, ix->entries, (size_t)ix->n, sizeof *ix->entries, by_name);
    return hit ? hit - ix->entries : -1;
}

const char *empo_safetensors_index_file_of(const empo_safetensors_index *ix, const char *name) {
    int64_t i = empo_safetensors_index_find(ix, name);
    return i < 0 ? NULL : ix->shards[ix->entries[i].shard];
}

int64_t empo_safetensors_index_shard_count(const empo_safetensors_index *ix) { return ix ? ix->n_shards : 0; }

const char *empo_safetensors_index_shard(const empo_safetensors_index *ix, int64_t i) {
    return ix && i >= 0 && i < ix->n_shards ? ix->shards[i] : NULL;
}

int64_t empo_safetensors_index_total_size(const empo_safetensors_index *ix) { return ix ? ix->total_size : -1; }
