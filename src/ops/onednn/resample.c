/* oneDNN 2.6 linear resampling (bilinear in 2-D) forward and backward,
 * NHWC. One cache entry per (shape, thread count, team size; onednn.h: a
 * tiny resampling is created and run with one thread): forward pd and
 * primitive, the backward ones made on the first backward call (forward pd
 * as hint), memory objects whose buffers are set per call. The scaling
 * factors are left to oneDNN to derive from the dims (out / in), which is
 * the in/out ratio PyTorch uses when given an output size. */
#include <stdlib.h>
#include <string.h>

#include "ops/onednn/onednn.h"
#include "ops/onednn/resample.h"

#define RESAMPLE_KEY_TAG 0x72736d70 /* "rsmp" */

typedef struct resample_key {
    int32_t tag, threads, team;
    int64_t n, h, w, c, oh, ow;
} resample_key;

typedef struct resample_entry {
    dnnl_engine_t engine; /* not owned */
    int team;             /* OpenMP team, both directions */
    dnnl_memory_desc_t x_md, y_md;
    dnnl_primitive_desc_t fwd_pd, bwd_pd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t x_m, y_m, dy_m, dx_m;
    bool bwd_ready;
} resample_entry;

static void destroy_entry(void *p)
{
    resample_entry *e = p;
    dnnl_memory_t mems[] = {e->x_m, e->y_m, e->dy_m, e->dx_m};
    dnnl_primitive_t prims[] = {e->fwd, e->bwd};
    dnnl_primitive_desc_t pds[] = {e->fwd_pd, e->bwd_pd};
    sn_dnnl_destroy(prims, SN_DNNL_LEN(prims), pds, SN_DNNL_LEN(pds), mems, SN_DNNL_LEN(mems));
    free(e);
}

static resample_key make_key(const sn_resample_shape *s)
{
    resample_key k;
    memset(&k, 0, sizeof k); /* no stray padding bytes in the hashed key */
    k.tag = RESAMPLE_KEY_TAG;
    k.threads = sn_get_num_threads();
    k.team = sn_dnnl_team_size(sn_dnnl_work(0, s->n * (s->h * s->w + s->oh * s->ow) * s->c));
    k.n = s->n, k.h = s->h, k.w = s->w, k.c = s->c, k.oh = s->oh, k.ow = s->ow;
    return k;
}

static int new_memory(sn_ctx *ctx, dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t eng)
{
    if (*m) return SN_OK;
    return sn_dnnl_check(ctx, dnnl_memory_create(m, md, eng, DNNL_MEMORY_NONE), "creating a resampling memory object");
}

static int create_forward(sn_ctx *ctx, resample_entry *e)
{
    dnnl_resampling_desc_t rd;
    dnnl_status_t st =
        dnnl_resampling_forward_desc_init(&rd, dnnl_forward_training, dnnl_resampling_linear, NULL, &e->x_md, &e->y_md);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->fwd_pd, &rd, NULL, e->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->fwd, e->fwd_pd);
    if (sn_dnnl_check(ctx, st, "creating a resampling forward primitive")) return SN_ERR_BACKEND;
    sn_dnnl_note_impl(ctx, "resample_fwd", e->fwd_pd);
    if (new_memory(ctx, &e->x_m, &e->x_md, e->engine) || new_memory(ctx, &e->y_m, &e->y_md, e->engine))
        return SN_ERR_BACKEND;
    return SN_OK;
}

static resample_entry *get_entry(sn_ctx *ctx, const sn_resample_shape *s)
{
    resample_key key = make_key(s);
    resample_entry *e = sn_cache_get(ctx, &key, sizeof key);
    if (e) return e;
    dnnl_engine_t engine;
    e = sn_dnnl_entry_new(ctx, sizeof *e, &engine, "a resampling primitive");
    if (!e) return NULL;
    e->engine = engine;
    e->team = key.team;
    dnnl_status_t st = sn_dnnl_md_nhwc(&e->x_md, s->n, s->h, s->w, s->c);
    if (st == dnnl_success) st = sn_dnnl_md_nhwc(&e->y_md, s->n, s->oh, s->ow, s->c);
    int saved = sn_dnnl_team_enter(e->team);
    int rc = sn_dnnl_check(ctx, st, "describing resampling tensors") || create_forward(ctx, e);
    sn_dnnl_team_leave(saved);
    return sn_dnnl_cache_keep(ctx, &key, sizeof key, e, destroy_entry, rc, "a resampling primitive");
}

int sn_dnnl_resample_forward(sn_ctx *ctx, const sn_resample_shape *s, const float *x, float *y)
{
    resample_entry *e = get_entry(ctx, s);
    if (!e) return ctx_status(ctx);
    if (sn_dnnl_set_handle(ctx, e->x_m, x) || sn_dnnl_set_handle(ctx, e->y_m, y)) return SN_ERR_BACKEND;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, e->x_m}, {DNNL_ARG_DST, e->y_m}};
    return sn_dnnl_exec(ctx, e->fwd, e->team, 2, args, "running a resampling forward");
}

static int create_backward(sn_ctx *ctx, resample_entry *e)
{
    if (e->bwd) dnnl_primitive_destroy(e->bwd);
    if (e->bwd_pd) dnnl_primitive_desc_destroy(e->bwd_pd);
    e->bwd = NULL, e->bwd_pd = NULL;
    dnnl_resampling_desc_t rd;
    dnnl_status_t st = dnnl_resampling_backward_desc_init(&rd, dnnl_resampling_linear, NULL, &e->x_md, &e->y_md);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->bwd_pd, &rd, NULL, e->engine, e->fwd_pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->bwd, e->bwd_pd);
    if (sn_dnnl_check(ctx, st, "creating a resampling backward primitive")) return SN_ERR_BACKEND;
    sn_dnnl_note_impl(ctx, "resample_bwd", e->bwd_pd);
    if (new_memory(ctx, &e->dy_m, &e->y_md, e->engine) || new_memory(ctx, &e->dx_m, &e->x_md, e->engine))
        return SN_ERR_BACKEND;
    e->bwd_ready = true;
    return SN_OK;
}

int sn_dnnl_resample_backward(sn_ctx *ctx, const sn_resample_shape *s, const float *dy, float *dx, bool accumulate)
{
    resample_entry *e = get_entry(ctx, s);
    if (!e) return ctx_status(ctx);
    if (!e->bwd_ready) {
        int saved = sn_dnnl_team_enter(e->team);
        int rc = create_backward(ctx, e);
        sn_dnnl_team_leave(saved);
        if (rc) return SN_ERR_BACKEND;
    }
    int64_t nx = s->n * s->h * s->w * s->c;
    /* The primitive overwrites: accumulate through a step-arena buffer. */
    float *out = accumulate ? sn_step_alloc(ctx, (size_t)nx * sizeof(float)) : dx;
    if (!out) return ctx_status(ctx);
    if (sn_dnnl_set_handle(ctx, e->dy_m, dy) || sn_dnnl_set_handle(ctx, e->dx_m, out)) return SN_ERR_BACKEND;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_DIFF_DST, e->dy_m}, {DNNL_ARG_DIFF_SRC, e->dx_m}};
    if (sn_dnnl_exec(ctx, e->bwd, e->team, 2, args, "running a resampling backward")) return SN_ERR_BACKEND;
    if (accumulate) {
#pragma omp parallel for simd if (nx > SN_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < nx; i++) dx[i] += out[i];
    }
    return SN_OK;
}
