/* adamw.c (ref) — naive optimizer kernels: the definition the fast ones in
 * kernels/cpu/adamw.c are tested against. AdamW is computed in double from
 * the f32 inputs, so it is the more exact of the two. */
#include <math.h>
#include "kernels/adamw.h"

void empo_ref_adamw(float *p, float *m, float *v, const float *g, int64_t n, const empo_adamw_scalars *s) {
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i];
        double mi = (double)s->beta1 * m[i] + (double)s->one_minus_beta1 * gi;
        double vi = (double)s->beta2 * v[i] + (double)s->one_minus_beta2 * gi * gi;
        double pi = (double)p[i] * s->decay;
        pi -= (double)s->step_size * mi / (sqrt(vi) / s->bc2_sqrt + s->eps);
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)pi;
    }
}

double empo_ref_sumsq(const float *x, int64_t n) {
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)x[i] * x[i];
    return acc;
}

void empo_ref_scale(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] *= scale;
}
