/* Our own backward passes of the 3x3 stride-2 convolution (ops/conv_stride2.c).
 * Internal to src/ops.
 *
 * Why: a strided 3x3 has no Winograd kernel, and oneDNN 2.6's backward
 * kernels for it run well below its forward: on bench_ops layer e (40->80
 * from 80x80, batch 2, 2 threads) brgconv's forward takes 0.44 ms while
 * jit's backward data and backward weights take 0.58 and 0.53 ms for the
 * same multiply-adds. Ours take 0.53 and 0.46 ms there (alone, 2 threads:
 * 350 and 400 GFLOP/s of the machine's ~430), and a whole training step of
 * that convolution is 1.14-1.18x faster. The forward stays oneDNN's: the
 * same tiles over the HWIO weights (4 pixels x 80 channels, all 9 taps per
 * tile) ran a training step 0.93-1.03x as fast as brgconv's forward.
 *
 * Backward data works on PAIRS of adjacent input pixels: with stride 2 the
 * even and the odd column of a pair see different taps, but together their
 * 2*Cin gradients are one product of a dy pixel with a [W(kx) | W(kx')]
 * matrix of the taps that land on them, plus one with the neighbouring
 * column's taps. So the vectors run over 2*Cin lanes (40 channels: 5 full
 * vectors instead of 3 with 8 dead lanes).
 * Backward weights is, per tap, a product x_tap^T dy accumulated in
 * registers (4 input channels x 80 output channels per tile).
 *
 * Only with AVX-512 (the vector width the tiles are blocked for); elsewhere
 * oneDNN keeps these. */
#ifndef SEGNAS_OPS_CONV_STRIDE2_H
#define SEGNAS_OPS_CONV_STRIDE2_H

#include "ops/onednn/conv.h"
#include "ops/ops_common.h"

/* 3x3, stride 2, undilated, ungrouped, top/left padding 0 or 1, Cin a
 * multiple of 8 in 24..128 and Cout a multiple of 16 up to 192 (whole
 * vectors; the range where they measured faster, conv_stride2.c), AVX-512
 * build. */
bool sn_conv_s2_suits(const sn_conv_shape *s);
/* dx = (or += when accumulate) the gradient wrt x. */
int sn_conv_s2_backward_data(sn_ctx *ctx, const sn_conv_shape *s, const float *dy, const float *w, float *dx,
                             bool accumulate);
/* dw += the gradient wrt w (the bias gradient is ops/conv.c's). */
int sn_conv_s2_backward_weights(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *dy, float *dw);

#endif
