/* Our batch normalization for channel counts that are not a multiple of 16
 * (ops/bn_narrow.c). Internal to src/ops: ops/batch_norm.c picks it. */
#ifndef SEGNAS_OPS_BN_NARROW_H
#define SEGNAS_OPS_BN_NARROW_H

#include "ops/onednn/batch_norm.h"
#include "ops/ops_common.h"

/* Channel counts below this (and not a multiple of 16) run here. */
#define SN_BN_NARROW_MAX_C 64

bool sn_bn_narrow_suits(const sn_bn_shape *s);
/* As sn_dnnl_bn_forward (ops/onednn/batch_norm.h). */
void sn_bn_narrow_forward(const sn_bn_shape *s, const float *x, const float *gamma, const float *beta, float *mean,
                          float *var, float *y);
/* As sn_dnnl_bn_backward. */
void sn_bn_narrow_backward(const sn_bn_shape *s, const float *x, const float *dy, const float *gamma,
                           const float *mean, const float *var, float *dx, bool accumulate, float *dgamma,
                           float *dbeta);

#endif
