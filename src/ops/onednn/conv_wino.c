/* Winograd 3x3 convolutions (conv_wino.h says when and why).
 *
 * One cache entry per geometry holds the three primitives (created together,
 * so a shape either has all of them or none: `available`), the weight
 * reorders and, per activation, the copies between our NHWC buffer and the
 * primitive's blocked layout. The blocked buffers are two slots of a scratch
 * shared by every entry of the context: x-shaped (x, dx) and y-shaped (y, dy);
 * calls are sequential, and backward data and backward weights of one node
 * share the blocked dy. */
#include <stdlib.h>
#include <string.h>

#include "ops/blocked_layout.h"
#include "ops/onednn/conv_common.h"
#include "ops/onednn/conv_wino.h"

#define WINO_KEY_TAG 0x77696e6f    /* "wino" */
#define SCRATCH_KEY_TAG 0x77736372 /* "wscr" */

/* ---- the shared scratch ------------------------------------------------------ */
typedef struct wino_scratch {
    void *slot[2];
    size_t cap[2];
} wino_scratch;

static void destroy_scratch(void *p)
{
    wino_scratch *s = p;
    free(s->slot[0]);
    free(s->slot[1]);
    free(s);
}

/* Slot i with at least `bytes`, grown (never shrunk) to the largest request. */
static void *scratch_slot(sn_ctx *ctx, int i, size_t bytes)
{
    int key = SCRATCH_KEY_TAG;
    wino_scratch *s = sn_cache_get(ctx, &key, sizeof key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || sn_cache_put(ctx, &key, sizeof key, s, destroy_scratch)) {
            free(s);
            sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for the Winograd scratch");
            return NULL;
        }
    }
    if (s->cap[i] < bytes) {
        size_t cap = (bytes + 63) / 64 * 64;
        void *p = aligned_alloc(64, cap);
        if (!p) {
            sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for a %zu-byte Winograd scratch", cap);
            return NULL;
        }
        free(s->slot[i]);
        s->slot[i] = p, s->cap[i] = cap;
    }
    return s->slot[i];
}

/* ---- one activation in two layouts ------------------------------------------------ */
typedef struct relayout {
    dnnl_memory_desc_t md;                 /* the primitive's layout */
    bool own;                              /* md is nChw16c: our copies (ops/blocked_layout.c) */
    int64_t n, hw, c;
    dnnl_primitive_t to_blocked, to_user;  /* oneDNN's reorders otherwise (each only when needed) */
    dnnl_primitive_t add_to_user;          /* md -> NHWC accumulating (dx only) */
    dnnl_memory_t user, blocked;           /* handles set per call */
    float *user_ptr, *blocked_ptr;
} relayout;

typedef enum { TO_BLOCKED = 1, TO_USER = 2, ADD_TO_USER = 4 } relayout_dirs;

static bool is_nchw16c(const dnnl_memory_desc_t *md, int64_t n, int64_t h, int64_t w, int64_t c)
{
    dnnl_memory_desc_t want;
    dnnl_dims_t dims = {n, c, h, w};
    return dnnl_memory_desc_init_by_tag(&want, 4, dims, dnnl_f32, dnnl_nChw16c) == dnnl_success &&
           dnnl_memory_desc_equal(&want, md);
}

