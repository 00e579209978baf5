/* sample.c — the sampler's per-token math (core/include/empo/sample.h): checks of
 * the settings, the per-token uniforms, and the sample and token-statistics
 * ops (validation, then the sample_rows / sample_stats slot of the table
 * where the logits live: kernels/ref/sample_rows.c on the CPU,
 * kernels/cuda/sample.cu on a GPU). The KV-cache rows are in kv_cache.c. */
#include <math.h>
#include "autograd/autograd_internal.h"
#include "kernels/kernels.h"

int empo_sampling_check(const empo_sampling *s) {
    if (!s) return empo_fail(EMPO_E_ARG, "sample: NULL settings");
    if (!(s->temperature >= 0.0) || isinf(s->temperature))
        return empo_fail(EMPO_E_ARG, "sample: temperature must be a finite number >= 0 (0 = greedy), got %g",
                         s->temperature);
    if (s->top_k < 0)
        return empo_fail(EMPO_E_ARG, "sample: top_k must be >= 0 (0 = off), got %lld", (long long)s->top_k);
    if (!(s->top_p > 0.0 && s->top_p <= 1.0))
        return empo_fail(EMPO_E_ARG, "sample: top_p must be in (0, 1] (1 = off), got %g", s->top_p);
    if (!(s->min_p >= 0.0 && s->min_p <= 1.0))
        return empo_fail(EMPO_E_ARG, "sample: min_p must be in [0, 1] (0 = off), got %g", s->min_p);
    if (s->vocab < 0)
        return empo_fail(EMPO_E_ARG, "sample: vocab must be >= 0 (0 = every id), got %lld", (long long)s->vocab);
    return EMPO_OK;
}

/* The ids a row of V logits may draw: the first vocab (0 = all). */
static int64_t drawable(int64_t V, int64_t vocab) { return vocab > 0 && vocab < V ? vocab : V; }

void empo_sample_uniforms(double *u, int64_t n, uint64_t seed, const uint64_t *stream,
                          const uint64_t *counter) {
    uint32_t w[4];
    for (int64_t i = 0; i < n; i++) {
        empo_philox4x32(seed, stream[i], counter[i], w);
        u[i] = (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) * 0x1p-53;
    }
}

/* ---- the op ---- */

static int check_out(const char *op, const char *arg, const empo_tensor *t, int dtype, int64_t N,
                     const empo_tensor *logits) {
    EMPO_TRY(empo_check_input(op, arg, t, EMPO_DT(dtype), "logits", logits));
    if (empo_tensor_numel(t) != N || !empo_tensor_is_contiguous(t))
        return empo_fail(EMPO_E_SHAPE, "%s: %s %s must be contiguous with %lld elements (one per row of logits)", op,
                         arg, empo_desc(t), (long long)N);
    return EMPO_OK;
}

/* a table's failure: out of memory on the CPU, the device's own reason on a device */
static int kernel_failed(const char *op, const empo_kernel_table *K) {
    if (K->device) return empo_fail(EMPO_E_DEVICE, "%s: the %s device failed: %s", op, K->name, K->device->last_error());
    return empo_fail(EMPO_E_NOMEM, "%s: out of memory", op);
}

int empo_sample(empo_tensor *ids, empo_tensor *logp, empo_tensor *ref_logp, empo_tensor *logits,
                const empo_sampling *s, const double *u) {
    EMPO_TRY(empo_sampling_check(s));
    EMPO_TRY(empo_check_input("sample", "logits", logits, EMPO_DT_FLOAT, NULL, NULL));
    if (logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1 || !empo_tensor_is_contiguous(logits))
        return empo_fail(EMPO_E_SHAPE, "sample: logits %s must be contiguous [..., V] with V >= 1", empo_desc(logits));
    const int64_t V = logits->shape[logits->ndim - 1], N = empo_tensor_numel(logits) / V;
    EMPO_TRY(check_out("sample", "ids", ids, EMPO_I64, N, logits));
    if (logp) EMPO_TRY(check_out("sample", "logp", logp, EMPO_F32, N, logits));
    if (ref_logp) EMPO_TRY(check_out("sample", "ref_logp", ref_logp, EMPO_F32, N, logits));
    if (!u && s->temperature != 0.0 && N > 0)
        return empo_fail(EMPO_E_ARG, "sample: uniforms are needed unless temperature is 0");
    const empo_kernel_table *K = empo_kernels_of(logits);
    int64_t bad = -1;
    if (K->sample_rows(empo_tensor_data(ids), logp ? empo_tensor_data(logp) : NULL,
                       ref_logp ? empo_tensor_data(ref_logp) : NULL, empo_tensor_data(logits), N,
                       drawable(V, s->vocab), V, s, s->temperature != 0.0 ? u : NULL, &bad) != 0)
        return kernel_failed("sample", K);
    if (bad >= 0)
        return empo_fail(EMPO_E_NUMERIC, "sample: row %lld of logits %s has a NaN or +inf, or no finite value",
                         (long long)bad, empo_desc(logits));
    return EMPO_OK;
}

/* ---- per-token statistics of the distribution sampled from ---- */

int empo_sample_token_stats(empo_tensor *entropy, empo_tensor *self_certainty, empo_tensor *logits,
                            double temperature, int64_t vocab) {
    EMPO_TRY(empo_check_input("sample_token_stats", "logits", logits, EMPO_DT(EMPO_F32), NULL, NULL));
    if (logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1 || !empo_tensor_is_contiguous(logits))
        return empo_fail(EMPO_E_SHAPE, "sample_token_stats: logits %s must be contiguous [..., V] with V >= 1",
                         empo_desc(logits));
    if (!(temperature >= 0.0) || isinf(temperature))
        return empo_fail(EMPO_E_ARG, "sample_token_stats: temperature must be a finite number >= 0, got %g",
                         temperature);
    if (vocab < 0)
        return empo_fail(EMPO_E_ARG, "sample_token_stats: vocab must be >= 0 (0 = every id), got %lld",
                         (long long)vocab);
    const int64_t stride = logits->shape[logits->ndim - 1], N = empo_tensor_numel(logits) / stride,
                  V = drawable(stride, vocab);
    if (entropy) EMPO_TRY(check_out("sample_token_stats", "entropy", entropy, EMPO_F32, N, logits));
    if (self_certainty)
        EMPO_TRY(check_out("sample_token_stats", "self_certainty", self_certainty, EMPO_F32, N, logits));
    /* temperature 0 (greedy) reports the model's own distribution (T = 1) */
    const empo_kernel_table *K = empo_kernels_of(logits);
    const int64_t bad = K->sample_stats(entropy ? empo_tensor_data(entropy) : NULL,
                                        self_certainty ? empo_tensor_data(self_certainty) : NULL,
                                        empo_tensor_data(logits), N, V, stride,
                                        temperature > 0.0 ? 1.0 / temperature : 1.0);
    if (bad == -2) return kernel_failed("sample_token_stats", K);
    if (bad >= 0)
        return empo_fail(EMPO_E_NUMERIC,
                         "sample_token_stats: row %lld of logits %s has a NaN or +inf, or no finite value",
                         (long long)bad, empo_desc(logits));
    return EMPO_OK;
}
