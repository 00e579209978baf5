/* gemm_lt.cu — the column-major product of products.cuh, by cuBLASLt (the
 * CUDA build only; the emulation has its own loop in emu/emu.cpp); a
 * batch is the layouts' strided batch.
 * f32 or bf16 in, f32 out; with TF32 allowed (empo_cuda_backend_tf32, reached by empo_cuda_allow_tf32) the product
 * may round its inputs to TF32 on the tensor cores, else it is full f32. */
#include "kernels/cuda/products.cuh"
#include <cublasLt.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>

EMPO_CUDA_BEGIN
static cublasLtHandle_t handle;
static void *workspace;
static const size_t WORKSPACE_BYTES = 32u << 20;
static int tf32_allowed;

void note_error(const char *what, const char *why);

/* ---- plans: a product's descriptors and the algorithm cuBLASLt's
 * heuristic chose, made once per shape and kept. The heuristic can take
 * more host time than a small product takes on the card (a decode step makes
 * a few hundred), so asking it every call would leave the card waiting.
 * The key holds everything the choice depends on, the operands' alignment
 * included (the heuristic may pick kernels that need 16-byte operands).
 * EMPO_CUBLASLT_PLANS=0 asks cuBLASLt every time instead. ---- */
struct plan_key {
    int32_t bf16, tf32, trans_a, trans_b, align_a, align_b, align_c, unused;
    int64_t m, n, k, lda, ldb, ldc, count, stride_a, stride_b, stride_c;
};
struct plan {
    plan_key key;
    bool made, has_algo;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
};
enum { PLAN_SLOTS = 512, PLAN_LIMIT = 256 };   /* (at the limit all are dropped: a table half full probes little) */
static plan plans[PLAN_SLOTS];
static int plans_made;

static void drop_plan(plan &p) {
    if (p.lc) cublasLtMatrixLayoutDestroy(p.lc);
    if (p.lb) cublasLtMatrixLayoutDestroy(p.lb);
    if (p.la) cublasLtMatrixLayoutDestroy(p.la);
    if (p.op) cublasLtMatmulDescDestroy(p.op);
    p = plan{};
}

/* the alignment in bytes of a batch's matrices (the pointer, and the
 * stride between them in bytes), at most 256 (the heuristic's default) */
static int32_t alignment(const void *ptr, int64_t stride_bytes) {
    const uintptr_t a = (uintptr_t)ptr | (uintptr_t)stride_bytes;
    int32_t al = 1;
    while (al < 256 && !(a & (uintptr_t)al)) al <<= 1;
    return al;
}

/* a batch of products a fixed stride apart: the layout's count and stride */
static cublasStatus_t batch_layout(cublasLtMatrixLayout_t l, int64_t count, int64_t stride) {
    const int32_t n = (int32_t)count;
    cublasStatus_t st = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &n, sizeof n);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride);
    return st;
}

/* p's descriptors for key k and, when choose, the heuristic's first
 * algorithm for these alignments and this workspace (without one cuBLASLt
 * chooses at each call) */
static cublasStatus_t make_plan(plan &p, const plan_key &k, bool choose) {
    p = plan{};
    p.key = k;
    const cublasOperation_t ta = k.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = k.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    /* bf16 inputs multiply exactly into f32 accumulators; f32 inputs may round to TF32 when allowed */
    const cublasComputeType_t compute = k.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const cudaDataType_t in = k.bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasStatus_t st = cublasLtMatmulDescCreate(&p.op, compute, CUDA_R_32F);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    /* the stored shapes: op(A) is (m, k), so A is (k, m) when transposed */
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&p.la, in, k.trans_a ? k.k : k.m, k.trans_a ? k.m : k.k, k.lda);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&p.lb, in, k.trans_b ? k.n : k.k, k.trans_b ? k.k : k.n, k.ldb);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&p.lc, CUDA_R_32F, k.m, k.n, k.ldc);
    if (st == CUBLAS_STATUS_SUCCESS && k.count > 1) st = batch_layout(p.la, k.count, k.stride_a);
    if (st == CUBLAS_STATUS_SUCCESS && k.count > 1) st = batch_layout(p.lb, k.count, k.stride_b);
    if (st == CUBLAS_STATUS_SUCCESS && k.count > 1) st = batch_layout(p.lc, k.count, k.stride_c);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    p.made = true;
    cublasLtMatmulPreference_t pref = nullptr;
    if (!choose || cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_SUCCESS;
    const uint64_t ws = workspace ? WORKSPACE_BYTES : 0;
    const uint32_t al[3] = {(uint32_t)k.align_a, (uint32_t)k.align_b, (uint32_t)k.align_c};
    bool ok = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0],
                                                   sizeof al[0]) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1],
                                                   sizeof al[1]) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2],
                                                   sizeof al[2]) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[2],
                                                   sizeof al[2]) == CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulHeuristicResult_t found = {};
    int count = 0;
    if (ok && cublasLtMatmulAlgoGetHeuristic(handle, p.op, p.la, p.lb, p.lc, p.lc, pref, 1, &found, &count) ==
                  CUBLAS_STATUS_SUCCESS &&
        count > 0 && found.state == CUBLAS_STATUS_SUCCESS) {
        p.algo = found.algo;
        p.has_algo = true;
    }
    cublasLtMatmulPreferenceDestroy(pref);
    return CUBLAS_STATUS_SUCCESS;
}

