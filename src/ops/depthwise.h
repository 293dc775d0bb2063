/* Our own NHWC depthwise convolution kernels (channel multiplier 1), for the
 * cases where oneDNN 2.6 has no fast path: dilated depthwise forward and
 * backward, and the backward (data and weights) of undilated kernels larger
 * than 3x3 (DESIGN.md: 0.34 ms vs 1.42 ms for oneDNN's best on layer c).
 * Vectorised over channels (16/8/1-lane tails), OpenMP over rows.
 *
 * x {n,h,w,c}, weights {kh,kw,c} (HWIO with I=1), y {n,oh,ow,c}; the
 * geometry is that of sn_conv_params (dilation counted from 1). */
#ifndef SEGNAS_OPS_DEPTHWISE_H
#define SEGNAS_OPS_DEPTHWISE_H

#include <stdbool.h>
#include <stdint.h>

#include "segnas/ops.h"

typedef struct sn_dw_shape {
    int64_t n, h, w, c, oh, ow;
    int kh, kw;
    sn_conv_params p;
} sn_dw_shape;

/* y = dwconv(x, w) (+ b when b != NULL); overwrites y. */
void sn_dw_forward(const sn_dw_shape *s, const float *x, const float *w, const float *b, float *y);
/* dx += dwconv_transposed(dy, w) when accumulate, else dx = it (no need to
 * zero a fresh gradient buffer first: saves a pass over dx). */
void sn_dw_backward_data(const sn_dw_shape *s, const float *dy, const float *w, float *dx, bool accumulate);
/* dw += correlation of x and dy; db += sum of dy over n,oh,ow when db != NULL. */
void sn_dw_backward_weights(const sn_dw_shape *s, const float *x, const float *dy, float *dw, float *db);

#endif
