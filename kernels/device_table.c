/* device_table.c — the tables of devices (kernels/kernels.h,
 * empo_kernels_device), loaded the first time a device is asked for:
 * libempo_cuda.so.0 beside this library, or the library EMPO_CUDA_LIBRARY
 * names (the tests' build of the emulated kernels, tests/CMakeLists.txt).
 * Loading it late keeps a CPU-only run free of CUDA, and lets a machine
 * without the driver say so instead of failing to start. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kernels.h"

static char device_why[512];
static int (*empo_cuda_tf32_switch)(int);

static const empo_kernel_table *load_cuda(void) {
    char path[4096];
    void *lib = empo_open_beside("EMPO_CUDA_LIBRARY", "libempo_cuda.so.0", RTLD_NOW | RTLD_LOCAL, path, sizeof path);
    if (!lib) {
        snprintf(device_why, sizeof device_why, "the CUDA backend did not load (%s)", dlerror());
        return NULL;
    }
    const empo_kernel_table *k = dlsym(lib, "empo_kernels_cuda");
    if (!k) k = dlsym(lib, "empo_kernels_cuda_emulated");
    if (!k || !k->device) {
        snprintf(device_why, sizeof device_why, "%.400s holds no CUDA kernel table", path);
        return NULL;
    }
    empo_cuda_tf32_switch = (int (*)(int))dlsym(lib, "empo_cuda_backend_tf32");
    if (k->device->count() < 1) {
        snprintf(device_why, sizeof device_why, "no CUDA device is visible (driver missing, or no GPU)");
        return NULL;
    }
    return k;
}

static const empo_kernel_table *cuda_table;

static void find_cuda(void) {
#ifdef EMPO_HAVE_CUDA
    cuda_table = load_cuda();
#else
    if (getenv("EMPO_CUDA_LIBRARY")) cuda_table = load_cuda();
    else snprintf(device_why, sizeof device_why, "this empo was built without CUDA (EMPO_CUDA=OFF, or no nvcc at build time)");
#endif
}

const empo_kernel_table *empo_kernels_device(int device) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (device == 0) return empo_kernels();
    if (device != 1) {
        snprintf(device_why, sizeof device_why, "device %d is not a device empo knows (cpu, cuda)", device);
        return NULL;
    }
    pthread_once(&once, find_cuda);
    return cuda_table;
}

const char *empo_kernels_device_why(void) { return device_why; }

int empo_kernels_cuda_tf32(int allow) {
    if (!empo_kernels_device(1)) return -1;
    if (!empo_cuda_tf32_switch) {
        snprintf(device_why, sizeof device_why, "this CUDA backend has no TF32 products (the emulation)");
        return -1;
    }
    return empo_cuda_tf32_switch(allow);
}
