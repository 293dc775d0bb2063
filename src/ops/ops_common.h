/* Shared by the op implementations of src/ops. */
#ifndef SEGNAS_OPS_COMMON_H
#define SEGNAS_OPS_COMMON_H

#include "segnas/ops.h"
#include "tensor/internal.h"

/* Below this many elements a loop runs on one thread: OpenMP's fork/join
 * costs more than the work. */
#define SN_PAR_MIN 32768

static inline int ctx_status(const sn_ctx *ctx)
{
    int s = sn_ctx_status(ctx);
    return s ? s : SN_ERR_NOMEM;
}

#endif
