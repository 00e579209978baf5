/* safetensors.c — the safetensors reader: mmap, full header validation,
 * zero-copy or converted tensors. The writer is safetensors_write.c, the
 * index.json reader safetensors_index.c.
 *
 * Nothing from the file is trusted before validate_header has checked all
 * of it; afterwards every byte range is known to lie inside the mapping. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tensor/tensor_internal.h"

enum { MAX_HEADER = 100000000 };   /* as Hugging Face's reader */

/* Every dtype the format defines with a whole-byte element; `empo` is the
 * matching empo dtype or -1. */
static const struct st_dtype {
    const char *name;
    int size;
    int empo;
} st_dtypes[] = {
    {"BOOL", 1, EMPO_U8},  {"U8", 1, EMPO_U8},   {"I8", 1, -1},        {"F8_E5M2", 1, -1},
    {"F8_E4M3", 1, -1},    {"F8_E8M0", 1, -1},   {"I16", 2, -1},       {"U16", 2, -1},
    {"F16", 2, EMPO_F16},  {"BF16", 2, EMPO_BF16}, {"I32", 4, EMPO_I32}, {"U32", 4, -1},
    {"F32", 4, EMPO_F32},  {"F64", 8, EMPO_F64}, {"I64", 8, EMPO_I64}, {"U64", 8, -1},
};
enum { N_ST_DTYPES = sizeof st_dtypes / sizeof st_dtypes[0] };

typedef struct st_entry {
    char *name;
    int st_dtype;                       /* index into st_dtypes */
    int ndim;                           /* may exceed EMPO_MAX_DIMS (then shape is cut) */
    int64_t shape[EMPO_MAX_DIMS];
    int64_t numel;
    int64_t begin, end;                 /* bytes, relative to the data area */
} st_entry;

struct empo_safetensors {
    char *path;
    empo_mapping *map;
    unsigned char *base;                /* the mapping: the whole file */
    unsigned char *data;                /* the data area inside the mapping */
    int64_t data_size;
    int64_t n;
    st_entry *entries;                  /* sorted by name */
    int64_t n_meta;
    char **meta_keys, **meta_values;    /* sorted by key */
};

/* ---- errors: "<path>: tensor '<name>': <what>" ---- */

static int fail_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_file(const char *path, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return empo_fail(EMPO_E_IO, "%s: %s", path, what);
}

