/* oneDNN 2.6 pooling forward and backward, NHWC.
 *
 * One cache entry per (geometry, kind, training, thread count, team size;
 * onednn.h: a tiny pooling is created and run with one thread) holds the
 * forward pd and primitive, the backward ones (made on the first backward
 * call, forward pd as hint) and memory objects whose buffers are set per
 * call (DESIGN.md: creation costs 0.5-2 ms, a cached call < 1 us).
 *
 * Max pooling trained: the forward writes a workspace (the argmax of every
 * window) that the backward reads; the builder gives it a buffer from the
 * step arena, so nothing here allocates per step. Average pooling is
 * dnnl_pooling_avg_exclude_padding: TF 'SAME' divides by the number of real
 * cells in the window. */
#include <stdlib.h>
#include <string.h>

#include "ops/onednn/onednn.h"
#include "ops/onednn/pool.h"

#define POOL_KEY_TAG 0x706f6f6c /* "pool" */

typedef struct pool_key {
    int32_t tag, threads, team;
    int64_t n, h, w, c, oh, ow;
    int32_t k, stride, pad_t, pad_l, pad_b, pad_r, kind, training;
} pool_key;

typedef struct pool_entry {
    dnnl_engine_t engine; /* not owned */
    int team; /* OpenMP team, both directions */
    dnnl_memory_desc_t x_md, y_md;
    dnnl_primitive_desc_t fwd_pd, bwd_pd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t x_m, y_m, ws_m, dy_m, dx_m;
    size_t ws_bytes;
    bool bwd_ready;
} pool_entry;

static void destroy_entry(void *p)
{
    pool_entry *e = p;
    dnnl_memory_t mems[] = {e->x_m, e->y_m, e->ws_m, e->dy_m, e->dx_m};
    dnnl_primitive_t prims[] = {e->fwd, e->bwd};
    dnnl_primitive_desc_t pds[] = {e->fwd_pd, e->bwd_pd};
    sn_dnnl_destroy(prims, SN_DNNL_LEN(prims), pds, SN_DNNL_LEN(pds), mems, SN_DNNL_LEN(mems));
    free(e);
}

/* Average pooling needs no workspace, so its training and inference
 * primitives are one and the same entry. */
static bool uses_workspace(const sn_pool_shape *s, bool training)
{
    return training && s->kind == SN_POOL_MAX;
}

static pool_key make_key(const sn_pool_shape *s, bool training)
{
    pool_key k;
    memset(&k, 0, sizeof k); /* no stray padding bytes in the hashed key */
    k.tag = POOL_KEY_TAG;
    k.threads = sn_get_num_threads();
    /* Work: the elements read and written. */
    int64_t el = s->n * (s->h * s->w + s->oh * s->ow) * s->c;
    k.team = sn_dnnl_team_size(sn_dnnl_work(0, el));
    k.n = s->n, k.h = s->h, k.w = s->w, k.c = s->c, k.oh = s->oh, k.ow = s->ow;
    k.k = s->k, k.stride = s->stride;
    k.pad_t = s->pad_t, k.pad_l = s->pad_l, k.pad_b = s->pad_b, k.pad_r = s->pad_r;
    k.kind = s->kind;
    k.training = training || s->kind == SN_POOL_AVG;
    return k;
}

typedef struct pool_geom {
    dnnl_dims_t strides, kernel, pad_l, pad_r;
} pool_geom;

static pool_geom geometry(const sn_pool_shape *s)
{
    pool_geom g = {{s->stride, s->stride}, {s->k, s->k}, {s->pad_t, s->pad_l}, {s->pad_b, s->pad_r}};
    return g;
}

static dnnl_alg_kind_t alg(const sn_pool_shape *s)
{
    return s->kind == SN_POOL_MAX ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
}

static int new_memory(sn_ctx *ctx, dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t eng)
{
    return sn_dnnl_check(ctx, dnnl_memory_create(m, md, eng, DNNL_MEMORY_NONE), "creating a pooling memory object");
}

static int create_forward(sn_ctx *ctx, pool_entry *e, const sn_pool_shape *s, bool training)
{
    pool_geom g = geometry(s);
    dnnl_pooling_desc_t pd;
    dnnl_prop_kind_t prop = training ? dnnl_forward_training : dnnl_forward_inference;
    dnnl_status_t st = dnnl_pooling_forward_desc_init(&pd, prop, alg(s), &e->x_md, &e->y_md, g.strides, g.kernel,
                                                      g.pad_l, g.pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->fwd_pd, &pd, NULL, e->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->fwd, e->fwd_pd);
    if (sn_dnnl_check(ctx, st, "creating a pooling forward primitive")) return SN_ERR_BACKEND;
    sn_dnnl_note_impl(ctx, "pool_fwd", e->fwd_pd);
    if (new_memory(ctx, &e->x_m, &e->x_md, e->engine) || new_memory(ctx, &e->y_m, &e->y_md, e->engine))
        return SN_ERR_BACKEND;
    if (!uses_workspace(s, training)) return SN_OK;
    const dnnl_memory_desc_t *ws_md = dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_workspace_md, 0);
    if (!ws_md) return sn_ctx_fail(ctx, SN_ERR_BACKEND, "oneDNN max pooling reports no workspace");
    e->ws_bytes = dnnl_memory_desc_get_size(ws_md);
    return new_memory(ctx, &e->ws_m, ws_md, e->engine);
}

