#include <string.h>

#include "ref/ref.h"

int64_t ref_conv_out_h(const ref_conv_shape *s)
{
    return (s->h + s->pad_t + s->pad_b - (int64_t)s->dil_h * (s->kh - 1) - 1) / s->stride_h + 1;
}

int64_t ref_conv_out_w(const ref_conv_shape *s)
{
    return (s->w + s->pad_l + s->pad_r - (int64_t)s->dil_w * (s->kw - 1) - 1) / s->stride_w + 1;
}

void ref_conv2d(const ref_conv_shape *s, const double *x, const double *w, const double *b, double *y)
{
    int64_t oh = ref_conv_out_h(s), ow = ref_conv_out_w(s);
    int64_t cig = s->ci / s->groups, cog = s->co / s->groups;
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++)
                for (int64_t o = 0; o < s->co; o++) {
                    int64_t g = o / cog;
                    double acc = b ? b[o] : 0.0;
                    for (int ky = 0; ky < s->kh; ky++) {
                        int64_t iy = oy * s->stride_h - s->pad_t + (int64_t)ky * s->dil_h;
                        if (iy < 0 || iy >= s->h) continue;
                        for (int kx = 0; kx < s->kw; kx++) {
                            int64_t ix = ox * s->stride_w - s->pad_l + (int64_t)kx * s->dil_w;
                            if (ix < 0 || ix >= s->w) continue;
                            const double *xp = x + ((n * s->h + iy) * s->w + ix) * s->ci + g * cig;
                            const double *wp = w + ((int64_t)ky * s->kw + kx) * cig * s->co + o;
                            for (int64_t i = 0; i < cig; i++) acc += xp[i] * wp[i * s->co];
                        }
                    }
                    y[((n * oh + oy) * ow + ox) * s->co + o] = acc;
                }
}

/* The same loops run backwards: every product x * w that made y gives dy to
 * both factors. */
void ref_conv2d_backward(const ref_conv_shape *s, const double *x, const double *w, const double *dy, double *dx,
                         double *dw, double *db)
{
    int64_t oh = ref_conv_out_h(s), ow = ref_conv_out_w(s);
    int64_t cig = s->ci / s->groups, cog = s->co / s->groups;
    memset(dx, 0, (size_t)(s->n * s->h * s->w * s->ci) * sizeof *dx);
    memset(dw, 0, (size_t)(s->kh * s->kw * cig * s->co) * sizeof *dw);
    memset(db, 0, (size_t)s->co * sizeof *db);
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++)
                for (int64_t o = 0; o < s->co; o++) {
                    int64_t g = o / cog;
                    double d = dy[((n * oh + oy) * ow + ox) * s->co + o];
                    db[o] += d;
                    for (int ky = 0; ky < s->kh; ky++) {
                        int64_t iy = oy * s->stride_h - s->pad_t + (int64_t)ky * s->dil_h;
                        if (iy < 0 || iy >= s->h) continue;
                        for (int kx = 0; kx < s->kw; kx++) {
                            int64_t ix = ox * s->stride_w - s->pad_l + (int64_t)kx * s->dil_w;
                            if (ix < 0 || ix >= s->w) continue;
                            int64_t xo = ((n * s->h + iy) * s->w + ix) * s->ci + g * cig;
                            int64_t wo = ((int64_t)ky * s->kw + kx) * cig * s->co + o;
                            for (int64_t i = 0; i < cig; i++) {
                                dx[xo + i] += d * w[wo + i * s->co];
                                dw[wo + i * s->co] += d * x[xo + i];
                            }
                        }
                    }
                }
}
