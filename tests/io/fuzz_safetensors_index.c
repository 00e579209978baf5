/* fuzz_safetensors_index.c — libFuzzer target for the index.json reader
 * (model.safetensors.index.json). See fuzz_safetensors.c. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "empo/empo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.index.json", 0);
        if (fd < 0) return 0;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) return 0;
    empo_safetensors_index *ix = NULL;
    if (empo_safetensors_index_open(&ix, path) != EMPO_OK) return 0;
    size_t total = 0;
    for (int64_t i = 0; i < empo_safetensors_index_count(ix); i++) {
        const char *name = empo_safetensors_index_name(ix, i);
        const char *file = empo_safetensors_index_file_of(ix, name);
        if (!file || empo_safetensors_index_find(ix, name) != i) __builtin_trap();
        total += strlen(file);
    }
    for (int64_t s = 0; s < empo_safetensors_index_shard_count(ix); s++)
        total += strlen(empo_safetensors_index_shard(ix, s));
    empo_safetensors_index_close(ix);
    return total == (size_t)-1;
}
