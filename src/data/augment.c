/* Augmentation for training (random scale, flip, crop with padding,
 * normalisation) and the evaluation-time resize. The recipe is DeepLab's
 * (Chen et al. 2018; Auto-DeepLab Sec. 5 follows it): scale in [0.5, 2],
 * pad with the mean / the ignore label up to the crop size, random crop,
 * random left-right flip.
 *
 * Resampling uses half-pixel centres: output pixel x samples the source at
 * (x + 0.5) * src / dst - 0.5 (bilinear, clamped at the border) for images
 * and floor((x + 0.5) * src / dst) (nearest) for labels, so a label can only
 * take values present in the source (plus the ignore padding). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/data.h"

void sn_augment_config_default(sn_augment_config *c)
{
    *c = (sn_augment_config){.scale_min = 0.5f,
                             .scale_max = 2.0f,
                             .flip = true,
                             .crop_h = 321,
                             .crop_w = 321,
                             .mean = {0.485f, 0.456f, 0.406f},
                             .std = {0.229f, 0.224f, 0.225f},
                             .ignore_label = 255};
}

int sn_augment_check(const sn_augment_config *c, char *err, size_t errlen)
{
    const char *why = NULL;
    if (c->crop_h < 1 || c->crop_w < 1 || c->crop_h > 16384 || c->crop_w > 16384) why = "crop size out of range 1..16384";
    else if (!(c->scale_min > 0.0f && c->scale_max >= c->scale_min && c->scale_max <= 16.0f))
        why = "scale range must satisfy 0 < min <= max <= 16";
    for (int k = 0; k < 3 && !why; k++)
        if (!(c->std[k] > 0.0f) || !isfinite(c->mean[k])) why = "std must be > 0 and mean finite";
    if (!why) return 0;
    if (err && errlen)
        snprintf(err, errlen, "augment: %s (crop %dx%d, scale %g..%g)", why, c->crop_h, c->crop_w,
                 (double)c->scale_min, (double)c->scale_max);
    return SN_ERR_ARG;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sn_augment_draw(const sn_augment_config *c, uint64_t seed, int64_t epoch, int64_t index, int src_h,
                     int src_w, sn_augment_params *p)
{
    memset(p, 0, sizeof *p); /* padding bytes too: draws compare with memcmp */
    sn_rng r;
    sn_rng_seed(&r, mix64(mix64(mix64(seed ^ 0xa5a5a5a5a5a5a5a5ULL) ^ (uint64_t)epoch) ^ (uint64_t)index));
    double s = c->scale_min + (c->scale_max - c->scale_min) * sn_rng_uniform(&r);
    p->scaled_h = (int)lround(src_h * s), p->scaled_w = (int)lround(src_w * s);
    if (p->scaled_h < 1) p->scaled_h = 1;
    if (p->scaled_w < 1) p->scaled_w = 1;
    /* Crop offsets range over the padded canvas (image at its top-left). */
    int sy = p->scaled_h - c->crop_h, sx = p->scaled_w - c->crop_w;
    p->crop_y = sy > 0 ? (int)sn_rng_below(&r, (uint64_t)sy + 1) : 0;
    p->crop_x = sx > 0 ? (int)sn_rng_below(&r, (uint64_t)sx + 1) : 0;
    p->flip = c->flip && (sn_rng_next(&r) >> 63);
}

/* Source coordinate tables for one axis: for each output position, the two
 * bilinear taps and weight, the nearest tap, or -1 where it is padding. */
typedef struct taps {
    int i0, i1, nn;
    float w1;
} taps;

static void axis_taps(taps *t, int n_out, int offset, int scaled, int src, bool flip)
{
    double ratio = (double)src / scaled;
    for (int o = 0; o < n_out; o++) {
        int s = o + offset; /* position in the scaled (flipped) image */
        if (s >= scaled) {
            t[o] = (taps){-1, -1, -1, 0.0f};
            continue;
        }
        if (flip) s = scaled - 1 - s;
        double f = (s + 0.5) * ratio - 0.5;
        if (f < 0) f = 0;
        int i0 = (int)f;
        if (i0 > src - 1) i0 = src - 1;
        int i1 = i0 + 1 < src ? i0 + 1 : src - 1;
        int nn = (int)((s + 0.5) * ratio);
        t[o] = (taps){i0, i1, nn < src ? nn : src - 1, (float)(f - i0)};
    }
}

static void normaliser(const sn_augment_config *c, float scale[3], float shift[3])
{
    /* (v / 255 - mean) / std as one multiply-add. */
    for (int k = 0; k < 3; k++) scale[k] = 1.0f / (255.0f * c->std[k]), shift[k] = -c->mean[k] / c->std[k];
}