static pool_entry *get_entry(sn_ctx *ctx, const sn_pool_shape *s, bool training)
{
    pool_key key = make_key(s, training);
    pool_entry *e = sn_cache_get(ctx, &key, sizeof key);
    if (e) return e;
    dnnl_engine_t engine;
    e = sn_dnnl_entry_new(ctx, sizeof *e, &engine, "a pooling primitive");
    if (!e) return NULL;
    e->engine = engine;
    dnnl_status_t st = sn_dnnl_md_nhwc(&e->x_md, s->n, s->h, s->w, s->c);
    if (st == dnnl_success) st = sn_dnnl_md_nhwc(&e->y_md, s->n, s->oh, s->ow, s->c);
    e->team = key.team;
    int saved = sn_dnnl_team_enter(e->team);
    int rc = sn_dnnl_check(ctx, st, "describing pooling tensors") || create_forward(ctx, e, s, key.training);
    sn_dnnl_team_leave(saved);
    return sn_dnnl_cache_keep(ctx, &key, sizeof key, e, destroy_entry, rc, "a pooling primitive");
}

int sn_dnnl_pool_workspace_bytes(sn_ctx *ctx, const sn_pool_shape *s, size_t *bytes)
{
    *bytes = 0;
    if (s->kind != SN_POOL_MAX) return SN_OK;
    pool_entry *e = get_entry(ctx, s, true);
    if (!e) return ctx_status(ctx);
    *bytes = e->ws_bytes;
    return SN_OK;
}

int sn_dnnl_pool_forward(sn_ctx *ctx, const sn_pool_shape *s, bool training, const float *x, float *y, void *ws)
{
    pool_entry *e = get_entry(ctx, s, training);
    if (!e) return ctx_status(ctx);
    bool with_ws = uses_workspace(s, training);
    if (sn_dnnl_set_handle(ctx, e->x_m, x) || sn_dnnl_set_handle(ctx, e->y_m, y) ||
        (with_ws && sn_dnnl_set_handle(ctx, e->ws_m, ws)))
        return SN_ERR_BACKEND;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->x_m}, {DNNL_ARG_DST, e->y_m}, {DNNL_ARG_WORKSPACE, e->ws_m}};
    return sn_dnnl_exec(ctx, e->fwd, e->team, with_ws ? 3 : 2, args, "running a pooling forward");
}

/* ---- backward ------------------------------------------------------------------ */
static int create_backward(sn_ctx *ctx, pool_entry *e, const sn_pool_shape *s)
{
    if (e->bwd) dnnl_primitive_destroy(e->bwd);
    if (e->bwd_pd) dnnl_primitive_desc_destroy(e->bwd_pd);
    e->bwd = NULL, e->bwd_pd = NULL;
    pool_geom g = geometry(s);
    dnnl_pooling_desc_t pd;
    dnnl_status_t st = dnnl_pooling_backward_desc_init(&pd, alg(s), &e->x_md, &e->y_md, g.strides, g.kernel,
                                                       g.pad_l, g.pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->bwd_pd, &pd, NULL, e->engine, e->fwd_pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->bwd, e->bwd_pd);
    if (sn_dnnl_check(ctx, st, "creating a pooling backward primitive")) return SN_ERR_BACKEND;
    sn_dnnl_note_impl(ctx, "pool_bwd", e->bwd_pd);
    if ((!e->dy_m && new_memory(ctx, &e->dy_m, &e->y_md, e->engine)) ||
        (!e->dx_m && new_memory(ctx, &e->dx_m, &e->x_md, e->engine)))
        return SN_ERR_BACKEND;
    e->bwd_ready = true;
    return SN_OK;
}

int sn_dnnl_pool_backward(sn_ctx *ctx, const sn_pool_shape *s, const float *dy, const void *ws, float *dx,
                          bool accumulate)
{
    pool_entry *e = get_entry(ctx, s, true);
    if (!e) return ctx_status(ctx);
    if (!e->bwd_ready) {
        int saved = sn_dnnl_team_enter(e->team);
        int rc = create_backward(ctx, e, s);
        sn_dnnl_team_leave(saved);
        if (rc) return SN_ERR_BACKEND;
    }
    int64_t nx = s->n * s->h * s->w * s->c;
    /* The primitive overwrites: accumulate through a step-arena buffer. */
    float *out = accumulate ? sn_step_alloc(ctx, (size_t)nx * sizeof(float)) : dx;
    if (!out) return ctx_status(ctx);
    bool with_ws = s->kind == SN_POOL_MAX;
    if (sn_dnnl_set_handle(ctx, e->dy_m, dy) || sn_dnnl_set_handle(ctx, e->dx_m, out) ||
        (with_ws && sn_dnnl_set_handle(ctx, e->ws_m, ws)))
        return SN_ERR_BACKEND;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, e->dy_m}, {DNNL_ARG_DIFF_SRC, e->dx_m},
                               {DNNL_ARG_WORKSPACE, e->ws_m}};
    if (sn_dnnl_exec(ctx, e->bwd, e->team, with_ws ? 3 : 2, args, "running a pooling backward"))
        return SN_ERR_BACKEND;
    if (accumulate) {
#pragma omp parallel for simd if (nx > SN_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < nx; i++) dx[i] += out[i];
    }
    return SN_OK;
}
