/* sample.cu — the sampler on the GPU (kernels/sample_row.h): a block per
 * row of logits draws its token with the rules of core/include/empo/sample.h
 * in double, as the reference does, without sorting the vocabulary:
 *
 *   the top-k and top-p cuts are found by bisection over the logits' values
 *   (each float mapped to an order-preserving 32-bit key), each probe one
 *   pass and one fixed-tree block reduction: the k-th largest logit is the
 *   largest key with at least k logits at or above it; the top-p cut is the
 *   largest key whose logits at or above it hold top_p of the kept mass.
 *   Every keep test is then p_j >= cut with p_j = exp((x_j - max) / T), the
 *   reference's own formula, so ties and banned (-inf) tokens behave alike.
 *   The draw splits the row into one contiguous chunk per thread; chunk
 *   sums, their prefix in thread order, and the one chunk where the running
 *   mass passes u * Z scans its ids in order.
 *
 * No scratch but the uniforms and a flag per row (the backend's buffer);
 * results are reproducible (no atomics). The per-token statistics (entropy,
 * self-certainty) are one block per row too. */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/block_reduce.cuh"
#include <cstring>
#include <vector>
#include "kernels/sample_row.h"

EMPO_CUDA_BEGIN
constexpr int SAMPLE_THREADS = 256;

