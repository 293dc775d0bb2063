/* The mixed op of DARTS / Auto-DeepLab: y = sum_i softmax(logits)_i * x_i
 * (Eq. (2)-(3) of Auto-DeepLab; the same for the path weights beta). A NULL
 * x_i is the zero op ('none'): it contributes nothing to y but still takes
 * softmax mass, so its logit still gets a gradient.
 *
 * This runs for every edge of every cell of the supernet, forward and
 * backward, so both directions make one pass over memory: the tensors are
 * walked in blocks small enough that the output (forward) or the incoming
 * gradient (backward) block stays in L1 while each input streams through
 * once. Backward computes dx_i = w_i dy and the dot products d_i = <dy, x_i>
 * for the logits in the same loop, then applies the softmax Jacobian:
 * dlogit_j = w_j (d_j - sum_k w_k d_k). */
#include <math.h>
#include <string.h>

#include "ops/ops_common.h"

/* 2048 floats = 8 KB: an output block plus the current input blocks fit L1. */
#define WS_BLOCK 2048

/* The non-NULL inputs, compacted, with their softmax weights. */
typedef struct ws_terms {
    int m;
    const float **x;
    float *w;
    int *index; /* position in the caller's list */
} ws_terms;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Softmax of n logits, in double for the weights the whole cell depends on. */
static void softmax_weights(const float *logits, int n, float *w)
{
    double m = logits[0], s = 0;
    for (int i = 1; i < n; i++) m = logits[i] > m ? logits[i] : m;
    for (int i = 0; i < n; i++) s += exp((double)logits[i] - m);
    for (int i = 0; i < n; i++) w[i] = (float)(exp((double)logits[i] - m) / s);
}

/* ---- forward ------------------------------------------------------------------ */
/* y[off, off+len) = sum_i w_i x_i, two inputs per sweep to halve the output
 * traffic through L1. */
static void forward_block(float *restrict y, int64_t off, int64_t len, const ws_terms *t)
{
    y += off;
    int i;
    if (t->m % 2) {
        const float *restrict a = t->x[0] + off;
        float wa = t->w[0];
#pragma omp simd
        for (int64_t j = 0; j < len; j++) y[j] = wa * a[j];
        i = 1;
    } else {
        const float *restrict a = t->x[0] + off, *restrict b = t->x[1] + off;
        float wa = t->w[0], wb = t->w[1];
#pragma omp simd
        for (int64_t j = 0; j < len; j++) y[j] = wa * a[j] + wb * b[j];
        i = 2;
    }
    for (; i < t->m; i += 2) {
        const float *restrict a = t->x[i] + off, *restrict b = t->x[i + 1] + off;
        float wa = t->w[i], wb = t->w[i + 1];
#pragma omp simd
        for (int64_t j = 0; j < len; j++) y[j] += wa * a[j] + wb * b[j];
    }
}

static void forward(float *y, int64_t numel, const ws_terms *t)
{
    int64_t nblocks = (numel + WS_BLOCK - 1) / WS_BLOCK;
#pragma omp parallel for if (numel > SN_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t off = b * WS_BLOCK;
        forward_block(y, off, min64(WS_BLOCK, numel - off), t);
    }
}

/* ---- backward ----------------------------------------------------------------- */
/* gx[j] (+)= w dy[j] over one block; returns <dy, x> when `dot`. A fresh
 * gradient (nothing accumulated into it yet) is written, not added to: it
 * skips the zero fill and a read of the whole buffer. */
static float axpy_dot(float *restrict g, const float *restrict dy, const float *restrict x, float w,
                      int64_t len, bool fresh, bool dot)
{
    float d = 0;
    if (g && fresh && dot) {
#pragma omp simd reduction(+ : d)
        for (int64_t j = 0; j < len; j++) {
            g[j] = w * dy[j];
            d += dy[j] * x[j];
        }
    } else if (g && dot) {
#pragma omp simd reduction(+ : d)
        for (int64_t j = 0; j < len; j++) {
            g[j] += w * dy[j];
            d += dy[j] * x[j];
        }
    } else if (g && fresh) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++) g[j] = w * dy[j];
    } else if (g) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++) g[j] += w * dy[j];
    } else if (dot) {
#pragma omp simd reduction(+ : d)
        for (int64_t j = 0; j < len; j++) d += dy[j] * x[j];
    }
    return d;
}

