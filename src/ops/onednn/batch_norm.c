/* oneDNN 2.6 batch normalization forward and backward, NHWC.
 *
 * Flags (oneDNN 2.6 has separate scale and shift flags; 3.x renumbers them,
 * which is why this stays in one file): dnnl_use_scale / dnnl_use_shift when
 * gamma / beta are given, neither for affine=false; dnnl_use_global_stats in
 * eval mode, where the backward then treats mean and variance as constants
 * (dx = dy * gamma / sqrt(var + eps)). Training forward outputs the batch
 * mean and the biased variance; the builder converts for the running stats.
 *
 * One cache entry per (shape, eps, flags, thread count, team sizes; onednn.h:
 * a tiny batch norm is created and run with one thread): forward pd and
 * primitive, the backward ones made on the first backward call (forward pd
 * as hint), memory objects whose buffers are set per call, and owned
 * buffers for dgamma / dbeta that are then added into the gradients. */
#include <stdlib.h>
#include <string.h>

#include "ops/onednn/batch_norm.h"
#include "ops/onednn/onednn.h"

#define BN_KEY_TAG 0x626e726d /* "bnrm" */

typedef struct bn_key {
    int32_t tag, threads, team_fwd, team_bwd;
    int64_t n, h, w, c;
    uint32_t eps_bits, flags;
} bn_key;

enum { M_X, M_Y, M_MEAN, M_VAR, M_SCALE, M_SHIFT, M_DY, M_DX, M_DSCALE, M_DSHIFT, M_COUNT };

typedef struct bn_entry {
    dnnl_engine_t engine; /* not owned */
    unsigned flags;
    int team_fwd, team_bwd; /* OpenMP team per direction */
    dnnl_memory_desc_t data_md, vec_md;
    dnnl_primitive_desc_t fwd_pd, bwd_pd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t m[M_COUNT];
    bool bwd_ready;
} bn_entry;

static void destroy_entry(void *p)
{
    bn_entry *e = p;
    dnnl_primitive_t prims[] = {e->fwd, e->bwd};
    dnnl_primitive_desc_t pds[] = {e->fwd_pd, e->bwd_pd};
    sn_dnnl_destroy(prims, SN_DNNL_LEN(prims), pds, SN_DNNL_LEN(pds), e->m, M_COUNT);
    free(e);
}

static unsigned bn_flags(const sn_bn_shape *s)
{
    unsigned f = dnnl_normalization_flags_none;
    if (s->scale) f |= dnnl_use_scale;
    if (s->shift) f |= dnnl_use_shift;
    if (s->global_stats) f |= dnnl_use_global_stats;
    return f;
}

static bn_key make_key(const sn_bn_shape *s)
{
    bn_key k;
    memset(&k, 0, sizeof k); /* no stray padding bytes in the hashed key */
    k.tag = BN_KEY_TAG;
    k.threads = sn_get_num_threads();
    /* Forward reads x, writes y; backward reads x and dy, writes dx. */
    int64_t nx = s->n * s->h * s->w * s->c;
    k.team_fwd = sn_dnnl_team_size(sn_dnnl_work(0, 2 * nx));
    k.team_bwd = sn_dnnl_team_size(sn_dnnl_work(0, 3 * nx));
    k.n = s->n, k.h = s->h, k.w = s->w, k.c = s->c;
    memcpy(&k.eps_bits, &s->eps, sizeof k.eps_bits);
    k.flags = bn_flags(s);
    return k;
}

/* A memory object whose buffer is set per call, or owned (allocated once). */
static int new_memory(sn_ctx *ctx, bn_entry *e, int which, const dnnl_memory_desc_t *md, bool owned)
{
    if (e->m[which]) return SN_OK;
    void *handle = owned ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE;
    return sn_dnnl_check(ctx, dnnl_memory_create(&e->m[which], md, e->engine, handle),
                         "creating a batch-norm memory object");
}