/* `dims` {n, h, w, c} of the activation. */
static int relayout_init(sn_ctx *ctx, dnnl_engine_t eng, relayout *r, const int64_t *dims,
                         const dnnl_memory_desc_t *md, int dirs)
{
    dnnl_memory_desc_t user_md;
    r->md = *md;
    r->own = is_nchw16c(md, dims[0], dims[1], dims[2], dims[3]);
    r->n = dims[0], r->hw = dims[1] * dims[2], r->c = dims[3];
    dnnl_status_t st = sn_dnnl_md_nhwc(&user_md, dims[0], dims[1], dims[2], dims[3]);
    if (st == dnnl_success) st = dnnl_memory_create(&r->user, &user_md, eng, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&r->blocked, md, eng, DNNL_MEMORY_NONE);
    if (sn_dnnl_check(ctx, st, "creating a Winograd memory object")) return SN_ERR_BACKEND;
    if (r->own) return SN_OK;
    if ((dirs & TO_BLOCKED) && sn_dnnl_reorder_create(ctx, eng, &user_md, md, false, &r->to_blocked))
        return SN_ERR_BACKEND;
    if ((dirs & TO_USER) && sn_dnnl_reorder_create(ctx, eng, md, &user_md, false, &r->to_user))
        return SN_ERR_BACKEND;
    if ((dirs & ADD_TO_USER) && sn_dnnl_reorder_create(ctx, eng, md, &user_md, true, &r->add_to_user))
        return SN_ERR_BACKEND;
    return SN_OK;
}

static void relayout_free(relayout *r)
{
    dnnl_primitive_t prims[] = {r->to_blocked, r->to_user, r->add_to_user};
    dnnl_memory_t mems[] = {r->user, r->blocked};
    sn_dnnl_destroy(prims, SN_DNNL_LEN(prims), NULL, 0, mems, SN_DNNL_LEN(mems));
}

/* Points the two memory objects at `user` and scratch slot `slot`. */
static int relayout_bind(sn_ctx *ctx, relayout *r, const float *user, int slot)
{
    void *blocked = scratch_slot(ctx, slot, dnnl_memory_desc_get_size(&r->md));
    if (!blocked) return sn_ctx_status(ctx);
    r->user_ptr = (float *)user, r->blocked_ptr = blocked;
    return sn_dnnl_set_handle(ctx, r->user, user) || sn_dnnl_set_handle(ctx, r->blocked, blocked);
}

static int run_reorder(sn_ctx *ctx, dnnl_primitive_t p, int team, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return sn_dnnl_exec(ctx, p, team, 2, args, "running a Winograd reorder");
}

/* NHWC -> the primitive's layout. */
static int relayout_in(sn_ctx *ctx, relayout *r, int team)
{
    if (!r->own) return run_reorder(ctx, r->to_blocked, team, r->user, r->blocked);
    sn_nhwc_to_blocked(r->user_ptr, r->blocked_ptr, r->n, r->hw, r->c);
    return SN_OK;
}

/* The primitive's layout -> NHWC, overwriting or accumulating. */
static int relayout_out(sn_ctx *ctx, relayout *r, int team, bool accumulate)
{
    if (!r->own) return run_reorder(ctx, accumulate ? r->add_to_user : r->to_user, team, r->blocked, r->user);
    sn_blocked_to_nhwc(r->blocked_ptr, r->user_ptr, r->n, r->hw, r->c, accumulate);
    return SN_OK;
}

/* ---- the cache entry ---------------------------------------------------------------- */
typedef struct wino_key {
    int32_t tag, threads, team;
    int64_t n, h, w, ci, co;
    int32_t pad_t, pad_b, pad_l, pad_r, has_bias;
} wino_key;

typedef struct wino_entry {
    bool available;
    int team;
    dnnl_primitive_desc_t fwd_pd, bd_pd, bw_pd;
    dnnl_primitive_t fwd, bd, bw, w_to_fwd, w_to_bd, dw_to_user;
    dnnl_memory_t w_user_m;                 /* our HWIO buffer: w, or dw for backward weights */
    dnnl_memory_t w_fwd_m, w_bd_m, dw_blk_m; /* the primitives' weight layouts (owned) */
    dnnl_memory_t b_m, db_m;
    relayout x, y, dy, dx, x_bw, dy_bw;
} wino_entry;

