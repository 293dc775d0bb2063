/* Bilinear resize of NHWC activations with PyTorch's / TF2's semantics
 * (F.interpolate(mode='bilinear', antialias=False)):
 *  - align_corners=false: src = max((dst + 0.5) * in / out - 0.5, 0);
 *  - align_corners=true:  src = dst * (in - 1) / (out - 1) (0 when out == 1);
 * the sample blends the two nearest rows/columns, the upper index clamped
 * to in - 1.
 *
 * align_corners=false runs on oneDNN's linear resampling, which uses the
 * same half-pixel mapping (checked by tests/test_resize.c against the double
 * reference, upsampling and downsampling). oneDNN has no align_corners=true
 * mode: that one is our own kernel below, vectorised over channels. */
#include <math.h>

#include "ops/onednn/resample.h"
#include "ops/ops_common.h"

typedef struct resize_saved {
    sn_resample_shape s;
    bool align_corners;
} resize_saved;

/* ---- own kernel (align_corners=true) ----------------------------------------------- */
/* One output row or column: the two source indices and the weight of i1. */
typedef struct lerp {
    int64_t i0, i1;
    float l;
} lerp;

static void lerp_table(lerp *t, int64_t out, int64_t in)
{
    double scale = out > 1 ? (double)(in - 1) / (double)(out - 1) : 0.0;
    for (int64_t d = 0; d < out; d++) {
        double src = (double)d * scale;
        int64_t i0 = (int64_t)src;
        if (i0 > in - 1) i0 = in - 1;
        t[d].i0 = i0;
        t[d].i1 = i0 < in - 1 ? i0 + 1 : i0;
        t[d].l = (float)(src - (double)i0);
    }
}

static void own_forward(const sn_resample_shape *s, const lerp *rows, const lerp *cols, const float *x, float *y)
{
    int64_t c = s->c;
#pragma omp parallel for collapse(2) if (s->n * s->oh * s->ow * c > SN_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t oy = 0; oy < s->oh; oy++) {
            const lerp *ry = &rows[oy];
            const float *x0 = x + (b * s->h + ry->i0) * s->w * c, *x1 = x + (b * s->h + ry->i1) * s->w * c;
            float *yrow = y + (b * s->oh + oy) * s->ow * c;
            float wy1 = ry->l, wy0 = 1.0f - wy1;
            for (int64_t ox = 0; ox < s->ow; ox++) {
                const lerp *cx = &cols[ox];
                const float *p00 = x0 + cx->i0 * c, *p01 = x0 + cx->i1 * c;
                const float *p10 = x1 + cx->i0 * c, *p11 = x1 + cx->i1 * c;
                float wx1 = cx->l, wx0 = 1.0f - wx1, *yo = yrow + ox * c;
#pragma omp simd
                for (int64_t j = 0; j < c; j++)
                    yo[j] = wy0 * (wx0 * p00[j] + wx1 * p01[j]) + wy1 * (wx0 * p10[j] + wx1 * p11[j]);
            }
        }
}

/* Channels per task in the backward scatter: tasks own disjoint channel
 * slices of dx, so the scatter needs no atomics. */
#define RESIZE_CBLOCK 16

/* dx += the transpose of the forward (scatter of dy); dx starts zeroed or
 * holds earlier gradients. */
static void own_backward(const sn_resample_shape *s, const lerp *rows, const lerp *cols, const float *dy, float *dx)
{
    int64_t c = s->c, nb = (c + RESIZE_CBLOCK - 1) / RESIZE_CBLOCK;
#pragma omp parallel for collapse(2) if (s->n * s->oh * s->ow * c > SN_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t blk = 0; blk < nb; blk++) {
            int64_t c0 = blk * RESIZE_CBLOCK, cn = c - c0 < RESIZE_CBLOCK ? c - c0 : RESIZE_CBLOCK;
            for (int64_t oy = 0; oy < s->oh; oy++) {
                const lerp *ry = &rows[oy];
                float *d0 = dx + (b * s->h + ry->i0) * s->w * c + c0, *d1 = dx + (b * s->h + ry->i1) * s->w * c + c0;
                float wy1 = ry->l, wy0 = 1.0f - wy1;
                for (int64_t ox = 0; ox < s->ow; ox++) {
                    const lerp *cx = &cols[ox];
                    const float *g = dy + ((b * s->oh + oy) * s->ow + ox) * c + c0;
                    float wx1 = cx->l, wx0 = 1.0f - wx1;
                    float *q00 = d0 + cx->i0 * c, *q01 = d0 + cx->i1 * c;
                    float *q10 = d1 + cx->i0 * c, *q11 = d1 + cx->i1 * c;
                    /* Sequential adds: the four targets may coincide at edges. */
                    for (int64_t j = 0; j < cn; j++) {
                        float gy0 = wy0 * g[j], gy1 = wy1 * g[j];
                        q00[j] += wx0 * gy0;
                        q01[j] += wx1 * gy0;
                        q10[j] += wx0 * gy1;
                        q11[j] += wx1 * gy1;
                    }
                }
            }
        }
}

/* Row and column tables in the step arena (oh + ow entries). */
static lerp *tables(sn_ctx *ctx, const sn_resample_shape *s)
{
    lerp *t = sn_step_alloc(ctx, (size_t)(s->oh + s->ow) * sizeof *t);
    if (!t) return NULL;
    lerp_table(t, s->oh, s->h);
    lerp_table(t + s->oh, s->ow, s->w);
    return t;
}

/* ---- op ------------------------------------------------------------------------------ */
static int resize_backward(sn_ctx *ctx, sn_node *node)
{
    const resize_saved *sv = node->saved;
    sn_tensor *x = node->in[0];
    if (sv->align_corners) {
        lerp *t = tables(ctx, &sv->s);
        float *dx = sn_grad_of(ctx, x);
        if (!t || !dx) return ctx_status(ctx);
        own_backward(&sv->s, t, t + sv->s.oh, node->out->grad, dx);
        return SN_OK;
    }
    bool fresh;
    float *dx = sn_grad_for_write(ctx, x, &fresh);
    if (!dx) return ctx_status(ctx);
    return sn_dnnl_resample_backward(ctx, &sv->s, node->out->grad, dx, !fresh);
}

static const sn_op_info resize_op = {"resize_bilinear", resize_backward};

sn_tensor *sn_resize_bilinear(sn_ctx *ctx, sn_tensor *x, int64_t out_h, int64_t out_w, bool align_corners)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    char sx[64];
    if (x->ndim != 4 || x->numel == 0 || out_h < 1 || out_w < 1) {
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "resize_bilinear: cannot resize input %s to %lldx%lld (needs a non-empty "
                    "4-D NHWC input and an output size >= 1x1)",
                    sn_shape_str(x, sx, sizeof sx), (long long)out_h, (long long)out_w);
        return NULL;
    }
    sn_resample_shape s = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], out_h, out_w};
    sn_tensor *y = sn_tensor_new4(ctx, s.n, out_h, out_w, s.c);
    if (!y) return NULL;
    if (align_corners) {
        lerp *t = tables(ctx, &s);
        if (!t) return NULL;
        own_forward(&s, t, t + s.oh, x->data, y->data);
    } else if (sn_dnnl_resample_forward(ctx, &s, x->data, y->data)) {
        return NULL;
    }
    if (!sn_needs_grad(ctx, &x, 1)) return y;
    sn_node *node = sn_record(ctx, &resize_op, y, &x, 1, sizeof(resize_saved));
    if (!node) return NULL;
    *(resize_saved *)node->saved = (resize_saved){s, align_corners};
    return y;
}