static int fail_tensor(const char *path, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_tensor(const char *path, const char *name, const char *fmt, ...) {
    char what[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return empo_fail(EMPO_E_IO, "%s: tensor '%.200s': %s", path, name, what);
}

/* ---- header parsing ---- */

/* A JSON number that is an exact integer in [0, 2^53]. */
static int json_uint(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(int64_t)d) return 0;
    *out = (int64_t)d;
    return 1;
}

static const char *json_kind(const cJSON *v) {
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "missing";
}

static int parse_shape(const char *path, const char *name, const cJSON *shape, st_entry *e) {
    if (!cJSON_IsArray(shape))
        return fail_tensor(path, name, "\"shape\" must be an array of sizes, got %s", json_kind(shape));
    int nd = 0, has_zero = 0;
    int64_t numel = 1;
    const cJSON *v;
    cJSON_ArrayForEach(v, shape) {
        int64_t d;
        if (!json_uint(v, &d)) {
            if (cJSON_IsNumber(v))
                return fail_tensor(path, name, "shape[%d] = %g is not a size (a non-negative integer up to 2^53)",
                                   nd, v->valuedouble);
            return fail_tensor(path, name, "shape[%d] is %s, not a size", nd, json_kind(v));
        }
        if (nd < EMPO_MAX_DIMS) e->shape[nd] = d;
        if (d == 0) has_zero = 1;
        else if (!has_zero && __builtin_mul_overflow(numel, d, &numel))
            return fail_tensor(path, name, "shape has more than 2^63 elements");
        if (nd == 1000) return fail_tensor(path, name, "shape has more than 1000 dims");
        nd++;
    }
    e->ndim = nd;
    e->numel = has_zero ? 0 : numel;
    return EMPO_OK;
}

static int parse_entry(const char *path, const cJSON *item, st_entry *e) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return fail_tensor(path, name, "entry must be an object with dtype, shape and data_offsets, got %s",
                           json_kind(item));
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dt))
        return fail_tensor(path, name, "\"dtype\" must be a string, got %s", json_kind(dt));
    e->st_dtype = -1;
    for (int i = 0; i < N_ST_DTYPES; i++)
        if (strcmp(dt->valuestring, st_dtypes[i].name) == 0) e->st_dtype = i;
    if (e->st_dtype < 0)
        return fail_tensor(path, name, "unknown dtype '%.40s' (known: BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, "
                           "I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64)", dt->valuestring);
    EMPO_TRY(parse_shape(path, name, cJSON_GetObjectItemCaseSensitive(item, "shape"), e));
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &e->begin) ||
        !json_uint(off->child->next, &e->end))
        return fail_tensor(path, name, "\"data_offsets\" must be [begin, end], two non-negative integers");
    if (e->end < e->begin)
        return fail_tensor(path, name, "data_offsets [%lld, %lld] end before they begin",
                           (long long)e->begin, (long long)e->end);
    int64_t need;
    const struct st_dtype *sd = &st_dtypes[e->st_dtype];
    int huge = __builtin_mul_overflow(e->numel, (int64_t)sd->size, &need);
    if (huge || need != e->end - e->begin) {
        char shape[160], needs[40];
        int nd = e->ndim < EMPO_MAX_DIMS ? e->ndim : EMPO_MAX_DIMS;
        empo_shape_str(nd, e->shape, shape, sizeof shape);
        snprintf(needs, sizeof needs, huge ? "more than 2^63" : "%lld", (long long)need);
        return fail_tensor(path, name, "data_offsets [%lld, %lld] hold %lld bytes but shape %s%s %s needs %s",
                           (long long)e->begin, (long long)e->end, (long long)(e->end - e->begin), shape,
                           e->ndim > nd ? "..." : "", sd->name, needs);
    }
    return EMPO_OK;
}

