/* Adaptive average pooling {N,H,W,C} -> {N,out_h,out_w,C}, the pyramid
 * pooling of PSPNet (bins 1, 2, 3, 6 of any input size). Output cell i
 * averages rows [floor(i H / oh), ceil((i + 1) H / oh)) (likewise columns):
 * PyTorch's AdaptiveAvgPool2d. Windows overlap when oh does not divide H,
 * so the backward scatters per sample, samples in parallel.
 *
 * Own loops rather than oneDNN: the windows vary in size, and the outputs
 * are tiny (36 cells at most in PSPNet), so this is a streaming pass. */
#include <string.h>

#include "ops/ops_common.h"

typedef struct apool_saved {
    int64_t oh, ow;
} apool_saved;

static int64_t bin_start(int64_t i, int64_t in, int64_t out) { return i * in / out; }
static int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

/* One sample: y {oh,ow,c} from x {h,w,c}. */
static void pool_sample(const float *x, float *y, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow)
{
    for (int64_t i = 0; i < oh; i++) {
        int64_t h0 = bin_start(i, h, oh), h1 = bin_end(i, h, oh);
        for (int64_t j = 0; j < ow; j++) {
            int64_t w0 = bin_start(j, w, ow), w1 = bin_end(j, w, ow);
            float *yc = y + (i * ow + j) * c;
            memset(yc, 0, (size_t)c * sizeof *yc);
            for (int64_t r = h0; r < h1; r++)
                for (int64_t s = w0; s < w1; s++) {
                    const float *xc = x + (r * w + s) * c;
#pragma omp simd
                    for (int64_t ch = 0; ch < c; ch++) yc[ch] += xc[ch];
                }
            float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) yc[ch] *= inv;
        }
    }
}

static void unpool_sample(const float *gy, float *gx, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow)
{
    for (int64_t i = 0; i < oh; i++) {
        int64_t h0 = bin_start(i, h, oh), h1 = bin_end(i, h, oh);
        for (int64_t j = 0; j < ow; j++) {
            int64_t w0 = bin_start(j, w, ow), w1 = bin_end(j, w, ow);
            const float *g = gy + (i * ow + j) * c;
            float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
            for (int64_t r = h0; r < h1; r++)
                for (int64_t s = w0; s < w1; s++) {
                    float *gc = gx + (r * w + s) * c;
#pragma omp simd
                    for (int64_t ch = 0; ch < c; ch++) gc[ch] += g[ch] * inv;
                }
        }
    }
}

static int apool_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0];
    const apool_saved *sv = node->saved;
    float *gx = sn_grad_of(ctx, x);
    if (!gx) return ctx_status(ctx);
    int64_t n = x->shape[0], h = x->shape[1], w = x->shape[2], c = x->shape[3];
    const float *gy = node->out->grad;
#pragma omp parallel for if (x->numel > SN_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < n; b++)
        unpool_sample(gy + b * sv->oh * sv->ow * c, gx + b * h * w * c, h, w, c, sv->oh, sv->ow);
    return SN_OK;
}

static const sn_op_info apool_op = {"adaptive_avg_pool2d", apool_backward};

sn_tensor *sn_adaptive_avg_pool2d(sn_ctx *ctx, sn_tensor *x, int64_t out_h, int64_t out_w)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    char sx[64];
    if (x->ndim != 4) {
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "adaptive_avg_pool2d: input %s is not 4-D NHWC",
                    sn_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    int64_t n = x->shape[0], h = x->shape[1], w = x->shape[2], c = x->shape[3];
    /* More bins than cells would leave bins empty. */
    if (out_h < 1 || out_w < 1 || out_h > h || out_w > w) {
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "adaptive_avg_pool2d: %lldx%lld bins do not fit input %s",
                    (long long)out_h, (long long)out_w, sn_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    sn_tensor *y = sn_tensor_new4(ctx, n, out_h, out_w, c);
    if (!y) return NULL;
#pragma omp parallel for if (x->numel > SN_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < n; b++)
        pool_sample(x->data + b * h * w * c, y->data + b * out_h * out_w * c, h, w, c, out_h, out_w);
    if (sn_needs_grad(ctx, &x, 1)) {
        sn_node *node = sn_record(ctx, &apool_op, y, &x, 1, sizeof(apool_saved));
        if (!node) return NULL;
        *(apool_saved *)node->saved = (apool_saved){out_h, out_w};
    }
    return y;
}