/* For one block: gx_i (+)= w_i dy (when gx_i) and dot_i += <dy, x_i> (when
 * dots). The dy block is read from L1 by every input. */
static void backward_block(const float *dy, int64_t off, int64_t len, const ws_terms *t, float *const *gx,
                           const bool *fresh, double *dots)
{
    for (int i = 0; i < t->m; i++) {
        float d = axpy_dot(gx[i] ? gx[i] + off : NULL, dy + off, t->x[i] + off, t->w[i], len, fresh[i],
                           dots != NULL);
        if (dots) dots[i] += d;
    }
}

/* Runs the blocks on `nt` threads, each over a contiguous range, with
 * per-thread partial dot products summed afterwards in thread order so the
 * result does not depend on OpenMP's reduction order. */
static void backward(const float *dy, int64_t numel, const ws_terms *t, float *const *gx, const bool *fresh,
                     double *part, int nt)
{
    int64_t nblocks = (numel + WS_BLOCK - 1) / WS_BLOCK;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int th = 0; th < nt; th++) {
        double *dots = part ? part + (int64_t)th * t->m : NULL;
        for (int64_t b = nblocks * th / nt; b < nblocks * (th + 1) / nt; b++) {
            int64_t off = b * WS_BLOCK;
            backward_block(dy, off, min64(WS_BLOCK, numel - off), t, gx, fresh, dots);
        }
    }
}

/* dlogit_j += w_j (d_j - sum_k w_k d_k), the softmax Jacobian applied to
 * d_j = dL/dw_j (0 for the zero op). */
static void logits_grad(float *glog, int n, const float *w, const double *d)
{
    double s = 0;
    for (int j = 0; j < n; j++) s += w[j] * d[j];
    for (int j = 0; j < n; j++) glog[j] += (float)(w[j] * (d[j] - s));
}

/* Gathers the non-NULL inputs with their weights (arrays in the step arena). */
static int gather(sn_ctx *ctx, sn_tensor *const *xs, int n, const float *w, ws_terms *t)
{
    t->x = sn_step_alloc(ctx, (size_t)n * sizeof *t->x);
    t->w = sn_step_alloc(ctx, (size_t)n * sizeof *t->w);
    t->index = sn_step_alloc(ctx, (size_t)n * sizeof *t->index);
    if (!t->x || !t->w || !t->index) return ctx_status(ctx);
    t->m = 0;
    for (int i = 0; i < n; i++) {
        if (!xs[i]) continue;
        t->x[t->m] = xs[i]->data;
        t->w[t->m] = w[i];
        t->index[t->m++] = i;
    }
    return SN_OK;
}

/* The gradient buffer of x (NULL when x needs none). In a supernet an op's
 * output feeds only its mixed op, so its gradient usually does not exist
 * yet: then it is allocated without the zero fill of sn_grad_of and marked
 * fresh, and the first write covers every element. A tensor listed twice is
 * fresh only for its first entry, which every block handles first. */
static int grad_buffer(sn_ctx *ctx, sn_tensor *x, float **g, bool *fresh)
{
    *g = NULL;
    *fresh = false;
    if (!x->requires_grad) return SN_OK;
    *g = sn_grad_for_write(ctx, x, fresh);
    return *g ? SN_OK : ctx_status(ctx);
}

