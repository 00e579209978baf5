/* safetensors_write.c — the safetensors writer: one file, or Hugging
 * Face's sharded layout with model.safetensors.index.json.
 *
 * Files are written atomically ("<path>.tmp.<pid>", fsync, rename, fsync
 * of the directory) and reproducibly: the same tensors and metadata give
 * the same bytes. Header keys are sorted; the data area holds the tensors
 * by element size, largest first, then by name, so that every tensor starts
 * aligned to its element size without padding between tensors (readers
 * such as Hugging Face's require the ranges to be contiguous). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/files_internal.h"
#include "tensor/tensor_internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

static const char *st_dtype_name(int dtype) {
    static const char *names[] = {"F32", "F64", "BF16", "F16", "I32", "I64", "U8"};
    return names[dtype];
}

typedef struct item {
    const char *name;
    empo_tensor *t;
    int64_t nbytes;
    int64_t begin;          /* in the data area */
    int shard;
} item;

typedef struct meta {
    const char *key, *value;
} meta;

/* ---- a growable byte buffer ---- */

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_int(buf *b, int64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)v);
    puts_(b, s);
}

/* a JSON string: quotes, backslashes and control bytes escaped, UTF-8 kept */
static void put_json_string(buf *b, const char *s) {
    put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') { esc[0] = '\\'; esc[1] = (char)*p; put(b, esc, 2); }
        else if (*p == '\n') put(b, "\\n", 2);
        else if (*p == '\t') put(b, "\\t", 2);
        else if (*p == '\r') put(b, "\\r", 2);
        else if (*p < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", *p); put(b, esc, 6); }
        else put(b, (const char *)p, 1);
    }
    put(b, "\"", 1);
}

/* ---- input checks ---- */

static int valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
        if (n < 0) return 0;
        uint32_t c = n == 0 ? *p : *p & (0x3f >> n);
        p++;
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xc0) != 0x80) return 0;
            c = c << 6 | (*p & 0x3f);
        }
        if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) || (n == 3 && (c < 0x10000 || c > 0x10ffff)) ||
            (c >= 0xd800 && c <= 0xdfff))
            return 0;
    }
    return 1;
}

static int by_name(const void *a, const void *b) { return strcmp(((const item *)a)->name, ((const item *)b)->name); }
static int by_key(const void *a, const void *b) { return strcmp(((const meta *)a)->key, ((const meta *)b)->key); }

/* The inputs checked and sorted into items (by name) and metas (by key). */
static int gather(const char *path, int n, const char *const *names, empo_tensor *const *tensors, int n_meta,
                  const char *const *keys, const char *const *values, item **items_out, meta **metas_out) {
    *items_out = NULL;
    *metas_out = NULL;
    if (!path) return empo_fail(EMPO_E_ARG, "safetensors_save: path is NULL");
    if (n < 0 || n_meta < 0 || (n > 0 && (!names || !tensors)) || (n_meta > 0 && (!keys || !values)))
        return empo_fail(EMPO_E_ARG, "%s: safetensors_save: bad counts or NULL arrays (n %d, n_meta %d)", path, n,
                         n_meta);
    item *items = calloc((size_t)n + 1, sizeof *items);
    meta *metas = calloc((size_t)n_meta + 1, sizeof *metas);
    if (!items || !metas) {
        free(items);
        free(metas);
        return empo_fail(EMPO_E_NOMEM, "%s: out of memory", path);
    }
    *items_out = items;
    *metas_out = metas;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i];
        const empo_tensor *t = tensors[i];
        if (!nm) return empo_fail(EMPO_E_ARG, "%s: tensor %d has a NULL name", path, i);
        if (!valid_utf8(nm)) return empo_fail(EMPO_E_ARG, "%s: tensor %d: name is not valid UTF-8", path, i);
        if (strcmp(nm, "__metadata__") == 0)
            return empo_fail(EMPO_E_ARG, "%s: '__metadata__' is reserved, not a tensor name", path);
        if (!t) return empo_fail(EMPO_E_ARG, "%s: tensor '%.200s' is NULL", path, nm);
        items[i].name = nm;
        items[i].t = tensors[i];
        items[i].nbytes = empo_tensor_numel(t) * empo_dtype_size(t->dtype);
    }
    qsort(items, (size_t)n, sizeof *items, by_name);
    for (int i = 1; i < n; i++)
        if (strcmp(items[i - 1].name, items[i].name) == 0)
            return empo_fail(EMPO_E_ARG, "%s: tensor name '%.200s' given twice", path, items[i].name);
    for (int i = 0; i < n_meta; i++) {
        if (!keys[i] || !values[i]) return empo_fail(EMPO_E_ARG, "%s: metadata entry %d is NULL", path, i);
        if (!valid_utf8(keys[i]) || !valid_utf8(values[i]))
            return empo_fail(EMPO_E_ARG, "%s: metadata '%.200s' is not valid UTF-8", path, keys[i]);
        metas[i].key = keys[i];
        metas[i].value = values[i];
    }
    qsort(metas, (size_t)n_meta, sizeof *metas, by_key);
    for (int i = 1; i < n_meta; i++)
        if (strcmp(metas[i - 1].key, metas[i].key) == 0)
            return empo_fail(EMPO_E_ARG, "%s: metadata key '%.200s' given twice", path, metas[i].key);
    return EMPO_OK;
}

