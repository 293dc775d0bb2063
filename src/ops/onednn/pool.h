/* oneDNN 2.6 pooling (max, average excluding padding) on NHWC activations.
 * Internal to src/ops: the builder in ops/pool.c checks shapes and records
 * the node; this file owns the primitives. */
#ifndef SEGNAS_OPS_ONEDNN_POOL_H
#define SEGNAS_OPS_ONEDNN_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segnas/ops.h"

/* x {n,h,w,c} -> y {n,oh,ow,c}, k x k window, one stride for both axes. */
typedef struct sn_pool_shape {
    int64_t n, h, w, c, oh, ow;
    int k, stride, pad_t, pad_l, pad_b, pad_r;
    sn_pool_kind kind;
} sn_pool_shape;

/* Bytes of workspace (oneDNN's argmax record) that a training forward of
 * this pooling writes and its backward reads; 0 for average pooling. */
int sn_dnnl_pool_workspace_bytes(sn_ctx *ctx, const sn_pool_shape *s, size_t *bytes);
/* y = pool(x); overwrites y. `ws` (sn_dnnl_pool_workspace_bytes bytes) is
 * written when training max pooling, else NULL. */
int sn_dnnl_pool_forward(sn_ctx *ctx, const sn_pool_shape *s, bool training, const float *x, float *y,
                         void *ws);
/* dx = (or += when accumulate) the gradient wrt x, from dy and the forward's
 * workspace (max pooling). */
int sn_dnnl_pool_backward(sn_ctx *ctx, const sn_pool_shape *s, const float *dy, const void *ws, float *dx,
                          bool accumulate);

#endif