/* larger float, larger key (-inf lowest of the numbers) */
__device__ __forceinline__ uint32_t key_of(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return (b & 0x80000000u) ? ~b : b | 0x80000000u;
}
__device__ __forceinline__ float float_of(uint32_t k) {
    uint32_t b = (k & 0x80000000u) ? k & 0x7fffffffu : ~k;
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

struct id_max_op {   /* the larger id; -1 is none */
    __device__ long long operator()(long long a, long long b) const { return a > b ? a : b; }
};

/* the largest key in [lo, hi] at which holds(key) is true, given that it
 * holds at lo and, once false, stays false above; every thread calls it */
template <class Holds> __device__ uint32_t largest_key(uint32_t lo, uint32_t hi, Holds holds) {
    while (lo < hi) {
        const uint32_t mid = lo + (uint32_t)(((uint64_t)hi - lo + 1) / 2);
        if (holds(mid)) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

__global__ void __launch_bounds__(SAMPLE_THREADS)
sample_kernel(int64_t *ids, float *logp, float *ref_logp, const float *logits, int64_t V, int64_t stride,
              empo_sampling s, const double *u, int *bad) {
    const int64_t n = blockIdx.x;
    const float *x = logits + n * stride;
    const int tid = threadIdx.x, T = blockDim.x;
    float m = -INFINITY;
    int broken = 0;
    for (int64_t j = tid; j < V; j += T) {
        broken |= x[j] != x[j] || x[j] == INFINITY;
        m = x[j] > m ? x[j] : m;
    }
    m = block_reduce(m, max_op());
    broken = block_reduce(broken, sum_op());
    if (broken || m == -INFINITY) {
        if (tid == 0) {
            ids[n] = 0, bad[n] = 1;
            if (logp) logp[n] = NAN;
            if (ref_logp) ref_logp[n] = NAN;
        }
        return;
    }
    double z1 = 0.0;
    for (int64_t j = tid; j < V; j += T) z1 += exp((double)x[j] - m);
    const double lse1 = m + log(block_reduce(z1, sum_op()));
    int64_t pick;
    double chosen_logp = 0.0;
    if (s.temperature == 0.0) {
        arg_pair best = {-INFINITY, -1};
        for (int64_t j = tid; j < V; j += T) best = argmax_op()(best, arg_pair{x[j], j});
        pick = block_reduce(best, argmax_op()).i;
    } else {
        const double inv_t = 1.0 / s.temperature;
        auto p_of = [&](float v) { return exp(((double)v - m) * inv_t); };
        /* the cut on p: keep p >= cut */
        double cut = 0.0;
        uint32_t floor_key = key_of(-INFINITY);
        if (s.top_k > 0 && s.top_k < V) {
            const uint32_t k = largest_key(floor_key, key_of(m), [&](uint32_t t) {
                long long count = 0;
                for (int64_t j = tid; j < V; j += T) count += key_of(x[j]) >= t;
                return block_reduce(count, sum_op()) >= s.top_k;
            });
            cut = p_of(float_of(k));
            floor_key = k;
        }
        if (s.top_p < 1.0) {
            double kept = 0.0;
            for (int64_t j = tid; j < V; j += T) {
                const double p = p_of(x[j]);
                kept += p >= cut ? p : 0.0;
            }
            const double target = s.top_p * block_reduce(kept, sum_op());
            const uint32_t c = largest_key(floor_key, key_of(m), [&](uint32_t t) {
                double mass = 0.0;
                for (int64_t j = tid; j < V; j += T) {
                    const double p = p_of(x[j]);
                    mass += key_of(x[j]) >= t && p >= cut ? p : 0.0;
                }
                return block_reduce(mass, sum_op()) >= target;
            });
            cut = p_of(float_of(c));
        }
        if (s.min_p > 0.0 && s.min_p > cut) cut = s.min_p;   /* the most likely token has p = 1 */
        /* the draw: thread tid's chunk of ids, in order */
        const int64_t chunk = (V + T - 1) / T, lo = tid * chunk, hi = lo + chunk < V ? lo + chunk : V;
        double part = 0.0;
        int64_t last = -1;
        for (int64_t j = lo; j < hi; j++) {
            const double p = p_of(x[j]);
            if (p < cut || p == 0.0) continue;
            part += p;
            last = j;
        }
        __shared__ double before[SAMPLE_THREADS + 1];
        __shared__ int64_t drawn;
        before[tid + 1] = part;
        if (tid == 0) before[0] = 0.0;
        /* the last kept id, drawn when rounding leaves u * Z unreached; the
         * reduction's barriers also publish before[] to thread 0 */
        const long long any_last = block_reduce((long long)last, id_max_op());
        if (tid == 0) {
            for (int i = 1; i <= T; i++) before[i] += before[i - 1];
            drawn = any_last;
        }
        __syncthreads();
        const double Zk = before[T], target = u[n] * Zk;
        if (before[tid] <= target && target < before[tid + 1]) {
            double acc = before[tid];
            int64_t found = last;
            for (int64_t j = lo; j < hi; j++) {
                const double p = p_of(x[j]);
                if (p < cut || p == 0.0) continue;
                acc += p;
                if (acc > target) { found = j; break; }
            }
            drawn = found;
        }
        __syncthreads();
        pick = drawn;
        chosen_logp = ((double)x[pick] - m) * inv_t - log(Zk);
    }
    if (tid == 0) {
        ids[n] = pick, bad[n] = 0;
        if (logp) logp[n] = (float)chosen_logp;
        if (ref_logp) ref_logp[n] = (float)(x[pick] - lse1);
    }
}

/* n uniforms and n flags in the backend's scratch buffer; NULL if it cannot grow */
static char *row_scratch(int64_t n) { return (char *)scratch((size_t)n * (sizeof(double) + sizeof(int))); }

/* the first flagged row of n (-1 none), or -2 when the flags cannot come down */
static int64_t first_flag(const int *dev_flags, int64_t n) {
    std::vector<int> flags((size_t)n);
    if (EMPO_CUDA_DEVICE.download(flags.data(), dev_flags, sizeof(int) * (size_t)n)) return -2;
    for (int64_t i = 0; i < n; i++)
        if (flags[(size_t)i]) return i;
    return -1;
}

int sample_rows(int64_t *ids, float *logp, float *ref_logp, const float *logits, int64_t N, int64_t V,
                int64_t stride, const empo_sampling *s, const double *u, int64_t *bad) {
    *bad = -1;
    if (N <= 0) return 0;
    char *buf = row_scratch(N);
    if (!buf) return -1;
    double *du = (double *)buf;
    int *flags = (int *)(buf + sizeof(double) * (size_t)N);
    if (u && EMPO_CUDA_DEVICE.upload(du, u, sizeof(double) * (size_t)N)) return -1;
    EMPO_LAUNCH(sample_kernel, (unsigned)N, SAMPLE_THREADS, 0, ids, logp, ref_logp, logits, V, stride, *s,
                u ? du : nullptr, flags);
    *bad = first_flag(flags, N);
    return *bad == -2 ? -1 : 0;
}

/* ---- per-token statistics: entropy and self-certainty of softmax(x / T) ---- */

__global__ void __launch_bounds__(SAMPLE_THREADS)
stats_kernel(float *entropy, float *certainty, const float *logits, int64_t V, int64_t stride, double inv_t,
             int *bad) {
    const int64_t n = blockIdx.x;
    const float *x = logits + n * stride;
    const int tid = threadIdx.x, T = blockDim.x;
    float mx = -INFINITY;
    for (int64_t j = tid; j < V; j += T) mx = x[j] > mx ? x[j] : mx;
    const double m = (double)block_reduce(mx, max_op()) * inv_t;
    double z_sum = 0.0, e_sum = 0.0, ez_sum = 0.0;
    for (int64_t j = tid; j < V; j += T) {
        const double z = x[j] * inv_t, e = exp(z - m);
        z_sum += z;
        e_sum += e;
        if (e > 0.0) ez_sum += e * z;   /* a -inf logit adds nothing (0 · -inf) */
    }
    z_sum = block_reduce(z_sum, sum_op());
    e_sum = block_reduce(e_sum, sum_op());
    ez_sum = block_reduce(ez_sum, sum_op());
    if (tid == 0) {
        const double log_z = m + log(e_sum);
        bad[n] = !(log_z > -INFINITY && log_z < INFINITY);   /* not finite */
        if (entropy) entropy[n] = (float)(log_z - ez_sum / e_sum);
        if (certainty) certainty[n] = (float)(log_z - z_sum / (double)V - log((double)V));
    }
}

int64_t sample_stats(float *entropy, float *certainty, const float *logits, int64_t N, int64_t V, int64_t stride,
                     double inv_t) {
    if (N <= 0) return -1;
    char *buf = row_scratch(N);
    if (!buf) return -2;
    int *flags = (int *)(buf + sizeof(double) * (size_t)N);
    EMPO_LAUNCH(stats_kernel, (unsigned)N, SAMPLE_THREADS, 0, entropy, certainty, logits, V, stride, inv_t, flags);
    return first_flag(flags, N);
}
EMPO_CUDA_END
