/* kernels.c — which kernel table is in use (kernels/kernels.h). */
#include <stdlib.h>
#include <string.h>
#include "kernels/kernels.h"

/* NULL: not yet read from the environment */
static const empo_kernel_table *active;

const empo_kernel_table *empo_kernels(void) {
    if (!active) {
        const char *e = getenv("EMPO_REFERENCE");
        active = (e && *e && strcmp(e, "0") != 0) ? &empo_kernels_ref : &empo_kernels_cpu;
    }
    return active;
}

void empo_kernels_use(const empo_kernel_table *k) { active = k; }
