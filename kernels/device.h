/* device.h — what a kernel table with its own memory (CUDA) offers the
 * layers above it: device memory and copies. A table whose kernels take
 * host pointers (every CPU table) has device == NULL.
 *
 * Two implementations: the CUDA runtime's (kernels/cuda/runtime.cu, built
 * with EMPO_CUDA) and the emulation's (kernels/cuda/emu/emu.cpp: host
 * memory, for the tests that run the CUDA kernels without a GPU). All
 * copies are ordered on the table's one compute stream; download and
 * synchronize wait for it. A call that fails returns nonzero (NULL for
 * alloc) and last_error says why; a kernel launch that failed is reported
 * by the next synchronize or download. */
#ifndef EMPO_KERNELS_DEVICE_H
#define EMPO_KERNELS_DEVICE_H
#include <stddef.h>

typedef struct empo_device_api {
    const char *name;                                   /* "cuda", "cuda-emulated" */
    int (*count)(void);                                 /* devices present; 0: none */
    /* "NVIDIA H100 80GB HBM3, 79.1 GiB, compute capability 9.0" */
    int (*describe)(int device, char *buf, size_t len);
    void *(*alloc)(size_t bytes);
    void (*release)(void *p);
    int (*upload)(void *dst, const void *src, size_t bytes);
    int (*download)(void *dst, const void *src, size_t bytes);
    int (*copy)(void *dst, const void *src, size_t bytes);
    int (*zero)(void *dst, size_t bytes);
    int (*synchronize)(void);
    const char *(*last_error)(void);
    long long (*total_bytes)(void);                     /* the device's memory; -1 unknown */
    /* Graphs (NULL where a device has none; the emulation records and
     * replays its launches). The launches
     * between capture_begin and capture_end are recorded, not run, into an
     * executable graph that graph_launch then runs on the stream; a capture
     * that fails returns nonzero from capture_end and leaves no graph. */
    int (*capture_begin)(void);
    int (*capture_end)(void **graph);
    int (*graph_launch)(void *graph);
    void (*graph_free)(void *graph);
} empo_device_api;

#endif
