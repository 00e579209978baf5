/* autograd.c — grad mode, nodes, and the backward engine.
 *
 * Each op output that needs a gradient owns one node (t->grad_fn). A node
 * keeps the inputs that require grad, plus whatever its backward saved.
 * empo_backward sorts the nodes reachable from the root (iterative DFS, so
 * deep graphs do not overflow the C stack), runs their backward functions
 * in reverse topological order with grad mode off, sums gradients arriving
 * at the same tensor, and finally releases what the graph held. */
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd_internal.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

static _Thread_local int grad_disabled;

int empo_grad_set_enabled(int enabled) {
    int prev = !grad_disabled;
    grad_disabled = !enabled;
    return prev;
}

int empo_grad_is_enabled(void) { return !grad_disabled; }

int empo_tensor_set_requires_grad(empo_tensor *t, int requires_grad) {
    if (!t) return empo_fail(EMPO_E_ARG, "requires_grad: NULL tensor");
    if (requires_grad && t->dtype != EMPO_F32)
        return empo_fail(EMPO_E_DTYPE, "requires_grad: only f32 tensors can require grad, got %s", empo_desc(t));
    if (!requires_grad && t->grad_fn)
        return empo_fail(EMPO_E_STATE, "requires_grad: %s is the output of '%s'; use detach() instead",
                         empo_desc(t), t->grad_fn->name);
    t->requires_grad = requires_grad != 0;
    return EMPO_OK;
}

int empo_tensor_requires_grad(const empo_tensor *t) { return t->requires_grad; }
int empo_tensor_is_leaf(const empo_tensor *t) { return t->grad_fn == NULL; }
const char *empo_tensor_grad_fn(const empo_tensor *t) { return t->grad_fn ? t->grad_fn->name : ""; }

int empo_tensor_grad(empo_tensor **out, const empo_tensor *t) {
    if (!t) return empo_fail(EMPO_E_ARG, "grad: NULL tensor");
    *out = t->grad;
    empo_tensor_retain(t->grad);
    return EMPO_OK;
}

int empo_tensor_set_grad(empo_tensor *t, empo_tensor *grad) {
    if (!t) return empo_fail(EMPO_E_ARG, "set_grad: NULL tensor");
    if (grad && (grad->ndim != t->ndim || memcmp(grad->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim) ||
                 grad->dtype != EMPO_F32))
        return empo_fail(EMPO_E_SHAPE, "set_grad: gradient %s does not match tensor %s", empo_desc(grad),
                         empo_desc(t));
    empo_tensor_retain(grad);
    empo_tensor_release(t->grad);
    t->grad = grad;
    return EMPO_OK;
}

int empo_detach(empo_tensor **out, empo_tensor *t) {
    if (!t) return empo_fail(EMPO_E_ARG, "detach: NULL tensor");
    *out = empo_tensor_view_of(t, t->ndim, t->shape, t->strides, t->offset);
    return *out ? EMPO_OK : EMPO_E_NOMEM;
}

/* ---- nodes ---- */
int empo_any_requires_grad(int n, empo_tensor *const *inputs) {
    if (grad_disabled) return 0;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return 1;
    return 0;
}

static void node_free_graph(empo_node *node);

/* The node's own destructor, called by the tensor layer's
 * empo_node_ref_release when the last reference goes. */
static void destroy_node(empo_node_ref *ref) {
    empo_node *node = (empo_node *)ref;
    node_free_graph(node);
    empo_tensor_release(node->pending);
    if (node->inputs != node->inline_inputs) free(node->inputs);
    free(node);
}

empo_node *empo_node_record(const char *name, empo_backward_fn backward, empo_tensor *out, int n,
                            empo_tensor *const *inputs, int *status) {
    *status = EMPO_OK;
    if (!empo_any_requires_grad(n, inputs)) return NULL;
    empo_node *node = calloc(1, sizeof *node);
    empo_tensor **slots = n <= EMPO_NODE_INLINE ? NULL : calloc((size_t)n, sizeof *slots);
    if (!node || (n > EMPO_NODE_INLINE && !slots)) {
        free(node);
        free(slots);
        *status = empo_fail(EMPO_E_NOMEM, "%s: out of memory recording the autograd node", name);
        return NULL;
    }
    node->ref.refcount = 1;
    node->ref.destroy = destroy_node;
    node->name = name;
    node->backward = backward;
    node->n_inputs = n;
    node->inputs = slots ? slots : node->inline_inputs;
    for (int i = 0; i < n; i++) {
        if (inputs[i] && inputs[i]->requires_grad) {
            node->inputs[i] = inputs[i];
            empo_tensor_retain(inputs[i]);
        }
    }
    node->out_ndim = out->ndim;
    memcpy(node->out_shape, out->shape, sizeof out->shape);
    out->grad_fn = node;
    out->requires_grad = 1;
    return node;
}

