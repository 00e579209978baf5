/* empo/optim.h — fused AdamW, global gradient norm, clipping.
 *
 * Parameters carry their gradient in .grad (see empo/autograd.h). The moment
 * tensors m and v have the parameters' shapes (f32) and are owned by the
 * caller (the Lua optimizer), so they can be saved in checkpoints.
 *
 *     double norm;
 *     empo_clip_grad_norm(n, params, 1.0, &norm);
 *     empo_adamw_step(n, params, m, v, &cfg, step);   // step counts from 1 */
#ifndef EMPO_OPTIM_H
#define EMPO_OPTIM_H
#include "empo/tensor.h"

typedef struct empo_adamw_config {
    double lr, beta1, beta2, eps, weight_decay;
} empo_adamw_config;

/* One AdamW update of every parameter with a gradient (others are skipped).
 * Decoupled weight decay: p -= lr * wd * p; bias-corrected moments. */
int empo_adamw_step(int n, empo_tensor *const *params, empo_tensor *const *m,
                    empo_tensor *const *v, const empo_adamw_config *cfg, int64_t step);
/* sqrt(sum of squares of every .grad); parameters without a grad count 0.
 * Fails with EMPO_E_NUMERIC naming the tensor when a grad is not finite
 * and check_finite != 0. */
int empo_grad_norm(int n, empo_tensor *const *params, int check_finite, double *norm);
/* Scales every .grad by min(1, max_norm / (norm + 1e-6)); returns the norm
 * before clipping. */
int empo_clip_grad_norm(int n, empo_tensor *const *params, double max_norm, double *norm);
/* Drops every .grad. */
int empo_zero_grad(int n, empo_tensor *const *params);

#endif