static int check_inputs(const sn_image *img, const sn_image *label, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!img || !img->data || img->c != 3 || img->w < 1 || img->h < 1) why = "image must be RGB (c = 3) and non-empty";
    else if (label && (!label->data || label->c != 1 || label->w != img->w || label->h != img->h))
        why = "label must be c = 1 and the image's size";
    if (!why) return 0;
    if (err && errlen)
        snprintf(err, errlen, "augment: %s (image %dx%dx%d, label %dx%dx%d)", why, img ? img->h : 0, img ? img->w : 0,
                 img ? img->c : 0, label ? label->h : 0, label ? label->w : 0, label ? label->c : 0);
    return SN_ERR_SHAPE;
}

enum { MAX_SIDE = 16384 };

int sn_augment_apply(const sn_augment_config *c, const sn_augment_params *p, const sn_image *img,
                     const sn_image *label, float *out, uint8_t *out_label, char *err, size_t errlen)
{
    int rc = sn_augment_check(c, err, errlen);
    if (!rc) rc = check_inputs(img, label, err, errlen);
    if (rc) return rc;
    if (p->scaled_h < 1 || p->scaled_w < 1 || p->scaled_h > 4 * MAX_SIDE || p->scaled_w > 4 * MAX_SIDE) {
        if (err && errlen) snprintf(err, errlen, "augment: scaled size %dx%d out of range", p->scaled_h, p->scaled_w);
        return SN_ERR_ARG;
    }
    int H = c->crop_h, W = c->crop_w;
    taps *ty = malloc((size_t)(H + W) * sizeof *ty), *tx = ty + H;
    if (!ty) {
        if (err && errlen) snprintf(err, errlen, "augment: out of memory for a %dx%d crop", H, W);
        return SN_ERR_NOMEM;
    }
    axis_taps(ty, H, p->crop_y, p->scaled_h, img->h, false);
    axis_taps(tx, W, p->crop_x, p->scaled_w, img->w, p->flip);
    float scale[3], shift[3];
    normaliser(c, scale, shift);
    const uint8_t *src = img->data;
    size_t stride = (size_t)img->w * 3;
    for (int y = 0; y < H; y++) {
        float *o = out + (size_t)y * W * 3;
        uint8_t *ol = out_label ? out_label + (size_t)y * W : NULL;
        const taps *a = &ty[y];
        for (int x = 0; x < W; x++) {
            const taps *b = &tx[x];
            if (a->i0 < 0 || b->i0 < 0) {
                o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = 0.0f; /* the mean, normalised */
                if (ol) ol[x] = c->ignore_label;
                continue;
            }
            const uint8_t *r0 = src + a->i0 * stride, *r1 = src + a->i1 * stride;
            int x0 = 3 * b->i0, x1 = 3 * b->i1;
            for (int k = 0; k < 3; k++) {
                float top = r0[x0 + k] + b->w1 * (float)(r0[x1 + k] - r0[x0 + k]);
                float bot = r1[x0 + k] + b->w1 * (float)(r1[x1 + k] - r1[x0 + k]);
                o[3 * x + k] = (top + a->w1 * (bot - top)) * scale[k] + shift[k];
            }
            if (ol && label) ol[x] = label->data[(size_t)a->nn * img->w + b->nn];
        }
    }
    if (out_label && !label) memset(out_label, c->ignore_label, (size_t)H * W);
    free(ty);
    return 0;
}

int sn_augment_sample(const sn_augment_config *c, uint64_t seed, int64_t epoch, int64_t index,
                      const sn_image *img, const sn_image *label, float *out, uint8_t *out_label,
                      char *err, size_t errlen)
{
    int rc = check_inputs(img, label, err, errlen);
    if (rc) return rc;
    sn_augment_params p;
    sn_augment_draw(c, seed, epoch, index, img->h, img->w, &p);
    return sn_augment_apply(c, &p, img, label, out, out_label, err, errlen);
}

int sn_image_to_float(const sn_image *img, int out_h, int out_w, const float mean[3], const float std[3],
                      float *out, char *err, size_t errlen)
{
    sn_augment_config c = {.scale_min = 1, .scale_max = 1, .crop_h = out_h, .crop_w = out_w, .ignore_label = 255};
    for (int k = 0; k < 3; k++) c.mean[k] = mean[k], c.std[k] = std[k];
    int rc = sn_augment_check(&c, err, errlen);
    if (rc) return rc;
    /* A "crop" of exactly the scaled size: no padding, no offset. */
    sn_augment_params p = {.scaled_h = out_h, .scaled_w = out_w, .crop_y = 0, .crop_x = 0, .flip = false};
    return sn_augment_apply(&c, &p, img, NULL, out, NULL, err, errlen);
}