static int ws_backward(sn_ctx *ctx, sn_node *node)
{
    int n = node->n_in - 1;
    sn_tensor *logits = node->in[n];
    const float *w = node->saved;
    ws_terms t;
    if (gather(ctx, node->in, n, w, &t)) return ctx_status(ctx);
    float **gx = sn_step_alloc(ctx, (size_t)t.m * sizeof *gx);
    bool *fresh = sn_step_alloc(ctx, (size_t)t.m * sizeof *fresh);
    if (!gx || !fresh) return ctx_status(ctx);
    for (int i = 0; i < t.m; i++)
        if (grad_buffer(ctx, node->in[t.index[i]], &gx[i], &fresh[i])) return ctx_status(ctx);
    int64_t numel = node->out->numel;
    int nt = numel > SN_PAR_MIN ? sn_get_num_threads() : 1;
    double *part = NULL;
    if (logits->requires_grad) {
        part = sn_step_calloc(ctx, (size_t)nt * (size_t)t.m * sizeof *part);
        if (!part) return ctx_status(ctx);
    }
    backward(node->out->grad, numel, &t, gx, fresh, part, nt);
    if (!part) return SN_OK;
    float *glog = sn_grad_of(ctx, logits);
    double *d = sn_step_calloc(ctx, (size_t)n * sizeof *d);
    if (!glog || !d) return ctx_status(ctx);
    for (int th = 0; th < nt; th++)
        for (int i = 0; i < t.m; i++) d[t.index[i]] += part[(int64_t)th * t.m + i];
    logits_grad(glog, n, w, d);
    return SN_OK;
}

static const sn_op_info weighted_sum_op = {"weighted_sum", ws_backward};

/* ---- builder ------------------------------------------------------------------- */
static int check_inputs(sn_ctx *ctx, int n, sn_tensor *const *xs, const sn_tensor *logits)
{
    if (n < 1) return sn_ctx_fail(ctx, SN_ERR_ARG, "weighted_sum: needs at least one input, got %d", n);
    char sa[64], sb[64];
    if (logits->numel != n)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "weighted_sum: %d inputs but logits %s have %lld elements", n,
                           sn_shape_str(logits, sa, sizeof sa), (long long)logits->numel);
    const sn_tensor *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!xs[i]) continue;
        if (!first) first = xs[i];
        else if (!sn_same_shape(first, xs[i]))
            return sn_ctx_fail(ctx, SN_ERR_SHAPE, "weighted_sum: input %d is %s but earlier ones are %s", i,
                               sn_shape_str(xs[i], sa, sizeof sa), sn_shape_str(first, sb, sizeof sb));
    }
    if (!first) return sn_ctx_fail(ctx, SN_ERR_ARG, "weighted_sum: all %d inputs are the zero op", n);
    return SN_OK;
}

sn_tensor *sn_weighted_sum(sn_ctx *ctx, int n, sn_tensor *const *xs, sn_tensor *logits)
{
    /* NULL entries of xs are the zero op, not failures: a failed builder
     * upstream has set the context status, which sn_any_null checks. */
    if (sn_any_null(ctx, &logits, 1)) return NULL;
    if (!xs) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "weighted_sum: NULL input list");
        return NULL;
    }
    if (check_inputs(ctx, n, xs, logits)) return NULL;
    float *w = sn_step_alloc(ctx, (size_t)n * sizeof *w);
    if (!w) return NULL;
    softmax_weights(logits->data, n, w);
    ws_terms t;
    if (gather(ctx, xs, n, w, &t)) return NULL;
    sn_tensor *y = sn_tensor_empty_like(ctx, xs[t.index[0]]);
    if (!y) return NULL;
    forward(y->data, y->numel, &t);
    /* Inputs: the n entries (NULL ones included) then the logits. */
    sn_tensor **in = sn_step_alloc(ctx, (size_t)(n + 1) * sizeof *in);
    if (!in) return NULL;
    memcpy(in, xs, (size_t)n * sizeof *in);
    in[n] = logits;
    if (sn_needs_grad(ctx, in, n + 1)) {
        sn_node *node = sn_record(ctx, &weighted_sum_op, y, in, n + 1, (size_t)n * sizeof(float));
        if (!node) return NULL;
        memcpy(node->saved, w, (size_t)n * sizeof(float));
    }
    return y;
}