void empo_node_save(empo_node *node, int k, empo_tensor *t) {
    empo_tensor_retain(t);
    empo_tensor_release(node->saved[k]);
    node->saved[k] = t;
}

int empo_node_save_output(empo_node *node, int k, empo_tensor *out) {
    empo_tensor *alias = NULL;
    EMPO_TRY(empo_detach(&alias, out));
    empo_tensor_release(node->saved[k]);
    node->saved[k] = alias;
    return EMPO_OK;
}

/* Drops what the node holds for backward (inputs, saved tensors). */
static void node_free_graph(empo_node *node) {
    for (int i = 0; i < node->n_inputs; i++) {
        empo_tensor_release(node->inputs[i]);
        node->inputs[i] = NULL;
    }
    for (int k = 0; k < EMPO_NODE_SAVED; k++) {
        empo_tensor_release(node->saved[k]);
        node->saved[k] = NULL;
    }
    node->released = 1;
}

void empo_node_retain(empo_node *node) { node->ref.refcount++; }

void empo_node_release(empo_node *node) {
    if (node) empo_node_ref_release(&node->ref);
}

/* ---- gradient accumulation ---- */
typedef struct { float *a; const float *b; } add_job;

static void add_range(void *ctx, int64_t lo, int64_t hi) {
    add_job *j = ctx;
    for (int64_t i = lo; i < hi; i++) j->a[i] += j->b[i];
}

/* a += b over n elements (of `device`): on every thread when n is large,
 * or by the device's elementwise kernel */
static void add_into(int device, float *a, const float *b, int64_t n) {
    if (device != EMPO_CPU) {
        empo_kernels_device(device)->binary(EMPO_BIN_ADD, a, a, 1, b, 1, n);
        return;
    }
    add_job j = {a, b};
    empo_parallel_for(n, n, add_range, &j);
}

/* *acc += g; takes ownership of g. In place only when *acc is ours alone. */
static int accumulate(empo_tensor **acc, empo_tensor *g) {
    if (!*acc) { *acc = g; return EMPO_OK; }
    const int device = empo_tensor_device(*acc);
    if (empo_tensor_device(g) != device) {
        int st = empo_fail(EMPO_E_DEVICE, "backward: a gradient %s meets one %s on another device", empo_desc(g),
                           empo_desc(*acc));
        empo_tensor_release(g);
        return st;
    }
    empo_tensor *sum = NULL;
    /* in place only when neither the handle nor its memory is shared */
    if ((*acc)->refcount == 1 && (*acc)->storage->refcount == 1 && empo_tensor_is_contiguous(*acc) &&
        empo_tensor_is_contiguous(g)) {
        add_into(device, empo_tensor_data(*acc), empo_tensor_data(g), empo_tensor_numel(g));
        empo_tensor_release(g);
        return EMPO_OK;
    }
    /* out of place: a fresh contiguous copy of *acc, then the same sum;
     * the elementwise add op is above this layer */
    empo_tensor *gc = NULL;
    int st = empo_copy_as(&sum, *acc, EMPO_F32);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&gc, g);
    empo_tensor_release(g);
    if (st != EMPO_OK) {
        empo_tensor_release(sum);
        return st;
    }
    add_into(device, empo_tensor_data(sum), empo_tensor_data(gc), empo_tensor_numel(gc));
    empo_tensor_release(gc);
    empo_tensor_release(*acc);
    *acc = sum;
    return EMPO_OK;
}

static int same_shape(const empo_tensor *a, const empo_tensor *b) {
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0;
}

/* Routes gradient g of tensor t to its producer node or into t.grad. */
static int route(const char *from, empo_tensor *t, empo_tensor *g) {
    if (!same_shape(t, g)) {
        int st = empo_fail(EMPO_E_STATE, "backward of %s: gradient %s does not match input %s (internal error)",
                           from, empo_desc(g), empo_desc(t));
        empo_tensor_release(g);
        return st;
    }
    if (t->grad_fn) return accumulate(&t->grad_fn->pending, g);
    /* a leaf's .grad owns its memory: never an alias of another gradient */
    if (!t->grad && (!empo_tensor_is_contiguous(g) || g->refcount > 1 || g->storage->refcount > 1)) {
        empo_tensor *c = NULL;
        int st = empo_copy_as(&c, g, EMPO_F32);
        empo_tensor_release(g);
        if (st != EMPO_OK) return st;
        g = c;
    }
    return accumulate(&t->grad, g);
}

