/* test_tensor.c — tensor core: creation, views and their geometry, copies,
 * dtype conversion, element access, the caching allocator, and errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "autograd/autograd_internal.h"

static double at(empo_tensor *t, int64_t i0, int64_t i1) {
    int64_t idx[2] = {i0, i1};
    double v = NAN;
    empo_tensor_get(t, idx, &v);
    return v;
}

static void test_views(void) {
    int64_t s[2] = {3, 4};
    empo_tensor *a = NULL, *t = NULL, *n = NULL, *v = NULL, *e = NULL, *c = NULL, *sl = NULL, *sel = NULL;
    CHECK_OK(empo_tensor_arange(&a, 12, EMPO_F32));
    CHECK_OK(empo_view(&v, a, 2, s));
    CHECK(at(v, 2, 3) == 11);
    CHECK_OK(empo_transpose(&t, v, 0, 1));
    CHECK(empo_tensor_size(t, 0) == 4 && empo_tensor_size(t, 1) == 3 && !empo_tensor_is_contiguous(t));
    CHECK(at(t, 3, 1) == 7);
    CHECK(empo_tensor_shares_storage(t, a));
    CHECK_OK(empo_narrow(&n, t, 0, 1, 2));   /* rows 1..2 of the transpose */
    CHECK(at(n, 0, 2) == 9 && at(n, 1, 0) == 2);
    CHECK_OK(empo_contiguous(&c, n));
    CHECK(empo_tensor_is_contiguous(c) && !empo_tensor_shares_storage(c, a) && at(c, 1, 2) == 10);
    CHECK_OK(empo_slice(&sl, v, 1, 0, 4, 2));  /* columns 0 and 2 */
    CHECK(empo_tensor_size(sl, 1) == 2 && at(sl, 2, 1) == 10);
    CHECK_OK(empo_select(&sel, v, 0, -1));
    CHECK(empo_tensor_ndim(sel) == 1 && empo_tensor_size(sel, 0) == 4);
    int64_t es[3] = {2, 3, 4};
    CHECK_OK(empo_expand(&e, v, 3, es));
    CHECK(empo_tensor_stride(e, 0) == 0);
    double all[24];
    CHECK_OK(empo_tensor_read_f64(e, all));
    CHECK(all[12 + 5] == 5);
    /* a view through a transpose needs a copy: view fails, reshape copies */
    empo_tensor *r = NULL;
    int64_t flat = 12;
    CHECK_FAIL(empo_view(&r, t, 1, &flat), EMPO_E_SHAPE, "reshape");
    CHECK_OK(empo_reshape(&r, t, 1, &flat));
    double rv[12];
    CHECK_OK(empo_tensor_read_f64(r, rv));
    CHECK(rv[1] == 4 && rv[3] == 1);
    /* -1 inference and bad reshape */
    empo_tensor *q = NULL;
    int64_t inf[2] = {-1, 6}, bad[2] = {5, -1};
    CHECK_OK(empo_view(&q, a, 2, inf));
    CHECK(empo_tensor_size(q, 0) == 2);
    empo_tensor_release(q);
    CHECK_FAIL(empo_view(&q, a, 2, bad), EMPO_E_SHAPE, "cannot reshape [12] f32");
    /* merging dims of a narrowed (non-contiguous but chunked) tensor works as a view */
    int64_t s3[3] = {2, 3, 4}, m[2] = {2, 8};
    empo_tensor *a3 = NULL, *n3 = NULL, *w = NULL;
    empo_tensor *b = NULL;
    CHECK_OK(empo_tensor_arange(&b, 24, EMPO_F32));
    CHECK_OK(empo_view(&a3, b, 3, s3));
    CHECK_OK(empo_narrow(&n3, a3, 1, 1, 2));
    CHECK_OK(empo_view(&w, n3, 2, m));   /* dims 1-2 of the narrowed view are still one run */
    CHECK(at(w, 1, 0) == 16 && empo_tensor_stride(w, 0) == 12);
    empo_tensor_release(w);
    w = NULL;
    int64_t m3[1] = {16};
    CHECK_FAIL(empo_view(&w, n3, 1, m3), EMPO_E_SHAPE, "use reshape");
    empo_tensor *objs[] = {a, t, n, v, e, c, sl, sel, r, b, a3, n3, w};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

