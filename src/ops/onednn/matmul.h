/* oneDNN 2.6 batched matrix product. Internal to src/ops: ops/matmul.c
 * checks shapes and expresses forward and both backward products as calls
 * to this one routine (transposes as strides, never copies). */
#ifndef SEGNAS_OPS_ONEDNN_MATMUL_H
#define SEGNAS_OPS_ONEDNN_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "segnas/ops.h"

/* out {batch,m,n} = op(x) op(y), op(x) m x k, op(y) k x n. x is stored
 * {m,k}, or {k,m} when trans_x; y {k,n}, or {n,k} when trans_y; per batch
 * when x_batched / y_batched, else one matrix shared by every batch. */
typedef struct sn_matmul_shape {
    int64_t batch, m, k, n;
    bool x_batched, y_batched, trans_x, trans_y;
} sn_matmul_shape;

/* out = op(x) op(y), or out += op(x) op(y) when accumulate (a sum post-op,
 * no temporary). `what` names the direction for sn_impl_name ("matmul",
 * "matmul_bwd"). */
int sn_dnnl_matmul(sn_ctx *ctx, const sn_matmul_shape *s, const float *x, const float *y, float *out,
                   bool accumulate, const char *what);

#endif
