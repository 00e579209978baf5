/* gemm_lt.cu — the column-major product of products.cuh, by cuBLASLt (the
 * CUDA build only; the emulation has its own loop in emu/emu.cpp); a
 * batch is the layouts' strided batch.
 * f32 or bf16 in, f32 out; with TF32 allowed (empo_cuda_backend_tf32, reached by empo_cuda_allow_tf32) the product
 * may round its inputs to TF32 on the tensor cores, else it is full f32. */
#include "kernels/cuda/products.cuh"
#include <cublasLt.h>
#include <cstdio>

EMPO_CUDA_BEGIN
static cublasLtHandle_t handle;
static void *workspace;
static const size_t WORKSPACE_BYTES = 32u << 20;
static int tf32_allowed;

void note_error(const char *what, const char *why);

/* a batch of products a fixed stride apart: the layout's count and stride */
static cublasStatus_t batch_layout(cublasLtMatrixLayout_t l, int64_t count, int64_t stride) {
    const int32_t n = (int32_t)count;
    cublasStatus_t st = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &n, sizeof n);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride);
    return st;
}

void gemm_column_major(int bf16, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const void *A, int64_t lda, const void *B, int64_t ldb, float beta, float *C, int64_t ldc,
                       product_batch batch) {
    if (batch.count > INT32_MAX) return note_error("cublasLtMatmul", "a batch of more than 2^31 products");
    if (!handle) {
        if (cublasLtCreate(&handle) != CUBLAS_STATUS_SUCCESS) return note_error("cublasLtCreate", "failed");
        if (cudaMalloc(&workspace, WORKSPACE_BYTES) != cudaSuccess) workspace = nullptr;
    }
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    /* bf16 inputs multiply exactly into f32 accumulators; f32 inputs may round to TF32 when allowed */
    const cublasComputeType_t compute = tf32_allowed && !bf16 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const cudaDataType_t in = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasStatus_t st = cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    /* the stored shapes: op(A) is (m, k), so A is (k, m) when transposed */
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&la, in, trans_a ? k : m, trans_a ? m : k, lda);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&lb, in, trans_b ? n : k, trans_b ? k : n, ldb);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, ldc);
    if (st == CUBLAS_STATUS_SUCCESS && batch.count > 1) st = batch_layout(la, batch.count, batch.stride_a);
    if (st == CUBLAS_STATUS_SUCCESS && batch.count > 1) st = batch_layout(lb, batch.count, batch.stride_b);
    if (st == CUBLAS_STATUS_SUCCESS && batch.count > 1) st = batch_layout(lc, batch.count, batch.stride_c);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmul(handle, op, &alpha, A, la, B, lb, &beta, C, lc, C, lc, nullptr, workspace,
                            workspace ? WORKSPACE_BYTES : 0, stream());
    if (st != CUBLAS_STATUS_SUCCESS) note_error("cublasLtMatmul", cublasLtGetStatusString(st));
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
}
EMPO_CUDA_END

extern "C" int empo_cuda_backend_tf32(int allow) {
    int prev = empo_cuda::tf32_allowed;
    empo_cuda::tf32_allowed = allow != 0;
    return prev;
}
