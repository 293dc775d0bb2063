/* 2-D convolution y = conv(x, w) + b on NHWC activations and HWIO weights:
 * shape checks, tape recording and the choice of kernel.
 *
 * Dispatch (DESIGN.md, measured on layers a-e):
 *  - ungrouped convolutions with a tiny output (the supernet's deep levels):
 *    matrix products over the live taps (ops/conv_gemm.h);
 *  - dense, 1x1, strided, dilated dense and grouped convolutions: oneDNN,
 *    Winograd for large 3x3 stride-1 ones (ops/onednn/conv_wino.h), our own
 *    backward passes for 3x3 stride-2 ones of 24-128 input channels
 *    (ops/conv_stride2.h);
 *  - depthwise (groups == Cin == Cout), undilated: oneDNN's jit_dw for the
 *    forward and for the backward of kernels up to 3x3; our own NHWC kernels
 *    for the backward of larger kernels (oneDNN takes a gemm path there,
 *    2-4.7 ms vs 0.07 ms);
 *  - depthwise, dilated: our own kernels in every direction (oneDNN 2.6 has
 *    no fast dilated depthwise backward: 0.34 ms vs 1.42 ms on layer c). */
#include <string.h>

#include "ops/conv_gemm.h"
#include "ops/conv_stride2.h"
#include "ops/depthwise.h"
#include "ops/onednn/conv_wino.h"
#include "ops/ops_common.h"

/* TensorFlow 'SAME': out = ceil(in / stride), the missing rows split with
 * the odd one at the bottom/right (tf.nn.conv2d semantics). */
static void same_1d(int k, int stride, int dilation, int64_t in, int *lo, int *hi)
{
    int64_t out = (in + stride - 1) / stride;
    int64_t extent = (int64_t)(k - 1) * dilation + 1;
    int64_t total = (out - 1) * stride + extent - in;
    if (total < 0) total = 0;
    *lo = (int)(total / 2);
    *hi = (int)(total - total / 2);
}

sn_conv_params sn_conv_same(int k, int stride, int dilation, int groups, int64_t in_h, int64_t in_w)
{
    sn_conv_params p = {.stride_h = stride, .stride_w = stride, .dilation_h = dilation,
                        .dilation_w = dilation, .groups = groups};
    same_1d(k, stride, dilation, in_h, &p.pad_top, &p.pad_bottom);
    same_1d(k, stride, dilation, in_w, &p.pad_left, &p.pad_right);
    return p;
}

/* ---- checks ------------------------------------------------------------------- */
static int check_params(sn_ctx *ctx, const sn_conv_params *p)
{
    if (!p) return sn_ctx_fail(ctx, SN_ERR_ARG, "conv2d: NULL parameters");
    if (p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1 || p->groups < 1)
        return sn_ctx_fail(ctx, SN_ERR_ARG,
                           "conv2d: stride %dx%d, dilation %dx%d and groups %d must all be >= 1",
                           p->stride_h, p->stride_w, p->dilation_h, p->dilation_w, p->groups);
    if (p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "conv2d: negative padding (top %d, left %d, bottom %d, right %d)",
                           p->pad_top, p->pad_left, p->pad_bottom, p->pad_right);
    return SN_OK;
}

static int64_t out_size(int64_t in, int k, int stride, int dilation, int pad_lo, int pad_hi)
{
    int64_t span = in + pad_lo + pad_hi - (int64_t)(k - 1) * dilation - 1;
    return span < 0 ? 0 : span / stride + 1;
}

