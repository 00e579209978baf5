/* device_harness.h — what the C tests of a device table share: the table
 * under test (the emulation's in the _emulated build, the real one on a
 * GPU), the reference, host <-> device copies that stop the test with the
 * device's message, random inputs, and the comparison against the
 * reference (||got - want|| / ||want|| <= 1e-5 for f32; NaN must meet NaN,
 * an infinity the same infinity). A header of static functions: each test
 * program is one .c file. */
#ifndef EMPO_TESTS_CUDA_DEVICE_HARNESS_H
#define EMPO_TESTS_CUDA_DEVICE_HARNESS_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/kernels.h"

#ifdef EMPO_TEST_EMULATED
extern const empo_kernel_table empo_kernels_cuda_emulated;
#define TABLE empo_kernels_cuda_emulated
#else
extern const empo_kernel_table empo_kernels_cuda;
#define TABLE empo_kernels_cuda
#endif

static const empo_kernel_table *K = &TABLE;
static const empo_kernel_table *R = &empo_kernels_ref;
static const double TOL = 1e-5;

/* ---- host <-> device ---- */
static inline void *up(const void *host, size_t bytes) {
    void *d = K->device->alloc(bytes ? bytes : 1);
    if (!d || K->device->upload(d, host, bytes)) {
        fprintf(stderr, "device: %s\n", K->device->last_error());
        exit(1);
    }
    return d;
}
static inline void down(void *host, const void *dev, size_t bytes) {
    if (K->device->download(host, dev, bytes)) {
        fprintf(stderr, "device: %s\n", K->device->last_error());
        exit(1);
    }
}
static inline void *dalloc(size_t bytes) {
    void *d = K->device->alloc(bytes ? bytes : 1);
    if (!d) {
        fprintf(stderr, "device: %s\n", K->device->last_error());
        exit(1);
    }
    return d;
}
static inline void drop(void *dev) { K->device->release(dev); }
#define ALLOCF(n) ((float *)dalloc(sizeof(float) * (size_t)(n)))
#define UPF(p, n) ((float *)up((p), sizeof(float) * (size_t)(n)))
#define UPI(p, n) ((int64_t *)up((p), sizeof(int64_t) * (size_t)(n)))

static inline float *randoms(int64_t n, uint64_t seed, float lo, float hi) {
    float *a = malloc(sizeof(float) * (size_t)(n ? n : 1));
    check_fill_uniform(a, n, seed);
    for (int64_t i = 0; i < n; i++) a[i] = lo + (a[i] + 1.0f) * 0.5f * (hi - lo);
    return a;
}

/* ||got - want|| / ||want|| over the finite wants; *bad: the first
 * element where a NaN or infinity of want is not met the same, or -1 */
static inline double rel_error(const float *got, const float *want, int64_t n, int64_t *bad) {
    double num = 0, den = 0;
    *bad = -1;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i]) || isinf(want[i])) {
            if (!(isnan(want[i]) ? isnan(got[i]) : got[i] == want[i]) && *bad < 0) *bad = i;
            continue;
        }
        num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        den += (double)want[i] * want[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* within tol by rel_error; NaN must meet NaN, inf the same inf */
static inline void compare_within(const char *what, const float *got, const float *want, int64_t n, double tol) {
    int64_t bad;
    const double err = rel_error(got, want, n, &bad);
    check_report(__FILE__, __LINE__, bad < 0 && err <= tol,
                 "%s: relative error %.3g (tolerance %g)%s (element %lld: %g, want %g)", what, err, tol,
                 bad >= 0 ? ", a NaN or inf differs" : "", (long long)(bad >= 0 ? bad : 0),
                 bad >= 0 ? got[bad] : 0.0, bad >= 0 ? want[bad] : 0.0);
}
static inline void compare(const char *what, const float *got, const float *want, int64_t n) {
    compare_within(what, got, want, n, TOL);
}

/* the n floats at dev come down and are compared with want */
static inline void expect(const char *what, const float *dev, const float *want, int64_t n) {
    float *got = malloc(sizeof(float) * (size_t)(n ? n : 1));
    down(got, dev, sizeof(float) * (size_t)n);
    compare(what, got, want, n);
    free(got);
}

/* exit 77 ("skipped") without a device; else says which table runs where */
static inline void need_device(void) {
    if (K->device->count() < 1) {
        printf("SKIP: no CUDA device (%s)\n", K->device->name);
        exit(77);
    }
    char name[256] = "";
    K->device->describe(0, name, sizeof name);
    printf("  table %s on %s\n", K->name, name);
}
#endif
