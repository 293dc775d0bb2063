/* 3x3 stride-1 dense convolutions through oneDNN 2.6's Winograd F(4x4, 3x3)
 * kernels (jit_wino_4x3), forward and both backwards. Internal to src/ops.
 *
 * Why: they do 4x fewer multiplications than a direct convolution. Measured
 * on the 2-core target (batch 2, 2 threads, primitives alone): 3x3 256->256
 * @128x128 forward / backward data / backward weights 88 / 135 / 166 ms
 * direct, 39 / 39 / 43 ms Winograd; 40->40 @80x80 1.12 / 1.09 / 1.12 ms
 * against 0.73 / 0.74 / 0.76 ms. The kernels want channel-blocked
 * activations (nChw16c), so each call copies x, y, dy and dx between our NHWC
 * and that layout (ops/onednn/conv_wino.c); the blocked copies live in one
 * scratch buffer per context, grown to the largest convolution seen.
 * Errors stay far below the float32 tests' 1e-3 (tests/test_conv.c). */
#ifndef SEGNAS_OPS_ONEDNN_CONV_WINO_H
#define SEGNAS_OPS_ONEDNN_CONV_WINO_H

#include "ops/onednn/conv.h"

/* Forward FLOPs from which a convolution goes this way: below, the layout
 * copies cost more than the multiplications saved. */
#ifndef SN_WINO_MIN_FLOPS
#define SN_WINO_MIN_FLOPS 100000000
#endif

/* The geometry fits (3x3, stride 1, no dilation, ungrouped, 'same'
 * padding, large enough) and oneDNN has the kernels on this CPU (the
 * answer is cached per shape). */
bool sn_dnnl_wino_suits(sn_ctx *ctx, const sn_conv_shape *s);

/* y = conv(x, w) (+ b); overwrites y. */
int sn_dnnl_wino_forward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, const float *b,
                         float *y);

/* Both backwards of one node, sharing the blocked copy of dy: dx = (or +=
 * when accumulate) the gradient wrt x when dx is not NULL; dw += the
 * gradient wrt the HWIO weights when dw is not NULL; db += the bias gradient
 * when db is not NULL (the shape must have a bias). */
int sn_dnnl_wino_backward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, const float *dy,
                          float *dx, bool accumulate, float *dw, float *db);

#endif
