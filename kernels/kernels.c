/* kernels.c — which kernel table is in use (kernels/kernels.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kernels.h"

/* NULL: not yet read from the environment */
static const empo_kernel_table *active;

/* the AVX-512 build uses F, CD, BW, VL and DQ (x86-64-v4) */
static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

const empo_kernel_table *empo_kernels_best(void) {
    return cpu_has_avx512() ? &empo_kernels_avx512 : &empo_kernels_avx2;
}

const empo_kernel_table *empo_kernels_named(const char *name) {
    if (!name) return NULL;
    if (strcmp(name, "avx2") == 0) return &empo_kernels_avx2;
    if (strcmp(name, "ref") == 0) return &empo_kernels_ref;
    if (strcmp(name, "avx512") == 0) return cpu_has_avx512() ? &empo_kernels_avx512 : NULL;
    return NULL;
}

static const empo_kernel_table *from_environment(void) {
    const char *isa = getenv("EMPO_ISA");
    if (isa && *isa) {
        const empo_kernel_table *k = empo_kernels_named(isa);
        if (k) return k;
        fprintf(stderr, "empo: EMPO_ISA=%s: %s; using the %s kernels\n", isa,
                strcmp(isa, "avx512") == 0 ? "this CPU has no AVX-512 (F, CD, BW, VL and DQ)"
                                           : "not a kernel table (avx2, avx512, ref)",
                empo_kernels_best()->name);
        return empo_kernels_best();
    }
    /* the old switch: one release more, saying the new one */
    const char *e = getenv("EMPO_REFERENCE");
    if (e && *e && strcmp(e, "0") != 0) {
        fprintf(stderr, "empo: EMPO_REFERENCE=1 is now EMPO_ISA=ref (the old name goes in the next release)\n");
        return &empo_kernels_ref;
    }
    return empo_kernels_best();
}

/* the environment's choice, read once */
static const empo_kernel_table *chosen(void) {
    static const empo_kernel_table *k;
    if (!k) k = from_environment();
    return k;
}

const empo_kernel_table *empo_kernels(void) {
    if (!active) active = chosen();
    return active;
}

const empo_kernel_table *empo_kernels_fast(void) {
    return chosen() == &empo_kernels_ref ? empo_kernels_best() : chosen();
}

void empo_kernels_use(const empo_kernel_table *k) { active = k; }

