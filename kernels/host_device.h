/* host_device.h — EMPO_HOST_DEVICE marks a small inline function that the
 * CPU kernels and the CUDA kernels (kernels/cuda/) share: one definition
 * compiled for both sides under nvcc, a plain inline function elsewhere. */
#ifndef EMPO_KERNELS_HOST_DEVICE_H
#define EMPO_KERNELS_HOST_DEVICE_H
#if defined(__CUDACC__)
#define EMPO_HOST_DEVICE __host__ __device__
#else
#define EMPO_HOST_DEVICE
#endif
#endif
