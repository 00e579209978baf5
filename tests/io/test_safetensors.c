/* test_safetensors.c — safetensors files that empo writes and reads back:
 * every dtype bit-exact (bf16/f16 included), 0-d and empty tensors,
 * non-contiguous inputs, metadata, byte-identical output, zero-copy views
 * and their lifetime, conversion on load, foreign dtypes, unaligned data,
 * atomic writes, sharded checkpoints and index.json. The corrupt-file
 * cases are in test_safetensors_corrupt.c. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "autograd/autograd_internal.h"

static char dir[64];

static const char *in_dir(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    *len = fread(p, 1, (size_t)n, fp);
    fclose(fp);
    return p;
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    fwrite(p, 1, n, fp);
    fclose(fp);
}

static int same_file(const char *a, const char *b) {
    size_t la, lb;
    unsigned char *pa = read_file(a, &la), *pb = read_file(b, &lb);
    int same = pa && pb && la == lb && memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    return same;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* random bytes (every bit pattern, NaN payloads included) */
static empo_tensor *rand_bits(int ndim, const int64_t *shape, int dtype, uint64_t seed) {
    empo_tensor *t = NULL;
    empo_tensor_empty(&t, ndim, shape, dtype);
    unsigned char *p = empo_tensor_data(t);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    for (int64_t i = 0; i < empo_tensor_numel(t) * empo_dtype_size(dtype); i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        p[i] = (unsigned char)(s >> 24);
    }
    return t;
}

/* same shape, dtype and bytes (in logical order) */
static int same_tensor(empo_tensor *a, empo_tensor *b) {
    if (empo_tensor_ndim(a) != empo_tensor_ndim(b) || empo_tensor_dtype(a) != empo_tensor_dtype(b)) return 0;
    for (int d = 0; d < empo_tensor_ndim(a); d++)
        if (empo_tensor_size(a, d) != empo_tensor_size(b, d)) return 0;
    empo_tensor *ca = NULL, *cb = NULL;
    empo_contiguous(&ca, a);
    empo_contiguous(&cb, b);
    size_t n = (size_t)(empo_tensor_numel(a) * empo_dtype_size(empo_tensor_dtype(a)));
    int same = n == 0 || memcmp(empo_tensor_data(ca), empo_tensor_data(cb), n) == 0;
    empo_tensor_release(ca);
    empo_tensor_release(cb);
    return same;
}

/* how many lines of /proc/self/maps name path: is the file still mapped? */
static int mapped(const char *path) {
    FILE *fp = fopen("/proc/self/maps", "r");
    char line[1024];
    int n = 0;
    while (fp && fgets(line, sizeof line, fp))
        if (strstr(line, path)) n++;
    if (fp) fclose(fp);
    return n;
}

enum { NT = 11 };
static const char *names[NT] = {"f32", "f64", "bf16", "f16", "i32", "i64", "u8",
                                "scalar", "empty", "empty3d", "transposed"};
static empo_tensor *tensors[NT];

static void make_tensors(void) {
    int64_t s[2] = {3, 5}, z[1] = {0}, z3[3] = {2, 0, 3}, s43[2] = {3, 4};
    for (int d = 0; d <= EMPO_U8; d++) tensors[d] = rand_bits(2, s, d, (uint64_t)d + 1);
    tensors[7] = rand_bits(0, NULL, EMPO_F32, 11);
    tensors[8] = rand_bits(1, z, EMPO_F16, 12);
    tensors[9] = rand_bits(3, z3, EMPO_I64, 13);
    empo_tensor *base = rand_bits(2, s43, EMPO_F32, 14);
    empo_transpose(&tensors[10], base, 0, 1);     /* [4 x 3], not contiguous */
    empo_tensor_release(base);
}

