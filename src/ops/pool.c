/* Pooling: k x k max / average (padding excluded from the count, TF 'SAME'
 * semantics), the 3x3 'SAME' pooling of the search operators
 * (tensorflow/models research/deeplab/core/nas_cell.py), and global average
 * pooling (the image-pooling branch of ASPP).
 *
 * Windowed pooling runs forward on oneDNN (NHWC gets jit implementations,
 * DESIGN.md), and backward on oneDNN too when the channels are a multiple
 * of 16; otherwise on our own kernels (ops/pool_backward.c), as oneDNN's is
 * then 10x slower (theirs is 2-3x faster than ours on multiples of 16).
 *
 * Global average pooling is our own loop: it is one streaming
 * pass over x, vectorised over channels, and a oneDNN pooling with a
 * kernel of H x W would need one primitive per input size (the ASPP
 * branch sees every crop and evaluation size) for no speed gain on a
 * memory-bound reduction. */
#include <string.h>

#include "ops/pool_backward.h"

typedef struct pool_saved {
    sn_pool_shape s;
    void *ws; /* oneDNN's argmax record (max pooling on oneDNN), step arena */
} pool_saved;

/* The backward (and so a max pooling's training forward) runs on oneDNN. */
static bool onednn_backward(const sn_pool_shape *s) { return s->c % 16 == 0; }

/* ---- windowed pooling ------------------------------------------------------------ */
static int pool_backward(sn_ctx *ctx, sn_node *node)
{
    const pool_saved *sv = node->saved;
    sn_tensor *x = node->in[0];
    bool fresh;
    float *dx = sn_grad_for_write(ctx, x, &fresh);
    if (!dx) return ctx_status(ctx);
    if (onednn_backward(&sv->s)) return sn_dnnl_pool_backward(ctx, &sv->s, node->out->grad, sv->ws, dx, !fresh);
    sn_pool_backward(&sv->s, x->data, node->out->data, node->out->grad, dx, !fresh);
    return SN_OK;
}

static const sn_op_info pool_op = {"pool2d", pool_backward};

static const char *kind_name(sn_pool_kind kind) { return kind == SN_POOL_MAX ? "max" : "avg"; }

static int check_pool(sn_ctx *ctx, const sn_tensor *x, sn_pool_kind kind, int k, int stride, const int pad[4],
                      sn_pool_shape *s)
{
    char sx[64];
    sn_shape_str(x, sx, sizeof sx);
    if (x->ndim != 4) return sn_ctx_fail(ctx, SN_ERR_SHAPE, "pool2d: input %s is not 4-D NHWC", sx);
    if (kind != SN_POOL_MAX && kind != SN_POOL_AVG)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "pool2d: unknown pooling kind %d", (int)kind);
    if (k < 1 || stride < 1)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "pool2d: kernel %d and stride %d must be >= 1", k, stride);
    for (int i = 0; i < 4; i++)
        /* A window made only of padding has no value (max) and no cells to
         * average: padding must stay below the kernel size. */
        if (pad[i] < 0 || pad[i] >= k)
            return sn_ctx_fail(ctx, SN_ERR_ARG,
                               "pool2d: padding (top %d, left %d, bottom %d, right %d) must lie in [0, %d) for "
                               "kernel %d",
                               pad[0], pad[1], pad[2], pad[3], k, k);
    *s = (sn_pool_shape){.n = x->shape[0], .h = x->shape[1], .w = x->shape[2], .c = x->shape[3], .k = k,
                         .stride = stride, .pad_t = pad[0], .pad_l = pad[1], .pad_b = pad[2], .pad_r = pad[3],
                         .kind = kind};
    int64_t span_h = s->h + pad[0] + pad[2] - k, span_w = s->w + pad[1] + pad[3] - k;
    s->oh = span_h < 0 ? 0 : span_h / stride + 1;
    s->ow = span_w < 0 ? 0 : span_w / stride + 1;
    if (x->numel == 0 || s->oh <= 0 || s->ow <= 0)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE,
                           "pool2d: %s pooling of input %s with kernel %d, stride %d and padding %d,%d,%d,%d "
                           "gives an empty output",
                           kind_name(kind), sx, k, stride, pad[0], pad[1], pad[2], pad[3]);
    return SN_OK;
}

