/* Ungrouped convolution on a tiny output as matrix products over the taps that
 * can touch the input (see conv_gemm.h for when it is chosen and why).
 *
 * A tap (r, c) of the kernel is live when some output pixel reads a real
 * input cell through it; along each axis the live taps are a range
 * [t0, t1). For every live kernel row r, with P = n * oh * ow output pixels:
 *   cols_r {P, (c1 - c0) * Cin}: the input under taps (r, c0..c1-1), zero
 *                                where they fall on padding (im2col);
 *   W_r {(c1 - c0) * Cin, Cout}: rows (r, c0) .. (r, c1-1) of our HWIO
 *                                weights, contiguous: read in place;
 * and
 *   forward          y    (+)= cols_r   W_r
 *   backward data    dcols  = dy       W_r^T,  then added back (col2im)
 *   backward weights dW_r  += cols_r^T dy,     straight into the gradient.
 * The products are oneDNN matmul primitives (ops/onednn/matmul.c). */
#include <string.h>

#include "ops/conv_gemm.h"
#include "ops/onednn/matmul.h"

typedef struct range {
    int t0, t1; /* live taps [t0, t1) of one axis */
} range;

/* Taps t with 0 <= o * stride - pad + t * dilation < in for some output o. */
static range live_taps(int k, int stride, int dilation, int pad, int64_t in, int64_t out)
{
    range r = {k, 0};
    for (int t = 0; t < k; t++) {
        int64_t first = (int64_t)t * dilation - pad; /* input index read by output 0 */
        int64_t o = first >= 0 ? 0 : (-first + stride - 1) / stride;
        if (o < out && first + o * stride < in) {
            if (t < r.t0) r.t0 = t;
            r.t1 = t + 1;
        }
    }
    return r;
}

typedef struct plan {
    range rows, cols;
    int64_t pixels, width; /* P, and (c1 - c0) * Cin: the columns of one cols_r */
} plan;

static plan plan_of(const sn_conv_shape *s)
{
    plan p;
    p.rows = live_taps(s->kh, s->p.stride_h, s->p.dilation_h, s->p.pad_top, s->h, s->oh);
    p.cols = live_taps(s->kw, s->p.stride_w, s->p.dilation_w, s->p.pad_left, s->w, s->ow);
    if (p.rows.t1 <= p.rows.t0 || p.cols.t1 <= p.cols.t0) /* every tap on padding */
        p.rows = p.cols = (range){0, 0};
    p.pixels = s->n * s->oh * s->ow;
    p.width = (int64_t)(p.cols.t1 - p.cols.t0) * s->ci;
    return p;
}

/* A 1x1 stride-1 convolution without padding: x is its own cols matrix. */
static bool pointwise(const sn_conv_shape *s)
{
    const sn_conv_params *p = &s->p;
    return s->kh == 1 && s->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
           p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
}

bool sn_conv_gemm_suits(const sn_conv_shape *s)
{
    int64_t pixels = s->n * s->oh * s->ow;
    return s->p.groups == 1 &&
           pixels <= (pointwise(s) ? SN_CONV_GEMM_MAX_POINTWISE_PIXELS : SN_CONV_GEMM_MAX_PIXELS);
}

/* Input cell read by output (oh, ow) through tap (r, c); false on padding. */
static bool tap_cell(const sn_conv_shape *s, int64_t oh, int64_t ow, int r, int c, int64_t *ih, int64_t *iw)
{
    *ih = oh * s->p.stride_h - s->p.pad_top + (int64_t)r * s->p.dilation_h;
    *iw = ow * s->p.stride_w - s->p.pad_left + (int64_t)c * s->p.dilation_w;
    return *ih >= 0 && *ih < s->h && *iw >= 0 && *iw < s->w;
}

/* cols_r for kernel row r. */
static void im2col(const sn_conv_shape *s, const plan *pl, int r, const float *x, float *cols)
{
    size_t bytes = (size_t)s->ci * sizeof(float);
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t oh = 0; oh < s->oh; oh++)
            for (int64_t ow = 0; ow < s->ow; ow++) {
                float *row = cols + ((n * s->oh + oh) * s->ow + ow) * pl->width;
                for (int c = pl->cols.t0; c < pl->cols.t1; c++, row += s->ci) {
                    int64_t ih, iw;
                    if (tap_cell(s, oh, ow, r, c, &ih, &iw))
                        memcpy(row, x + ((n * s->h + ih) * s->w + iw) * s->ci, bytes);
                    else
                        memset(row, 0, bytes);
                }
            }
}

