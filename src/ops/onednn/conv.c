/* oneDNN 2.6 convolution: forward (training), backward data, backward
 * weights (+ bias), NHWC activations, HWIO weights described by strides.
 *
 * Everything oneDNN needs for one geometry (primitive descriptors,
 * primitives, weight reorders, memory objects) lives in one cache entry keyed
 * by the shape, the parameters and the thread count (oneDNN 2.6 fixes a
 * primitive's OpenMP team size at creation). Each direction has its own team
 * size from its work (onednn.h, conv_teams): a tiny convolution is created
 * and run with one thread. A call only sets data handles
 * and executes: creating a fwd/bwd trio costs 0.5-2 ms, oneDNN's own cache
 * 1-4 us per lookup (DESIGN.md). The backward primitives are made on the
 * first backward call, with `any` weights and the forward pd as hint:
 * forcing the forward's weight format silently selects `ref` (DESIGN.md). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/onednn/conv.h"
#include "ops/onednn/conv_common.h"
#include "ops/onednn/onednn.h"

/* A tag that keeps conv keys apart from other ops' keys in the shared cache. */
#define CONV_KEY_TAG 0x636f6e76 /* "conv" */

typedef struct conv_key {
    int32_t tag, threads, team_fwd, team_bd, team_bw;
    int64_t n, h, w, ci, co, oh, ow;
    int32_t kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, dil_h, dil_w, groups, has_bias;
} conv_key;

typedef struct conv_entry {
    dnnl_engine_t engine; /* not owned */
    const char *prefix;   /* "conv" or "dwconv", for sn_impl_name */
    int team_fwd, team_bd, team_bw; /* OpenMP team per direction */
    dnnl_memory_desc_t x_md, y_md, w_user_md, b_md;
    /* forward */
    dnnl_primitive_desc_t fwd_pd;
    dnnl_primitive_t fwd, w_to_fwd;        /* w_to_fwd NULL when HWIO is the choice */
    dnnl_memory_t x_m, y_m, w_user_m, b_m, w_fwd_m;
    /* backward data (bd_ready once complete: a half-built part is never run) */
    bool bd_ready, bw_ready;
    dnnl_primitive_desc_t bd_pd;
    dnnl_primitive_t bd, w_to_bd;
    dnnl_memory_t dy_m, dx_m, w_bd_m;
    /* backward weights */
    dnnl_primitive_desc_t bw_pd;
    dnnl_primitive_t bw, dw_to_user;       /* reorder with a sum post-op: accumulates */
    dnnl_memory_t dw_bw_m, db_m, dw_user_m;
} conv_entry;

static void destroy_entry(void *p)
{
    conv_entry *e = p;
    dnnl_primitive_t prims[] = {e->fwd, e->w_to_fwd, e->bd, e->w_to_bd, e->bw, e->dw_to_user};
    dnnl_primitive_desc_t pds[] = {e->fwd_pd, e->bd_pd, e->bw_pd};
    dnnl_memory_t mems[] = {e->x_m, e->y_m, e->w_user_m, e->b_m, e->w_fwd_m, e->dy_m,
                            e->dx_m, e->w_bd_m, e->dw_bw_m, e->db_m, e->dw_user_m};
    sn_dnnl_destroy(prims, SN_DNNL_LEN(prims), pds, SN_DNNL_LEN(pds), mems, SN_DNNL_LEN(mems));
    free(e);
}

static bool is_depthwise(const sn_conv_shape *s)
{
    return s->p.groups > 1 && s->p.groups == s->ci && s->ci == s->co;
}

typedef struct conv_teams {
    int fwd, bd, bw;
} conv_teams;

/* Team sizes per direction from the work (onednn.h). Dense forward on fewer
 * than 16 output pixels (2x2 at batch 2, the deepest level of a 64x64 crop)
 * runs alone up to 32 MFLOP: oneDNN 2.6's brgconv splits such an output
 * badly, 2 threads were 1.5-2.5x SLOWER than 1 there (1x1 320 ch @2x2:
 * 26 vs 59 us; 3x3 320 ch: 224 vs 329 us), while the backward passes of the
 * same shapes do gain from 2 threads (3x3: 343 vs 184 us). */