sn_tensor *sn_pool2d(sn_ctx *ctx, sn_tensor *x, sn_pool_kind kind, int k, int stride, int pad_top,
                     int pad_left, int pad_bottom, int pad_right)
{
    const int pad[4] = {pad_top, pad_left, pad_bottom, pad_right};
    sn_pool_shape s;
    if (sn_any_null(ctx, &x, 1) || check_pool(ctx, x, kind, k, stride, pad, &s)) return NULL;
    sn_tensor *y = sn_tensor_new4(ctx, s.n, s.oh, s.ow, s.c);
    if (!y) return NULL;
    bool record = sn_needs_grad(ctx, &x, 1), training = record && onednn_backward(&s);
    void *ws = NULL;
    if (training && kind == SN_POOL_MAX) {
        size_t bytes;
        if (sn_dnnl_pool_workspace_bytes(ctx, &s, &bytes) || !(ws = sn_step_alloc(ctx, bytes ? bytes : 1)))
            return NULL;
    }
    if (sn_dnnl_pool_forward(ctx, &s, training, x->data, y->data, ws)) return NULL;
    if (!record) return y;
    sn_node *node = sn_record(ctx, &pool_op, y, &x, 1, sizeof(pool_saved));
    if (!node) return NULL;
    *(pool_saved *)node->saved = (pool_saved){s, ws};
    return y;
}

/* TF 'SAME' for a k-window: out = ceil(in / stride), the missing cells
 * split with the odd one at the bottom/right. */
static void same_pad(int k, int stride, int64_t in, int *lo, int *hi)
{
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + k - in;
    if (total < 0) total = 0;
    *lo = (int)(total / 2);
    *hi = (int)(total - total / 2);
}

sn_tensor *sn_pool3x3_same(sn_ctx *ctx, sn_tensor *x, sn_pool_kind kind, int stride)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    if (x->ndim != 4) {
        char sx[64];
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "pool3x3_same: input %s is not 4-D NHWC", sn_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    if (stride < 1) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "pool3x3_same: stride %d must be >= 1", stride);
        return NULL;
    }
    int pt, pb, pl, pr;
    same_pad(3, stride, x->shape[1], &pt, &pb);
    same_pad(3, stride, x->shape[2], &pl, &pr);
    return sn_pool2d(ctx, x, kind, 3, stride, pt, pl, pb, pr);
}

/* ---- global average pooling ----------------------------------------------------- */
/* Channels per task: a few cache lines of one pixel, so a thread streams
 * through its pixels touching whole lines. */
#define GAP_BLOCK 64

static void gap_forward(const float *x, float *y, int64_t n, int64_t hw, int64_t c)
{
    int64_t nb = (c + GAP_BLOCK - 1) / GAP_BLOCK;
    double inv = 1.0 / (double)hw;
#pragma omp parallel for collapse(2) if (n * hw * c > SN_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < n; b++)
        for (int64_t blk = 0; blk < nb; blk++) {
            int64_t c0 = blk * GAP_BLOCK, cn = c - c0 < GAP_BLOCK ? c - c0 : GAP_BLOCK;
            /* double accumulators: 80x80 = 6400 terms per channel */
            double acc[GAP_BLOCK] = {0};
            for (int64_t p = 0; p < hw; p++) {
                const float *row = x + (b * hw + p) * c + c0;
#pragma omp simd
                for (int64_t j = 0; j < cn; j++) acc[j] += row[j];
            }
            for (int64_t j = 0; j < cn; j++) y[b * c + c0 + j] = (float)(acc[j] * inv);
        }
}

static int gap_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0];
    bool fresh;
    float *dx = sn_grad_for_write(ctx, x, &fresh);
    if (!dx) return ctx_status(ctx);
    const float *dy = node->out->grad;
    int64_t n = x->shape[0], hw = x->shape[1] * x->shape[2], c = x->shape[3];
    float inv = 1.0f / (float)hw;
#pragma omp parallel for collapse(2) if (x->numel > SN_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < n; b++)
        for (int64_t p = 0; p < hw; p++) {
            float *row = dx + (b * hw + p) * c;
            const float *g = dy + b * c;
            if (fresh) {
#pragma omp simd
                for (int64_t j = 0; j < c; j++) row[j] = g[j] * inv;
            } else {
#pragma omp simd
                for (int64_t j = 0; j < c; j++) row[j] += g[j] * inv;
            }
        }
    return SN_OK;
}

static const sn_op_info gap_op = {"global_avg_pool", gap_backward};

sn_tensor *sn_global_avg_pool(sn_ctx *ctx, sn_tensor *x)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    if (x->ndim != 4 || x->numel == 0) {
        char sx[64];
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "global_avg_pool: input %s is not a non-empty 4-D NHWC tensor",
                    sn_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    int64_t n = x->shape[0], hw = x->shape[1] * x->shape[2], c = x->shape[3];
    sn_tensor *y = sn_tensor_new4(ctx, n, 1, 1, c);
    if (!y) return NULL;
    gap_forward(x->data, y->data, n, hw, c);
    if (sn_needs_grad(ctx, &x, 1) && !sn_record(ctx, &gap_op, y, &x, 1, 0)) return NULL;
    return y;
}
