/* parity_gen.c — the harness of the PyTorch parity generator (see
 * parity_gen.h) and its main: parity_gen OUTDIR runs every case family and
 * writes OUTDIR/manifest.jsonl and OUTDIR/case_NNNN.bin.
 *
 * It only records what empo computed; check_torch.py judges it. It exits
 * non-zero only when it cannot write its output. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "parity_gen.h"

enum { MAX_IN = 8, MAX_OUT = 4, JSON_CAP = 4096 };

typedef struct pg_input_rec {
    char name[24];
    empo_tensor *base;       /* contiguous leaf: f32, or i32/i64/u8 */
    empo_tensor *view;       /* what the op sees (a reference of its own) */
    char chain[256];         /* JSON list of the view ops, base -> view */
    int grad;                /* base requires grad */
} pg_input_rec;

struct pg_case {
    int id;
    char op[32];
    char params[JSON_CAP];   /* "key":value,... */
    char error[512];         /* first failure while building the case */
    int nin, nout;
    pg_input_rec in[MAX_IN];
    empo_tensor *out[MAX_OUT];
};

static const char *g_dir;
static FILE *g_manifest;
static int g_cases, g_next_id;
static uint64_t g_rng;

pg_dist pg_unif(double lo, double hi) { return (pg_dist){PG_UNIF, lo, hi}; }
pg_dist pg_away(double lo, double hi) { return (pg_dist){PG_AWAY, lo, hi}; }
pg_dist pg_distinct(void) { return (pg_dist){PG_DISTINCT, 0, 0}; }
pg_dist pg_levels(double offset) { return (pg_dist){PG_LEVELS, offset, 0}; }
pg_dist pg_ties(void) { return (pg_dist){PG_LEVELS, 0, 1}; }
pg_dist pg_banned(double lo, double hi) { return (pg_dist){PG_BANNED, lo, hi}; }

/* ---- deterministic random numbers (xorshift64*) ---- */
static uint64_t next_u64(void) {
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}
static double next_unit(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }
static int64_t next_int(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo)); }

static void fill(float *p, int64_t n, pg_dist d) {
    if (d.kind == PG_DISTINCT) {
        /* a random permutation of 0..n-1, centred, spaced h apart, plus noise < 0.3 h */
        int64_t *perm = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = next_int(0, i + 1), t = perm[i];
            perm[i] = perm[j]; perm[j] = t;
        }
        double h = n > 30 ? 3.0 / (double)n : 0.1;
        for (int64_t i = 0; i < n; i++) p[i] = (float)(h * ((double)perm[i] - 0.5 * (double)n + 0.3 * next_unit()));
        free(perm);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double u = next_unit();
        switch (d.kind) {
        case PG_UNIF: p[i] = (float)(d.lo + (d.hi - d.lo) * u); break;
        case PG_BANNED: p[i] = i % 3 == 1 ? -INFINITY : (float)(d.lo + (d.hi - d.lo) * u); break;
        case PG_AWAY: p[i] = (float)((d.lo + (d.hi - d.lo) * u) * (next_u64() & 1 ? 1 : -1)); break;
        default:   /* PG_LEVELS: hi = 1 means exact ties on a 0.5 grid */
            if (d.hi > 0) p[i] = (float)(0.5 * (double)next_int(-2, 3));
            else p[i] = (float)(0.2 * (double)next_int(-5, 6) + d.lo + 0.01 * u);
        }
    }
}

