/* Copies between our NHWC activations and oneDNN's channel-blocked layout
 * nChw16c ({n, ceil(c/16), h, w, 16}, the channels past c zero), for the
 * Winograd convolutions (ops/onednn/conv_wino.c). oneDNN's own reorder does
 * this at ~15-30 GB/s when c is not a multiple of 16 (2x80x80x40: 0.14-0.22
 * ms); these run at memory speed. Internal to src/ops. */
#ifndef SEGNAS_OPS_BLOCKED_LAYOUT_H
#define SEGNAS_OPS_BLOCKED_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#define SN_BLOCK 16

/* x {n, hw, c} -> out {n, ceil(c/16), hw, 16}. */
void sn_nhwc_to_blocked(const float *x, float *out, int64_t n, int64_t hw, int64_t c);
/* in {n, ceil(c/16), hw, 16} -> y {n, hw, c}: overwritten, or added to
 * when accumulate. */
void sn_blocked_to_nhwc(const float *in, float *y, int64_t n, int64_t hw, int64_t c, bool accumulate);

#endif