static int create_forward(sn_ctx *ctx, bn_entry *e, const sn_bn_shape *s)
{
    dnnl_batch_normalization_desc_t bd;
    /* forward_training also in eval mode: the backward of eval mode needs a
     * training forward pd as its hint. */
    dnnl_status_t st = dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, &e->data_md, s->eps,
                                                                  e->flags);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->fwd_pd, &bd, NULL, e->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->fwd, e->fwd_pd);
    if (sn_dnnl_check(ctx, st, "creating a batch-norm forward primitive")) return SN_ERR_BACKEND;
    sn_dnnl_note_impl(ctx, "bnorm_fwd", e->fwd_pd);
    if (new_memory(ctx, e, M_X, &e->data_md, false) || new_memory(ctx, e, M_Y, &e->data_md, false) ||
        new_memory(ctx, e, M_MEAN, &e->vec_md, false) || new_memory(ctx, e, M_VAR, &e->vec_md, false) ||
        (s->scale && new_memory(ctx, e, M_SCALE, &e->vec_md, false)) ||
        (s->shift && new_memory(ctx, e, M_SHIFT, &e->vec_md, false)))
        return SN_ERR_BACKEND;
    return SN_OK;
}

static bn_entry *get_entry(sn_ctx *ctx, const sn_bn_shape *s)
{
    bn_key key = make_key(s);
    bn_entry *e = sn_cache_get(ctx, &key, sizeof key);
    if (e) return e;
    dnnl_engine_t engine;
    e = sn_dnnl_entry_new(ctx, sizeof *e, &engine, "a batch-norm primitive");
    if (!e) return NULL;
    e->engine = engine;
    e->flags = key.flags;
    e->team_fwd = key.team_fwd, e->team_bwd = key.team_bwd;
    dnnl_dims_t vec_dims = {s->c};
    dnnl_status_t st = sn_dnnl_md_nhwc(&e->data_md, s->n, s->h, s->w, s->c);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&e->vec_md, 1, vec_dims, dnnl_f32, dnnl_a);
    int saved = sn_dnnl_team_enter(e->team_fwd);
    int rc = sn_dnnl_check(ctx, st, "describing batch-norm tensors") || create_forward(ctx, e, s);
    sn_dnnl_team_leave(saved);
    return sn_dnnl_cache_keep(ctx, &key, sizeof key, e, destroy_entry, rc, "a batch-norm primitive");
}

int sn_dnnl_bn_forward(sn_ctx *ctx, const sn_bn_shape *s, const float *x, const float *gamma, const float *beta,
                       float *mean, float *var, float *y)
{
    bn_entry *e = get_entry(ctx, s);
    if (!e) return ctx_status(ctx);
    if (sn_dnnl_set_handle(ctx, e->m[M_X], x) || sn_dnnl_set_handle(ctx, e->m[M_Y], y) ||
        sn_dnnl_set_handle(ctx, e->m[M_MEAN], mean) ||
        sn_dnnl_set_handle(ctx, e->m[M_VAR], var) || (s->scale && sn_dnnl_set_handle(ctx, e->m[M_SCALE], gamma)) ||
        (s->shift && sn_dnnl_set_handle(ctx, e->m[M_SHIFT], beta)))
        return SN_ERR_BACKEND;
    dnnl_exec_arg_t args[6];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, e->m[M_X]};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, e->m[M_Y]};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_MEAN, e->m[M_MEAN]};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_VARIANCE, e->m[M_VAR]};
    if (s->scale) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCALE, e->m[M_SCALE]};
    if (s->shift) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, e->m[M_SHIFT]};
    return sn_dnnl_exec(ctx, e->fwd, e->team_fwd, n, args, "running a batch-norm forward");
}

