/* runtime.c — version, thread count, the public switches of the kernel table. */
#include <omp.h>
#include <string.h>
#include "base/base_internal.h"
#include "kernels/kernels.h"

#ifndef EMPO_VERSION_STRING
#define EMPO_VERSION_STRING "0.0.0"
#endif

const char *empo_version(void) { return EMPO_VERSION_STRING; }
int empo_abi_version(void) { return EMPO_ABI_VERSION; }

void empo_set_num_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
}

int empo_get_num_threads(void) { return omp_get_max_threads(); }

/* The kernel table is chosen in kernels/kernels.c; these are its public
 * switches (EMPO_ISA does the same from the environment: the one switch). */
int empo_set_reference_kernels(int on) {
    int prev = empo_kernels() == &empo_kernels_ref;
    empo_kernels_use(on ? &empo_kernels_ref : empo_kernels_fast());
    return prev;
}

int empo_set_kernel_table(const char *name) {
    const empo_kernel_table *k = empo_kernels_named(name);
    if (!k) {
        if (name && strcmp(name, "avx512") == 0)
            return empo_fail(EMPO_E_ARG, "kernel table avx512: this CPU has no AVX-512 (F, CD, BW, VL and DQ); it runs %s",
                             empo_kernels_best()->name);
        return empo_fail(EMPO_E_ARG, "kernel table %s: unknown (avx2, avx512, ref)", name ? name : "(null)");
    }
    empo_kernels_use(k);
    return EMPO_OK;
}

const char *empo_best_kernel_table(void) { return empo_kernels_best()->name; }

int empo_reference_kernels(void) { return empo_kernels() == &empo_kernels_ref; }

const char *empo_kernel_table_name(void) { return empo_kernels()->name; }