static void destroy_entry(void *p)
{
    wino_entry *e = p;
    dnnl_primitive_t prims[] = {e->fwd, e->bd, e->bw, e->w_to_fwd, e->w_to_bd, e->dw_to_user};
    dnnl_primitive_desc_t pds[] = {e->fwd_pd, e->bd_pd, e->bw_pd};
    dnnl_memory_t mems[] = {e->w_user_m, e->w_fwd_m, e->w_bd_m, e->b_m, e->dw_blk_m, e->db_m};
    sn_dnnl_destroy(prims, SN_DNNL_LEN(prims), pds, SN_DNNL_LEN(pds), mems, SN_DNNL_LEN(mems));
    relayout *rs[] = {&e->x, &e->y, &e->dy, &e->dx, &e->x_bw, &e->dy_bw};
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) relayout_free(rs[i]);
    free(e);
}

static const dnnl_memory_desc_t *md_of(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* The three primitive descriptors (dnnl_unimplemented when this CPU has no
 * Winograd kernel for the shape). */
static dnnl_status_t create_pds(wino_entry *e, const sn_conv_shape *s, dnnl_engine_t eng,
                                const dnnl_memory_desc_t *b_md)
{
    sn_dnnl_conv_geom g = sn_dnnl_conv_geometry(s);
    dnnl_memory_desc_t x_any, y_any, w_any;
    dnnl_dims_t x_dims = {s->n, s->ci, s->h, s->w}, y_dims = {s->n, s->co, s->oh, s->ow};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&x_any, 4, x_dims, dnnl_f32, dnnl_format_tag_any);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&y_any, 4, y_dims, dnnl_f32, dnnl_format_tag_any);
    if (st == dnnl_success) st = sn_dnnl_conv_weights_md(&w_any, s, true);
    dnnl_convolution_desc_t fd, bdd, bwd;
    const dnnl_memory_desc_t *bias = s->has_bias ? b_md : NULL;
    if (st == dnnl_success)
        st = dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_winograd, &x_any,
                                                &w_any, bias, &y_any, g.strides, g.pad_l, g.pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->fwd_pd, &fd, NULL, eng, NULL);
    if (st == dnnl_success)
        st = dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_winograd, &x_any, &w_any, &y_any,
                                                      g.strides, g.pad_l, g.pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->bd_pd, &bdd, NULL, eng, e->fwd_pd);
    if (st == dnnl_success)
        st = dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_winograd, &x_any, &w_any, bias,
                                                         &y_any, g.strides, g.pad_l, g.pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->bw_pd, &bwd, NULL, eng, e->fwd_pd);
    return st;
}