/* ---- topological order ---- */
typedef struct { empo_node **items; int n, cap; } node_list;

static int list_push(node_list *l, empo_node *node) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        empo_node **items = realloc(l->items, sizeof *items * (size_t)cap);
        if (!items) return empo_fail(EMPO_E_NOMEM, "backward: out of memory sorting the graph");
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = node;
    return EMPO_OK;
}

/* Post-order of the nodes reachable from root (children before parents). */
static int topo_sort(empo_node *root, node_list *order) {
    static _Thread_local int epoch;
    int mark = ++epoch;
    node_list stack = {0};
    int st = list_push(&stack, root);
    root->mark = mark;
    while (st == EMPO_OK && stack.n) {
        empo_node *node = stack.items[stack.n - 1];
        int pushed = 0;
        for (int i = 0; i < node->n_inputs && !pushed; i++) {
            empo_tensor *in = node->inputs[i];
            empo_node *child = in ? in->grad_fn : NULL;
            if (child && child->mark != mark && child->mark != -mark) {
                child->mark = mark;
                st = list_push(&stack, child);
                pushed = 1;
            }
        }
        if (!pushed && st == EMPO_OK) {
            node->mark = -mark;    /* finished */
            stack.n--;
            st = list_push(order, node);
        }
    }
    free(stack.items);
    return st;
}

static int run_node(empo_node *node) {
    empo_tensor *gin_inline[EMPO_NODE_INLINE] = {0};
    empo_tensor **gin = node->n_inputs <= EMPO_NODE_INLINE ? gin_inline : calloc((size_t)node->n_inputs, sizeof *gin);
    if (!gin) return empo_fail(EMPO_E_NOMEM, "backward: out of memory");
    empo_tensor *g = node->pending;
    node->pending = NULL;
    int st = node->backward(node, g, gin);
    empo_tensor_release(g);
    for (int i = 0; i < node->n_inputs; i++) {
        if (!gin[i]) continue;
        if (st == EMPO_OK && node->inputs[i]) st = route(node->name, node->inputs[i], gin[i]);
        else empo_tensor_release(gin[i]);
    }
    if (gin != gin_inline) free(gin);
    return st;
}

static int root_gradient(empo_tensor *root, empo_tensor *grad, empo_tensor **out) {
    if (!grad) {
        if (empo_tensor_numel(root) != 1)
            return empo_fail(EMPO_E_SHAPE,
                             "backward: root %s has %lld elements; backward without a gradient needs a scalar "
                             "(reduce it first, e.g. with sum())",
                             empo_desc(root), (long long)empo_tensor_numel(root));
        empo_tensor *one = NULL;
        EMPO_TRY(empo_tensor_full(&one, root->ndim, root->shape, EMPO_F32, 1.0));
        int st = empo_to_device_nograd(out, one, empo_tensor_device(root));
        empo_tensor_release(one);
        return st;
    }
    if (!same_shape(root, grad))
        return empo_fail(EMPO_E_SHAPE, "backward: gradient %s does not match root %s", empo_desc(grad),
                         empo_desc(root));
    if (empo_tensor_device(grad) != empo_tensor_device(root))
        return empo_fail(EMPO_E_DEVICE, "backward: gradient %s is on %s, root %s on %s", empo_desc(grad),
                         empo_device_name(empo_tensor_device(grad)), empo_desc(root),
                         empo_device_name(empo_tensor_device(root)));
    return empo_copy_as(out, grad, EMPO_F32);
}

