/* The only place segnas talks to oneDNN (its 2.x C API). oneDNN 3.x drops
 * the *_desc_init functions and renumbers batch-norm flags, so the port to it
 * stays inside this folder: one file per primitive kind plus this common part.
 *
 * Rules measured on the target machines (DESIGN.md):
 *  - activations and gradients NHWC; weights with format `any`, reordered
 *    from our HWIO layout to the primitive's choice;
 *  - every backward primitive created with `any` weights and the forward pd
 *    as hint (forcing the forward's format silently selects `ref`);
 *  - primitives cached per (op, shapes, thread count) in the context cache;
 *  - implementation names recorded so benchmarks can print them: a `ref`
 *    implementation on a hot path is a bug. */
#ifndef SEGNAS_OPS_ONEDNN_H
#define SEGNAS_OPS_ONEDNN_H

#include <oneapi/dnnl/dnnl.h>

#include "ops/ops_common.h"

typedef struct sn_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    struct {
        char op[32];
        char impl[96];
    } impls[64];
    int n_impls;
} sn_dnnl;

/* The context's oneDNN engine and stream, created on first use; NULL (with
 * ctx failed) if oneDNN cannot start. */
sn_dnnl *sn_dnnl_get(sn_ctx *ctx);

/* 0 when st is dnnl_success; otherwise records SN_ERR_BACKEND with `what`
 * and oneDNN's status name, and returns SN_ERR_BACKEND. */
int sn_dnnl_check(sn_ctx *ctx, dnnl_status_t st, const char *what);

/* Records the implementation name oneDNN chose for `pd` under `op`
 * (e.g. "conv_bwd_weights"), for sn_impl_name(). */
void sn_dnnl_note_impl(sn_ctx *ctx, const char *op, const_dnnl_primitive_desc_t pd);

/* Memory descriptor of a 4-D NHWC tensor (oneDNN's logical dims are NCHW,
 * the physical layout is tag acdb = nhwc). */
dnnl_status_t sn_dnnl_md_nhwc(dnnl_memory_desc_t *md, int64_t n, int64_t h, int64_t w, int64_t c);

/* Runs a primitive with (arg, memory) pairs on the context's stream and
 * waits for it. */
int sn_dnnl_exec(sn_ctx *ctx, dnnl_primitive_t prim, int n_args, const dnnl_exec_arg_t *args,
                 const char *what);

#endif