/* ---- one file ---- */

static int by_layout(const void *a, const void *b) {
    const item *x = *(const item *const *)a, *y = *(const item *const *)b;
    int sx = empo_dtype_size(x->t->dtype), sy = empo_dtype_size(y->t->dtype);
    if (sx != sy) return sy - sx;
    return strcmp(x->name, y->name);
}

/* The header JSON (padded with spaces so the data area starts at a
 * multiple of 8) of items[0..n) in name order; fills `layout` with the data
 * order and each item's begin. */
static int build_header(const char *path, item *items, int n, const meta *metas, int n_meta, item **layout,
                        buf *h) {
    for (int i = 0; i < n; i++) layout[i] = &items[i];
    qsort(layout, (size_t)n, sizeof *layout, by_layout);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        layout[i]->begin = at;
        at += layout[i]->nbytes;
    }
    puts_(h, "{");
    if (n_meta > 0) {
        puts_(h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) puts_(h, ",");
            put_json_string(h, metas[i].key);
            puts_(h, ":");
            put_json_string(h, metas[i].value);
        }
        puts_(h, n > 0 ? "}," : "}");
    }
    for (int i = 0; i < n; i++) {
        const empo_tensor *t = items[i].t;
        if (i) puts_(h, ",");
        put_json_string(h, items[i].name);
        puts_(h, ":{\"dtype\":\"");
        puts_(h, st_dtype_name(t->dtype));
        puts_(h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) puts_(h, ",");
            put_int(h, t->shape[d]);
        }
        puts_(h, "],\"data_offsets\":[");
        put_int(h, items[i].begin);
        puts_(h, ",");
        put_int(h, items[i].begin + items[i].nbytes);
        puts_(h, "]}");
    }
    puts_(h, "}");
    while ((8 + h->len) % 8) puts_(h, " ");
    return h->oom ? empo_fail(EMPO_E_NOMEM, "%s: out of memory building the header", path) : EMPO_OK;
}

typedef struct file_job {
    const char *path;
    const buf *header;
    item **layout;
    int n;
} file_job;

static int emit_file(int fd, void *ctx) {
    const file_job *job = ctx;
    unsigned char len8[8];
    uint64_t hl = job->header->len;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    if (empo_write_all(fd, len8, 8) || empo_write_all(fd, job->header->p, job->header->len))
        return empo_fail(EMPO_E_IO, "%s: write failed: %s", job->path, strerror(errno));
    for (int i = 0; i < job->n; i++) {
        const item *it = job->layout[i];
        if (it->nbytes == 0) continue;
        empo_tensor *c;
        EMPO_TRY(empo_to_host_nograd(&c, it->t));          /* logical order, on the host */
        int bad = empo_write_all(fd, empo_tensor_data(c), (size_t)it->nbytes);
        int e = errno;
        empo_tensor_release(c);
        if (bad) return empo_fail(EMPO_E_IO, "%s: tensor '%.200s': write failed: %s", job->path, it->name, strerror(e));
    }
    return EMPO_OK;
}

/* items[0..n) sorted by name */
static int save_items(const char *path, item *items, int n, const meta *metas, int n_meta) {
    item **layout = malloc(sizeof *layout * ((size_t)n + 1));
    if (!layout) return empo_fail(EMPO_E_NOMEM, "%s: out of memory", path);
    buf h = {0};
    int st = build_header(path, items, n, metas, n_meta, layout, &h);
    if (st == EMPO_OK) {
        file_job job = {path, &h, layout, n};
        st = empo_write_atomically(path, emit_file, &job);
    }
    free(h.p);
    free(layout);
    return st;
}

int empo_safetensors_save(const char *path, int n, const char *const *names, empo_tensor *const *tensors,
                          int n_meta, const char *const *keys, const char *const *values) {
    item *items;
    meta *metas;
    int st = gather(path, n, names, tensors, n_meta, keys, values, &items, &metas);
    if (st == EMPO_OK) st = save_items(path, items, n, metas, n_meta);
    free(items);
    free(metas);
    return st;
}

/* ---- sharded ---- */