/* Fills s from the inputs or fails with a message naming the shapes. */
static int check_shapes(sn_ctx *ctx, const sn_tensor *x, const sn_tensor *w, const sn_tensor *b,
                        const sn_conv_params *p, sn_conv_shape *s)
{
    char sx[64], sw[64], sb[64];
    sn_shape_str(x, sx, sizeof sx);
    sn_shape_str(w, sw, sizeof sw);
    if (x->ndim != 4) return sn_ctx_fail(ctx, SN_ERR_SHAPE, "conv2d: input %s is not 4-D NHWC", sx);
    if (w->ndim != 4)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "conv2d: weights %s are not 4-D HWIO {KH,KW,Cin/groups,Cout}", sw);
    int64_t ci = x->shape[3], co = w->shape[3], g = p->groups;
    if (ci % g || co % g)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE,
                           "conv2d: groups %d must divide the input channels (input %s) and the output "
                           "channels (weights %s)", p->groups, sx, sw);
    if (w->shape[2] != ci / g)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE,
                           "conv2d: weights %s must have Cin/groups = %lld input channels (input %s, groups %d)",
                           sw, (long long)(ci / g), sx, p->groups);
    if (b && (b->ndim != 1 || b->shape[0] != co))
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "conv2d: bias %s must be {%lld} for weights %s",
                           sn_shape_str(b, sb, sizeof sb), (long long)co, sw);
    *s = (sn_conv_shape){.n = x->shape[0], .h = x->shape[1], .w = x->shape[2], .ci = ci, .co = co,
                         .kh = (int)w->shape[0], .kw = (int)w->shape[1], .p = *p, .has_bias = b != NULL};
    s->oh = out_size(s->h, s->kh, p->stride_h, p->dilation_h, p->pad_top, p->pad_bottom);
    s->ow = out_size(s->w, s->kw, p->stride_w, p->dilation_w, p->pad_left, p->pad_right);
    if (s->oh <= 0 || s->ow <= 0)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE,
                           "conv2d: input %s with weights %s, stride %dx%d, dilation %dx%d and padding "
                           "%d,%d,%d,%d gives an empty output",
                           sx, sw, p->stride_h, p->stride_w, p->dilation_h, p->dilation_w, p->pad_top,
                           p->pad_left, p->pad_bottom, p->pad_right);
    return SN_OK;
}

/* ---- dispatch ------------------------------------------------------------------- */
static bool is_depthwise(const sn_conv_shape *s)
{
    return s->p.groups > 1 && s->p.groups == s->ci && s->ci == s->co;
}

static bool is_dilated(const sn_conv_shape *s) { return s->p.dilation_h > 1 || s->p.dilation_w > 1; }

static bool own_forward(const sn_conv_shape *s) { return is_depthwise(s) && is_dilated(s); }

static bool own_backward(const sn_conv_shape *s)
{
    return is_depthwise(s) && (is_dilated(s) || s->kh > 3 || s->kw > 3);
}

static sn_dw_shape dw_shape(const sn_conv_shape *s)
{
    return (sn_dw_shape){s->n, s->h, s->w, s->ci, s->oh, s->ow, s->kh, s->kw, s->p};
}

/* ---- backward -------------------------------------------------------------------- */
static int backward_data(sn_ctx *ctx, const sn_conv_shape *s, sn_tensor *x, const sn_tensor *w,
                         const float *dy)
{
    /* First gradient into x: let the kernel write it in place instead of
     * zeroing a buffer and adding (saves a pass over an activation-sized array). */
    bool fresh;
    float *dx = sn_grad_for_write(ctx, x, &fresh);
    if (!dx) return ctx_status(ctx);
    if (own_backward(s)) {
        sn_dw_shape d = dw_shape(s);
        sn_dw_backward_data(&d, dy, w->data, dx, !fresh);
        return SN_OK;
    }
    if (sn_conv_gemm_suits(s)) return sn_conv_gemm_backward_data(ctx, s, dy, w->data, dx, !fresh);
    if (sn_conv_s2_suits(s)) return sn_conv_s2_backward_data(ctx, s, dy, w->data, dx, !fresh);
    return sn_dnnl_conv_backward_data(ctx, s, dy, w->data, dx, !fresh);
}

/* db += the sum of dy over its pixels. */
static void add_bias_grad(const sn_conv_shape *s, const float *dy, float *db)
{
    int64_t rows = s->n * s->oh * s->ow;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < s->co; c++) db[c] += dy[r * s->co + c];
}

static int backward_bias_only(sn_ctx *ctx, const sn_conv_shape *s, sn_tensor *b, const float *dy)
{
    float *db = sn_grad_of(ctx, b);
    if (!db) return ctx_status(ctx);
    add_bias_grad(s, dy, db);
    return SN_OK;
}