static int parse_metadata(empo_safetensors *f, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return fail_file(f->path, "__metadata__ must be an object of strings, got %s", json_kind(meta));
    int64_t n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    f->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return empo_fail(EMPO_E_NOMEM, "%s: out of memory", f->path);
    const cJSON *v;
    cJSON_ArrayForEach(v, meta) {
        if (!cJSON_IsString(v))
            return fail_file(f->path, "__metadata__ '%.200s' must be a string, got %s", v->string, json_kind(v));
        f->meta_keys[f->n_meta] = strdup(v->string);
        f->meta_values[f->n_meta] = strdup(v->valuestring);
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1])
            return empo_fail(EMPO_E_NOMEM, "%s: out of memory", f->path);
    }
    /* insertion sort by key (metadata is small), then no key twice */
    for (int64_t i = 1; i < f->n_meta; i++) {
        char *k = f->meta_keys[i], *val = f->meta_values[i];
        int64_t j = i;
        for (; j > 0 && strcmp(f->meta_keys[j - 1], k) > 0; j--) {
            f->meta_keys[j] = f->meta_keys[j - 1];
            f->meta_values[j] = f->meta_values[j - 1];
        }
        f->meta_keys[j] = k;
        f->meta_values[j] = val;
    }
    for (int64_t i = 1; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i - 1], f->meta_keys[i]) == 0)
            return fail_file(f->path, "__metadata__ key '%.200s' appears twice", f->meta_keys[i]);
    return EMPO_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int by_range(const void *a, const void *b) {
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Names distinct, ranges inside the data area and disjoint. */
static int check_layout(empo_safetensors *f) {
    qsort(f->entries, (size_t)f->n, sizeof *f->entries, by_name);
    for (int64_t i = 1; i < f->n; i++)
        if (strcmp(f->entries[i - 1].name, f->entries[i].name) == 0)
            return fail_tensor(f->path, f->entries[i].name, "appears twice in the header");
    for (int64_t i = 0; i < f->n; i++) {
        const st_entry *e = &f->entries[i];
        if (e->end > f->data_size)
            return fail_tensor(f->path, e->name,
                               "data_offsets [%lld, %lld] run past the end of the data area (%lld bytes; "
                               "is the file truncated?)",
                               (long long)e->begin, (long long)e->end, (long long)f->data_size);
    }
    if (f->n < 2) return EMPO_OK;
    const st_entry **order = malloc(sizeof *order * (size_t)f->n);
    if (!order) return empo_fail(EMPO_E_NOMEM, "%s: out of memory", f->path);
    for (int64_t i = 0; i < f->n; i++) order[i] = &f->entries[i];
    qsort(order, (size_t)f->n, sizeof *order, by_range);
    int st = EMPO_OK;
    const st_entry *reach = order[0];         /* the range ending last so far */
    for (int64_t i = 1; i < f->n && st == EMPO_OK; i++) {
        const st_entry *e = order[i];
        if (e->begin < reach->end)
            st = fail_tensor(f->path, e->name, "data_offsets [%lld, %lld] overlap those of tensor '%.200s' [%lld, %lld]",
                             (long long)e->begin, (long long)e->end, reach->name, (long long)reach->begin,
                             (long long)reach->end);
        if (e->end > reach->end) reach = e;
    }
    free(order);
    return st;
}

static int validate_header(empo_safetensors *f, const char *text, size_t len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        long at = end ? (long)(end - text) : -1;
        return fail_file(f->path, "header is not valid JSON (error near byte %ld of %zu)", at, len);
    }
    int st = EMPO_OK;
    for (const char *p = end; p < text + len && st == EMPO_OK; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            st = fail_file(f->path, "header has bytes after its JSON object (at byte %ld of %zu)",
                           (long)(p - text), len);
    if (st == EMPO_OK && !cJSON_IsObject(root))
        st = fail_file(f->path, "header must be a JSON object, got %s", json_kind(root));
    if (st == EMPO_OK) {
        int64_t n = 0;
        int n_meta = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, root) {
            if (strcmp(item->string, "__metadata__") == 0) n_meta++;
            else n++;
        }
        if (n_meta > 1) st = fail_file(f->path, "__metadata__ appears twice");
        f->entries = calloc((size_t)n + 1, sizeof *f->entries);
        if (st == EMPO_OK && !f->entries) st = empo_fail(EMPO_E_NOMEM, "%s: out of memory", f->path);
        cJSON_ArrayForEach(item, root) {
            if (st != EMPO_OK) break;
            if (strcmp(item->string, "__metadata__") == 0) {
                st = parse_metadata(f, item);
                continue;
            }
            st_entry *e = &f->entries[f->n];
            st = parse_entry(f->path, item, e);
            if (st == EMPO_OK) {
                e->name = strdup(item->string);
                if (!e->name) st = empo_fail(EMPO_E_NOMEM, "%s: out of memory", f->path);
                else f->n++;
            }
        }
    }
    cJSON_Delete(root);
    return st == EMPO_OK ? check_layout(f) : st;
}

/* ---- open / close ---- */

static int map_file(empo_safetensors *f, size_t *size_out) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_file(f->path, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return fail_file(f->path, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return fail_file(f->path, "not a regular file");
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return fail_file(f->path, "file is %zu bytes, too short for a safetensors header", size);
    }
    /* private and writable: tensors are copy-on-write views that may be
     * changed in memory without ever touching the file; NORESERVE so that
     * mapping a big checkpoint does not reserve swap for it */
    void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    int e = errno;
    close(fd);
    if (addr == MAP_FAILED) return fail_file(f->path, "cannot mmap %zu bytes: %s", size, strerror(e));
    f->map = empo_mapping_new(addr, size);
    if (!f->map) {
        munmap(addr, size);
        return EMPO_E_NOMEM;
    }
    f->base = addr;
    *size_out = size;
    return EMPO_OK;
}

static int open_file(empo_safetensors *f) {
    size_t size = 0;
    EMPO_TRY(map_file(f, &size));
    const unsigned char *p = f->base;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > MAX_HEADER)
        return fail_file(f->path, "header size %llu is over the limit of %d bytes (not a safetensors file?)",
                         (unsigned long long)hlen, MAX_HEADER);
    if (hlen > size - 8)
        return fail_file(f->path, "header size %llu runs past the end of the file (%zu bytes; truncated?)",
                         (unsigned long long)hlen, size);
    f->data = f->base + 8 + hlen;
    f->data_size = (int64_t)(size - 8 - hlen);
    /* the parser gets its own NUL-terminated copy: no read can stray into
     * the data area or past the mapping, and ASan sees every byte of it */
    char *text = malloc((size_t)hlen + 1);
    if (!text) return empo_fail(EMPO_E_NOMEM, "%s: out of memory for a %llu-byte header", f->path,
                                (unsigned long long)hlen);
    memcpy(text, p + 8, (size_t)hlen);
    text[hlen] = '\0';
    int st = validate_header(f, text, (size_t)hlen);
    free(text);
    return st;
}

