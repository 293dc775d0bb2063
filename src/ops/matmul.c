/* Batched matrix product on the last two axes, for the attention and graph
 * modules (Non-local, GloRe, A2, SGR). c = op(a) op(b) with op a transpose
 * when asked; either operand may be 2-D, shared by every batch.
 *
 * Forward and both backward products are the same oneDNN matmul with
 * different transposes, all expressed as strides (no copies):
 *   d op(a) = dc op(b)^T,  d op(b) = op(a)^T dc,
 * and for a stored transposed, d a = (d op(a))^T = op(b) dc^T (likewise b).
 * Gradients accumulate through the primitive's sum post-op. */
#include <string.h>

#include "ops/onednn/matmul.h"
#include "ops/ops_common.h"

typedef struct mm_saved {
    sn_matmul_shape s; /* the forward product, after folding */
} mm_saved;

/* grad (+)= the product g of x and y. A gradient of an operand shared by the
 * batch is the sum over the batch of the per-batch products: computed into a
 * step-arena temporary, then reduced. */
static int product_into(sn_ctx *ctx, const sn_matmul_shape *g, const float *x, const float *y, float *grad,
                        bool target_batched)
{
    if (target_batched || g->batch == 1) return sn_dnnl_matmul(ctx, g, x, y, grad, true, "matmul_bwd");
    int64_t mn = g->m * g->n;
    float *tmp = sn_step_alloc(ctx, (size_t)(g->batch * mn) * sizeof *tmp);
    if (!tmp) return ctx_status(ctx);
    int rc = sn_dnnl_matmul(ctx, g, x, y, tmp, false, "matmul_bwd");
    if (rc) return rc;
    for (int64_t b = 0; b < g->batch; b++) {
        const float *t = tmp + b * mn;
#pragma omp simd
        for (int64_t i = 0; i < mn; i++) grad[i] += t[i];
    }
    return SN_OK;
}

/* d a: stored {m,k}: dc op(b)^T; stored {k,m}: op(b) dc^T. */
static int grad_a(sn_ctx *ctx, const sn_matmul_shape *s, const float *dc, const float *b, float *ga)
{
    if (!s->trans_x) {
        sn_matmul_shape g = {s->batch, s->m, s->n, s->k, true, s->y_batched, false, !s->trans_y};
        return product_into(ctx, &g, dc, b, ga, s->x_batched);
    }
    sn_matmul_shape g = {s->batch, s->k, s->n, s->m, s->y_batched, true, s->trans_y, true};
    return product_into(ctx, &g, b, dc, ga, s->x_batched);
}

/* d b: stored {k,n}: op(a)^T dc; stored {n,k}: dc^T op(a). */
static int grad_b(sn_ctx *ctx, const sn_matmul_shape *s, const float *dc, const float *a, float *gb)
{
    if (!s->trans_y) {
        sn_matmul_shape g = {s->batch, s->k, s->m, s->n, s->x_batched, true, !s->trans_x, false};
        return product_into(ctx, &g, a, dc, gb, s->y_batched);
    }
    sn_matmul_shape g = {s->batch, s->n, s->m, s->k, true, s->x_batched, true, s->trans_x};
    return product_into(ctx, &g, dc, a, gb, s->y_batched);
}

static int matmul_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *a = node->in[0], *b = node->in[1];
    const sn_matmul_shape *s = &((const mm_saved *)node->saved)->s;
    const float *dc = node->out->grad;
    if (a->requires_grad) {
        float *ga = sn_grad_of(ctx, a);
        if (!ga) return ctx_status(ctx);
        int rc = grad_a(ctx, s, dc, b->data, ga);
        if (rc) return rc;
    }
    if (b->requires_grad) {
        float *gb = sn_grad_of(ctx, b);
        if (!gb) return ctx_status(ctx);
        return grad_b(ctx, s, dc, a->data, gb);
    }
    return SN_OK;
}

static const sn_op_info matmul_op = {"matmul", matmul_backward};

/* Matrix dims of a 2-D or 3-D operand: (batch or 0 when 2-D, rows, cols). */
static void dims(const sn_tensor *t, int64_t *batch, int64_t *rows, int64_t *cols)
{
    *batch = t->ndim == 3 ? t->shape[0] : 0;
    *rows = t->shape[t->ndim - 2];
    *cols = t->shape[t->ndim - 1];
}

/* Fills s from the operands, or fails naming the shapes. */
static int plan(sn_ctx *ctx, const sn_tensor *a, const sn_tensor *b, bool ta, bool tb, sn_matmul_shape *s)
{
    char sa[64], sb[64];
    if ((a->ndim != 2 && a->ndim != 3) || (b->ndim != 2 && b->ndim != 3))
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "matmul: operands must be 2-D or 3-D, got %s and %s",
                           sn_shape_str(a, sa, sizeof sa), sn_shape_str(b, sb, sizeof sb));
    int64_t ba, ra, ca, bb, rb, cb;
    dims(a, &ba, &ra, &ca);
    dims(b, &bb, &rb, &cb);
    int64_t k = ta ? ra : ca, kb = tb ? cb : rb;
    if (k != kb)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "matmul: %s%s times %s%s: inner dimensions %lld and %lld differ",
                           sn_shape_str(a, sa, sizeof sa), ta ? " (transposed)" : "",
                           sn_shape_str(b, sb, sizeof sb), tb ? " (transposed)" : "", (long long)k,
                           (long long)kb);
    if (ba && bb && ba != bb)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "matmul: batch sizes of %s and %s differ",
                           sn_shape_str(a, sa, sizeof sa), sn_shape_str(b, sb, sizeof sb));
    *s = (sn_matmul_shape){ba ? ba : (bb ? bb : 1), ta ? ca : ra, k, tb ? rb : cb, ba || !bb, bb || !ba, ta, tb};
    /* A batch of untransposed a against one shared b is a single tall
     * product: {B*M,K} x {K,N}. Its gradients then need no batch reduction. */
    if (ba && !bb && !ta) *s = (sn_matmul_shape){1, ba * s->m, k, s->n, true, true, false, tb};
    return SN_OK;
}

sn_tensor *sn_matmul(sn_ctx *ctx, sn_tensor *a, sn_tensor *b, bool trans_a, bool trans_b)
{
    sn_tensor *in[2] = {a, b};
    sn_matmul_shape s;
    if (sn_any_null(ctx, in, 2) || plan(ctx, a, b, trans_a, trans_b, &s)) return NULL;
    bool batched = a->ndim == 3 || b->ndim == 3;
    int64_t m = trans_a ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    int64_t n = s.n, batch = a->ndim == 3 ? a->shape[0] : (b->ndim == 3 ? b->shape[0] : 1);
    int64_t shape3[3] = {batch, m, n};
    sn_tensor *y = batched ? sn_tensor_new(ctx, 3, shape3) : sn_tensor_new(ctx, 2, shape3 + 1);
    if (!y || sn_dnnl_matmul(ctx, &s, a->data, b->data, y->data, false, "matmul")) return NULL;
    if (sn_needs_grad(ctx, in, 2)) {
        sn_node *node = sn_record(ctx, &matmul_op, y, in, 2, sizeof(mm_saved));
        if (!node) return NULL;
        ((mm_saved *)node->saved)->s = s;
    }
    return y;
}