static conv_teams teams_of(const sn_conv_shape *s)
{
    int64_t flops = 2 * s->n * s->oh * s->ow * s->co * s->kh * s->kw * (s->ci / s->p.groups);
    int64_t work = sn_dnnl_work(flops, s->n * (s->h * s->w * s->ci + s->oh * s->ow * s->co));
    conv_teams t = {sn_dnnl_team_size(work), sn_dnnl_team_size(work), sn_dnnl_team_size(work)};
    if (!is_depthwise(s) && s->n * s->oh * s->ow < 16 && work < 32000000) t.fwd = 1;
    return t;
}

static conv_key make_key(const sn_conv_shape *s)
{
    conv_key k;
    memset(&k, 0, sizeof k); /* no stray padding bytes in the hashed key */
    k.tag = CONV_KEY_TAG;
    k.threads = sn_get_num_threads();
    conv_teams t = teams_of(s);
    k.team_fwd = t.fwd, k.team_bd = t.bd, k.team_bw = t.bw;
    k.n = s->n, k.h = s->h, k.w = s->w, k.ci = s->ci, k.co = s->co, k.oh = s->oh, k.ow = s->ow;
    k.kh = s->kh, k.kw = s->kw;
    k.stride_h = s->p.stride_h, k.stride_w = s->p.stride_w;
    k.pad_t = s->p.pad_top, k.pad_l = s->p.pad_left, k.pad_b = s->p.pad_bottom, k.pad_r = s->p.pad_right;
    k.dil_h = s->p.dilation_h, k.dil_w = s->p.dilation_w;
    k.groups = s->p.groups;
    k.has_bias = s->has_bias;
    return k;
}

/* Our HWIO buffer as oneDNN sees it: element (o, i, kh, kw) of group g is at
 * ((kh * KW + kw) * Cin/g + i) * Cout + g * Cout/g + o. */
dnnl_status_t sn_dnnl_conv_weights_md(dnnl_memory_desc_t *md, const sn_conv_shape *s, bool any)
{
    int64_t g = s->p.groups, cig = s->ci / g, cog = s->co / g;
    int64_t skw = cig * s->co, skh = s->kw * skw;
    if (g == 1) {
        dnnl_dims_t dims = {s->co, cig, s->kh, s->kw}, strides = {1, s->co, skh, skw};
        return any ? dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_format_tag_any)
                   : dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_f32, strides);
    }
    dnnl_dims_t dims = {g, cog, cig, s->kh, s->kw}, strides = {cog, 1, s->co, skh, skw};
    return any ? dnnl_memory_desc_init_by_tag(md, 5, dims, dnnl_f32, dnnl_format_tag_any)
               : dnnl_memory_desc_init_by_strides(md, 5, dims, dnnl_f32, strides);
}

sn_dnnl_conv_geom sn_dnnl_conv_geometry(const sn_conv_shape *s)
{
    /* oneDNN counts dilation from 0 (DESIGN.md). */
    sn_dnnl_conv_geom g = {{s->p.stride_h, s->p.stride_w},
                   {s->p.dilation_h - 1, s->p.dilation_w - 1},
                   {s->p.pad_top, s->p.pad_left},
                   {s->p.pad_bottom, s->p.pad_right}};
    return g;
}

/* Recorded as "conv_fwd", "dwconv_bwd_data", ... for sn_impl_name. */
static void note(sn_ctx *ctx, const conv_entry *e, const char *dir, const_dnnl_primitive_desc_t pd)
{
    char op[32];
    snprintf(op, sizeof op, "%s_%s", e->prefix, dir);
    sn_dnnl_note_impl(ctx, op, pd);
}

/* A memory object whose buffer is set per call (ours) or owned (oneDNN's
 * weight formats, kept between calls so no step allocates). */
static int new_memory(sn_ctx *ctx, dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t eng,
                      bool owned)
{
    return sn_dnnl_check(ctx, dnnl_memory_create(m, md, eng, owned ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE),
                         "creating a convolution memory object");
}

static bool impl_is(const_dnnl_primitive_desc_t pd, const char *prefix)
{
    const char *impl = NULL;
    return dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
           strncmp(impl, prefix, strlen(prefix)) == 0;
}

/* oneDNN's first choice, unless an implementation named `prefer` is on its
 * list. Depthwise forward: oneDNN 2.6 ranks brdgmm_dw first in NHWC, but
 * jit_dw is faster here (dw 3x3 40 ch @80x80, batch 2, 2 threads: 0.056 vs
 * 0.082 ms; 80 ch @40x40: 0.026 vs 0.037 ms). */
