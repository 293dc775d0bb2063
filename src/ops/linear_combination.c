/* y = sum_i c_i * x_i with each c_i one element of a coefficient tensor.
 * One fused pass forward; backward gives dx_i = c_i * dy and dc_i = <dy, x_i>
 * in one pass over dy. */
#include <string.h>

#include "ops/ops_common.h"

/* Node inputs: in[0..n) = xs, in[n..2n) = coefficient tensors; saved =
 * the n element indices. */
static int lincomb_backward(sn_ctx *ctx, sn_node *node)
{
    const int *index = node->saved;
    int n = node->n_in / 2;
    const float *gy = node->out->grad;
    int64_t numel = node->out->numel;
    for (int i = 0; i < n; i++) {
        sn_tensor *x = node->in[i], *c = node->in[n + i];
        if (x->requires_grad) {
            float *gx = sn_grad_of(ctx, x);
            if (!gx) return ctx_status(ctx);
            float ci = c->data[index[i]];
#pragma omp parallel for simd if (parallel : numel > SN_PAR_MIN) schedule(static)
            for (int64_t k = 0; k < numel; k++) gx[k] += ci * gy[k];
        }
        if (c->requires_grad) {
            float *gc = sn_grad_of(ctx, c);
            if (!gc) return ctx_status(ctx);
            const float *xd = x->data;
            double dot = 0;
#pragma omp parallel for simd reduction(+ : dot) if (parallel : numel > SN_PAR_MIN) schedule(static)
            for (int64_t k = 0; k < numel; k++) dot += (double)gy[k] * xd[k];
            gc[index[i]] += (float)dot;
        }
    }
    return SN_OK;
}

static const sn_op_info lincomb_op = {"linear_combination", lincomb_backward};

static int check_args(sn_ctx *ctx, int n, sn_tensor *const *xs, sn_tensor *const *coef, const int *index)
{
    for (int i = 0; i < n; i++) {
        if (!sn_same_shape(xs[i], xs[0])) {
            char a[64], b[64];
            return sn_ctx_fail(ctx, SN_ERR_SHAPE, "linear_combination: term %d is %s, term 0 is %s", i,
                               sn_shape_str(xs[i], a, sizeof a), sn_shape_str(xs[0], b, sizeof b));
        }
        if (index[i] < 0 || index[i] >= coef[i]->numel)
            return sn_ctx_fail(ctx, SN_ERR_ARG, "linear_combination: coefficient index %d of term %d outside 0..%lld",
                               index[i], i, (long long)coef[i]->numel - 1);
    }
    return SN_OK;
}

/* Blocks of y stay in L1 while the n terms are added into them. */
#define LINCOMB_BLOCK 2048

static void combine(int n, sn_tensor *const *xs, const float *c, float *y, int64_t numel)
{
    int64_t n_blocks = (numel + LINCOMB_BLOCK - 1) / LINCOMB_BLOCK;
#pragma omp parallel for if (parallel : numel > SN_PAR_MIN) schedule(static)
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        int64_t lo = blk * LINCOMB_BLOCK, hi = lo + LINCOMB_BLOCK < numel ? lo + LINCOMB_BLOCK : numel;
        const float *x0 = xs[0]->data;
#pragma omp simd
        for (int64_t k = lo; k < hi; k++) y[k] = c[0] * x0[k];
        for (int i = 1; i < n; i++) {
            const float *xi = xs[i]->data;
            float ci = c[i];
#pragma omp simd
            for (int64_t k = lo; k < hi; k++) y[k] += ci * xi[k];
        }
    }
}

sn_tensor *sn_linear_combination(sn_ctx *ctx, int n, sn_tensor *const *xs, sn_tensor *const *coef,
                                 const int *index)
{
    if (n < 1 || n > 64) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "linear_combination of %d tensors (1..64)", n);
        return NULL;
    }
    if (sn_any_null(ctx, xs, n) || sn_any_null(ctx, coef, n) || check_args(ctx, n, xs, coef, index)) return NULL;
    sn_tensor *y = sn_tensor_empty_like(ctx, xs[0]);
    if (!y) return NULL;
    float c[64];
    for (int i = 0; i < n; i++) c[i] = coef[i]->data[index[i]];
    combine(n, xs, c, y->data, y->numel);
    sn_tensor *in[128];
    memcpy(in, xs, (size_t)n * sizeof *in);
    memcpy(in + n, coef, (size_t)n * sizeof *in);
    if (!sn_needs_grad(ctx, in, 2 * n)) return y;
    sn_node *node = sn_record(ctx, &lincomb_op, y, in, 2 * n, (size_t)n * sizeof *index);
    if (!node) return NULL;
    memcpy(node->saved, index, (size_t)n * sizeof *index);
    return y;
}
