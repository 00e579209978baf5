/* block_reduce.cuh — warp and block reductions for the CUDA kernels: a
 * fixed tree (xor shuffles, then the warps' partials in warp order), so a
 * result never depends on timing. blockDim.x must be a multiple of 32. */
#ifndef EMPO_KERNELS_CUDA_BLOCK_REDUCE_CUH
#define EMPO_KERNELS_CUDA_BLOCK_REDUCE_CUH
#include "kernels/cuda/cuda_compat.cuh"

EMPO_CUDA_BEGIN
struct sum_op {
    template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct max_op {
    __device__ float operator()(float a, float b) const { return a > b ? a : b; }
};

/* a running log-sum-exp: max m and sum s of exp(x - m) */
struct lse_pair {
    float m;
    double s;
};
struct lse_op {
    __device__ lse_pair operator()(lse_pair a, lse_pair b) const {
        float m = a.m > b.m ? a.m : b.m;
        if (m == -INFINITY) return a;
        double s = (a.s ? a.s * exp((double)a.m - m) : 0.0) + (b.s ? b.s * exp((double)b.m - m) : 0.0);
        return {m, s};
    }
};

/* the first maximum; NaN beats any number, the lower index wins ties */
struct arg_pair {
    float v;
    int64_t i;
};
struct argmax_op {
    __device__ arg_pair operator()(arg_pair a, arg_pair b) const {
        if (a.i < 0) return b;
        if (b.i < 0) return a;
        bool an = a.v != a.v, bn = b.v != b.v;
        if (an || bn) return an && (!bn || a.i < b.i) ? a : b;
        if (a.v != b.v) return a.v > b.v ? a : b;
        return a.i < b.i ? a : b;
    }
};

template <class T> __device__ __forceinline__ T shuffle_xor(T v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }
__device__ __forceinline__ lse_pair shuffle_xor(lse_pair v, int mask) {
    return {__shfl_xor_sync(0xffffffffu, v.m, mask), __shfl_xor_sync(0xffffffffu, v.s, mask)};
}
__device__ __forceinline__ arg_pair shuffle_xor(arg_pair v, int mask) {
    return {__shfl_xor_sync(0xffffffffu, v.v, mask), (int64_t)__shfl_xor_sync(0xffffffffu, (long long)v.i, mask)};
}

template <class T, class Op> __device__ T warp_reduce(T v, Op op) {
    for (int o = 16; o > 0; o >>= 1) v = op(v, shuffle_xor(v, o));
    return v;
}

/* every thread of the block gets the result */
template <class T, class Op> __device__ T block_reduce(T v, Op op) {
    __shared__ T partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_reduce(v, op);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    T r = partial[0];
    for (int w = 1; w < warps; w++) r = op(r, partial[w]);
    __syncthreads();   /* the next call may write partial */
    return r;
}
EMPO_CUDA_END
#endif
