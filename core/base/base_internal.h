/* base_internal.h — what every layer of libempo may use from the base:
 * the failing-status helper, dtype conversion and the generator's state.
 * Not part of the public API (never included by empo/empo.h). Includes
 * nothing of libempo but the public headers. */
#ifndef EMPO_BASE_INTERNAL_H
#define EMPO_BASE_INTERNAL_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "empo/empo.h"

/* ---- errors (error.c) ---- */
/* Sets the thread's message (printf-style) and returns code, so that
 *   return empo_fail(EMPO_E_SHAPE, "add: %s vs %s", ...);  */
int empo_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Propagate a failing status. */
#define EMPO_TRY(expr) do { int empo_st_ = (expr); if (empo_st_ != EMPO_OK) return empo_st_; } while (0)

/* ---- dtypes (dtype.c) ---- */
int empo_is_float(int dtype);     /* f32, f64, bf16, f16 */
int empo_is_int(int dtype);       /* i32, i64, u8 */
#define EMPO_DT(d) (1u << (d))
#define EMPO_DT_FLOAT (EMPO_DT(EMPO_F32))
#define EMPO_DT_INDEX (EMPO_DT(EMPO_I32) | EMPO_DT(EMPO_I64))
/* dtype conversion of n contiguous elements */
void empo_convert(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t n);
float empo_bf16_to_f32(uint16_t h);
uint16_t empo_f32_to_bf16(float f);
float empo_f16_to_f32(uint16_t h);
uint16_t empo_f32_to_f16(float f);
double empo_load_element(const void *p, int dtype, int64_t i);
void empo_store_element(void *p, int dtype, int64_t i, double v);

/* ---- the generator (rng.c); its tensor draws are ops (ops/op_random.c) ---- */
struct empo_rng {
    uint64_t seed, stream, counter;   /* counter: 32-bit words consumed */
};
/* Words w0 .. w0+n-1 of r's stream into out (w0 need not be block-aligned). */
void empo_philox_words(const empo_rng *r, uint64_t w0, int64_t n, uint32_t *out);
/* [0, 1) with 24 random bits: every value is exactly representable in f32. */
static inline float empo_u24(uint32_t w) { return (float)(w >> 8) * 0x1p-24f; }
/* [0, 1) with 53 random bits from two words. */
static inline double empo_u53(uint32_t a, uint32_t b) {
    return (double)((((uint64_t)a << 32) | b) >> 11) * 0x1p-53;
}

#endif
