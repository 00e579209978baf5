/* empo/runtime.h — version, threads, memory accounting, kernel selection. */
#ifndef EMPO_RUNTIME_H
#define EMPO_RUNTIME_H
#ifndef EMPO_FFI
#include <stdint.h>
#endif

/* Bumped whenever a public declaration changes; the Lua binding checks it. */
enum { EMPO_ABI_VERSION = 5 };

const char *empo_version(void);
int empo_abi_version(void);

void empo_set_num_threads(int n);
int empo_get_num_threads(void);

/* Force the naive reference kernels everywhere (also EMPO_ISA=ref in the
 * environment); off goes back to the fast table chosen at start. Returns
 * the previous setting. */
int empo_set_reference_kernels(int on);
int empo_reference_kernels(void);
/* The kernel table in use: "avx2", "avx512" or "ref" (kernels/kernels.h).
 * Chosen at the first op from EMPO_ISA=avx2|avx512|ref (the one switch;
 * the old EMPO_REFERENCE=1 still works one release), else the best the CPU runs; empo_set_kernel_table
 * switches by name and fails (EMPO_E_ARG, naming why) on an unknown name
 * or a table the CPU cannot run. empo_best_kernel_table: the CPU's best. */
const char *empo_kernel_table_name(void);
int empo_set_kernel_table(const char *name);
const char *empo_best_kernel_table(void);

/* A graceful stop (core/base/stop_signal.c): between begin and end, SIGINT
 * and SIGTERM are only noted (a second one gets the previous action), and
 * empo_stop_requested returns the signal's number (0 while none came).
 * Calls nest; begin returns -1 if the handlers cannot be installed. */
int empo_stop_signals_begin(void);
void empo_stop_signals_end(void);
int empo_stop_requested(void);

/* Bytes held by live tensors, bytes parked in the allocator's cache, and the
 * high-water mark of live bytes. */
int64_t empo_mem_live_bytes(void);
/* live bytes of the host and every device together: what the Lua side's
 * garbage-collection pressure watches */
int64_t empo_mem_all_live_bytes(void);
int64_t empo_mem_cached_bytes(void);
int64_t empo_mem_peak_bytes(void);
void empo_mem_reset_peak(void);
/* Return cached blocks to the system. */
void empo_mem_empty_cache(void);
/* Bounds the host cache at bytes (>= 0; what it holds past that goes back
 * to the system now); returns the previous bound. The default is
 * EMPO_CACHE_LIMIT_MB, else 4096 MB. A memory plan sets it (empo.rl.memory):
 * cached blocks count in the process's resident memory. */
int64_t empo_mem_set_cache_limit(int64_t bytes);
/* Bounds live + cached host bytes together (0: no bound, the default):
 * before a request that the cache cannot serve takes fresh memory, parked
 * blocks go back to the system until the two fit under it again. Live
 * bytes themselves are never refused. Returns the previous bound. Both
 * count blocks' capacity (size classes: up to 25% over the bytes asked),
 * so this is stricter than the resident memory it stands for. */
int64_t empo_mem_set_total_limit(int64_t bytes);
/* A device's pool (EMPO_CUDA): bytes held by live tensors there, parked in
 * its cache, their high-water mark, and how many blocks were ever asked of
 * the device (steady when a step allocates nothing new). empty_cache and
 * reset_peak above cover it too. */
typedef struct empo_device_memory {
    int64_t live, cached, peak, allocs;
} empo_device_memory;
int empo_mem_device(int device, empo_device_memory *m);
/* 1 when tensors can live on `device`; else 0 with the reason in why
 * (libempo_cuda not built or not loadable, no driver, no GPU). */
int empo_device_available(int device, char *why, int whylen);
/* "NVIDIA H100 80GB HBM3, 79.1 GiB, compute capability 9.0" */
int empo_device_describe(int device, char *buf, int len);
/* The device's memory in bytes (the emulation's: the host's). */
int empo_device_total_bytes(int device, int64_t *bytes);
/* CUDA matrix products: 1 lets them round f32 inputs to TF32 (tensor
 * cores; relative error about 1e-3), 0 keeps full f32 (the default). The
 * previous setting goes to *previous (may be NULL); EMPO_E_DEVICE without
 * a CUDA device. */
int empo_cuda_allow_tf32(int allow, int *previous);

/* Number of tensor handles alive (for leak tests). */
int64_t empo_live_tensors(void);

#endif
