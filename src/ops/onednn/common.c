#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl_debug.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        sn_note_impl(ctx, op, impl);
}

void sn_dnnl_destroy(const dnnl_primitive_t *prims, int n_prims, const dnnl_primitive_desc_t *pds, int n_pds,
                     const dnnl_memory_t *mems, int n_mems)
{
    for (int i = 0; i < n_prims; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    for (int i = 0; i < n_pds; i++)
        if (pds[i]) dnnl_primitive_desc_destroy(pds[i]);
    for (int i = 0; i < n_mems; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
}

void sn_note_impl(sn_ctx *ctx, const char *op, const char *impl)
{
    sn_dnnl *d = sn_dnnl_get(ctx);
    if (!d) return;
    int i = 0;
    while (i < d->n_impls && strcmp(d->impls[i].op, op) != 0) i++;
    if (i == d->n_impls) {
        if (d->n_impls == (int)(sizeof d->impls / sizeof d->impls[0])) return;
        d->n_impls++;
    }
    snprintf(d->impls[i].op, sizeof d->impls[i].op, "%s", op);
    /* Copy: oneDNN's string is owned by the primitive descriptor. */
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

/* Measured on the 2-core target (1 vs 2 threads, median of 100 interleaved
 * runs; us): a 2-thread team wins once one thread needs more than ~3-4 us,
 * e.g. conv 1x1 8->8 @10x10 (the tiny-op chain) 0.7 vs 1.6; conv 1x1 16 ch
 * @16x16 3.3 vs 3.1; 3x3 16 ch @8x8 6.3 vs 6.1; batch norm 16x16x16 3.9 vs
 * 3.5; from 1 MFLOP or 30k elements on, 2 threads are 1.3-2x faster. */
int64_t sn_dnnl_work(int64_t flops, int64_t elements)
{
    return flops + SN_DNNL_ELEM_WORK * elements;
}

int sn_dnnl_team_size(int64_t work)
{
    return work < SN_DNNL_SERIAL_WORK ? 1 : sn_get_num_threads();
}

int sn_dnnl_team_enter(int team)
{
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    if (team != saved) omp_set_num_threads(team);
    return saved;
#else
    (void)team;
    return 1;
#endif
}

void sn_dnnl_team_leave(int saved)
{
#ifdef _OPENMP
    if (omp_get_max_threads() != saved) omp_set_num_threads(saved);
#else
    (void)saved;
#endif
}

int sn_dnnl_exec(sn_ctx *ctx, dnnl_primitive_t prim, int team, int n_args, const dnnl_exec_arg_t *args,
                 const char *what)
{
    sn_dnnl *d = sn_dnnl_get(ctx);
    if (!d) return sn_ctx_status(ctx);
    int saved = sn_dnnl_team_enter(team);
    dnnl_status_t st = dnnl_primitive_execute(prim, d->stream, n_args, args);
    if (st == dnnl_success) st = dnnl_stream_wait(d->stream);
    sn_dnnl_team_leave(saved);
    return sn_dnnl_check(ctx, st, what);
}

int sn_dnnl_reorder_create(sn_ctx *ctx, dnnl_engine_t eng, const dnnl_memory_desc_t *src_md,
                           const dnnl_memory_desc_t *dst_md, bool sum, dnnl_primitive_t *out)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && sum) st = dnnl_post_ops_create(&ops);
    if (st == dnnl_success && sum) st = dnnl_post_ops_append_sum(ops, 1.0f);
    if (st == dnnl_success && sum) st = dnnl_primitive_attr_set_post_ops(attr, ops);
    if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&pd, src_md, eng, dst_md, eng, attr);
    if (st == dnnl_success) st = dnnl_primitive_create(out, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return sn_dnnl_check(ctx, st, "creating a reorder");
}

int sn_dnnl_set_handle(sn_ctx *ctx, dnnl_memory_t m, const void *p)
{
    /* oneDNN takes a non-const handle; inputs are only read. */
    return sn_dnnl_check(ctx, dnnl_memory_set_data_handle(m, (void *)p), "setting a buffer of a oneDNN memory");
}

void *sn_dnnl_entry_new(sn_ctx *ctx, size_t size, dnnl_engine_t *engine, const char *what)
{
    sn_dnnl *d = sn_dnnl_get(ctx);
    if (!d) return NULL;
    void *e = calloc(1, size);
    if (!e) {
        sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory caching %s", what);
        return NULL;
    }
    *engine = d->engine;
    return e;
}

void *sn_dnnl_cache_keep(sn_ctx *ctx, const void *key, size_t key_len, void *entry, void (*destroy)(void *),
                         int rc, const char *what)
{
    if (rc) {
        destroy(entry);
        return NULL;
    }
    if (sn_cache_put(ctx, key, key_len, entry, destroy)) {
        destroy(entry);
        sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory caching %s", what);
        return NULL;
    }
    return entry;
}

int sn_dnnl_add_from(sn_ctx *ctx, dnnl_memory_t m, float *dst, int64_t n)
{
    void *p = NULL;
    if (sn_dnnl_check(ctx, dnnl_memory_get_data_handle(m, &p), "reading a oneDNN result")) return SN_ERR_BACKEND;
    const float *src = p;
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
    return SN_OK;
}
