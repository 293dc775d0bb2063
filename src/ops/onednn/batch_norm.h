/* oneDNN 2.6 batch normalization on NHWC activations. Internal to src/ops:
 * the builder in ops/batch_norm.c checks shapes, keeps the running
 * statistics and records the node. */
#ifndef SEGNAS_OPS_ONEDNN_BATCH_NORM_H
#define SEGNAS_OPS_ONEDNN_BATCH_NORM_H

#include <stdbool.h>
#include <stdint.h>

#include "segnas/ops.h"

typedef struct sn_bn_shape {
    int64_t n, h, w, c;
    float eps;
    bool scale, shift;  /* gamma / beta given (affine) */
    bool global_stats;  /* eval: normalise with the given mean and variance */
} sn_bn_shape;

/* y = gamma * (x - mean) / sqrt(var + eps) + beta per channel; overwrites y.
 * Training (!global_stats): writes the batch mean and the BIASED batch
 * variance to mean/var. Eval: reads them. gamma/beta read when the shape has
 * them (NULL otherwise). */
int sn_dnnl_bn_forward(sn_ctx *ctx, const sn_bn_shape *s, const float *x, const float *gamma,
                       const float *beta, float *mean, float *var, float *y);
/* dx = (or += when accumulate) the gradient wrt x given dy and the mean and
 * variance the forward used (beta is only passed along: oneDNN 2.6 lists the
 * shift as an input of the backward too); in training the full derivative through the
 * batch statistics. dgamma / dbeta += their gradients when not NULL (the
 * shape must have scale / shift then). */
int sn_dnnl_bn_backward(sn_ctx *ctx, const sn_bn_shape *s, const float *x, const float *dy,
                        const float *gamma, const float *beta, const float *mean, const float *var, float *dx, bool accumulate, float *dgamma,
                        float *dbeta);

#endif
