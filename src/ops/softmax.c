/* Softmax over the last axis, numerically stable (the row maximum is
 * subtracted before exp). Backward from the saved output:
 * dx = y * (dy - <dy, y>) per row. Rows run in parallel for large tensors. */
#include "ops/ops_common.h"
#include "ops/vmath.h"

/* y = softmax(x) for one row of k values. */
static void softmax_row(const float *restrict x, float *restrict y, int64_t k)
{
    float m = sn_row_max(x, k);
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < k; c++) {
        y[c] = sn_vexpf(x[c] - m);
        s += y[c];
    }
    float inv = 1.0f / s; /* s >= 1: the maximum contributes exp(0) */
#pragma omp simd
    for (int64_t c = 0; c < k; c++) y[c] *= inv;
}

static void softmax_grad_row(const float *restrict y, const float *restrict dy, float *restrict dx, int64_t k)
{
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < k; c++) dot += dy[c] * y[c];
#pragma omp simd
    for (int64_t c = 0; c < k; c++) dx[c] += y[c] * (dy[c] - dot);
}

static int softmax_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0], *y = node->out;
    float *gx = sn_grad_of(ctx, x);
    if (!gx) return ctx_status(ctx);
    int64_t k = x->shape[x->ndim - 1], rows = x->numel / k;
    const float *yd = y->data, *gy = y->grad;
#pragma omp parallel for if (x->numel > SN_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) softmax_grad_row(yd + r * k, gy + r * k, gx + r * k, k);
    return SN_OK;
}

static const sn_op_info softmax_op = {"softmax", softmax_backward};

sn_tensor *sn_softmax(sn_ctx *ctx, sn_tensor *x)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    if (x->ndim < 1) {
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "softmax: needs at least one axis, got a scalar");
        return NULL;
    }
    sn_tensor *y = sn_tensor_empty_like(ctx, x);
    if (!y) return NULL;
    int64_t k = x->shape[x->ndim - 1], rows = x->numel / k;
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (x->numel > SN_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) softmax_row(xd + r * k, yd + r * k, k);
    if (sn_needs_grad(ctx, &x, 1) && !sn_record(ctx, &softmax_op, y, &x, 1, 0)) return NULL;
    return y;
}
