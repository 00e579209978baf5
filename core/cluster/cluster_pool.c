/* cluster_pool.c — the arena an answer's parse lives in (cl_pool in
 * cluster_internal.h): nodes, elements and values in growable arrays,
 * addressed by index so that growing never invalidates them. Used by the
 * parser (cluster_parse.c) and the group API (cluster_group.c). */
#include <stdlib.h>
#include <string.h>
#include "cluster_internal.h"

void cl_pool_init(cl_pool *p) { memset(p, 0, sizeof *p); }

void cl_pool_free(cl_pool *p) {
    free(p->nodes);
    free(p->elems);
    free(p->vals);
    free(p->text);
    free(p->scratch);
    free(p->limbs);
    memset(p, 0, sizeof *p);
}

/* Makes room for one more item of size `size` in *items (count n, capacity cap). */
static int grow(void **items, int32_t n, int32_t *cap, size_t size) {
    if (n < *cap) return 1;
    int32_t want = *cap ? *cap * 2 : 64;
    void *q = realloc(*items, (size_t)want * size);
    if (!q) return 0;
    *items = q;
    *cap = want;
    return 1;
}

int32_t cl_new_node(cl_pool *p) {
    if (!grow((void **)&p->nodes, p->n_nodes, &p->cap_nodes, sizeof *p->nodes)) return -1;
    memset(&p->nodes[p->n_nodes], 0, sizeof *p->nodes);
    p->nodes[p->n_nodes].a = p->nodes[p->n_nodes].b = -1;
    return p->n_nodes++;
}

int32_t cl_new_elem(cl_pool *p) {
    if (!grow((void **)&p->elems, p->n_elems, &p->cap_elems, sizeof *p->elems)) return -1;
    memset(&p->elems[p->n_elems], 0, sizeof *p->elems);
    return p->n_elems++;
}

int32_t cl_new_val(cl_pool *p) {
    if (!grow((void **)&p->vals, p->n_vals, &p->cap_vals, sizeof *p->vals)) return -1;
    memset(&p->vals[p->n_vals], 0, sizeof *p->vals);
    return p->n_vals++;
}
