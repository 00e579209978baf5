/* fuzz_cluster_gen.c — drives fuzz_cluster.c's target without libFuzzer.
 *
 *     fuzz_cluster_gen [iterations [seed]]    generated inputs (a ctest)
 *     fuzz_cluster_gen --replay FILE...        inputs from files (a libFuzzer crash)
 *
 * Generated inputs are deterministic (xorshift from the seed): random bytes,
 * splices of LaTeX/answer fragments, or one fragment repeated up to 1,500
 * times, so the caps on nesting depth and answer length are hit. A broken
 * invariant aborts; the count line is printed at the end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_LEN = 1 << 16 };
static uint8_t buf[MAX_LEN];
static uint64_t state;

static uint64_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static const char *FRAGMENTS[] = {
    "\\boxed{", "\\fbox{", "}", "{", "\\frac", "\\dfrac{1}{2}", "\\sqrt", "\\sqrt[3]{", "^", "_", "\\left(",
    "\\right)", "(", ")", "[", "]", "\\{", "\\}", ",", "=", "<", "\\le", "x", "y", "2", "10", "3.5", "1e5",
    "-", "+", "*", "/", "%", "\\%", "!", "|", "\\pi", "\\infty", "\\text{", " cm", " or ", " and ", "$",
    "\\,", "\\!", "~", "\\cup", "\\pm", "\\sin", "\\log_", "\\binom", "e", "\\alpha", "A", "(B)", "yes",
    "\xc2\xb0", "\xe2\x88\x9a", "\xcf\x80", "\xff", "\n", "\x01", "answer is ", "\\\\", "1,000", " 1/2",
    "\\circ", "\\emptyset", "U", "...", "\\mathrm{", "\\overline{", ".", " ",
    /* matrices, long integers, inequalities and chains (the exact values and the relations) */
    "\\begin{pmatrix}", "\\end{pmatrix}", "\\begin{array}{cc}", "\\end{array}", "&", "\\\\",
    "123456789012345678901234567890", "99999999999999999999", "2^{64}", "10^{-30}", "1.5e300", "20!",
    "\\binom{2000}{1000}", "3000!", ">", "\\ge", "-x", "=", " = ", "0<", "<1", "30\\%", "0.3\\%", "\\sqrt6",
};

static size_t generate(void) {
    size_t len = 0, n_frag = sizeof FRAGMENTS / sizeof FRAGMENTS[0];
    int kind = (int)(next_random() % 8);
    if (kind == 0) {                        /* random bytes */
        len = next_random() % 200;
        for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)next_random();
    } else if (kind == 1) {                 /* one fragment, many times */
        const char *f = FRAGMENTS[next_random() % n_frag];
        size_t times = 1 + next_random() % 1500, fl = strlen(f);
        while (times-- && len + fl < 6000) { memcpy(buf + len, f, fl); len += fl; }
    } else {                                /* a splice of fragments */
        size_t pieces = 1 + next_random() % 40;
        while (pieces--) {
            const char *f = FRAGMENTS[next_random() % n_frag];
            size_t fl = strlen(f);
            if (len + fl >= 6000) break;
            memcpy(buf + len, f, fl);
            len += fl;
        }
    }
    return len;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--replay") == 0) {
        for (int a = 2; a < argc; a++) {
            FILE *fp = fopen(argv[a], "rb");
            if (!fp) { fprintf(stderr, "%s: cannot open\n", argv[a]); return 1; }
            size_t n = fread(buf, 1, MAX_LEN, fp);
            fclose(fp);
            LLVMFuzzerTestOneInput(buf, n);
        }
        printf("fuzz_cluster_gen: %d inputs replayed, 0 failed\n", argc - 2);
        return 0;
    }
    long iterations = argc > 1 ? atol(argv[1]) : 100000;
    state = argc > 2 ? strtoull(argv[2], NULL, 10) : 88172645463325252ull;
    if (state == 0) state = 1;
    for (long it = 0; it < iterations; it++) LLVMFuzzerTestOneInput(buf, generate());
    printf("fuzz_cluster_gen: %ld inputs, 0 failed\n", iterations);
    return 0;
}