int empo_backward(empo_tensor *root, empo_tensor *grad, int retain_graph) {
    if (!root) return empo_fail(EMPO_E_ARG, "backward: NULL tensor");
    if (!root->requires_grad)
        return empo_fail(EMPO_E_STATE, "backward: %s does not require grad and has no grad_fn", empo_desc(root));
    empo_tensor *g0 = NULL;
    EMPO_TRY(root_gradient(root, grad, &g0));
    if (!root->grad_fn) return accumulate(&root->grad, g0);
    if (root->grad_fn->released) {
        empo_tensor_release(g0);
        return empo_fail(EMPO_E_STATE, "backward: the graph of %s was already freed by an earlier backward "
                                       "(pass retain_graph to backward twice)", empo_desc(root));
    }
    node_list order = {0};
    int prev = empo_grad_set_enabled(0);
    int st = topo_sort(root->grad_fn, &order);
    if (st == EMPO_OK) root->grad_fn->pending = g0;
    else empo_tensor_release(g0);
    for (int k = order.n - 1; k >= 0 && st == EMPO_OK; k--) {
        empo_node *node = order.items[k];
        if (!node->pending) continue;
        if (node->released)
            st = empo_fail(EMPO_E_STATE, "backward: graph through '%s' was already freed by an earlier backward",
                           node->name);
        else
            st = run_node(node);
    }
    for (int k = 0; k < order.n; k++) {
        empo_node *node = order.items[k];
        empo_tensor_release(node->pending);
        node->pending = NULL;
        if (!retain_graph) node_free_graph(node);
    }
    empo_grad_set_enabled(prev);
    free(order.items);
    return st;
}

/* ---- broadcasting backward ---- */
/* On a device: the leading dims summed away, then each broadcast dim summed
 * to size 1, each by one pass of the device's sum kernel. */
static int reduce_on_device(empo_tensor **out, empo_tensor *grad, int ndim, const int64_t *shape) {
    const int device = empo_tensor_device(grad);
    const empo_kernel_table *K = empo_kernels_device(device);
    empo_tensor *cur = NULL;
    EMPO_TRY(empo_contiguous_nograd(&cur, grad));
    int64_t cshape[EMPO_MAX_DIMS];
    const int lead = grad->ndim - ndim;
    memcpy(cshape, grad->shape + lead, sizeof(int64_t) * (size_t)ndim);
    /* dim k of the passes: -1 for the leading dims at once, then 0..ndim-1 */
    for (int k = lead > 0 ? -1 : 0; k < ndim; k++) {
        int64_t outer = 1, n, inner = 1;
        if (k < 0) {
            n = 1;
            for (int d = 0; d < lead; d++) n *= grad->shape[d];
            for (int d = 0; d < ndim; d++) inner *= cshape[d];
        } else {
            if (shape[k] != 1 || cshape[k] == 1) continue;
            n = cshape[k];
            for (int d = 0; d < k; d++) outer *= cshape[d];
            for (int d = k + 1; d < ndim; d++) inner *= cshape[d];
            cshape[k] = 1;
        }
        empo_tensor *next = empo_tensor_new_on(ndim, cshape, EMPO_F32, device);
        if (!next) {
            empo_tensor_release(cur);
            return EMPO_E_NOMEM;
        }
        K->sum_dim(empo_tensor_data(next), empo_tensor_data(cur), outer, n, inner);
        empo_tensor_release(cur);
        cur = next;
    }
    *out = cur;
    return EMPO_OK;
}

int empo_reduce_to_shape(empo_tensor **out, empo_tensor *grad, int ndim, const int64_t *shape) {
    if (grad->ndim == ndim && memcmp(grad->shape, shape, sizeof(int64_t) * (size_t)ndim) == 0) {
        empo_tensor_retain(grad);
        *out = grad;
        return EMPO_OK;
    }
    if (empo_tensor_device(grad) != EMPO_CPU) return reduce_on_device(out, grad, ndim, shape);
    empo_tensor *r = NULL;
    EMPO_TRY(empo_tensor_zeros(&r, ndim, shape, EMPO_F32));
    /* strides of r seen with grad's shape: 0 on reduced dims */
    int64_t rstr[EMPO_MAX_DIMS];
    empo_broadcast_strides(r, grad->ndim, grad->shape, rstr);
    float *dst = empo_tensor_data(r);
    const float *src = (const float *)grad->storage->data + grad->offset;
    int64_t n = empo_tensor_numel(grad), inner = grad->ndim ? grad->shape[grad->ndim - 1] : 1;
    int64_t rs = grad->ndim ? rstr[grad->ndim - 1] : 0, gs = grad->ndim ? grad->strides[grad->ndim - 1] : 1;
    for (int64_t row = 0; inner && row < n / inner; row++) {
        float *d = dst + empo_linear_offset(row, grad->ndim - 1, grad->shape, rstr);
        const float *s = src + empo_linear_offset(row, grad->ndim - 1, grad->shape, grad->strides);
        if (rs == 0) {
            double acc = 0;
            for (int64_t i = 0; i < inner; i++) acc += s[i * gs];
            d[0] += (float)acc;
        } else {
            for (int64_t i = 0; i < inner; i++) d[i * rs] += s[i * gs];
        }
    }
    *out = r;
    return EMPO_OK;
}