static int create_entry(sn_ctx *ctx, wino_entry *e, const sn_conv_shape *s, dnnl_engine_t eng)
{
    dnnl_memory_desc_t w_md, b_md;
    dnnl_dims_t b_dims = {s->co};
    const int64_t x_dims[4] = {s->n, s->h, s->w, s->ci}, y_dims[4] = {s->n, s->oh, s->ow, s->co};
    dnnl_status_t st = sn_dnnl_conv_weights_md(&w_md, s, false);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a);
    if (sn_dnnl_check(ctx, st, "describing Winograd convolution tensors")) return SN_ERR_BACKEND;
    /* Without all three descriptors (no Winograd kernel on this CPU or for
     * this shape) the direct path runs it. */
    if (create_pds(e, s, eng, &b_md) != dnnl_success) return SN_OK;
    st = dnnl_primitive_create(&e->fwd, e->fwd_pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->bd, e->bd_pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->bw, e->bw_pd);
    if (st == dnnl_success) st = dnnl_memory_create(&e->w_user_m, &w_md, eng, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&e->w_fwd_m, md_of(e->fwd_pd, dnnl_query_weights_md), eng,
                                                    DNNL_MEMORY_ALLOCATE);
    if (st == dnnl_success) st = dnnl_memory_create(&e->w_bd_m, md_of(e->bd_pd, dnnl_query_weights_md), eng,
                                                    DNNL_MEMORY_ALLOCATE);
    if (st == dnnl_success) st = dnnl_memory_create(&e->dw_blk_m, md_of(e->bw_pd, dnnl_query_diff_weights_md),
                                                    eng, DNNL_MEMORY_ALLOCATE);
    if (st == dnnl_success && s->has_bias) st = dnnl_memory_create(&e->b_m, &b_md, eng, DNNL_MEMORY_NONE);
    if (st == dnnl_success && s->has_bias) st = dnnl_memory_create(&e->db_m, &b_md, eng, DNNL_MEMORY_ALLOCATE);
    if (sn_dnnl_check(ctx, st, "creating Winograd convolution primitives")) return SN_ERR_BACKEND;
    if (sn_dnnl_reorder_create(ctx, eng, &w_md, md_of(e->fwd_pd, dnnl_query_weights_md), false, &e->w_to_fwd) ||
        sn_dnnl_reorder_create(ctx, eng, &w_md, md_of(e->bd_pd, dnnl_query_weights_md), false, &e->w_to_bd) ||
        sn_dnnl_reorder_create(ctx, eng, md_of(e->bw_pd, dnnl_query_diff_weights_md), &w_md, true,
                               &e->dw_to_user) ||
        relayout_init(ctx, eng, &e->x, x_dims, md_of(e->fwd_pd, dnnl_query_src_md), TO_BLOCKED) ||
        relayout_init(ctx, eng, &e->y, y_dims, md_of(e->fwd_pd, dnnl_query_dst_md), TO_USER) ||
        relayout_init(ctx, eng, &e->dy, y_dims, md_of(e->bd_pd, dnnl_query_diff_dst_md), TO_BLOCKED) ||
        relayout_init(ctx, eng, &e->dx, x_dims, md_of(e->bd_pd, dnnl_query_diff_src_md), TO_USER | ADD_TO_USER) ||
        relayout_init(ctx, eng, &e->x_bw, x_dims, md_of(e->bw_pd, dnnl_query_src_md), TO_BLOCKED) ||
        relayout_init(ctx, eng, &e->dy_bw, y_dims, md_of(e->bw_pd, dnnl_query_diff_dst_md), TO_BLOCKED))
        return SN_ERR_BACKEND;
    sn_dnnl_note_impl(ctx, "conv_fwd", e->fwd_pd);
    sn_dnnl_note_impl(ctx, "conv_bwd_data", e->bd_pd);
    sn_dnnl_note_impl(ctx, "conv_bwd_weights", e->bw_pd);
    e->available = true;
    return SN_OK;
}

static int team_of(const sn_conv_shape *s)
{
    int64_t flops = 2 * s->n * s->oh * s->ow * s->co * 9 * s->ci;
    return sn_dnnl_team_size(sn_dnnl_work(flops, s->n * (s->h * s->w * s->ci + s->oh * s->ow * s->co)));
}

static wino_entry *get_entry(sn_ctx *ctx, const sn_conv_shape *s)
{
    wino_key key;
    memset(&key, 0, sizeof key); /* no stray padding bytes in the hashed key */
    key.tag = WINO_KEY_TAG, key.threads = sn_get_num_threads(), key.team = team_of(s);
    key.n = s->n, key.h = s->h, key.w = s->w, key.ci = s->ci, key.co = s->co, key.has_bias = s->has_bias;
    key.pad_t = s->p.pad_top, key.pad_b = s->p.pad_bottom, key.pad_l = s->p.pad_left, key.pad_r = s->p.pad_right;
    wino_entry *e = sn_cache_get(ctx, &key, sizeof key);
    if (e) return e;
    dnnl_engine_t engine;
    e = sn_dnnl_entry_new(ctx, sizeof *e, &engine, "a Winograd convolution");
    if (!e) return NULL;
    e->team = key.team;
    int saved = sn_dnnl_team_enter(e->team);
    int rc = create_entry(ctx, e, s, engine);
    sn_dnnl_team_leave(saved);
    return sn_dnnl_cache_keep(ctx, &key, sizeof key, e, destroy_entry, rc, "a Winograd convolution");
}