/* ---- JSON helpers ---- */
static void jcat(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jcat(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

static void jshape(char *buf, size_t cap, int n, const int64_t *s) {
    jcat(buf, cap, "[");
    for (int i = 0; i < n; i++) jcat(buf, cap, "%s%lld", i ? "," : "", (long long)s[i]);
    jcat(buf, cap, "]");
}

static void jstring(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void tensor_shape(const empo_tensor *t, int64_t *s) {
    for (int i = 0; i < empo_tensor_ndim(t); i++) s[i] = empo_tensor_size(t, i);
}

/* ---- building a case ---- */
static void case_error(pg_case *c, const char *what) {
    if (!c->error[0]) snprintf(c->error, sizeof c->error, "%s: %s", what, empo_last_error());
}

pg_case *pg_begin(const char *op) {
    pg_case *c = calloc(1, sizeof *c);
    c->id = g_next_id++;
    snprintf(c->op, sizeof c->op, "%s", op);
    g_rng = 0x9E3779B97F4A7C15ull * (uint64_t)(c->id + 1) ^ 0xD1B54A32D192ED03ull;
    return c;
}

void pg_param_i(pg_case *c, const char *key, int64_t v) {
    jcat(c->params, sizeof c->params, "%s\"%s\":%lld", c->params[0] ? "," : "", key, (long long)v);
}
void pg_param_f(pg_case *c, const char *key, double v) {
    jcat(c->params, sizeof c->params, "%s\"%s\":%.17g", c->params[0] ? "," : "", key, v);
}
void pg_param_shape(pg_case *c, const char *key, int n, const int64_t *v) {
    jcat(c->params, sizeof c->params, "%s\"%s\":", c->params[0] ? "," : "", key);
    jshape(c->params, sizeof c->params, n, v);
}

static pg_input_rec *new_input(pg_case *c, const char *name) {
    if (c->nin >= MAX_IN) { snprintf(c->error, sizeof c->error, "too many inputs"); return NULL; }
    pg_input_rec *r = &c->in[c->nin++];
    snprintf(r->name, sizeof r->name, "%s", name);
    strcpy(r->chain, "[]");
    return r;
}

/* The base shape for `layout` and the view ops that turn the base into the
 * logical shape; fills r->view. */
static int apply_layout(pg_input_rec *r, int nd, const int64_t *shape, pg_layout L) {
    empo_tensor *b = r->base, *v = NULL;
    int st = EMPO_OK;
    r->chain[0] = 0;
    switch (L.kind) {
    case PG_K_SWAP: {
        int d0 = L.d0 < 0 ? L.d0 + nd : L.d0, d1 = L.d1 < 0 ? L.d1 + nd : L.d1;
        st = empo_transpose(&v, b, d0, d1);
        jcat(r->chain, sizeof r->chain, "[[\"transpose\",%d,%d]]", d0, d1);
        break;
    }
    case PG_K_NARROW:
        st = empo_narrow(&v, b, nd - 1, 1, shape[nd - 1]);
        jcat(r->chain, sizeof r->chain, "[[\"narrow\",%d,1,%lld]]", nd - 1, (long long)shape[nd - 1]);
        break;
    case PG_K_SLICE:
        st = empo_slice(&v, b, 0, 1, 2 * shape[0] + 1, 2);
        jcat(r->chain, sizeof r->chain, "[[\"slice\",0,1,%lld,2]]", (long long)(2 * shape[0] + 1));
        break;
    case PG_K_EXPAND:
        st = empo_expand(&v, b, nd, shape);
        jcat(r->chain, sizeof r->chain, "[[\"expand\",");
        jshape(r->chain, sizeof r->chain, nd, shape);
        jcat(r->chain, sizeof r->chain, "]]");
        break;
    default:
        v = b;
        empo_tensor_retain(b);
        strcpy(r->chain, "[]");
    }
    r->view = v;
    return st;
}

static void base_shape(int nd, const int64_t *shape, pg_layout L, int64_t *bs) {
    if (nd > 0) memcpy(bs, shape, sizeof(int64_t) * (size_t)nd);
    if (L.kind == PG_K_SWAP) {
        int d0 = L.d0 < 0 ? L.d0 + nd : L.d0, d1 = L.d1 < 0 ? L.d1 + nd : L.d1;
        bs[d0] = shape[d1];
        bs[d1] = shape[d0];
    } else if (L.kind == PG_K_NARROW) {
        bs[nd - 1] += 3;
    } else if (L.kind == PG_K_SLICE) {
        bs[0] = 2 * shape[0] + 1;
    } else if (L.kind == PG_K_EXPAND) {
        bs[0] = 1;
    }
}

static empo_tensor *float_input(pg_case *c, const char *name, int nd, const int64_t *shape, pg_layout L,
                                pg_dist dist, int grad) {
    pg_input_rec *r = new_input(c, name);
    if (!r) return NULL;
    int64_t bs[EMPO_MAX_DIMS];
    base_shape(nd, shape, L, bs);
    if (empo_tensor_empty(&r->base, nd, bs, EMPO_F32) != EMPO_OK) { case_error(c, name); return NULL; }
    fill(empo_tensor_data(r->base), empo_tensor_numel(r->base), dist);
    r->grad = grad;
    if (grad && empo_tensor_set_requires_grad(r->base, 1) != EMPO_OK) { case_error(c, name); return NULL; }
    if (apply_layout(r, nd, shape, L) != EMPO_OK) { case_error(c, name); return NULL; }
    return r->view;
}

empo_tensor *pg_input(pg_case *c, const char *name, int nd, const int64_t *shape, pg_layout L, pg_dist dist) {
    return float_input(c, name, nd, shape, L, dist, 1);
}

empo_tensor *pg_const(pg_case *c, const char *name, int nd, const int64_t *shape, pg_dist dist) {
    return float_input(c, name, nd, shape, PG_PLAIN, dist, 0);
}

empo_tensor *pg_ints_of(pg_case *c, const char *name, int nd, const int64_t *shape, int dtype,
                        const int64_t *values) {
    pg_input_rec *r = new_input(c, name);
    if (!r) return NULL;
    if (empo_tensor_from_buffer(&r->base, nd, shape, dtype, values, EMPO_I64) != EMPO_OK) {
        case_error(c, name);
        return NULL;
    }
    r->view = r->base;
    empo_tensor_retain(r->base);
    return r->view;
}

empo_tensor *pg_ints(pg_case *c, const char *name, int nd, const int64_t *shape, int dtype, int64_t lo,
                     int64_t hi) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) v[i] = next_int(lo, hi);
    empo_tensor *t = pg_ints_of(c, name, nd, shape, dtype, v);
    free(v);
    return t;
}

void pg_output(pg_case *c, empo_tensor *y) {
    if (!y) return;
    if (c->nout >= MAX_OUT) { empo_tensor_release(y); return; }
    c->out[c->nout++] = y;
}

/* ---- writing a case ---- */
typedef struct { FILE *f; long pos; } bin_writer;

/* Writes t's logical values (f32 for floats, i64 otherwise); returns the offset. */
static long write_values(bin_writer *w, const empo_tensor *t, int *is_float) {
    int64_t n = empo_tensor_numel(t);
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    empo_tensor_read_f64(t, v);
    long at = w->pos;
    int dt = empo_tensor_dtype(t);
    *is_float = dt == EMPO_F32 || dt == EMPO_F64 || dt == EMPO_BF16 || dt == EMPO_F16;
    for (int64_t i = 0; i < n; i++) {
        if (*is_float) { float x = (float)v[i]; fwrite(&x, 4, 1, w->f); w->pos += 4; }
        else { int64_t x = (int64_t)v[i]; fwrite(&x, 8, 1, w->f); w->pos += 8; }
    }
    free(v);
    return at;
}

static void json_tensor(FILE *m, const char *kind, const empo_tensor *t, long off, int is_float) {
    int64_t s[EMPO_MAX_DIMS];
    char buf[256] = "";
    tensor_shape(t, s);
    jshape(buf, sizeof buf, empo_tensor_ndim(t), s);
    fprintf(m, "\"%s\":%s,\"dtype\":\"%s\",\"offset\":%ld", kind, buf, is_float ? "f32" : "i64", off);
}

/* loss = sum_k sum(out_k * W_k) over the float outputs, then backward.
 * W[k] receives each float output's weight tensor (NULL for integer ones). */
static int run_backward(pg_case *c, empo_tensor **W) {
    empo_tensor *loss = NULL;
    int st = EMPO_OK, any = 0;
    for (int k = 0; k < c->nout && st == EMPO_OK; k++) {
        empo_tensor *y = c->out[k], *p = NULL, *s = NULL;
        W[k] = NULL;
        if (empo_tensor_dtype(y) != EMPO_F32) continue;
        int64_t sh[EMPO_MAX_DIMS];
        tensor_shape(y, sh);
        st = empo_tensor_empty(&W[k], empo_tensor_ndim(y), sh, EMPO_F32);
        if (st != EMPO_OK) break;
        fill(empo_tensor_data(W[k]), empo_tensor_numel(W[k]), pg_unif(-1, 1));
        if (!empo_tensor_requires_grad(y)) continue;
        st = empo_mul(&p, y, W[k]);
        if (st == EMPO_OK) st = empo_sum(&s, p);
        empo_tensor_release(p);
        if (st == EMPO_OK && loss) {
            empo_tensor *t = NULL;
            st = empo_add(&t, loss, s);
            empo_tensor_release(loss);
            empo_tensor_release(s);
            s = t;
        }
        loss = s;
        any = 1;
    }
    if (st == EMPO_OK && any) st = empo_backward(loss, NULL, 0);
    empo_tensor_release(loss);
    return st;
}

static void write_case(pg_case *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/case_%04d.bin", g_dir, c->id);
    bin_writer w = {fopen(path, "wb"), 0};
    if (!w.f) { fprintf(stderr, "parity_gen: cannot write %s: %s\n", path, strerror(errno)); exit(2); }
    empo_tensor *W[MAX_OUT] = {0};
    int st = run_backward(c, W);
    if (st != EMPO_OK) case_error(c, "backward");

    FILE *m = g_manifest;
    fprintf(m, "{\"id\":%d,\"op\":\"%s\",\"file\":\"case_%04d.bin\",\"params\":{%s},\"inputs\":[", c->id, c->op,
            c->id, c->params);
    for (int i = 0; i < c->nin; i++) {
        pg_input_rec *r = &c->in[i];
        int isf;
        long off = write_values(&w, r->base, &isf);
        fprintf(m, "%s{\"name\":\"%s\",", i ? "," : "", r->name);
        json_tensor(m, "base_shape", r->base, off, isf);
        fprintf(m, ",\"empo_dtype\":\"%s\",\"view\":%s,\"noncontig\":%s,\"grad\":%s",
                empo_dtype_name(empo_tensor_dtype(r->base)), r->chain,
                r->view && !empo_tensor_is_contiguous(r->view) ? "true" : "false", r->grad ? "true" : "false");
        if (r->grad) {
            empo_tensor *g = NULL;
            empo_tensor_grad(&g, r->base);
            if (g) {
                int gf;
                fprintf(m, ",\"grad_offset\":%ld", write_values(&w, g, &gf));
                empo_tensor_release(g);
            }
        }
        fprintf(m, "}");
    }
    fprintf(m, "],\"outputs\":[");
    for (int k = 0; k < c->nout; k++) {
        int isf;
        long off = write_values(&w, c->out[k], &isf);
        fprintf(m, "%s{", k ? "," : "");
        json_tensor(m, "shape", c->out[k], off, isf);
        if (W[k]) fprintf(m, ",\"w_offset\":%ld", write_values(&w, W[k], &isf));
        fprintf(m, ",\"requires_grad\":%s}", empo_tensor_requires_grad(c->out[k]) ? "true" : "false");
        empo_tensor_release(W[k]);
    }
    fprintf(m, "]");
    if (c->error[0]) { fprintf(m, ",\"error\":"); jstring(m, c->error); }
    fprintf(m, "}\n");
    fclose(w.f);
}

void pg_end(pg_case *c, int status) {
    if (status != EMPO_OK) case_error(c, "op");
    if (!c->error[0] && c->nout == 0) snprintf(c->error, sizeof c->error, "%s: no output", c->op);
    if (c->error[0]) {
        /* record only the failure: the oracle counts it as one */
        for (int k = 0; k < c->nout; k++) empo_tensor_release(c->out[k]);
        c->nout = 0;
        fprintf(stderr, "parity_gen: case %d (%s) failed: %s\n", c->id, c->op, c->error);
    }
    write_case(c);
    for (int k = 0; k < c->nout; k++) empo_tensor_release(c->out[k]);
    for (int i = 0; i < c->nin; i++) {
        empo_tensor_release(c->in[i].view);
        empo_tensor_release(c->in[i].base);
    }
    free(c);
    g_cases++;
}

void pg_skip(const char *op) {
    printf("%-16s SKIPPED (not built)\n", op);
    fprintf(g_manifest, "{\"id\":%d,\"op\":\"%s\",\"skipped\":true}\n", g_next_id++, op);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: parity_gen OUTDIR\n"); return 2; }
    g_dir = argv[1];
    mkdir(g_dir, 0777);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.jsonl", g_dir);
    g_manifest = fopen(path, "w");
    if (!g_manifest) { fprintf(stderr, "parity_gen: cannot write %s: %s\n", path, strerror(errno)); return 2; }
    empo_set_num_threads(2);
    pg_cases_elementwise();
    pg_cases_reduce();
    pg_cases_linalg();
    pg_cases_views();
    pg_cases_index();
    pg_cases_fused();
    fclose(g_manifest);
    printf("parity_gen: %d cases written to %s\n", g_cases, g_dir);
    return 0;
}
