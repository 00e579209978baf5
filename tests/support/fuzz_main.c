/* fuzz_main.c — runs a fuzz target over files and directories of inputs
 * without libFuzzer, so that every build replays the seed corpora (ctest
 * fuzz/...) and a crash found by the fuzzer can be replayed under gdb:
 *     build/tests/fuzz/fuzz_safetensors_replay crash-0123abcd */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { fprintf(stderr, "%s: cannot open\n", path); return 1; }
    uint8_t *buf = malloc(1 << 24);
    size_t n = fread(buf, 1, 1 << 24, fp);
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int inputs = 0, bad = 0;
    for (int a = 1; a < argc; a++) {
        struct stat sb;
        if (stat(argv[a], &sb) != 0) { fprintf(stderr, "%s: not found\n", argv[a]); return 1; }
        if (!S_ISDIR(sb.st_mode)) { bad += run_file(argv[a]); inputs++; continue; }
        DIR *d = opendir(argv[a]);
        struct dirent *de;
        char p[4096];
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", argv[a], de->d_name);
            bad += run_file(p);
            inputs++;
        }
        if (d) closedir(d);
    }
    printf("%d inputs replayed\n", inputs);
    return bad || inputs == 0;
}
