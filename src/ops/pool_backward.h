/* Our NHWC pooling backward (ops/pool_backward.c). Internal to src/ops. */
#ifndef SEGNAS_OPS_POOL_BACKWARD_H
#define SEGNAS_OPS_POOL_BACKWARD_H

#include "ops/onednn/pool.h"
#include "ops/ops_common.h"

/* dx = (or += when accumulate) the gradient wrt x of y = pool(x), given
 * dy. Max pooling reads x and y (the forward's output) to find each
 * window's first maximal tap; average pooling reads neither. */
void sn_pool_backward(const sn_pool_shape *s, const float *x, const float *y, const float *dy, float *dx,
                      bool accumulate);

#endif
