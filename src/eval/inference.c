/* Single- and multi-scale inference of a discrete network, with optional
 * flipping and sliding windows (segnas/eval.h says what is averaged). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/eval.h"

void sn_infer_config_default(sn_infer_config *c)
{
    sn_augment_config aug;
    sn_augment_config_default(&aug);
    memset(c, 0, sizeof *c);
    memcpy(c->mean, aug.mean, sizeof c->mean);
    memcpy(c->std, aug.std, sizeof c->std);
}

static void mirror_rows(float *x, int h, int w, int c)
{
    for (int y = 0; y < h; y++) {
        float *row = x + (size_t)y * w * c;
        for (int a = 0, b = w - 1; a < b; a++, b--)
            for (int k = 0; k < c; k++) {
                float t = row[(size_t)a * c + k];
                row[(size_t)a * c + k] = row[(size_t)b * c + k];
                row[(size_t)b * c + k] = t;
            }
    }
}

/* Window starts along one axis: one window when the crop covers it, else a
 * stride of 2/3 crop with the last window flush with the end. */
static int window_starts(int size, int crop, int *starts, int max)
{
    if (crop <= 0 || size <= crop) {
        starts[0] = 0;
        return 1;
    }
    int stride = crop * 2 / 3 > 0 ? crop * 2 / 3 : 1, n = 0;
    for (int s = 0; n < max; s += stride) {
        if (s + crop >= size) {
            starts[n++] = size - crop;
            break;
        }
        starts[n++] = s;
    }
    return n;
}

/* One forward pass on a {1,h,w,3} window of x (row stride xw) at (y0, x0),
 * logits added into acc (h_total x xw x k) and counts. */
static int run_window(sn_ctx *ctx, const sn_model *m, const float *x, int xw, int y0, int x0, int h, int w,
                      float *acc, float *count)
{
    int k = m->cfg.n_classes;
    sn_tensor *in = sn_tensor_new4(ctx, 1, h, w, 3);
    if (in)
        for (int y = 0; y < h; y++)
            memcpy(in->data + (size_t)y * w * 3, x + ((size_t)(y0 + y) * xw + x0) * 3, sizeof(float) * 3 * (size_t)w);
    sn_model_run run = {.training = false};
    sn_tensor *logits = sn_model_forward(ctx, m, in, &run);
    if (logits)
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                size_t o = (size_t)(y0 + y) * xw + (size_t)(x0 + xx);
                const float *src = logits->data + ((size_t)y * w + xx) * k;
                for (int c = 0; c < k; c++) acc[o * k + c] += src[c];
                count[o] += 1.0f;
            }
    sn_step_end(ctx);
    return logits ? SN_OK : sn_ctx_status(ctx);
}

/* Logits of the scaled image x (h x w) into out (h*w*k). */
static int scaled_logits(sn_ctx *ctx, const sn_model *m, const sn_infer_config *c, const float *x, int h, int w,
                         float *out)
{
    int k = m->cfg.n_classes, ys[4096], xs[4096];
    int ny = window_starts(h, c->crop_h, ys, 4096), nx = window_starts(w, c->crop_w, xs, 4096);
    int ch = c->crop_h > 0 && c->crop_h < h ? c->crop_h : h, cw = c->crop_w > 0 && c->crop_w < w ? c->crop_w : w;
    float *count = calloc((size_t)h * w, sizeof *count);
    if (!count) return sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for %dx%d inference", h, w);
    memset(out, 0, sizeof(float) * (size_t)h * w * k);
    int rc = SN_OK;
    for (int i = 0; i < ny && !rc; i++)
        for (int j = 0; j < nx && !rc; j++) rc = run_window(ctx, m, x, w, ys[i], xs[j], ch, cw, out, count);
    for (int64_t p = 0; p < (int64_t)h * w && !rc; p++)
        for (int q = 0; q < k; q++) out[p * k + q] /= count[p];
    free(count);
    return rc;
}

/* Logits (sh x sw) resized to h x w, softmaxed, added (mirrored back when
 * flipped) into probs. */
static int accumulate(sn_ctx *ctx, const float *logits, int sh, int sw, int h, int w, int k, bool flipped,
                      float *probs)
{
    sn_tensor *t = sn_tensor_new4(ctx, 1, sh, sw, k);
    if (t) memcpy(t->data, logits, sizeof(float) * (size_t)t->numel);
    if (t && (sh != h || sw != w)) t = sn_resize_bilinear(ctx, t, h, w, true);
    sn_tensor *p = sn_softmax(ctx, t);
    if (p) {
        if (flipped) mirror_rows(p->data, h, w, k);
        for (int64_t i = 0; i < p->numel; i++) probs[i] += p->data[i];
    }
    sn_step_end(ctx);
    return p ? SN_OK : sn_ctx_status(ctx);
}

int sn_infer_probs(sn_ctx *ctx, const sn_model *m, const sn_image *img, const sn_infer_config *c, float *probs)
{
    static const double one = 1.0;
    const double *scales = c->scales && c->n_scales > 0 ? c->scales : &one;
    int n_scales = c->scales && c->n_scales > 0 ? c->n_scales : 1, k = m->cfg.n_classes, h = img->h, w = img->w;
    for (int s = 0; s < n_scales; s++)
        if (!(scales[s] > 0 && scales[s] <= 16))
            return sn_ctx_fail(ctx, SN_ERR_ARG, "inference: scale %g must be in (0, 16]", scales[s]);
    bool old = sn_set_grad_enabled(ctx, false);
    memset(probs, 0, sizeof(float) * (size_t)h * w * k);
    int rc = SN_OK, passes = 0;
    for (int s = 0; s < n_scales && !rc; s++) {
        int sh = (int)lround(h * scales[s]), sw = (int)lround(w * scales[s]);
        sh = sh < 1 ? 1 : sh, sw = sw < 1 ? 1 : sw;
        float *x = malloc(sizeof(float) * (size_t)sh * sw * 3), *logits = malloc(sizeof(float) * (size_t)sh * sw * k);
        char err[512];
        if (!x || !logits) rc = sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for a %dx%d scale", sh, sw);
        else if (sn_image_to_float(img, sh, sw, c->mean, c->std, x, err, sizeof err))
            rc = sn_ctx_fail(ctx, SN_ERR_ARG, "inference: %s", err);
        for (int f = 0; f <= (c->flip ? 1 : 0) && !rc; f++) {
            if (f) mirror_rows(x, sh, sw, 3);
            rc = scaled_logits(ctx, m, c, x, sh, sw, logits);
            if (!rc) rc = accumulate(ctx, logits, sh, sw, h, w, k, f == 1, probs);
            passes++;
        }
        free(x), free(logits);
    }
    sn_set_grad_enabled(ctx, old);
    if (rc) return rc;
    float inv = 1.0f / (float)passes;
    for (int64_t i = 0; i < (int64_t)h * w * k; i++) probs[i] *= inv;
    return SN_OK;
}

void sn_probs_argmax(const float *probs, int64_t n, int k, uint8_t *pred)
{
    for (int64_t i = 0; i < n; i++) {
        const float *p = probs + i * k;
        int best = 0;
        for (int c = 1; c < k; c++)
            if (p[c] > p[best]) best = c;
        pred[i] = (uint8_t)best;
    }
}
