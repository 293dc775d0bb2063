/* Ungrouped convolution on tiny outputs as matrix products over live taps
 * (ops/conv_gemm.c). Internal to src/ops.
 *
 * Why: at the deep levels of the supernet the weights outweigh the
 * activations (at 128x128, level /32 is 2x4x4 pixels against 64x64x5x5
 * weights), and oneDNN's convolution reorders the whole weight tensor to its
 * blocked format on every forward and backward-data call and back on every
 * backward-weights call, and multiplies the taps that only ever see padding
 * (a 5x5 rate-2 kernel on a 4x4 map reaches the input through 3x3 of its
 * taps). Here the HWIO weights are read in place, dead taps are never
 * touched, and weight gradients accumulate straight into the buffer; a 1x1
 * stride-1 convolution is one product on x itself.
 * Measured (supernet L=12 F=8 B=5, batch 2, 2 threads, recompute on, this
 * path and oneDNN alternating step by step in one process, mean weight +
 * arch step): 64x64 1.23 vs 1.40 s, 128x128 3.47 vs 3.73 s; with the limit
 * at 512 pixels instead of 128, 128x128 got slower (3.29 vs 3.13 s). */
#ifndef SEGNAS_OPS_CONV_GEMM_H
#define SEGNAS_OPS_CONV_GEMM_H

#include "ops/onednn/conv.h"
#include "ops/ops_common.h"

/* Output pixels (n * oh * ow) up to which a convolution runs here. */
#ifndef SN_CONV_GEMM_MAX_PIXELS
#define SN_CONV_GEMM_MAX_PIXELS 128
#endif
/* The same for a 1x1 stride-1 one (no im2col): bench_ops layer d (1x1
 * 160->160 @20x20, batch 2 = 800 pixels) takes 0.367 ms this way against
 * 0.437 ms on oneDNN, while layer b's 1x1 (40->40 @80x80, 12800 pixels)
 * slows from 0.80 to 1.06 ms (the weight-gradient product then reduces
 * over 12800 rows, which oneDNN's convolution splits better); the supernet
 * step does not change (128x128: 2.77 s either way). */
#ifndef SN_CONV_GEMM_MAX_POINTWISE_PIXELS
#define SN_CONV_GEMM_MAX_POINTWISE_PIXELS 1024
#endif

bool sn_conv_gemm_suits(const sn_conv_shape *s);
/* y = conv(x, w) (+ b); overwrites y. */
int sn_conv_gemm_forward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, const float *b,
                         float *y);
/* dx = (or += when accumulate) the gradient wrt x. */
int sn_conv_gemm_backward_data(sn_ctx *ctx, const sn_conv_shape *s, const float *dy, const float *w, float *dx,
                               bool accumulate);
/* dw += the gradient wrt w (the bias gradient is ops/conv.c's). */
int sn_conv_gemm_backward_weights(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *dy, float *dw);

#endif