/* ---- backward ------------------------------------------------------------------ */
static int create_backward(sn_ctx *ctx, bn_entry *e, const sn_bn_shape *s)
{
    if (e->bwd) dnnl_primitive_destroy(e->bwd);
    if (e->bwd_pd) dnnl_primitive_desc_destroy(e->bwd_pd);
    e->bwd = NULL, e->bwd_pd = NULL;
    /* dnnl_backward computes dgamma/dbeta too; without scale and shift it
     * is the same as backward_data. */
    dnnl_prop_kind_t prop = (s->scale || s->shift) ? dnnl_backward : dnnl_backward_data;
    dnnl_batch_normalization_desc_t bd;
    dnnl_status_t st =
        dnnl_batch_normalization_backward_desc_init(&bd, prop, &e->data_md, &e->data_md, s->eps, e->flags);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->bwd_pd, &bd, NULL, e->engine, e->fwd_pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->bwd, e->bwd_pd);
    if (sn_dnnl_check(ctx, st, "creating a batch-norm backward primitive")) return SN_ERR_BACKEND;
    sn_dnnl_note_impl(ctx, "bnorm_bwd", e->bwd_pd);
    if (new_memory(ctx, e, M_DY, &e->data_md, false) || new_memory(ctx, e, M_DX, &e->data_md, false) ||
        (s->scale && new_memory(ctx, e, M_DSCALE, &e->vec_md, true)) ||
        (s->shift && new_memory(ctx, e, M_DSHIFT, &e->vec_md, true)))
        return SN_ERR_BACKEND;
    e->bwd_ready = true;
    return SN_OK;
}

int sn_dnnl_bn_backward(sn_ctx *ctx, const sn_bn_shape *s, const float *x, const float *dy, const float *gamma,
                        const float *beta, const float *mean, const float *var, float *dx, bool accumulate, float *dgamma,
                        float *dbeta)
{
    bn_entry *e = get_entry(ctx, s);
    if (!e) return ctx_status(ctx);
    if (!e->bwd_ready) {
        int saved = sn_dnnl_team_enter(e->team_bwd);
        int rc = create_backward(ctx, e, s);
        sn_dnnl_team_leave(saved);
        if (rc) return SN_ERR_BACKEND;
    }
    int64_t nx = s->n * s->h * s->w * s->c;
    /* The primitive overwrites: accumulate through a step-arena buffer. */
    float *out = accumulate ? sn_step_alloc(ctx, (size_t)nx * sizeof(float)) : dx;
    if (!out) return ctx_status(ctx);
    if (sn_dnnl_set_handle(ctx, e->m[M_X], x) || sn_dnnl_set_handle(ctx, e->m[M_DY], dy) ||
        sn_dnnl_set_handle(ctx, e->m[M_DX], out) ||
        sn_dnnl_set_handle(ctx, e->m[M_MEAN], mean) || sn_dnnl_set_handle(ctx, e->m[M_VAR], var) ||
        (s->scale && sn_dnnl_set_handle(ctx, e->m[M_SCALE], gamma)) ||
        (s->shift && sn_dnnl_set_handle(ctx, e->m[M_SHIFT], beta)))
        return SN_ERR_BACKEND;
    dnnl_exec_arg_t args[9];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, e->m[M_X]};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, e->m[M_DY]};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_MEAN, e->m[M_MEAN]};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_VARIANCE, e->m[M_VAR]};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, e->m[M_DX]};
    if (s->scale) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCALE, e->m[M_SCALE]};
    if (s->scale) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SCALE, e->m[M_DSCALE]};
    if (s->shift) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, e->m[M_SHIFT]};
    if (s->shift) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SHIFT, e->m[M_DSHIFT]};
    if (sn_dnnl_exec(ctx, e->bwd, e->team_bwd, n, args, "running a batch-norm backward")) return SN_ERR_BACKEND;
    if (accumulate) {
#pragma omp parallel for simd if (nx > SN_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < nx; i++) dx[i] += out[i];
    }
    if (dgamma && sn_dnnl_add_from(ctx, e->m[M_DSCALE], dgamma, s->c)) return SN_ERR_BACKEND;
    if (dbeta && sn_dnnl_add_from(ctx, e->m[M_DSHIFT], dbeta, s->c)) return SN_ERR_BACKEND;
    return SN_OK;
}
