#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "ops/onednn/onednn.h"

static void dnnl_destroy(void *p)
{
    sn_dnnl *d = p;
    if (d->stream) dnnl_stream_destroy(d->stream);
    if (d->engine) dnnl_engine_destroy(d->engine);
    free(d);
}

sn_dnnl *sn_dnnl_get(sn_ctx *ctx)
{
    void **slot = sn_ctx_backend_slot(ctx);
    if (*slot) return *slot;
    sn_dnnl *d = calloc(1, sizeof *d);
    if (!d) {
        sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory starting oneDNN");
        return NULL;
    }
    if (sn_dnnl_check(ctx, dnnl_engine_create(&d->engine, dnnl_cpu, 0), "creating the oneDNN CPU engine") ||
        sn_dnnl_check(ctx, dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags),
                      "creating the oneDNN stream")) {
        dnnl_destroy(d);
        return NULL;
    }
    *slot = d;
    sn_ctx_set_backend_destroy(ctx, dnnl_destroy);
    return d;
}

int sn_dnnl_check(sn_ctx *ctx, dnnl_status_t st, const char *what)
{
    if (st == dnnl_success) return SN_OK;
    return sn_ctx_fail(ctx, SN_ERR_BACKEND, "oneDNN failed %s: %s", what, dnnl_status2str(st));
}

void sn_dnnl_note_impl(sn_ctx *ctx, const char *op, const_dnnl_primitive_desc_t pd)
{
    sn_dnnl *d = sn_dnnl_get(ctx);
    const char *impl = NULL;
    if (!d || dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return;
    int i = 0;
    while (i < d->n_impls && strcmp(d->impls[i].op, op) != 0) i++;
    if (i == d->n_impls) {
        if (d->n_impls == (int)(sizeof d->impls / sizeof d->impls[0])) return;
        d->n_impls++;
    }
    snprintf(d->impls[i].op, sizeof d->impls[i].op, "%s", op);
    /* Copy: the string is owned by the primitive descriptor. */
    snprintf(d->impls[i].impl, sizeof d->impls[i].impl, "%s", impl);
}

const char *sn_impl_name(sn_ctx *ctx, const char *op)
{
    sn_dnnl *d = *sn_ctx_backend_slot(ctx);
    if (!d) return "";
    for (int i = 0; i < d->n_impls; i++)
        if (strcmp(d->impls[i].op, op) == 0) return d->impls[i].impl;
    return "";
}

dnnl_status_t sn_dnnl_md_nhwc(dnnl_memory_desc_t *md, int64_t n, int64_t h, int64_t w, int64_t c)
{
    dnnl_dims_t dims = {n, c, h, w};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_acdb);
}

int sn_dnnl_exec(sn_ctx *ctx, dnnl_primitive_t prim, int n_args, const dnnl_exec_arg_t *args,
                 const char *what)
{
    sn_dnnl *d = sn_dnnl_get(ctx);
    if (!d) return sn_ctx_status(ctx);
    if (sn_dnnl_check(ctx, dnnl_primitive_execute(prim, d->stream, n_args, args), what)) return SN_ERR_BACKEND;
    return sn_dnnl_check(ctx, dnnl_stream_wait(d->stream), what);
}
