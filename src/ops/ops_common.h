/* Shared by the op implementations of src/ops. */
#ifndef SEGNAS_OPS_COMMON_H
#define SEGNAS_OPS_COMMON_H

#include "segnas/ops.h"
#include "tensor/internal.h"

/* Below this many elements a loop runs on one thread: OpenMP's fork/join
 * costs more than the work. */
#define SN_PAR_MIN 32768

/* Put before a loop over a register tile whose trip count is a constant
 * only after inlining (the tile kernels' T / NV / M): unrolls it fully, so
 * the accumulators live in registers. gcc takes "GCC unroll N" for any
 * N >= the trip count. clang 14 applies that count to the callee's own copy
 * first (a runtime trip count: unroll by N plus a remainder loop) and
 * inlines the result, which keeps the accumulators in memory: the stride-2
 * backward data ran 4.5x slower, layer c's depthwise kernels 1.6x;
 * "clang loop unroll(full)" waits for the constant. */
#ifdef __clang__
#define SN_UNROLL_TILE _Pragma("clang loop unroll(full)")
#else
#define SN_UNROLL_TILE _Pragma("GCC unroll 8")
#endif

static inline int ctx_status(const sn_ctx *ctx)
{
    int s = sn_ctx_status(ctx);
    return s ? s : SN_ERR_NOMEM;
}

#endif
