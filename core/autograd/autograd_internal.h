/* autograd_internal.h — the tape's interface to the ops (inside libempo):
 * the node struct, recording a node for an op's output, saving what its
 * backward needs, and summing a broadcast gradient back to an input's
 * shape. Not part of the public API. Below it: the tensor layer. */
#ifndef EMPO_AUTOGRAD_INTERNAL_H
#define EMPO_AUTOGRAD_INTERNAL_H
#include "tensor/tensor_internal.h"

typedef struct empo_node empo_node;
/* Computes gradients of the node's inputs from grad_out (the gradient of
 * its one output, contiguous f32 of the output's shape). gin[i] receives a
 * new tensor with inputs[i]'s shape, or stays NULL (no gradient). Runs in
 * no-grad mode. */
typedef int (*empo_backward_fn)(empo_node *node, empo_tensor *grad_out, empo_tensor **gin);

enum { EMPO_NODE_INLINE = 4, EMPO_NODE_SAVED = 6, EMPO_NODE_PARAMS = 8 };

struct empo_node {
    empo_node_ref ref;             /* first: what the tensor layer sees */
    const char *name;              /* op name, static string */
    empo_backward_fn backward;
    int n_inputs;
    empo_tensor **inputs;          /* retained; NULL entries need no grad */
    empo_tensor *inline_inputs[EMPO_NODE_INLINE];
    empo_tensor *saved[EMPO_NODE_SAVED];   /* retained extra tensors (outputs, stats) */
    double f[EMPO_NODE_PARAMS];    /* op parameters */
    int64_t i[EMPO_NODE_PARAMS];
    int64_t out_shape[EMPO_MAX_DIMS];
    int out_ndim;
    int released;                  /* graph freed after backward */
    /* engine scratch */
    empo_tensor *pending;          /* accumulated grad of the output */
    int mark;
};

/* True when grad mode is on and any input requires grad. NULLs allowed. */
int empo_any_requires_grad(int n, empo_tensor *const *inputs);
/* Records node for `out` computed from inputs (only those that require grad
 * are kept). Returns the node so the op can save tensors and parameters,
 * or NULL (no error) when no gradient is needed. On allocation failure sets
 * the error and returns NULL with *status = EMPO_E_NOMEM. */
void empo_node_retain(empo_node *node);
void empo_node_release(empo_node *node);
empo_node *empo_node_record(const char *name, empo_backward_fn backward, empo_tensor *out, int n,
                            empo_tensor *const *inputs, int *status);
/* Saves t (retained) in slot k of node. Never pass the op's own output
 * here: output -> node -> output would be a reference cycle (a leak); use
 * empo_node_save_output, which keeps a detached alias of its memory. */
void empo_node_save(empo_node *node, int k, empo_tensor *t);
int empo_node_save_output(empo_node *node, int k, empo_tensor *out);
/* Sums grad (shape of broadcast result) down to shape (ndim, shape). */
int empo_reduce_to_shape(empo_tensor **out, empo_tensor *grad, int ndim, const int64_t *shape);

#endif
