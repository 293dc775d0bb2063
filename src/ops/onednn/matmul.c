/* oneDNN 2.6 matmul (dnnl_matmul_desc_init) on row-major batched matrices.
 * Transposed operands are described by strides: oneDNN reads them in place.
 * One cache entry per (shape, flags, accumulate, thread count, team size;
 * onednn.h: a tiny product is created and run with one thread) holds the
 * primitive and its memory objects; a call sets three data handles and
 * executes (DESIGN.md: creation costs far more than a small product). */
#include <stdlib.h>
#include <string.h>

#include "ops/onednn/matmul.h"
#include "ops/onednn/onednn.h"

#define MATMUL_KEY_TAG 0x6d6d756c /* "mmul" */

typedef struct matmul_key {
    int32_t tag, threads, team;
    int64_t batch, m, k, n;
    int32_t x_batched, y_batched, trans_x, trans_y, accumulate;
} matmul_key;

typedef struct matmul_entry {
    dnnl_primitive_t prim;
    int team; /* OpenMP team */
    dnnl_memory_t x_m, y_m, out_m;
} matmul_entry;

static void destroy_entry(void *p)
{
    matmul_entry *e = p;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->x_m) dnnl_memory_destroy(e->x_m);
    if (e->y_m) dnnl_memory_destroy(e->y_m);
    if (e->out_m) dnnl_memory_destroy(e->out_m);
    free(e);
}

/* A {b, rows, cols} operand stored row-major, or transposed ({b, cols, rows}
 * in memory) when `t`; b = 1 broadcasts one matrix over the batch. */
static dnnl_status_t operand_md(dnnl_memory_desc_t *md, int64_t b, int64_t rows, int64_t cols, bool t)
{
    dnnl_dims_t dims = {b, rows, cols};
    dnnl_dims_t strides = {rows * cols, t ? 1 : cols, t ? rows : 1};
    return dnnl_memory_desc_init_by_strides(md, 3, dims, dnnl_f32, strides);
}

static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, bool accumulate)
{
    dnnl_post_ops_t ops = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st != dnnl_success || !accumulate) return st;
    st = dnnl_post_ops_create(&ops);
    if (st == dnnl_success) st = dnnl_post_ops_append_sum(ops, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*attr, ops);
    if (ops) dnnl_post_ops_destroy(ops);
    return st;
}

static int create(sn_ctx *ctx, matmul_entry *e, const sn_matmul_shape *s, bool accumulate, const char *what)
{
    sn_dnnl *d = sn_dnnl_get(ctx);
    if (!d) return ctx_status(ctx);
    dnnl_memory_desc_t x_md, y_md, out_md;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = operand_md(&x_md, s->x_batched ? s->batch : 1, s->m, s->k, s->trans_x);
    if (st == dnnl_success) st = operand_md(&y_md, s->y_batched ? s->batch : 1, s->k, s->n, s->trans_y);
    if (st == dnnl_success) st = operand_md(&out_md, s->batch, s->m, s->n, false);
    if (st == dnnl_success) st = dnnl_matmul_desc_init(&md, &x_md, &y_md, NULL, &out_md);
    if (st == dnnl_success) st = make_attr(&attr, accumulate);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &md, attr, d->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->prim, pd);
    if (st == dnnl_success) sn_dnnl_note_impl(ctx, what, pd);
    if (st == dnnl_success) st = dnnl_memory_create(&e->x_m, &x_md, d->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&e->y_m, &y_md, d->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&e->out_m, &out_md, d->engine, DNNL_MEMORY_NONE);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return sn_dnnl_check(ctx, st, "creating a matmul primitive");
}

static matmul_entry *get_entry(sn_ctx *ctx, const sn_matmul_shape *s, bool accumulate, const char *what)
{
    matmul_key key;
    memset(&key, 0, sizeof key); /* no stray padding bytes in the hashed key */
    key.tag = MATMUL_KEY_TAG;
    key.threads = sn_get_num_threads();
    int64_t bx = s->x_batched ? s->batch : 1, by = s->y_batched ? s->batch : 1;
    key.team = sn_dnnl_team_size(
        sn_dnnl_work(2 * s->batch * s->m * s->k * s->n, bx * s->m * s->k + by * s->k * s->n + s->batch * s->m * s->n));
    key.batch = s->batch, key.m = s->m, key.k = s->k, key.n = s->n;
    key.x_batched = s->x_batched, key.y_batched = s->y_batched;
    key.trans_x = s->trans_x, key.trans_y = s->trans_y, key.accumulate = accumulate;
    matmul_entry *e = sn_cache_get(ctx, &key, sizeof key);
    if (e) return e;
    e = calloc(1, sizeof *e);
    if (!e) {
        sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory caching a matmul");
        return NULL;
    }
    e->team = key.team;
    int saved = sn_dnnl_team_enter(e->team);
    int rc = create(ctx, e, s, accumulate, what);
    sn_dnnl_team_leave(saved);
    if (rc || sn_cache_put(ctx, &key, sizeof key, e, destroy_entry)) {
        destroy_entry(e);
        return NULL;
    }
    return e;
}

int sn_dnnl_matmul(sn_ctx *ctx, const sn_matmul_shape *s, const float *x, const float *y, float *out,
                   bool accumulate, const char *what)
{
    matmul_entry *e = get_entry(ctx, s, accumulate, what);
    if (!e) return ctx_status(ctx);
    /* oneDNN takes non-const handles; x and y are only read. */
    dnnl_status_t st = dnnl_memory_set_data_handle(e->x_m, (void *)x);
    if (st == dnnl_success) st = dnnl_memory_set_data_handle(e->y_m, (void *)y);
    if (st == dnnl_success) st = dnnl_memory_set_data_handle(e->out_m, out);
    if (sn_dnnl_check(ctx, st, "setting matmul buffers")) return SN_ERR_BACKEND;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->x_m}, {DNNL_ARG_WEIGHTS, e->y_m}, {DNNL_ARG_DST, e->out_m}};
    return sn_dnnl_exec(ctx, e->prim, e->team, 3, args, "running a matmul");
}