bool sn_dnnl_wino_suits(sn_ctx *ctx, const sn_conv_shape *s)
{
    const sn_conv_params *p = &s->p;
    if (s->kh != 3 || s->kw != 3 || p->stride_h != 1 || p->stride_w != 1 || p->dilation_h != 1 ||
        p->dilation_w != 1 || p->groups != 1 || p->pad_top != 1 || p->pad_bottom != 1 || p->pad_left != 1 ||
        p->pad_right != 1)
        return false;
    int64_t channels = s->ci < s->co ? s->ci : s->co, pixels = s->n * s->oh * s->ow;
    if (2 * pixels * s->co * 9 * s->ci < SN_WINO_MIN_FLOPS || channels < SN_WINO_MIN_CHANNELS ||
        (channels < 64 && pixels > SN_WINO_MAX_NARROW_PIXELS))
        return false;
    wino_entry *e = get_entry(ctx, s);
    return e && e->available;
}

/* ---- forward ------------------------------------------------------------------------- */
/* The whole geometry in one call. */
static int forward_whole(sn_ctx *ctx, wino_entry *e, const sn_conv_shape *s, const float *x, const float *w,
                         const float *b, float *y)
{
    if (relayout_bind(ctx, &e->x, x, 0) || relayout_bind(ctx, &e->y, y, 1) ||
        sn_dnnl_set_handle(ctx, e->w_user_m, w) || (s->has_bias && sn_dnnl_set_handle(ctx, e->b_m, b)))
        return sn_ctx_status(ctx);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->x.blocked}, {DNNL_ARG_WEIGHTS, e->w_fwd_m},
                               {DNNL_ARG_DST, e->y.blocked}, {DNNL_ARG_BIAS, e->b_m}};
    if (relayout_in(ctx, &e->x, e->team) || run_reorder(ctx, e->w_to_fwd, e->team, e->w_user_m, e->w_fwd_m) ||
        sn_dnnl_exec(ctx, e->fwd, e->team, s->has_bias ? 4 : 3, args, "running a Winograd forward") ||
        relayout_out(ctx, &e->y, e->team, false))
        return sn_ctx_status(ctx);
    return SN_OK;
}

/* Output rows [r0, r1) of one image as a convolution of their own: the input
 * rows they read (*first is the first), padded only where the strip meets
 * the image's edge. */
static sn_conv_shape strip_shape(const sn_conv_shape *s, int64_t r0, int64_t r1, int64_t *first)
{
    int64_t lo = r0 - s->p.pad_top, hi = r1 + 2 - s->p.pad_top; /* input rows [lo, hi) with 3 taps */
    int64_t a = lo < 0 ? 0 : lo, z = hi > s->h ? s->h : hi;
    sn_conv_shape t = *s;
    t.n = 1, t.h = z - a, t.oh = r1 - r0;
    t.p.pad_top = (int)(a - lo), t.p.pad_bottom = (int)(hi - z);
    *first = a;
    return t;
}

int sn_dnnl_wino_forward_rows(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w,
                              const float *b, float *y, int64_t rows)
{
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t r0 = 0; r0 < s->oh; r0 += rows) {
            int64_t r1 = r0 + rows < s->oh ? r0 + rows : s->oh, first;
            sn_conv_shape t = strip_shape(s, r0, r1, &first);
            const float *xs = x + ((i * s->h + first) * s->w) * s->ci;
            float *ys = y + ((i * s->oh + r0) * s->ow) * s->co;
            wino_entry *e = get_entry(ctx, &t);
            if (!e) return sn_ctx_status(ctx);
            int rc = e->available ? forward_whole(ctx, e, &t, xs, w, b, ys)
                                  : sn_dnnl_conv_forward(ctx, &t, xs, w, b, ys);
            if (rc) return rc;
        }
    return SN_OK;
}

