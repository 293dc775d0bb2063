/* Bilinear resize reference, written from PyTorch's definition
 * (aten/src/ATen/native/UpSample.h, area_pixel_compute_source_index). */
#include "ref/ref.h"

static double source_index(int64_t dst, int64_t in, int64_t out, bool align_corners)
{
    if (align_corners) return out > 1 ? (double)dst * (double)(in - 1) / (double)(out - 1) : 0.0;
    double src = ((double)dst + 0.5) * (double)in / (double)out - 0.5;
    return src < 0 ? 0 : src;
}

void ref_resize_bilinear(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t oh,
                         int64_t ow, bool align_corners)
{
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < oh; i++) {
            double sy = source_index(i, h, oh, align_corners);
            int64_t y0 = (int64_t)sy, y1 = y0 + (y0 < h - 1 ? 1 : 0);
            double ly = sy - (double)y0;
            for (int64_t j = 0; j < ow; j++) {
                double sx = source_index(j, w, ow, align_corners);
                int64_t x0 = (int64_t)sx, x1 = x0 + (x0 < w - 1 ? 1 : 0);
                double lx = sx - (double)x0;
                for (int64_t ch = 0; ch < c; ch++) {
                    const double *p = x + b * h * w * c + ch;
                    double v = (1 - ly) * ((1 - lx) * p[(y0 * w + x0) * c] + lx * p[(y0 * w + x1) * c]) +
                               ly * ((1 - lx) * p[(y1 * w + x0) * c] + lx * p[(y1 * w + x1) * c]);
                    y[((b * oh + i) * ow + j) * c + ch] = v;
                }
            }
        }
}