static dnnl_status_t create_pd(dnnl_primitive_desc_t *pd, const void *desc, dnnl_engine_t eng,
                               const char *prefer)
{
    if (!prefer) return dnnl_primitive_desc_create(pd, desc, NULL, eng, NULL);
    dnnl_primitive_desc_iterator_t it;
    dnnl_status_t st = dnnl_primitive_desc_iterator_create(&it, desc, NULL, eng, NULL);
    if (st != dnnl_success) return st;
    *pd = NULL;
    do {
        dnnl_primitive_desc_t cand = dnnl_primitive_desc_iterator_fetch(it);
        if (!cand) continue;
        if (!*pd || impl_is(cand, prefer)) {
            if (*pd) dnnl_primitive_desc_destroy(*pd);
            *pd = cand;
            if (impl_is(cand, prefer)) break;
        } else {
            dnnl_primitive_desc_destroy(cand);
        }
    } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
    dnnl_primitive_desc_iterator_destroy(it);
    return *pd ? dnnl_success : dnnl_unimplemented;
}

static int create_forward(sn_ctx *ctx, conv_entry *e, const sn_conv_shape *s)
{
    sn_dnnl_conv_geom g = sn_dnnl_conv_geometry(s);
    dnnl_memory_desc_t w_any;
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = sn_dnnl_conv_weights_md(&w_any, s, true);
    if (st == dnnl_success)
        st = dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
                                                        &e->x_md, &w_any, s->has_bias ? &e->b_md : NULL,
                                                        &e->y_md, g.strides, g.dilates, g.pad_l, g.pad_r);
    if (st == dnnl_success) st = create_pd(&e->fwd_pd, &cd, e->engine, is_depthwise(s) ? "jit_dw" : NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->fwd, e->fwd_pd);
    if (sn_dnnl_check(ctx, st, "creating a convolution forward primitive")) return SN_ERR_BACKEND;
    note(ctx, e, "fwd", e->fwd_pd);
    if (new_memory(ctx, &e->x_m, &e->x_md, e->engine, false) ||
        new_memory(ctx, &e->y_m, &e->y_md, e->engine, false) ||
        new_memory(ctx, &e->w_user_m, &e->w_user_md, e->engine, false) ||
        (s->has_bias && new_memory(ctx, &e->b_m, &e->b_md, e->engine, false)))
        return SN_ERR_BACKEND;
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_weights_md, 0);
    if (dnnl_memory_desc_equal(w_md, &e->w_user_md)) return SN_OK;
    if (new_memory(ctx, &e->w_fwd_m, w_md, e->engine, true) ||
        sn_dnnl_reorder_create(ctx, e->engine, &e->w_user_md, w_md, false, &e->w_to_fwd))
        return SN_ERR_BACKEND;
    return SN_OK;
}

static conv_entry *get_entry(sn_ctx *ctx, const sn_conv_shape *s)
{
    conv_key key = make_key(s);
    conv_entry *e = sn_cache_get(ctx, &key, sizeof key);
    if (e) return e;
    dnnl_engine_t engine;
    e = sn_dnnl_entry_new(ctx, sizeof *e, &engine, "a convolution");
    if (!e) return NULL;
    e->engine = engine;
    e->prefix = is_depthwise(s) ? "dwconv" : "conv";
    dnnl_dims_t b_dims = {s->co};
    dnnl_status_t st = sn_dnnl_md_nhwc(&e->x_md, s->n, s->h, s->w, s->ci);
    if (st == dnnl_success) st = sn_dnnl_md_nhwc(&e->y_md, s->n, s->oh, s->ow, s->co);
    if (st == dnnl_success) st = sn_dnnl_conv_weights_md(&e->w_user_md, s, false);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&e->b_md, 1, b_dims, dnnl_f32, dnnl_a);
    e->team_fwd = key.team_fwd, e->team_bd = key.team_bd, e->team_bw = key.team_bw;
    int saved = sn_dnnl_team_enter(e->team_fwd);
    int rc = sn_dnnl_check(ctx, st, "describing convolution tensors") || create_forward(ctx, e, s);
    sn_dnnl_team_leave(saved);
    return sn_dnnl_cache_keep(ctx, &key, sizeof key, e, destroy_entry, rc, "a convolution");
}

static int run_reorder(sn_ctx *ctx, dnnl_primitive_t r, int team, dnnl_memory_t src, dnnl_memory_t dst)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    return sn_dnnl_exec(ctx, r, team, 2, args, "reordering convolution weights");
}