int sn_dnnl_wino_forward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, const float *b,
                         float *y)
{
    int64_t row_bytes = s->w * ((s->ci + SN_BLOCK - 1) / SN_BLOCK * SN_BLOCK) * (int64_t)sizeof(float);
    if (s->n * s->h * row_bytes > SN_WINO_STRIP_BYTES) {
        int64_t rows = SN_WINO_STRIP_BYTES / row_bytes / 4 * 4; /* whole 4x4 output tiles */
        return sn_dnnl_wino_forward_rows(ctx, s, x, w, b, y, rows < 4 ? 4 : rows);
    }
    wino_entry *e = get_entry(ctx, s);
    if (!e) return sn_ctx_status(ctx);
    return forward_whole(ctx, e, s, x, w, b, y);
}

/* ---- backward ---------------------------------------------------------------------------- */
static int backward_data(sn_ctx *ctx, wino_entry *e, const float *w, float *dx, bool accumulate)
{
    if (relayout_bind(ctx, &e->dx, dx, 0) || sn_dnnl_set_handle(ctx, e->w_user_m, w)) return sn_ctx_status(ctx);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, e->dy.blocked}, {DNNL_ARG_WEIGHTS, e->w_bd_m},
                               {DNNL_ARG_DIFF_SRC, e->dx.blocked}};
    if (run_reorder(ctx, e->w_to_bd, e->team, e->w_user_m, e->w_bd_m) ||
        sn_dnnl_exec(ctx, e->bd, e->team, 3, args, "running a Winograd backward-data") ||
        relayout_out(ctx, &e->dx, e->team, accumulate))
        return sn_ctx_status(ctx);
    return SN_OK;
}

/* dy_ready: slot 1 already holds dy in e->dy's layout (backward data ran). */
static int backward_weights(sn_ctx *ctx, wino_entry *e, const sn_conv_shape *s, const float *x, const float *dy,
                            bool dy_ready, float *dw, float *db)
{
    bool reuse_dy = dy_ready && dnnl_memory_desc_equal(&e->dy.md, &e->dy_bw.md);
    if (relayout_bind(ctx, &e->x_bw, x, 0) || relayout_bind(ctx, &e->dy_bw, dy, 1) ||
        sn_dnnl_set_handle(ctx, e->w_user_m, dw))
        return sn_ctx_status(ctx);
    if (relayout_in(ctx, &e->x_bw, e->team) || (!reuse_dy && relayout_in(ctx, &e->dy_bw, e->team)))
        return sn_ctx_status(ctx);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->x_bw.blocked}, {DNNL_ARG_DIFF_DST, e->dy_bw.blocked},
                               {DNNL_ARG_DIFF_WEIGHTS, e->dw_blk_m}, {DNNL_ARG_DIFF_BIAS, e->db_m}};
    if (sn_dnnl_exec(ctx, e->bw, e->team, s->has_bias ? 4 : 3, args, "running a Winograd backward-weights") ||
        run_reorder(ctx, e->dw_to_user, e->team, e->dw_blk_m, e->w_user_m))
        return sn_ctx_status(ctx);
    return db ? sn_dnnl_add_from(ctx, e->db_m, db, s->co) : SN_OK;
}

int sn_dnnl_wino_backward(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, const float *dy,
                          float *dx, bool accumulate, float *dw, float *db)
{
    wino_entry *e = get_entry(ctx, s);
    if (!e) return sn_ctx_status(ctx);
    if (dx) {
        if (relayout_bind(ctx, &e->dy, dy, 1) || relayout_in(ctx, &e->dy, e->team) ||
            backward_data(ctx, e, w, dx, accumulate))
            return sn_ctx_status(ctx);
    }
    if (dw) return backward_weights(ctx, e, s, x, dy, dx != NULL, dw, db);
    return SN_OK;
}