/* dx += what the columns of kernel row r hold (the adjoint of im2col). */
static void col2im_add(const sn_conv_shape *s, const plan *pl, int r, const float *cols, float *dx)
{
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t oh = 0; oh < s->oh; oh++)
            for (int64_t ow = 0; ow < s->ow; ow++) {
                const float *row = cols + ((n * s->oh + oh) * s->ow + ow) * pl->width;
                for (int c = pl->cols.t0; c < pl->cols.t1; c++, row += s->ci) {
                    int64_t ih, iw;
                    if (!tap_cell(s, oh, ow, r, c, &ih, &iw)) continue;
                    float *d = dx + ((n * s->h + ih) * s->w + iw) * s->ci;
#pragma omp simd
                    for (int64_t i = 0; i < s->ci; i++) d[i] += row[i];
                }
            }
}

/* First weight of kernel row r's live block in HWIO. */
static int64_t block_offset(const sn_conv_shape *s, const plan *pl, int r)
{
    return ((int64_t)r * s->kw + pl->cols.t0) * s->ci * s->co;
}

/* y = sum over live kernel rows r of cols_r W_r. */
static int forward_by_rows(sn_ctx *ctx, const sn_conv_shape *s, const plan *pl, const float *x, const float *w,
                           float *y)
{
    if (pl->rows.t0 == pl->rows.t1) {
        memset(y, 0, (size_t)(pl->pixels * s->co) * sizeof(float));
        return SN_OK;
    }
    float *cols = sn_step_alloc(ctx, (size_t)(pl->pixels * pl->width) * sizeof(float));
    if (!cols) return ctx_status(ctx);
    sn_matmul_shape ms = {.batch = 1, .m = pl->pixels, .k = pl->width, .n = s->co};
    for (int r = pl->rows.t0; r < pl->rows.t1; r++) {
        im2col(s, pl, r, x, cols);
        if (sn_dnnl_matmul(ctx, &ms, cols, w + block_offset(s, pl, r), y, r > pl->rows.t0, "conv_gemm_fwd"))
            return ctx_status(ctx);
    }
    return SN_OK;
}

int sn_conv_gemm_forward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, const float *b,
                         float *y)
{
    plan pl = plan_of(s);
    sn_matmul_shape ms = {.batch = 1, .m = pl.pixels, .k = s->ci, .n = s->co};
    int rc = pointwise(s) ? sn_dnnl_matmul(ctx, &ms, x, w, y, false, "conv_gemm_fwd")
                          : forward_by_rows(ctx, s, &pl, x, w, y);
    if (rc) return ctx_status(ctx);
    if (b)
        for (int64_t p = 0; p < pl.pixels; p++)
            for (int64_t o = 0; o < s->co; o++) y[p * s->co + o] += b[o];
    return SN_OK;
}

int sn_conv_gemm_backward_data(sn_ctx *ctx, const sn_conv_shape *s, const float *dy, const float *w, float *dx,
                               bool accumulate)
{
    plan pl = plan_of(s);
    sn_matmul_shape ms = {.batch = 1, .m = pl.pixels, .k = s->co, .n = pl.width, .trans_y = true};
    if (pointwise(s))
        return sn_dnnl_matmul(ctx, &ms, dy, w, dx, accumulate, "conv_gemm_bwd_data") ? ctx_status(ctx) : SN_OK;
    float *cols = sn_step_alloc(ctx, (size_t)(pl.pixels * pl.width + 1) * sizeof(float));
    if (!cols) return ctx_status(ctx);
    if (!accumulate) memset(dx, 0, (size_t)(s->n * s->h * s->w * s->ci) * sizeof(float));
    for (int r = pl.rows.t0; r < pl.rows.t1; r++) {
        if (sn_dnnl_matmul(ctx, &ms, dy, w + block_offset(s, &pl, r), cols, false, "conv_gemm_bwd_data"))
            return ctx_status(ctx);
        col2im_add(s, &pl, r, cols, dx);
    }
    return SN_OK;
}

int sn_conv_gemm_backward_weights(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *dy, float *dw)
{
    plan pl = plan_of(s);
    sn_matmul_shape ms = {.batch = 1, .m = pl.width, .k = pl.pixels, .n = s->co, .trans_x = true};
    float *buf = NULL; /* cols_r; a pointwise convolution's is x itself */
    if (!pointwise(s) && !(buf = sn_step_alloc(ctx, (size_t)(pl.pixels * pl.width + 1) * sizeof(float))))
        return ctx_status(ctx);
    const float *cols = buf ? buf : x;
    for (int r = pl.rows.t0; r < pl.rows.t1; r++) {
        if (buf) im2col(s, &pl, r, x, buf);
        if (sn_dnnl_matmul(ctx, &ms, cols, dy, dw + block_offset(s, &pl, r), true, "conv_gemm_bwd_weights"))
            return ctx_status(ctx);
    }
    return SN_OK;
}
