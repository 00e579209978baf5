/* test_safetensors_corrupt.c — hostile and broken safetensors files: each
 * must fail to open with EMPO_E_IO and a message naming the file (and the
 * tensor, when one is at fault), never crash or read out of bounds (run it
 * under tests/run.sh --sanitize to have ASan watch). Cases: a file
 * truncated at every byte, header sizes too large, malformed JSON, unknown
 * dtypes, shape/offset mismatches, overlapping and out-of-bounds ranges,
 * duplicate names, negative, fractional and huge dims, bad metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

static char dir[64], path[128];

static void write_raw(const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    fwrite(p, 1, n, fp);
    fclose(fp);
}

/* 8-byte length (hl, or the real length when hl is 0) + header + data */
static size_t build(unsigned char *out, const char *header, uint64_t hl, const void *data, size_t n) {
    size_t real = strlen(header);
    if (!hl) hl = real;
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(hl >> (8 * i));
    memcpy(out + 8, header, real);
    memcpy(out + 8 + real, data, n);
    return 8 + real + n;
}

/* opening path must fail with E_IO, naming the file and containing needle */
static void expect_fail(int line, const char *needle) {
    empo_safetensors *f = (empo_safetensors *)1;
    int st = empo_safetensors_open(&f, path);
    const char *msg = empo_last_error();
    check_report(__FILE__, line, st == EMPO_E_IO && f == NULL && strstr(msg, path) && strstr(msg, needle),
                 "open -> %d, \"%s\" (want E_IO naming the file and \"%s\")", st, msg, needle);
    if (st == EMPO_OK) empo_safetensors_close(f);
}

static const char *good =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
    "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[16,19]}}";

static void test_truncation(void) {
    unsigned char file[512], data[19];
    for (int i = 0; i < 19; i++) data[i] = (unsigned char)i;
    size_t n = build(file, good, 0, data, 19), hl = strlen(good);
    write_raw(file, n);
    empo_safetensors *f = NULL;
    CHECK_OK(empo_safetensors_open(&f, path));     /* the intact file is fine */
    empo_safetensors_close(f);
    int bad = 0;
    for (size_t cut = 0; cut < n; cut++) {
        write_raw(file, cut);
        f = (empo_safetensors *)1;
        int st = empo_safetensors_open(&f, path);
        const char *msg = empo_last_error();
        int ok = st == EMPO_E_IO && f == NULL && strstr(msg, path);
        /* cut inside the data area: the tensor whose bytes are missing is named */
        if (cut >= 8 + hl) ok = ok && strstr(msg, "tensor 'mask'") && strstr(msg, "truncated");
        else if (cut >= 8) ok = ok && strstr(msg, "header size");
        else ok = ok && strstr(msg, "too short");
        if (!ok) {
            bad++;
            fprintf(stderr, "cut at %zu: %d %s\n", cut, st, msg);
        }
    }
    check_report(__FILE__, __LINE__, bad == 0, "%d of %zu cut points misreported", bad, n);
}

static void test_header_size(void) {
    unsigned char file[512];
    size_t n = build(file, good, 0xffffffffffffffffull, "", 0);
    write_raw(file, n);
    expect_fail(__LINE__, "over the limit");
    n = build(file, good, 100000001, "", 0);
    write_raw(file, n);
    expect_fail(__LINE__, "header size 100000001 is over the limit");
    n = build(file, good, strlen(good) + 1, "", 0);     /* one byte past the end */
    write_raw(file, n);
    expect_fail(__LINE__, "runs past the end of the file");
    n = build(file, " ", 1, "", 0);
    write_raw(file, n);
    expect_fail(__LINE__, "not valid JSON");
    n = build(file, "", 0, "", 0);                       /* header size 0 */
    memset(file, 0, 8);
    write_raw(file, 8);
    expect_fail(__LINE__, "not valid JSON");
}