int empo_safetensors_open(empo_safetensors **out, const char *path) {
    if (!out || !path) return empo_fail(EMPO_E_ARG, "safetensors_open: out and path must not be NULL");
    *out = NULL;
    empo_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return empo_fail(EMPO_E_NOMEM, "%s: out of memory", path);
    }
    int st = open_file(f);
    if (st != EMPO_OK) {
        empo_safetensors_close(f);
        return st;
    }
    *out = f;
    return EMPO_OK;
}

void empo_safetensors_close(empo_safetensors *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->n; i++) free(f->entries[i].name);
    free(f->entries);
    for (int64_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    empo_mapping_release(f->map);
    free(f->path);
    free(f);
}

/* ---- inspection ---- */

const char *empo_safetensors_path(const empo_safetensors *f) { return f ? f->path : NULL; }
int64_t empo_safetensors_count(const empo_safetensors *f) { return f ? f->n : 0; }

const char *empo_safetensors_name(const empo_safetensors *f, int64_t i) {
    return f && i >= 0 && i < f->n ? f->entries[i].name : NULL;
}

int64_t empo_safetensors_find(const empo_safetensors *f, const char *name) {
    if (!f || !name) return -1;
    int64_t lo = 0, hi = f->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->entries[mid].name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static const st_entry *lookup(const empo_safetensors *f, const char *name, const char *op) {
    if (!f || !name) {
        empo_fail(EMPO_E_ARG, "safetensors_%s: file and name must not be NULL", op);
        return NULL;
    }
    int64_t i = empo_safetensors_find(f, name);
    if (i < 0) {
        fail_tensor(f->path, name, "no such tensor (the file has %lld)", (long long)f->n);
        return NULL;
    }
    return &f->entries[i];
}

const char *empo_safetensors_file_dtype(const empo_safetensors *f, const char *name) {
    int64_t i = empo_safetensors_find(f, name);
    return i < 0 ? NULL : st_dtypes[f->entries[i].st_dtype].name;
}

static int check_dims(const empo_safetensors *f, const st_entry *e) {
    if (e->ndim <= EMPO_MAX_DIMS) return EMPO_OK;
    return empo_fail(EMPO_E_SHAPE, "%s: tensor '%.200s': %d dims, empo supports at most %d", f->path, e->name,
                     e->ndim, EMPO_MAX_DIMS);
}

int empo_safetensors_info(const empo_safetensors *f, const char *name, int *dtype, int *ndim,
                          int64_t *shape) {
    const st_entry *e = lookup(f, name, "info");
    if (!e) return f && name ? EMPO_E_IO : EMPO_E_ARG;
    EMPO_TRY(check_dims(f, e));
    if (dtype) *dtype = st_dtypes[e->st_dtype].empo;
    if (ndim) *ndim = e->ndim;
    if (shape && e->ndim) memcpy(shape, e->shape, sizeof(int64_t) * (size_t)e->ndim);
    return EMPO_OK;
}

int empo_safetensors_range(const empo_safetensors *f, const char *name, int64_t *begin, int64_t *end) {
    const st_entry *e = lookup(f, name, "range");
    if (!e) return f && name ? EMPO_E_IO : EMPO_E_ARG;
    if (begin) *begin = e->begin;
    if (end) *end = e->end;
    return EMPO_OK;
}

int64_t empo_safetensors_metadata_count(const empo_safetensors *f) { return f ? f->n_meta : 0; }

const char *empo_safetensors_metadata_key(const empo_safetensors *f, int64_t i) {
    return f && i >= 0 && i < f->n_meta ? f->meta_keys[i] : NULL;
}

const char *empo_safetensors_metadata(const empo_safetensors *f, const char *key) {
    if (!f || !key) return NULL;
    for (int64_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* ---- get ---- */

/* Element i of n raw elements of a file dtype that empo lacks, as double.
 * memcpy: the bytes need not be aligned. */
static double load_foreign(const unsigned char *p, int st_dtype, int64_t i) {
    const char *nm = st_dtypes[st_dtype].name;
    if (strcmp(nm, "I8") == 0) return (int8_t)p[i];
    if (strcmp(nm, "I16") == 0) { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    if (strcmp(nm, "U16") == 0) { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    if (strcmp(nm, "U32") == 0) { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    uint64_t v;                                           /* U64 */
    memcpy(&v, p + 8 * i, 8);
    return (double)v;
}

static int is_convertible_foreign(int st_dtype) {
    const char *nm = st_dtypes[st_dtype].name;
    return strcmp(nm, "I8") == 0 || strcmp(nm, "I16") == 0 || strcmp(nm, "U16") == 0 ||
           strcmp(nm, "U32") == 0 || strcmp(nm, "U64") == 0;
}

/* A copy of e's bytes converted to dtype `want`. */
static int get_copy(empo_tensor **out, const empo_safetensors *f, const st_entry *e, int want) {
    const struct st_dtype *sd = &st_dtypes[e->st_dtype];
    const unsigned char *src = f->data + e->begin;
    empo_tensor *t = empo_tensor_new(e->ndim, e->shape, want);
    if (!t) return EMPO_E_NOMEM;
    void *dst = empo_tensor_data(t);
    if (sd->empo < 0) {
        for (int64_t i = 0; i < e->numel; i++) empo_store_element(dst, want, i, load_foreign(src, e->st_dtype, i));
    } else if (sd->empo == want || (uintptr_t)src % (uintptr_t)sd->size == 0) {
        if (e->numel) empo_convert(dst, want, src, sd->empo, e->numel);
    } else {
        /* unaligned source: bring it to aligned memory first */
        void *tmp = malloc((size_t)(e->end - e->begin));
        if (!tmp) {
            empo_tensor_release(t);
            return empo_fail(EMPO_E_NOMEM, "%s: out of memory", f->path);
        }
        memcpy(tmp, src, (size_t)(e->end - e->begin));
        empo_convert(dst, want, tmp, sd->empo, e->numel);
        free(tmp);
    }
    *out = t;
    return EMPO_OK;
}

int empo_safetensors_get(empo_tensor **out, empo_safetensors *f, const char *name, int dtype) {
    if (!out) return empo_fail(EMPO_E_ARG, "safetensors_get: out must not be NULL");
    *out = NULL;
    const st_entry *e = lookup(f, name, "get");
    if (!e) return f && name ? EMPO_E_IO : EMPO_E_ARG;
    EMPO_TRY(check_dims(f, e));
    const struct st_dtype *sd = &st_dtypes[e->st_dtype];
    if (dtype >= 0 && empo_dtype_size(dtype) == 0)
        return empo_fail(EMPO_E_DTYPE, "%s: tensor '%.200s': unknown dtype %d requested", f->path, e->name, dtype);
    int want = dtype >= 0 ? dtype : sd->empo;
    if (want < 0 || (sd->empo < 0 && !is_convertible_foreign(e->st_dtype))) {
        return empo_fail(EMPO_E_DTYPE, "%s: tensor '%.200s': dtype %s has no empo equivalent%s", f->path, e->name,
                         sd->name, is_convertible_foreign(e->st_dtype)
                                       ? "; ask for a conversion (e.g. to i64 or f32)" : "");
    }
    unsigned char *src = f->data + e->begin;
    if (want != sd->empo || e->numel == 0 || (uintptr_t)src % (uintptr_t)sd->size != 0)
        return get_copy(out, f, e, want);
    empo_tensor *t = empo_tensor_alloc_handle(e->ndim, e->shape, want);
    if (!t) return EMPO_E_NOMEM;
    t->storage = empo_storage_from_mapping(f->map, src, (size_t)(e->end - e->begin));
    if (!t->storage) {
        empo_tensor_release(t);
        return EMPO_E_NOMEM;
    }
    *out = t;
    return EMPO_OK;
}