int sn_dnnl_conv_forward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w,
                         const float *b, float *y)
{
    conv_entry *e = get_entry(ctx, s);
    if (!e) return ctx_status(ctx);
    if (sn_dnnl_set_handle(ctx, e->x_m, x) || sn_dnnl_set_handle(ctx, e->y_m, y) ||
        sn_dnnl_set_handle(ctx, e->w_user_m, w) ||
        (s->has_bias && sn_dnnl_set_handle(ctx, e->b_m, b)))
        return SN_ERR_BACKEND;
    dnnl_memory_t wm = e->w_user_m;
    if (e->w_to_fwd) { /* the weights change every step: reorder on every call */
        if (run_reorder(ctx, e->w_to_fwd, e->team_fwd, e->w_user_m, e->w_fwd_m)) return SN_ERR_BACKEND;
        wm = e->w_fwd_m;
    }
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->x_m}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, e->y_m},
                               {DNNL_ARG_BIAS, e->b_m}};
    return sn_dnnl_exec(ctx, e->fwd, e->team_fwd, s->has_bias ? 4 : 3, args, "running a convolution forward");
}

/* ---- backward data --------------------------------------------------------- */
/* Drops what an earlier, failed creation left behind. */
static void drop(dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim, dnnl_memory_t *m1, dnnl_memory_t *m2,
                 dnnl_primitive_t *reorder)
{
    if (*pd) dnnl_primitive_desc_destroy(*pd);
    if (*prim) dnnl_primitive_destroy(*prim);
    if (*m1) dnnl_memory_destroy(*m1);
    if (*m2) dnnl_memory_destroy(*m2);
    if (*reorder) dnnl_primitive_destroy(*reorder);
    *pd = NULL, *prim = NULL, *m1 = NULL, *m2 = NULL, *reorder = NULL;
}

static int create_backward_data(sn_ctx *ctx, conv_entry *e, const sn_conv_shape *s)
{
    drop(&e->bd_pd, &e->bd, &e->dx_m, &e->w_bd_m, &e->w_to_bd);
    sn_dnnl_conv_geom g = sn_dnnl_conv_geometry(s);
    dnnl_memory_desc_t w_any;
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = sn_dnnl_conv_weights_md(&w_any, s, true);
    if (st == dnnl_success)
        st = dnnl_dilated_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &e->x_md, &w_any,
                                                              &e->y_md, g.strides, g.dilates, g.pad_l,
                                                              g.pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->bd_pd, &cd, NULL, e->engine, e->fwd_pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->bd, e->bd_pd);
    if (sn_dnnl_check(ctx, st, "creating a convolution backward-data primitive")) return SN_ERR_BACKEND;
    note(ctx, e, "bwd_data", e->bd_pd);
    /* dy's memory object is shared with backward weights, which may come first. */
    if ((!e->dy_m && new_memory(ctx, &e->dy_m, &e->y_md, e->engine, false)) ||
        new_memory(ctx, &e->dx_m, &e->x_md, e->engine, false))
        return SN_ERR_BACKEND;
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(e->bd_pd, dnnl_query_weights_md, 0);
    if (!dnnl_memory_desc_equal(w_md, &e->w_user_md) &&
        (new_memory(ctx, &e->w_bd_m, w_md, e->engine, true) ||
         sn_dnnl_reorder_create(ctx, e->engine, &e->w_user_md, w_md, false, &e->w_to_bd)))
        return SN_ERR_BACKEND;
    e->bd_ready = true;
    return SN_OK;
}

