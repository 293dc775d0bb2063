/* oneDNN 2.6 convolution (dense, grouped, depthwise) on NHWC activations and
 * our HWIO weights. Internal to src/ops: the builder in ops/conv.c checks
 * shapes and decides which convolutions come here (DESIGN.md: everything
 * except dilated depthwise and the backward of depthwise kernels > 3x3). */
#ifndef SEGNAS_OPS_ONEDNN_CONV_H
#define SEGNAS_OPS_ONEDNN_CONV_H

#include <stdbool.h>
#include <stdint.h>

#include "segnas/ops.h"

/* Geometry of one convolution: x {n,h,w,ci}, weights HWIO {kh,kw,ci/groups,co},
 * y {n,oh,ow,co}; dilation counted from 1 as in sn_conv_params. */
typedef struct sn_conv_shape {
    int64_t n, h, w, ci, co, oh, ow;
    int kh, kw;
    sn_conv_params p;
    bool has_bias;
} sn_conv_shape;

/* y = conv(x, w) (+ b when the shape has a bias); overwrites y. */
int sn_dnnl_conv_forward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w,
                         const float *b, float *y);
/* dx = (or += when accumulate) the gradient wrt x given dy. */
int sn_dnnl_conv_backward_data(sn_ctx *ctx, const sn_conv_shape *s, const float *dy, const float *w,
                               float *dx, bool accumulate);
/* dw += gradient wrt the HWIO weights; db += gradient wrt the bias when db is
 * not NULL (the shape must have a bias then). */
int sn_dnnl_conv_backward_weights(sn_ctx *ctx, const sn_conv_shape *s, const float *x,
                                  const float *dy, float *dw, float *db);

#endif
