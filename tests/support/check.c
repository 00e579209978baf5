/* check.c — see check.h. */
#include "check.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

int check_count, check_failed;

void check_report(const char *file, int line, int ok, const char *fmt, ...) {
    check_count++;
    if (ok) return;
    check_failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: FAILED: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int check_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failed);
    return check_failed == 0 && check_count > 0 ? 0 : 1;
}

double check_rel_err(const float *a, const float *b, int64_t n) {
    double maxdiff = 0, maxref = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= maxdiff)) maxdiff = d;   /* NaN propagates */
        if (fabs(b[i]) > maxref) maxref = fabs(b[i]);
    }
    return maxdiff / maxref;
}

void check_fill_uniform(float *a, int64_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        a[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

empo_tensor *check_rand_tensor(int ndim, const int64_t *shape, uint64_t seed) {
    empo_tensor *t = NULL;
    if (empo_tensor_empty(&t, ndim, shape, EMPO_F32) != EMPO_OK) return NULL;
    check_fill_uniform((float *)empo_tensor_data(t), empo_tensor_numel(t), seed);
    return t;
}
