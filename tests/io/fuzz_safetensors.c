/* fuzz_safetensors.c — libFuzzer target for the safetensors reader.
 *
 * Each input is written to a memory file and opened as a safetensors file;
 * when it opens, every tensor is inspected and read (zero-copy and
 * converted to f32) and every byte touched, so that ASan sees any read
 * outside the mapping. Build and run: docs/safetensors.md ("Fuzzing").
 * fuzz_main.c replays the seed corpus without libFuzzer (a ctest). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include "empo/empo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a memfd holding the input, reopened by path as a real file would be */
static const char *input_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.safetensors", 0);
        if (fd < 0) return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) return NULL;
    return path;
}

static volatile uint8_t sink;

static void touch(empo_tensor *t) {
    const uint8_t *p = empo_tensor_data(t);
    int64_t n = empo_tensor_numel(t) * empo_dtype_size(empo_tensor_dtype(t));
    uint8_t x = 0;
    for (int64_t i = 0; i < n; i++) x ^= p[i];
    sink = x;
    empo_tensor_release(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = input_file(data, size);
    empo_safetensors *f = NULL;
    if (!path || empo_safetensors_open(&f, path) != EMPO_OK) return 0;
    for (int64_t i = 0; i < empo_safetensors_count(f); i++) {
        const char *name = empo_safetensors_name(f, i);
        int dtype, ndim;
        int64_t shape[EMPO_MAX_DIMS], begin, end;
        empo_tensor *t = NULL;
        if (empo_safetensors_find(f, name) != i) __builtin_trap();      /* names are sorted and distinct */
        empo_safetensors_range(f, name, &begin, &end);
        if (empo_safetensors_info(f, name, &dtype, &ndim, shape) != EMPO_OK) continue;
        if (empo_safetensors_get(&t, f, name, -1) == EMPO_OK) touch(t);
        if (empo_safetensors_get(&t, f, name, EMPO_F32) == EMPO_OK) touch(t);
    }
    for (int64_t i = 0; i < empo_safetensors_metadata_count(f); i++)
        sink ^= (uint8_t)empo_safetensors_metadata(f, empo_safetensors_metadata_key(f, i))[0];
    empo_safetensors_close(f);
    return 0;
}