static void add_into(float *dst, const float *src, int64_t n)
{
#pragma omp parallel for simd if (n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

int sn_dnnl_conv_backward_data(sn_ctx *ctx, const sn_conv_shape *s, const float *dy, const float *w,
                               float *dx, bool accumulate)
{
    conv_entry *e = get_entry(ctx, s);
    if (!e) return ctx_status(ctx);
    if (!e->bd_ready) {
        int saved = sn_dnnl_team_enter(e->team_bd);
        int rc = create_backward_data(ctx, e, s);
        sn_dnnl_team_leave(saved);
        if (rc) return SN_ERR_BACKEND;
    }
    int64_t nx = s->n * s->h * s->w * s->ci;
    /* The primitive overwrites: accumulate through a step-arena buffer. */
    float *out = accumulate ? sn_step_alloc(ctx, (size_t)nx * sizeof(float)) : dx;
    if (!out) return ctx_status(ctx);
    if (sn_dnnl_set_handle(ctx, e->dy_m, dy) || sn_dnnl_set_handle(ctx, e->dx_m, out) ||
        sn_dnnl_set_handle(ctx, e->w_user_m, w))
        return SN_ERR_BACKEND;
    dnnl_memory_t wm = e->w_user_m;
    if (e->w_to_bd) {
        if (run_reorder(ctx, e->w_to_bd, e->team_bd, e->w_user_m, e->w_bd_m)) return SN_ERR_BACKEND;
        wm = e->w_bd_m;
    }
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, e->dy_m}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, e->dx_m}};
    if (sn_dnnl_exec(ctx, e->bd, e->team_bd, 3, args, "running a convolution backward-data")) return SN_ERR_BACKEND;
    if (accumulate) add_into(dx, out, nx);
    return SN_OK;
}

/* ---- backward weights -------------------------------------------------------- */
static int create_backward_weights(sn_ctx *ctx, conv_entry *e, const sn_conv_shape *s)
{
    drop(&e->bw_pd, &e->bw, &e->dw_bw_m, &e->dw_user_m, &e->dw_to_user);
    if (e->db_m) dnnl_memory_destroy(e->db_m);
    e->db_m = NULL;
    sn_dnnl_conv_geom g = sn_dnnl_conv_geometry(s);
    dnnl_memory_desc_t w_any;
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = sn_dnnl_conv_weights_md(&w_any, s, true);
    if (st == dnnl_success)
        st = dnnl_dilated_convolution_backward_weights_desc_init(
            &cd, dnnl_convolution_direct, &e->x_md, &w_any, s->has_bias ? &e->b_md : NULL, &e->y_md,
            g.strides, g.dilates, g.pad_l, g.pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->bw_pd, &cd, NULL, e->engine, e->fwd_pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->bw, e->bw_pd);
    if (sn_dnnl_check(ctx, st, "creating a convolution backward-weights primitive")) return SN_ERR_BACKEND;
    note(ctx, e, "bwd_weights", e->bw_pd);
    const dnnl_memory_desc_t *dw_md = dnnl_primitive_desc_query_md(e->bw_pd, dnnl_query_diff_weights_md, 0);
    if (!e->dy_m && new_memory(ctx, &e->dy_m, &e->y_md, e->engine, false)) return SN_ERR_BACKEND;
    if (new_memory(ctx, &e->dw_bw_m, dw_md, e->engine, true) ||
        new_memory(ctx, &e->dw_user_m, &e->w_user_md, e->engine, false) ||
        (s->has_bias && new_memory(ctx, &e->db_m, &e->b_md, e->engine, true)) ||
        sn_dnnl_reorder_create(ctx, e->engine, dw_md, &e->w_user_md, true, &e->dw_to_user))
        return SN_ERR_BACKEND;
    e->bw_ready = true;
    return SN_OK;
}

int sn_dnnl_conv_backward_weights(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *dy,
                                  float *dw, float *db)
{
    assert(!db || s->has_bias);
    conv_entry *e = get_entry(ctx, s);
    if (!e) return ctx_status(ctx);
    if (!e->bw_ready) {
        int saved = sn_dnnl_team_enter(e->team_bw);
        int rc = create_backward_weights(ctx, e, s);
        sn_dnnl_team_leave(saved);
        if (rc) return SN_ERR_BACKEND;
    }
    if (sn_dnnl_set_handle(ctx, e->x_m, x) || sn_dnnl_set_handle(ctx, e->dy_m, dy) ||
        sn_dnnl_set_handle(ctx, e->dw_user_m, dw))
        return SN_ERR_BACKEND;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->x_m}, {DNNL_ARG_DIFF_DST, e->dy_m},
                               {DNNL_ARG_DIFF_WEIGHTS, e->dw_bw_m}, {DNNL_ARG_DIFF_BIAS, e->db_m}};
    if (sn_dnnl_exec(ctx, e->bw, e->team_bw, s->has_bias ? 4 : 3, args, "running a convolution backward-weights") ||
        run_reorder(ctx, e->dw_to_user, e->team_bw, e->dw_bw_m, e->dw_user_m))
        return SN_ERR_BACKEND;
    return db ? sn_dnnl_add_from(ctx, e->db_m, db, s->co) : SN_OK;
}