static void test_view_errors(void) {
    int64_t s[2] = {3, 4};
    empo_tensor *a = NULL, *o = NULL;
    CHECK_OK(empo_tensor_zeros(&a, 2, s, EMPO_F32));
    CHECK_FAIL(empo_transpose(&o, a, 0, 2), EMPO_E_INDEX, "transpose: dim 2 out of range for a 2-d tensor");
    CHECK_FAIL(empo_narrow(&o, a, 1, 2, 3), EMPO_E_INDEX, "narrow: range [2, 5) outside dim 1 of [3 x 4] f32");
    CHECK_FAIL(empo_select(&o, a, 0, 3), EMPO_E_INDEX, "select: index 3 out of range");
    int64_t es[2] = {3, 5};
    CHECK_FAIL(empo_expand(&o, a, 2, es), EMPO_E_SHAPE, "expand: cannot expand [3 x 4] f32 to [3 x 5]");
    CHECK_FAIL(empo_slice(&o, a, 0, 0, 2, 0), EMPO_E_ARG, "step 0 must be >= 1");
    int dims[2] = {0, 0};
    CHECK_FAIL(empo_permute(&o, a, 2, dims), EMPO_E_ARG, "permute: dim 0 repeated");
    int64_t idx[2] = {3, 0};
    double v;
    CHECK_FAIL(empo_tensor_get(a, idx, &v), EMPO_E_INDEX, "get: index 3 out of range for dim 0 of [3 x 4] f32");
    CHECK_FAIL(empo_tensor_item(a, &v), EMPO_E_SHAPE, "item: tensor [3 x 4] f32 has 12 elements");
    int64_t neg[1] = {-2};
    CHECK_FAIL(empo_tensor_zeros(&o, 1, neg, EMPO_F32), EMPO_E_ARG, "negative");
    CHECK_FAIL(empo_tensor_zeros(&o, 1, s, 42), EMPO_E_DTYPE, "unknown dtype 42");
    empo_tensor_release(a);
}

