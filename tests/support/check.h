/* check.h — a minimal harness for empo's C tests.
 * Each failed check prints file:line and what differed; check_finish()
 * prints "N checks, M failed" and returns the process exit code. */
#ifndef EMPO_CHECK_H
#define EMPO_CHECK_H
#include <stdint.h>
#include "empo/empo.h"

extern int check_count, check_failed;
void check_report(const char *file, int line, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int check_finish(const char *name);
/* max |a-b| / max(max|b|, tiny) over n values */
double check_rel_err(const float *a, const float *b, int64_t n);
/* a filled with deterministic values in [-1, 1) from seed (xorshift) */
void check_fill_uniform(float *a, int64_t n, uint64_t seed);
/* new contiguous f32 tensor of the given shape filled via check_fill_uniform */
empo_tensor *check_rand_tensor(int ndim, const int64_t *shape, uint64_t seed);

#define CHECK(cond) check_report(__FILE__, __LINE__, (cond), "%s", #cond)
#define CHECK_OK(expr) do { int st_ = (expr); \
    check_report(__FILE__, __LINE__, st_ == EMPO_OK, "%s -> %d: %s", #expr, st_, empo_last_error()); } while (0)
/* expr must fail with `code` and a message containing `needle` */
#define CHECK_FAIL(expr, code, needle) do { int st_ = (expr); \
    check_report(__FILE__, __LINE__, st_ == (code) && strstr(empo_last_error(), (needle)) != NULL, \
                 "%s -> %d (want %d), message \"%s\" (want \"%s\")", #expr, st_, (int)(code), \
                 empo_last_error(), (needle)); } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); \
    check_report(__FILE__, __LINE__, fabs(a_ - b_) <= (tol), "%s = %.9g vs %s = %.9g (tol %g)", #a, a_, #b, b_, (double)(tol)); } while (0)
#endif