static void test_bad_headers(void) {
    static const struct { const char *header, *needle; } cases[] = {
        {"{", "not valid JSON"},
        {"{\"w\":{\"dtype\":\"F32\",}}", "not valid JSON"},
        {"[]", "must be a JSON object, got an array"},
        {"\"w\"", "must be a JSON object"},
        {"{} x", "bytes after its JSON object"},
        {"{}\0   ", "bytes after"},
        {"{\"w\":1}", "tensor 'w': entry must be an object"},
        {"{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'w': \"dtype\" must be a string"},
        {"{\"w\":{\"dtype\":\"F4X\",\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'w': unknown dtype 'F4X'"},
        {"{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'w': unknown dtype 'f32'"},
        {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "tensor 'w': \"shape\" must be an array"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}",
         "tensor 'w': data_offsets [0, 12] hold 12 bytes but shape [4] F32 needs 16"},
        {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,4]}}", "shape [] BF16 needs 2"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "tensor 'w': shape[0] = -1 is not a size"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "shape[0] = 1.5 is not a size"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,4]}}", "shape[0] is a string"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", "is not a size"},
        {"{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}",
         "tensor 'w': shape has more than 2^63 elements"},
        {"{\"w\":{\"dtype\":\"F64\",\"shape\":[1073741824,1073741824,4],\"data_offsets\":[0,8]}}",
         "hold 8 bytes but shape [1073741824 x 1073741824 x 4] F64 needs more than 2^63"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "tensor 'w': \"data_offsets\" must be [begin, end]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "\"data_offsets\" must be"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", "\"data_offsets\" must be"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0}}}", "\"data_offsets\" must be"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", "tensor 'w': data_offsets [8, 4] end before"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "tensor 'w': data_offsets [8, 16] run past"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]}}", "tensor 'w': data_offsets [9, 9] run past"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}",
         "tensor 'b': data_offsets [4, 6] overlap those of tensor 'a' [0, 8]"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
         "\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}",
         "overlap those of tensor 'a'"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", "tensor 'b': data_offsets [0, 2] overlap"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", "tensor 'a': appears twice"},
        {"{\"__metadata__\":[1]}", "__metadata__ must be an object of strings"},
        {"{\"__metadata__\":{\"format\":1}}", "__metadata__ 'format' must be a string, got a number"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", "__metadata__ key 'k' appears twice"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", "__metadata__ appears twice"},
    };
    unsigned char file[1024], data[8] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* the {}\0 case carries its NUL: header length covers the literal */
        size_t hl = strlen(cases[i].header);
        if (strcmp(cases[i].needle, "bytes after") == 0) hl = 6;
        size_t n = build(file, cases[i].header, hl, "", 0);
        if (hl != strlen(cases[i].header)) {
            memcpy(file + 8, cases[i].header, hl);
            n = 8 + hl;
        }
        memcpy(file + n, data, 8);
        write_raw(file, n + 8);
        expect_fail(__LINE__ * 1000 + (int)i, cases[i].needle);
    }
}

static void test_valid_edge_cases(void) {
    /* these are fine: an empty tensor with a huge dim beside a zero, ranges
     * touching, a gap between tensors, unknown keys in an entry */
    const char *h = "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,9007199254740992],\"data_offsets\":[4,4]},"
                    "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4],\"extra\":[1]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}";
    unsigned char file[512], data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    write_raw(file, build(file, h, 0, data, 8));
    empo_safetensors *f = NULL;
    CHECK_OK(empo_safetensors_open(&f, path));
    empo_tensor *t = NULL;
    if (f) {
        CHECK_OK(empo_safetensors_get(&t, f, "e", -1));
        CHECK(t && empo_tensor_numel(t) == 0 && empo_tensor_size(t, 1) == 9007199254740992LL);
        empo_tensor_release(t);
        CHECK_OK(empo_safetensors_get(&t, f, "b", -1));
        CHECK(t && ((uint8_t *)empo_tensor_data(t))[1] == 8);
        empo_tensor_release(t);
    }
    empo_safetensors_close(f);
}

static void test_not_a_file(void) {
    char saved[128];
    memcpy(saved, path, sizeof saved);
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    expect_fail(__LINE__, "cannot open: No such file");
    snprintf(path, sizeof path, "%s", dir);
    expect_fail(__LINE__, "not a regular file");
    memcpy(path, saved, sizeof saved);
    write_raw("abcde", 5);
    expect_fail(__LINE__, "file is 5 bytes, too short");
    write_raw("", 0);
    expect_fail(__LINE__, "file is 0 bytes");
    CHECK_FAIL(empo_safetensors_open(NULL, path), EMPO_E_ARG, "must not be NULL");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/empo_stc_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int64_t live0 = empo_live_tensors();
    test_truncation();
    test_header_size();
    test_bad_headers();
    test_valid_edge_cases();
    test_not_a_file();
    CHECK(empo_live_tensors() == live0);
    unlink(path);
    rmdir(dir);
    return check_finish("test_safetensors_corrupt");
}