static int backward_weights(sn_ctx *ctx, const sn_conv_shape *s, const sn_tensor *x, sn_tensor *w,
                            sn_tensor *b, const float *dy)
{
    float *dw = sn_grad_of(ctx, w);
    float *db = b ? sn_grad_of(ctx, b) : NULL;
    if (!dw || (b && !db)) return ctx_status(ctx);
    if (own_backward(s)) {
        sn_dw_shape d = dw_shape(s);
        sn_dw_backward_weights(&d, x->data, dy, dw, db);
        return SN_OK;
    }
    bool gemm = sn_conv_gemm_suits(s);
    if (gemm || sn_conv_s2_suits(s)) { /* these leave the bias to us */
        int rc = gemm ? sn_conv_gemm_backward_weights(ctx, s, x->data, dy, dw)
                      : sn_conv_s2_backward_weights(ctx, s, x->data, dy, dw);
        if (rc) return ctx_status(ctx);
        if (db) add_bias_grad(s, dy, db);
        return SN_OK;
    }
    return sn_dnnl_conv_backward_weights(ctx, s, x->data, dy, dw, db);
}

/* Both gradients in one call, which shares the blocked copy of dy. */
static int wino_backward(sn_ctx *ctx, const sn_conv_shape *s, sn_tensor *x, sn_tensor *w, sn_tensor *b,
                         const float *dy)
{
    bool fresh = false;
    float *dx = x->requires_grad ? sn_grad_for_write(ctx, x, &fresh) : NULL;
    float *dw = w->requires_grad ? sn_grad_of(ctx, w) : NULL;
    float *db = b && b->requires_grad && dw ? sn_grad_of(ctx, b) : NULL;
    if ((x->requires_grad && !dx) || (w->requires_grad && !dw) || (b && b->requires_grad && dw && !db))
        return ctx_status(ctx);
    int rc = sn_dnnl_wino_backward(ctx, s, x->data, w->data, dy, dx, !fresh, dw, db);
    if (!rc && !dw && b && b->requires_grad) rc = backward_bias_only(ctx, s, b, dy);
    return rc;
}

static int conv_backward(sn_ctx *ctx, sn_node *node)
{
    const sn_conv_shape *s = node->saved;
    sn_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    const float *dy = node->out->grad;
    bool need_b = b && b->requires_grad;
    if (sn_dnnl_wino_suits(ctx, s)) return wino_backward(ctx, s, x, w, b, dy);
    if (sn_ctx_status(ctx)) return sn_ctx_status(ctx);
    int rc = SN_OK;
    if (x->requires_grad) rc = backward_data(ctx, s, x, w, dy);
    if (!rc && w->requires_grad) rc = backward_weights(ctx, s, x, w, need_b ? b : NULL, dy);
    else if (!rc && need_b) rc = backward_bias_only(ctx, s, b, dy);
    return rc;
}

static const sn_op_info conv_op = {"conv2d", conv_backward};

/* ---- builder ---------------------------------------------------------------------- */
sn_tensor *sn_conv2d(sn_ctx *ctx, sn_tensor *x, sn_tensor *w, sn_tensor *b, const sn_conv_params *p)
{
    sn_tensor *in[3] = {x, w, b};
    sn_conv_shape s;
    if (sn_any_null(ctx, in, 2) || check_params(ctx, p) || check_shapes(ctx, x, w, b, p, &s)) return NULL;
    sn_tensor *y = sn_tensor_new4(ctx, s.n, s.oh, s.ow, s.co);
    if (!y) return NULL;
    if (own_forward(&s)) {
        sn_dw_shape d = dw_shape(&s);
        sn_dw_forward(&d, x->data, w->data, b ? b->data : NULL, y->data);
    } else if (sn_conv_gemm_suits(&s)) {
        if (sn_conv_gemm_forward(ctx, &s, x->data, w->data, b ? b->data : NULL, y->data)) return NULL;
    } else if (sn_dnnl_wino_suits(ctx, &s)) {
        if (sn_dnnl_wino_forward(ctx, &s, x->data, w->data, b ? b->data : NULL, y->data)) return NULL;
    } else if (sn_ctx_status(ctx) || /* sn_dnnl_wino_suits could not build its entry */
               sn_dnnl_conv_forward(ctx, &s, x->data, w->data, b ? b->data : NULL, y->data)) {
        return NULL;
    }
    if (!sn_needs_grad(ctx, in, 3)) return y;
    sn_node *node = sn_record(ctx, &conv_op, y, in, 3, sizeof s);
    if (!node) return NULL;
    memcpy(node->saved, &s, sizeof s);
    return y;
}