/* the plan for key k: found, or made in its slot (FNV-1a over the key,
 * linear probing) */
static plan *plan_for(const plan_key &k, cublasStatus_t *st) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *bytes = reinterpret_cast<const unsigned char *>(&k);
    for (size_t i = 0; i < sizeof k; i++) h = (h ^ bytes[i]) * 1099511628211ull;
    if (plans_made >= PLAN_LIMIT) {
        for (plan &p : plans) drop_plan(p);
        plans_made = 0;
    }
    for (size_t i = 0;; i++) {
        plan &p = plans[(h + i) % PLAN_SLOTS];
        if (p.made && !memcmp(&p.key, &k, sizeof k)) return &p;
        if (!p.made) {
            *st = make_plan(p, k, true);
            if (*st != CUBLAS_STATUS_SUCCESS) {
                drop_plan(p);
                return nullptr;
            }
            plans_made++;
            return &p;
        }
    }
}

static bool plans_wanted() {
    static const int wanted = [] {
        const char *e = getenv("EMPO_CUBLASLT_PLANS");
        return e && !strcmp(e, "0") ? 0 : 1;
    }();
    return wanted;
}

void gemm_column_major(int bf16, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const void *A, int64_t lda, const void *B, int64_t ldb, float beta, float *C, int64_t ldc,
                       product_batch batch) {
    if (batch.count > INT32_MAX) return note_error("cublasLtMatmul", "a batch of more than 2^31 products");
    if (!handle) {
        if (cublasLtCreate(&handle) != CUBLAS_STATUS_SUCCESS) return note_error("cublasLtCreate", "failed");
        if (cudaMalloc(&workspace, WORKSPACE_BYTES) != cudaSuccess) workspace = nullptr;
    }
    const bool batched = batch.count > 1;
    plan_key key = {};   /* (zeroed whole: its bytes are hashed and compared) */
    key.bf16 = bf16 != 0, key.tf32 = tf32_allowed && !bf16, key.trans_a = trans_a != 0, key.trans_b = trans_b != 0;
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    key.count = batched ? batch.count : 1;
    key.stride_a = batched ? batch.stride_a : 0, key.stride_b = batched ? batch.stride_b : 0;
    key.stride_c = batched ? batch.stride_c : 0;
    const int64_t in_size = bf16 ? 2 : 4;
    key.align_a = alignment(A, key.stride_a * in_size), key.align_b = alignment(B, key.stride_b * in_size);
    key.align_c = alignment(C, key.stride_c * 4);
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    plan once = {};
    plan *p = plans_wanted() ? plan_for(key, &st) : (st = make_plan(once, key, false), &once);
    const size_t ws = workspace ? WORKSPACE_BYTES : 0;
    if (p && st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatmul(handle, p->op, &alpha, A, p->la, B, p->lb, &beta, C, p->lc, C, p->lc,
                            p->has_algo ? &p->algo : nullptr, workspace, ws, stream());
        if (st != CUBLAS_STATUS_SUCCESS && p->has_algo) {   /* the kept choice refused: let cuBLASLt choose */
            p->has_algo = false;
            st = cublasLtMatmul(handle, p->op, &alpha, A, p->la, B, p->lb, &beta, C, p->lc, C, p->lc, nullptr,
                                workspace, ws, stream());
        }
    }
    if (st != CUBLAS_STATUS_SUCCESS) note_error("cublasLtMatmul", cublasLtGetStatusString(st));
    if (p == &once) drop_plan(once);
}
EMPO_CUDA_END

extern "C" int empo_cuda_backend_tf32(int allow) {
    int prev = empo_cuda::tf32_allowed;
    empo_cuda::tf32_allowed = allow != 0;
    return prev;
}
