/* oneDNN 2.6 linear resampling on NHWC activations: bilinear resize with
 * half-pixel centres, src = (dst + 0.5) * in / out - 0.5 clamped to the
 * image, i.e. PyTorch's align_corners=False (checked against the double
 * reference in tests/test_resize.c). Internal to src/ops (ops/resize.c). */
#ifndef SEGNAS_OPS_ONEDNN_RESAMPLE_H
#define SEGNAS_OPS_ONEDNN_RESAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "segnas/ops.h"

/* x {n,h,w,c} -> y {n,oh,ow,c} */
typedef struct sn_resample_shape {
    int64_t n, h, w, c, oh, ow;
} sn_resample_shape;

/* y = resize(x); overwrites y. */
int sn_dnnl_resample_forward(sn_ctx *ctx, const sn_resample_shape *s, const float *x, float *y);
/* dx = (or += when accumulate) the gradient wrt x given dy. */
int sn_dnnl_resample_backward(sn_ctx *ctx, const sn_resample_shape *s, const float *dy, float *dx,
                              bool accumulate);

#endif