static void test_round_trip(void) {
    const char *keys[3] = {"format", "note", "empty"};
    const char *values[3] = {"pt", "a \"quoted\"\n line \\ \x01 \xc3\xbc", ""};
    const char *path = in_dir("all.safetensors");
    CHECK_OK(empo_safetensors_save(path, NT, names, tensors, 3, keys, values));
    empo_safetensors *f = NULL;
    CHECK_OK(empo_safetensors_open(&f, path));
    if (!f) return;
    CHECK(empo_safetensors_count(f) == NT);
    CHECK(strcmp(empo_safetensors_path(f), path) == 0);
    for (int64_t i = 1; i < NT; i++)
        CHECK(strcmp(empo_safetensors_name(f, i - 1), empo_safetensors_name(f, i)) < 0);   /* sorted */
    CHECK(empo_safetensors_name(f, NT) == NULL && empo_safetensors_name(f, -1) == NULL);
    CHECK(empo_safetensors_find(f, "nope") == -1);
    for (int i = 0; i < NT; i++) {
        empo_tensor *t = NULL;
        int dtype = -9, ndim = -1;
        int64_t shape[8];
        CHECK_OK(empo_safetensors_info(f, names[i], &dtype, &ndim, shape));
        CHECK(dtype == empo_tensor_dtype(tensors[i]) && ndim == empo_tensor_ndim(tensors[i]));
        CHECK_OK(empo_safetensors_get(&t, f, names[i], -1));
        check_report(__FILE__, __LINE__, t && same_tensor(t, tensors[i]), "tensor %s round trip", names[i]);
        if (t && empo_tensor_numel(t) > 0)      /* zero-copy views are aligned */
            CHECK((uintptr_t)empo_tensor_data(t) % (uintptr_t)empo_dtype_size(dtype) == 0);
        empo_tensor_release(t);
    }
    CHECK(strcmp(empo_safetensors_file_dtype(f, "bf16"), "BF16") == 0);
    CHECK(strcmp(empo_safetensors_file_dtype(f, "u8"), "U8") == 0);
    CHECK(empo_safetensors_file_dtype(f, "nope") == NULL);
    CHECK(empo_safetensors_metadata_count(f) == 3);
    CHECK(strcmp(empo_safetensors_metadata_key(f, 0), "empty") == 0);
    CHECK(strcmp(empo_safetensors_metadata(f, "note"), values[1]) == 0);
    CHECK(strcmp(empo_safetensors_metadata(f, "empty"), "") == 0);
    CHECK(empo_safetensors_metadata(f, "nope") == NULL);
    CHECK_FAIL(empo_safetensors_get(&(empo_tensor *){NULL}, f, "nope", -1), EMPO_E_IO, "tensor 'nope': no such tensor");
    CHECK_FAIL(empo_safetensors_info(f, "nope", NULL, NULL, NULL), EMPO_E_IO, "all.safetensors: tensor 'nope'");
    empo_safetensors_close(f);

    /* the same input in another order gives the same bytes */
    const char *rn[NT];
    empo_tensor *rt[NT];
    for (int i = 0; i < NT; i++) { rn[i] = names[NT - 1 - i]; rt[i] = tensors[NT - 1 - i]; }
    const char *rk[3] = {keys[2], keys[0], keys[1]}, *rv[3] = {values[2], values[0], values[1]};
    CHECK_OK(empo_safetensors_save(in_dir("again.safetensors"), NT, rn, rt, 3, rk, rv));
    CHECK(same_file(path, in_dir("again.safetensors")));

    /* the layout: header length, 8-byte alignment, space padding */
    size_t len;
    unsigned char *p = read_file(path, &len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | p[i];
    CHECK((8 + hl) % 8 == 0 && 8 + hl <= len);
    CHECK(memcmp(p + 8, "{\"__metadata__\":{\"empty\":\"\"", 27) == 0);
    size_t last = 8 + hl - 1;
    while (p[last] == ' ') last--;
    CHECK(p[last] == '}');
    free(p);
}

static void test_zero_copy(void) {
    const char *path = in_dir("all.safetensors");
    empo_safetensors *f = NULL;
    empo_tensor *a = NULL, *b = NULL, *conv = NULL;
    CHECK_OK(empo_safetensors_open(&f, path));
    if (!f) return;
    CHECK(mapped(path) >= 1);
    CHECK_OK(empo_safetensors_get(&a, f, "f32", -1));
    CHECK_OK(empo_safetensors_get(&b, f, "f32", EMPO_F32));
    CHECK(empo_tensor_data(a) == empo_tensor_data(b));       /* both views of the mapping */
    CHECK_OK(empo_safetensors_get(&conv, f, "bf16", EMPO_F32));
    empo_tensor_release(b);
    empo_safetensors_close(f);
    CHECK(mapped(path) >= 1);                                /* a keeps the mapping */
    CHECK(same_tensor(a, tensors[0]));
    /* writing into the view is private to this process */
    size_t len0, len1;
    unsigned char *before = read_file(path, &len0);
    CHECK_OK(empo_tensor_fill_(a, 42.0));
    unsigned char *after = read_file(path, &len1);
    CHECK(len0 == len1 && memcmp(before, after, len0) == 0);
    free(before);
    free(after);
    empo_tensor_release(a);
    CHECK(mapped(path) == 0);                                /* unmapped with the last view */
    /* bf16 -> f32 conversion */
    const uint16_t *src = empo_tensor_data(tensors[2]);
    const float *dst = conv ? empo_tensor_data(conv) : NULL;
    int ok = conv && empo_tensor_dtype(conv) == EMPO_F32;
    for (int i = 0; ok && i < 15; i++) {
        float want = empo_bf16_to_f32(src[i]);
        ok = memcmp(&want, &dst[i], 4) == 0;
    }
    CHECK(ok);
    empo_tensor_release(conv);
}

static void test_conversions(void) {
    float vals[6] = {1.5f, -2.25f, 65504.0f, 1e-7f, INFINITY, -0.0f};
    int64_t s[1] = {6};
    empo_tensor *h = NULL, *x = NULL, *i64 = NULL;
    CHECK_OK(empo_tensor_from_buffer(&h, 1, s, EMPO_F16, vals, EMPO_F32));
    int64_t iv[3] = {-5, 7, 1 << 20};
    int64_t s3[1] = {3};
    CHECK_OK(empo_tensor_from_buffer(&i64, 1, s3, EMPO_I64, iv, EMPO_I64));
    const char *nm[2] = {"h", "ids"};
    empo_tensor *ts[2] = {h, i64};
    const char *path = in_dir("conv.safetensors");
    CHECK_OK(empo_safetensors_save(path, 2, nm, ts, 0, NULL, NULL));
    empo_safetensors *f = NULL;
    CHECK_OK(empo_safetensors_open(&f, path));
    CHECK_OK(empo_safetensors_get(&x, f, "h", EMPO_F32));
    double got[6], want[6];
    empo_tensor_read_f64(x, got);
    empo_tensor_read_f64(h, want);
    CHECK(memcmp(got, want, sizeof got) == 0 && got[0] == 1.5 && got[2] == 65504.0);
    empo_tensor_release(x);
    CHECK_OK(empo_safetensors_get(&x, f, "ids", EMPO_I32));
    CHECK(x && empo_tensor_dtype(x) == EMPO_I32 && ((int32_t *)empo_tensor_data(x))[2] == (1 << 20));
    empo_tensor_release(x);
    CHECK_FAIL(empo_safetensors_get(&x, f, "ids", 99), EMPO_E_DTYPE, "unknown dtype 99");
    empo_safetensors_close(f);
    empo_tensor_release(h);
    empo_tensor_release(i64);
}

/* a file written by hand: header text + data bytes */
static void hand_file(const char *path, const char *header, const void *data, size_t n) {
    size_t hl = strlen(header);
    unsigned char *p = malloc(8 + hl + n);
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(p + 8, header, hl);
    memcpy(p + 8 + hl, data, n);
    write_file(path, p, 8 + hl + n);
    free(p);
}

static void test_foreign_and_unaligned(void) {
    /* I16 and F8 tensors (empo has no such dtype), a 9-d tensor, and an F32
     * tensor at an odd address (the header is not padded) */
    unsigned char data[64] = {0};
    int16_t i16[3] = {-2, 300, 7};
    float f32[2] = {3.5f, -1.25f};
    memcpy(data, i16, 6);
    data[6] = 0x38;
    memcpy(data + 7, f32, 8);
    const char *h =
        "{\"i16\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[0,6]},"
        "\"f8\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[6,7]},"
        "\"odd\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[7,15]},"
        "\"nine\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[15,16]}}";
    const char *path = in_dir("foreign.safetensors");
    hand_file(path, h, data, 16);
    empo_safetensors *f = NULL;
    empo_tensor *t = NULL;
    CHECK_OK(empo_safetensors_open(&f, path));
    if (!f) return;
    int dtype = 0;
    CHECK_OK(empo_safetensors_info(f, "i16", &dtype, NULL, NULL));
    CHECK(dtype == -1 && strcmp(empo_safetensors_file_dtype(f, "i16"), "I16") == 0);
    CHECK_FAIL(empo_safetensors_get(&t, f, "i16", -1), EMPO_E_DTYPE, "tensor 'i16': dtype I16 has no empo equivalent");
    CHECK_OK(empo_safetensors_get(&t, f, "i16", EMPO_I64));
    CHECK(t && ((int64_t *)empo_tensor_data(t))[0] == -2 && ((int64_t *)empo_tensor_data(t))[1] == 300);
    empo_tensor_release(t);
    CHECK_FAIL(empo_safetensors_get(&t, f, "f8", EMPO_F32), EMPO_E_DTYPE, "dtype F8_E4M3 has no empo equivalent");
    for (int want = -1; want <= EMPO_F32; want++) {    /* native (copied: unaligned) and asked for f32 */
        CHECK_OK(empo_safetensors_get(&t, f, "odd", want));
        CHECK(t && ((float *)empo_tensor_data(t))[0] == 3.5f && ((float *)empo_tensor_data(t))[1] == -1.25f);
        empo_tensor_release(t);
        t = NULL;
    }
    CHECK_OK(empo_safetensors_get(&t, f, "odd", EMPO_F64));
    CHECK(t && ((double *)empo_tensor_data(t))[1] == -1.25);
    empo_tensor_release(t);
    CHECK_FAIL(empo_safetensors_info(f, "nine", NULL, NULL, NULL), EMPO_E_SHAPE, "tensor 'nine': 9 dims");
    CHECK_FAIL(empo_safetensors_get(&t, f, "nine", -1), EMPO_E_SHAPE, "at most 8");
    int64_t b = -1, e = -1;
    CHECK_OK(empo_safetensors_range(f, "odd", &b, &e));
    CHECK(b == 7 && e == 15);
    empo_safetensors_close(f);
}

static int count_tmp_files(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strstr(de->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static void test_writer_errors(void) {
    const char *path = in_dir("all.safetensors");
    size_t len0, len1;
    unsigned char *before = read_file(path, &len0);
    const char *dup[2] = {"a", "a"};
    empo_tensor *two[2] = {tensors[0], tensors[1]};
    CHECK_FAIL(empo_safetensors_save(path, 2, dup, two, 0, NULL, NULL), EMPO_E_ARG, "tensor name 'a' given twice");
    const char *reserved[1] = {"__metadata__"};
    CHECK_FAIL(empo_safetensors_save(path, 1, reserved, two, 0, NULL, NULL), EMPO_E_ARG, "reserved");
    const char *bad_utf8[1] = {"caf\xe9"};
    CHECK_FAIL(empo_safetensors_save(path, 1, bad_utf8, two, 0, NULL, NULL), EMPO_E_ARG, "not valid UTF-8");
    const char *one[1] = {"x"};
    empo_tensor *null_t[1] = {NULL};
    CHECK_FAIL(empo_safetensors_save(path, 1, one, null_t, 0, NULL, NULL), EMPO_E_ARG, "tensor 'x' is NULL");
    const char *k2[2] = {"k", "k"}, *v2[2] = {"1", "2"};
    CHECK_FAIL(empo_safetensors_save(path, 1, one, two, 2, k2, v2), EMPO_E_ARG, "metadata key 'k' given twice");
    CHECK_FAIL(empo_safetensors_save(in_dir("no/such/dir.safetensors"), 1, one, two, 0, NULL, NULL), EMPO_E_IO,
               "cannot write ");
    CHECK_FAIL(empo_safetensors_save(in_dir("no/such/dir.safetensors"), 1, one, two, 0, NULL, NULL), EMPO_E_IO,
               "no/such/dir.safetensors: No such file or directory");
    unsigned char *after = read_file(path, &len1);
    CHECK(len0 == len1 && memcmp(before, after, len0) == 0);    /* untouched by failed saves */
    free(before);
    free(after);
    CHECK(count_tmp_files() == 0);
    /* an empty dict is a valid file */
    CHECK_OK(empo_safetensors_save(in_dir("none.safetensors"), 0, NULL, NULL, 0, NULL, NULL));
    empo_safetensors *f = NULL;
    CHECK_OK(empo_safetensors_open(&f, in_dir("none.safetensors")));
    CHECK(f && empo_safetensors_count(f) == 0 && empo_safetensors_metadata_count(f) == 0);
    empo_safetensors_close(f);
}

static void check_index_loads(const char *index_path) {
    empo_safetensors_index *ix = NULL;
    CHECK_OK(empo_safetensors_index_open(&ix, index_path));
    if (!ix) return;
    CHECK(empo_safetensors_index_count(ix) == NT);
    int64_t total = 0;
    for (int i = 0; i < NT; i++) {
        const char *shard = empo_safetensors_index_file_of(ix, names[i]);
        empo_safetensors *f = NULL;
        empo_tensor *t = NULL;
        CHECK_OK(empo_safetensors_open(&f, shard));
        CHECK_OK(empo_safetensors_get(&t, f, names[i], -1));
        check_report(__FILE__, __LINE__, t && same_tensor(t, tensors[i]), "sharded %s", names[i]);
        CHECK(f && strcmp(empo_safetensors_metadata(f, "format"), "pt") == 0);
        total += empo_tensor_numel(tensors[i]) * empo_dtype_size(empo_tensor_dtype(tensors[i]));
        empo_tensor_release(t);
        empo_safetensors_close(f);
    }
    CHECK(empo_safetensors_index_total_size(ix) == total);
    CHECK(empo_safetensors_index_file_of(ix, "nope") == NULL);
    for (int64_t i = 1; i < empo_safetensors_index_count(ix); i++)
        CHECK(strcmp(empo_safetensors_index_name(ix, i - 1), empo_safetensors_index_name(ix, i)) < 0);
    empo_safetensors_index_close(ix);
}

static void test_sharded(void) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/ckpt", dir);
    const char *k[1] = {"format"}, *v[1] = {"pt"};
    int shards = 0;
    /* tensors of 15..120 bytes in 100-byte shards */
    CHECK_OK(empo_safetensors_save_sharded(sub, "model", NT, names, tensors, 1, k, v, 100, &shards));
    CHECK(shards == 6);
    char p[400];
    snprintf(p, sizeof p, "%s/model-00001-of-00006.safetensors", sub);
    CHECK(exists(p));
    snprintf(p, sizeof p, "%s/model-00006-of-00006.safetensors", sub);
    CHECK(exists(p));
    snprintf(p, sizeof p, "%s/model.safetensors", sub);
    CHECK(!exists(p));
    char index[400];
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", sub);
    check_index_loads(index);
    size_t len;
    char *text = (char *)read_file(index, &len);
    CHECK(text && strncmp(text, "{\n  \"metadata\": {\n    \"total_size\": ", 36) == 0);
    CHECK(text && strstr(text, "\"weight_map\": {\n    \"bf16\": \"model-0000"));
    free(text);
    /* bigger shards: the 6-shard files go away */
    CHECK_OK(empo_safetensors_save_sharded(sub, "model", NT, names, tensors, 1, k, v, 250, &shards));
    CHECK(shards == 2);
    snprintf(p, sizeof p, "%s/model-00006-of-00006.safetensors", sub);
    CHECK(!exists(p));
    check_index_loads(index);
    /* one file when everything fits: index and shards removed */
    CHECK_OK(empo_safetensors_save_sharded(sub, "model", NT, names, tensors, 1, k, v, 0, &shards));
    CHECK(shards == 1 && !exists(index));
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", sub);
    CHECK(!exists(p));
    snprintf(p, sizeof p, "%s/model.safetensors", sub);
    CHECK(same_file(p, in_dir("all.safetensors")) == 0);      /* other metadata, so other bytes */
    empo_safetensors *f = NULL;
    CHECK_OK(empo_safetensors_open(&f, p));
    CHECK(f && empo_safetensors_count(f) == NT);
    empo_safetensors_close(f);
    CHECK_FAIL(empo_safetensors_save_sharded(sub, "a/b", 0, NULL, NULL, 0, NULL, NULL, 0, NULL), EMPO_E_ARG,
               "plain base name");
}

static void test_index_errors(void) {
    static const struct { const char *json, *needle; } cases[] = {
        {"{\"weight_map\": ", "not valid JSON"},
        {"[1]", "must be a JSON object"},
        {"{\"metadata\": {}}", "no \"weight_map\""},
        {"{\"weight_map\": {\"w\": 3}}", "tensor 'w': shard must be a file name"},
        {"{\"weight_map\": {\"w\": \"../x.safetensors\"}}", "tensor 'w': shard '../x.safetensors' is not a plain"},
        {"{\"weight_map\": {\"w\": \"..\"}}", "is not a plain file name"},
        {"{\"weight_map\": {\"w\": \"\"}}", "is not a plain file name"},
        {"{\"weight_map\": {\"w\": \"a.st\", \"w\": \"b.st\"}}", "tensor 'w' appears twice"},
    };
    const char *path = in_dir("bad.index.json");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].json, strlen(cases[i].json));
        empo_safetensors_index *ix = (empo_safetensors_index *)1;
        CHECK_FAIL(empo_safetensors_index_open(&ix, path), EMPO_E_IO, cases[i].needle);
        CHECK(ix == NULL && strstr(empo_last_error(), "bad.index.json"));
    }
    CHECK_FAIL(empo_safetensors_index_open(&(empo_safetensors_index *){NULL}, in_dir("none.json")), EMPO_E_IO,
               "cannot open");
    /* a valid one with two shards and no total_size */
    const char *ok = "{\"weight_map\": {\"b\": \"s2.safetensors\", \"a\": \"s1.safetensors\", \"c\": \"s1.safetensors\"}}";
    write_file(path, ok, strlen(ok));
    empo_safetensors_index *ix = NULL;
    CHECK_OK(empo_safetensors_index_open(&ix, path));
    CHECK(ix && empo_safetensors_index_shard_count(ix) == 2 && empo_safetensors_index_total_size(ix) == -1);
    CHECK(ix && strcmp(empo_safetensors_index_shard(ix, 0), in_dir("s1.safetensors")) == 0);
    CHECK(ix && strcmp(empo_safetensors_index_file_of(ix, "b"), in_dir("s2.safetensors")) == 0);
    CHECK(ix && empo_safetensors_index_find(ix, "c") == 2 && empo_safetensors_index_shard(ix, 2) == NULL);
    empo_safetensors_index_close(ix);
}

static void remove_dir(const char *d) {
    DIR *dd = opendir(d);
    struct dirent *de;
    char p[512];
    while (dd && (de = readdir(dd))) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        if (unlink(p) != 0) remove_dir(p);
    }
    if (dd) closedir(dd);
    rmdir(d);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/empo_st_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    int64_t live0 = empo_live_tensors();
    make_tensors();
    test_round_trip();
    test_zero_copy();
    test_conversions();
    test_foreign_and_unaligned();
    test_writer_errors();
    test_sharded();
    test_index_errors();
    for (int i = 0; i < NT; i++) empo_tensor_release(tensors[i]);
    CHECK(empo_live_tensors() == live0);
    remove_dir(dir);
    return check_finish("test_safetensors");
}
