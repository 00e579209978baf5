/* empo/autograd.h — reverse-mode automatic differentiation.
 *
 * Ops record a node when grad mode is on and an input requires grad. The
 * nodes form a graph from the outputs back to the leaves (the tape);
 * empo_backward walks it in reverse topological order, accumulates into the
 * leaves' .grad, and frees what the graph saved (unless retain_graph).
 *
 *     empo_tensor_set_requires_grad(w, 1);
 *     ... loss = f(w) ...
 *     empo_backward(loss, NULL, 0);      // loss must be a scalar
 *     empo_tensor *g; empo_tensor_grad(&g, w);
 *
 * Grad mode is per thread; empo_grad_set_enabled(0) is "no_grad". */
#ifndef EMPO_AUTOGRAD_H
#define EMPO_AUTOGRAD_H
#include "empo/tensor.h"

/* Returns the previous mode. */
int empo_grad_set_enabled(int enabled);
int empo_grad_is_enabled(void);

/* Only floating-point leaves can require grad. */
int empo_tensor_set_requires_grad(empo_tensor *t, int requires_grad);
int empo_tensor_requires_grad(const empo_tensor *t);
int empo_tensor_is_leaf(const empo_tensor *t);
/* Name of the op that produced t ("" for leaves). */
const char *empo_tensor_grad_fn(const empo_tensor *t);
/* *out = t.grad (new reference) or NULL when none was accumulated. */
int empo_tensor_grad(empo_tensor **out, const empo_tensor *t);
/* Replace t.grad (NULL clears it). The shape must match. */
int empo_tensor_set_grad(empo_tensor *t, empo_tensor *grad);
/* A new tensor sharing t's storage, cut from the graph. */
int empo_detach(empo_tensor **out, empo_tensor *t);

/* Backpropagate from root. grad may be NULL when root has one element
 * (then d root = 1). */
int empo_backward(empo_tensor *root, empo_tensor *grad, int retain_graph);

#endif