/* The index as Hugging Face writes it: json.dumps(indent=2, sort_keys=True). */
static int save_index(const char *path, const item *items, int n, int64_t total, char *const *shard_names) {
    buf b = {0};
    puts_(&b, "{\n  \"metadata\": {\n    \"total_size\": ");
    put_int(&b, total);
    puts_(&b, "\n  },\n  \"weight_map\": {");
    for (int i = 0; i < n; i++) {
        puts_(&b, i ? ",\n    " : "\n    ");
        put_json_string(&b, items[i].name);
        puts_(&b, ": ");
        put_json_string(&b, shard_names[items[i].shard]);
    }
    puts_(&b, n ? "\n  }\n}\n" : "}\n}\n");
    int st = b.oom ? empo_fail(EMPO_E_NOMEM, "%s: out of memory", path) : empo_write_file_atomic(path, b.p, (int64_t)b.len);
    free(b.p);
    return st;
}

/* "<base>-NNNNN-of-MMMMM.safetensors": returns MMMMM, or -1 */
static long shard_total(const char *file, const char *base) {
    size_t bl = strlen(base);
    if (strncmp(file, base, bl) != 0 || file[bl] != '-') return -1;
    const char *p = file + bl + 1;
    char *end;
    if (strspn(p, "0123456789") < 5) return -1;
    strtol(p, &end, 10);
    if (strncmp(end, "-of-", 4) != 0 || strspn(end + 4, "0123456789") < 5) return -1;
    long total = strtol(end + 4, &end, 10);
    return strcmp(end, ".safetensors") == 0 ? total : -1;
}

/* Removes what an earlier save of the other layout left: shards of another
 * count (keep_total: the count just written, 0 for none), and the single
 * file or the index. */
static void remove_stale(const char *dir, const char *base, long keep_total, int sharded) {
    char p[4200];
    snprintf(p, sizeof p, sharded ? "%s/%s.safetensors" : "%s/%s.safetensors.index.json", dir, base);
    unlink(p);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long total = shard_total(de->d_name, base);
        if (total < 0 || total == keep_total) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

static int shard_files(const char *dir, const char *base, item *items, int n, const meta *metas, int n_meta,
                       int k, int64_t total) {
    char **files = calloc((size_t)k, sizeof *files);
    item *sub = malloc(sizeof *sub * ((size_t)n + 1));
    char path[4200];
    int st = files && sub ? EMPO_OK : empo_fail(EMPO_E_NOMEM, "%s: out of memory", dir);
    for (int s = 0; s < k && st == EMPO_OK; s++) {
        char name[512];
        snprintf(name, sizeof name, "%s-%05d-of-%05d.safetensors", base, s + 1, k);
        files[s] = strdup(name);
        if (!files[s]) { st = empo_fail(EMPO_E_NOMEM, "%s: out of memory", dir); break; }
        int m = 0;
        for (int i = 0; i < n; i++)
            if (items[i].shard == s) sub[m++] = items[i];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        st = save_items(path, sub, m, metas, n_meta);
    }
    if (st == EMPO_OK) {
        snprintf(path, sizeof path, "%s/%s.safetensors.index.json", dir, base);
        st = save_index(path, items, n, total, files);
    }
    for (int s = 0; files && s < k; s++) free(files[s]);
    free(files);
    free(sub);
    return st;
}

int empo_safetensors_save_sharded(const char *dir, const char *base, int n, const char *const *names,
                                  empo_tensor *const *tensors, int n_meta, const char *const *keys,
                                  const char *const *values, int64_t max_shard_bytes, int *n_shards) {
    if (!dir || !base || !*base || strchr(base, '/'))
        return empo_fail(EMPO_E_ARG, "safetensors_save_sharded: need a directory and a plain base name");
    if (strlen(dir) + strlen(base) > 3000) return empo_fail(EMPO_E_ARG, "%.200s...: path too long", dir);
    item *items;
    meta *metas;
    int st = gather(dir, n, names, tensors, n_meta, keys, values, &items, &metas);
    if (st == EMPO_OK) st = empo_make_dirs(dir);
    int k = 1;
    int64_t total = 0, cur = 0;
    for (int i = 0; st == EMPO_OK && i < n; i++) {
        if (max_shard_bytes > 0 && cur > 0 && cur + items[i].nbytes > max_shard_bytes) {
            k++;
            cur = 0;
        }
        items[i].shard = k - 1;
        cur += items[i].nbytes;
        total += items[i].nbytes;
    }
    if (st == EMPO_OK) {
        if (k == 1) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s.safetensors", dir, base);
            st = save_items(path, items, n, metas, n_meta);
        } else {
            st = shard_files(dir, base, items, n, metas, n_meta, k, total);
        }
    }
    if (st == EMPO_OK) remove_stale(dir, base, k == 1 ? 0 : k, k > 1);
    if (st == EMPO_OK && n_shards) *n_shards = k;
    free(items);
    free(metas);
    return st;
}
