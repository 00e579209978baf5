/* runtime.cu — the CUDA build's device (kernels/device.h) on the CUDA
 * runtime: one compute stream that every kernel and copy is ordered on,
 * the first error kept until the next synchronize or download reports it,
 * and the backend's scratch buffer. */
#include "kernels/cuda/cuda_compat.cuh"
#include <cstdio>
#include <cstring>

EMPO_CUDA_BEGIN
static cudaStream_t compute_stream;
static char first_error[256];
static int failed;

void note_error(const char *what, const char *why) {
    if (failed) return;
    failed = 1;
    std::snprintf(first_error, sizeof first_error, "%s: %s", what, why);
}
static int check(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    note_error(what, cudaGetErrorString(e));
    return -1;
}
/* the error kept so far, or this call's: reported once, then cleared */
static int report(cudaError_t e, const char *what) {
    check(e, what);
    if (!failed) return 0;
    failed = 0;
    return -1;
}

cudaStream_t stream() {
    if (!compute_stream) check(cudaStreamCreateWithFlags(&compute_stream, cudaStreamNonBlocking), "cudaStreamCreate");
    return compute_stream;
}
void note_launch(const char *kernel) { check(cudaGetLastError(), kernel); }

void *scratch(size_t bytes) {
    static void *buffer;
    static size_t size;
    if (bytes <= size) return buffer;
    if (buffer) cudaFree(buffer);
    buffer = nullptr, size = 0;
    if (check(cudaMalloc(&buffer, bytes), "cudaMalloc (scratch)")) return nullptr;
    size = bytes;
    return buffer;
}

static int count() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}
static int describe(int device, char *buf, size_t len) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return -1;
    std::snprintf(buf, len, "%s, %.1f GiB, compute capability %d.%d", p.name,
                  (double)p.totalGlobalMem / (1 << 30), p.major, p.minor);
    return 0;
}
static void *alloc(size_t bytes) {
    void *p = nullptr;
    return check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc") ? nullptr : p;
}
static void release(void *p) {
    if (p) check(cudaFree(p), "cudaFree");
}
static int upload(void *dst, const void *src, size_t bytes) {
    /* waits, so the caller may reuse its buffer at once */
    if (check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()), "upload")) return report(cudaSuccess, "");
    return report(cudaStreamSynchronize(stream()), "upload");
}
static int download(void *dst, const void *src, size_t bytes) {
    if (check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()), "download")) return report(cudaSuccess, "");
    return report(cudaStreamSynchronize(stream()), "download");
}
static int copy(void *dst, const void *src, size_t bytes) {
    return check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()), "copy on the device");
}
static int zero(void *dst, size_t bytes) { return check(cudaMemsetAsync(dst, 0, bytes, stream()), "cudaMemset"); }
static int synchronize() { return report(cudaStreamSynchronize(stream()), "synchronize"); }
static const char *last_error() { return first_error[0] ? first_error : "no error"; }
/* graphs: the capture is this thread's only, so other threads' CUDA calls go on */
static int capture_begin() {
    return report(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
}
static int capture_end(void **out) {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cudaError_t e = cudaStreamEndCapture(stream(), &graph);
    if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess) return report(e, "capturing a graph");
    if (report(cudaSuccess, "")) {   /* a launch the capture refused */
        cudaGraphExecDestroy(exec);
        return -1;
    }
    *out = exec;
    return 0;
}
static int graph_launch(void *graph) {
    return check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), stream()), "cudaGraphLaunch");
}
static void graph_free(void *graph) {
    if (graph) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph));
}
static long long total_bytes() {
    size_t free_bytes = 0, total = 0;
    return check(cudaMemGetInfo(&free_bytes, &total), "cudaMemGetInfo") ? -1 : (long long)total;
}
EMPO_CUDA_END

extern "C" const empo_device_api empo_cuda_device = {
    "cuda", empo_cuda::count, empo_cuda::describe, empo_cuda::alloc, empo_cuda::release, empo_cuda::upload,
    empo_cuda::download, empo_cuda::copy, empo_cuda::zero, empo_cuda::synchronize, empo_cuda::last_error,
    empo_cuda::total_bytes, empo_cuda::capture_begin, empo_cuda::capture_end, empo_cuda::graph_launch,
    empo_cuda::graph_free,
};
