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
 * scratch buffer per context, grown to the largest convolution seen (the
 * forward goes in strips above SN_WINO_STRIP_BYTES; the backwards take the
 * whole map, where training already holds every activation). Errors
 * (~1e-6) stay far below the float32 tests' 1e-3 (tests/test_conv.c). */
#ifndef SEGNAS_OPS_ONEDNN_CONV_WINO_H
#define SEGNAS_OPS_ONEDNN_CONV_WINO_H

#include "ops/onednn/conv.h"

/* Forward FLOPs from which a convolution goes this way: below, the layout
 * copies cost more than the multiplications saved. */
#ifndef SN_WINO_MIN_FLOPS
#define SN_WINO_MIN_FLOPS 100000000
#endif
/* Channels (the smaller side) from which it pays, and up to how many output
 * pixels (n * oh * ow) when below 64 channels. Forward + both backwards
 * through the engine, batch 2, 2 threads, Winograd vs direct (ms): 16 ch
 * @160x160 4.6 vs 3.0, 24 ch 10.8 vs 7.7, 32 ch 10.3 vs 9.5, 40 ch 21.1
 * vs 18.7, 48 ch 21.8 vs 21.8; but 40 ch @80x80 4.4 vs 4.8 and @96x96 4.6 vs
 * 5.8, 48 ch @128x128 9.8 vs 12.2; from 64 channels it wins at every size
 * (64 ch @160x160 20.7 vs 32.6, @256x256 batch 1 27.6 vs 42.9; 128 ch
 * @128x128 46 vs 102). */
#ifndef SN_WINO_MIN_CHANNELS
#define SN_WINO_MIN_CHANNELS 40
#endif
#ifndef SN_WINO_MAX_NARROW_PIXELS
#define SN_WINO_MAX_NARROW_PIXELS 32768
#endif

/* The geometry fits (3x3, stride 1, no dilation, ungrouped, 'same'
 * padding, large and wide enough) and oneDNN has the kernels on this CPU (the
 * answer is cached per shape). */
bool sn_dnnl_wino_suits(sn_ctx *ctx, const sn_conv_shape *s);

/* Inputs whose blocked copy would exceed this many bytes go forward in
 * strips of output rows, each a convolution of its own with the image's
 * padding only at its edges: oneDNN's Winograd scratchpad holds 2.25x the
 * transformed input and output, which at 1024x2048 (the decoder's 304
 * channels at 257x513) took 0.9 GiB for the whole map. */
#ifndef SN_WINO_STRIP_BYTES
#define SN_WINO_STRIP_BYTES (16 << 20)
#endif

/* y = conv(x, w) (+ b); overwrites y. */
int sn_dnnl_wino_forward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, const float *b,
                         float *y);

/* The same in strips of `rows` output rows (a multiple of 4 keeps the 4x4
 * tiles whole); a strip oneDNN has no Winograd kernel for runs direct. */
int sn_dnnl_wino_forward_rows(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w,
                              const float *b, float *y, int64_t rows);

/* Both backwards of one node, sharing the blocked copy of dy: dx = (or +=
 * when accumulate) the gradient wrt x when dx is not NULL; dw += the
 * gradient wrt the HWIO weights when dw is not NULL; db += the bias gradient
 * when db is not NULL (the shape must have a bias). */
int sn_dnnl_wino_backward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, const float *dy,
                          float *dx, bool accumulate, float *dw, float *db);

#endif