static void test_copy_and_dtypes(void) {
    int64_t s[2] = {2, 3}, s1 = 3;
    float vals[6] = {1.5f, -2.25f, 3.0f, 65504.0f, 1e-8f, -0.0f};
    empo_tensor *a = NULL, *h = NULL, *f = NULL, *bf = NULL, *row = NULL, *i64 = NULL;
    CHECK_OK(empo_tensor_from_buffer(&a, 2, s, EMPO_F32, vals, EMPO_F32));
    CHECK_OK(empo_to_dtype(&h, a, EMPO_F16));
    CHECK_OK(empo_to_dtype(&f, h, EMPO_F32));
    double back[6];
    CHECK_OK(empo_tensor_read_f64(f, back));
    CHECK(back[0] == 1.5 && back[1] == -2.25 && back[3] == 65504.0 && back[4] == 0.0);
    CHECK(empo_f32_to_bf16(1.0f) == 0x3f80 && empo_bf16_to_f32(0x4049) == 3.140625f);
    CHECK(empo_f32_to_bf16(1.00390625f) == 0x3f80);            /* ties to even */
    CHECK(empo_f32_to_f16(1.0f) == 0x3c00 && empo_f16_to_f32(0x7bff) == 65504.0f);
    CHECK_OK(empo_to_dtype(&bf, a, EMPO_BF16));
    CHECK(empo_tensor_dtype(bf) == EMPO_BF16);
    /* copy_ broadcasts a row into every row */
    float r[3] = {7, 8, 9};
    CHECK_OK(empo_tensor_from_buffer(&row, 1, &s1, EMPO_F32, r, EMPO_F32));
    CHECK_OK(empo_tensor_copy_(a, row));
    CHECK_OK(empo_tensor_read_f64(a, back));
    CHECK(back[3] == 7 && back[5] == 9);
    CHECK_FAIL(empo_tensor_copy_(row, a), EMPO_E_SHAPE, "copy_: source [2 x 3] f32 does not broadcast");
    CHECK_OK(empo_to_dtype(&i64, a, EMPO_I64));
    CHECK(empo_index_at(i64, 4) == 8);
    empo_tensor *objs[] = {a, h, f, bf, row, i64};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

static void test_allocator_reuse(void) {
    const char *limit = getenv("EMPO_CACHE_LIMIT_MB");
    if (limit && atoll(limit) == 0) return;   /* sanitizer runs switch the cache off */
    int64_t s = 1000;
    empo_mem_empty_cache();
    int64_t live0 = empo_mem_live_bytes();
    empo_tensor *t = NULL;
    CHECK_OK(empo_tensor_empty(&t, 1, &s, EMPO_F32));
    void *first = empo_tensor_data(t);
    CHECK(empo_mem_live_bytes() - live0 >= 4000);
    empo_tensor_release(t);
    CHECK(empo_mem_cached_bytes() >= 4000);
    CHECK_OK(empo_tensor_empty(&t, 1, &s, EMPO_F32));
    CHECK(empo_tensor_data(t) == first);   /* the same block comes back */
    empo_tensor_release(t);
    CHECK(empo_mem_live_bytes() == live0);
    empo_mem_empty_cache();
    CHECK(empo_mem_cached_bytes() == 0);
}

/* With live + cached bounded, a request the cache cannot serve gives the
 * parked blocks of other sizes back before it takes fresh memory. */
static void test_allocator_total_limit(void) {
    const char *limit = getenv("EMPO_CACHE_LIMIT_MB");
    if (limit && atoll(limit) == 0) return;
    const int64_t mb = 1 << 20;
    empo_mem_empty_cache();
    const int64_t live0 = empo_mem_live_bytes();
    int64_t small = 3 * mb / 8, big = 5 * mb / 8;   /* f32: 1.5 MB, 2.5 MB (more than a class apart) */
    empo_tensor *a = NULL, *b = NULL;
    CHECK(empo_mem_set_total_limit(live0 + 3 * mb) == 0);
    CHECK_OK(empo_tensor_empty(&a, 1, &small, EMPO_F32));
    empo_tensor_release(a);
    CHECK(empo_mem_cached_bytes() >= 3 * mb / 2);        /* parked: it fits the bound */
    CHECK_OK(empo_tensor_empty(&a, 1, &small, EMPO_F32));  /* served from the cache */
    CHECK(empo_mem_cached_bytes() == 0);
    empo_tensor_release(a);
    CHECK_OK(empo_tensor_empty(&b, 1, &big, EMPO_F32));     /* a miss past the bound */
    CHECK(empo_mem_cached_bytes() == 0);
    CHECK(empo_mem_live_bytes() - live0 >= 5 * mb / 2);   /* live bytes are never refused */
    empo_tensor_release(b);
    CHECK(empo_mem_set_total_limit(0) == live0 + 3 * mb);
    empo_mem_empty_cache();
    CHECK_OK(empo_tensor_empty(&a, 1, &small, EMPO_F32));
    empo_tensor_release(a);
    CHECK_OK(empo_tensor_empty(&b, 1, &big, EMPO_F32));     /* no bound: both stay parked */
    empo_tensor_release(b);
    CHECK(empo_mem_cached_bytes() >= 4 * mb);
    empo_mem_empty_cache();
}

int main(void) {
    test_views();
    test_view_errors();
    test_copy_and_dtypes();
    test_allocator_reuse();
    test_allocator_total_limit();
    CHECK(empo_live_tensors() == 0);
    return check_finish("test_tensor");
}
