/* Concatenation along the last (channel) axis, the output of every cell
 * (Auto-DeepLab: the cell output concatenates its B blocks). In NHWC a row
 * of the output is the inputs' rows side by side, so forward and backward are
 * one fused copy loop over rows: no oneDNN, no intermediate buffers. */
#include <string.h>

#include "ops/ops_common.h"

/* Row-wise copy geometry: `rows` rows, input i has c[i] channels at offset
 * off[i] of an output row of c_out channels. */
typedef struct cat_geom {
    int n;
    int64_t rows, c_out;
    int64_t *c, *off;
} cat_geom;

static int geometry(sn_ctx *ctx, int n, sn_tensor *const *xs, cat_geom *g)
{
    g->n = n;
    g->c = sn_step_alloc(ctx, (size_t)n * sizeof *g->c);
    g->off = sn_step_alloc(ctx, (size_t)n * sizeof *g->off);
    if (!g->c || !g->off) return ctx_status(ctx);
    g->c_out = 0;
    for (int i = 0; i < n; i++) {
        g->c[i] = xs[i]->shape[xs[i]->ndim - 1];
        g->off[i] = g->c_out;
        g->c_out += g->c[i];
    }
    g->rows = xs[0]->numel / g->c[0];
    return SN_OK;
}

static void forward(float *y, sn_tensor *const *xs, const cat_geom *g)
{
    int64_t total = g->rows * g->c_out;
#pragma omp parallel for if (total > SN_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < g->rows; r++) {
        float *yr = y + r * g->c_out;
        for (int i = 0; i < g->n; i++) {
            int64_t c = g->c[i];
            memcpy(yr + g->off[i], xs[i]->data + r * c, (size_t)c * sizeof(float));
        }
    }
}

/* gx_i[r, :] (+)= dy[r, off_i : off_i + c_i] for every input that needs
 * it; a fresh gradient is copied into rather than added to. */
static void backward(const float *dy, float *const *gx, const bool *fresh, const cat_geom *g)
{
    int64_t total = g->rows * g->c_out;
#pragma omp parallel for if (total > SN_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < g->rows; r++) {
        const float *dyr = dy + r * g->c_out;
        for (int i = 0; i < g->n; i++) {
            if (!gx[i]) continue;
            int64_t c = g->c[i];
            float *restrict dst = gx[i] + r * c;
            const float *restrict src = dyr + g->off[i];
            if (fresh[i]) {
                memcpy(dst, src, (size_t)c * sizeof *dst);
                continue;
            }
#pragma omp simd
            for (int64_t k = 0; k < c; k++) dst[k] += src[k];
        }
    }
}

/* The gradient buffer of x, NULL when x needs none. The cell's blocks feed
 * the concat last in the forward pass, so in the backward their gradients
 * usually do not exist yet: allocated without sn_grad_of's zero fill and
 * marked fresh (every element is then written). A tensor listed twice is
 * fresh for its first entry only, which each row handles first. */
static int grad_buffer(sn_ctx *ctx, sn_tensor *x, float **g, bool *fresh)
{
    *g = NULL;
    *fresh = false;
    if (!x->requires_grad) return SN_OK;
    *g = sn_grad_for_write(ctx, x, fresh);
    return *g ? SN_OK : ctx_status(ctx);
}

static int concat_backward(sn_ctx *ctx, sn_node *node)
{
    cat_geom g;
    if (geometry(ctx, node->n_in, node->in, &g)) return ctx_status(ctx);
    float **gx = sn_step_alloc(ctx, (size_t)g.n * sizeof *gx);
    bool *fresh = sn_step_alloc(ctx, (size_t)g.n * sizeof *fresh);
    if (!gx || !fresh) return ctx_status(ctx);
    for (int i = 0; i < g.n; i++)
        if (grad_buffer(ctx, node->in[i], &gx[i], &fresh[i])) return ctx_status(ctx);
    backward(node->out->grad, gx, fresh, &g);
    return SN_OK;
}

static const sn_op_info concat_op = {"concat", concat_backward};

static int check_inputs(sn_ctx *ctx, int n, sn_tensor *const *xs)
{
    char sa[64], sb[64];
    const sn_tensor *a = xs[0];
    if (a->ndim < 1) return sn_ctx_fail(ctx, SN_ERR_SHAPE, "concat: input 0 is a scalar");
    for (int i = 1; i < n; i++) {
        const sn_tensor *b = xs[i];
        bool ok = b->ndim == a->ndim;
        for (int d = 0; ok && d < a->ndim - 1; d++) ok = a->shape[d] == b->shape[d];
        if (!ok)
            return sn_ctx_fail(ctx, SN_ERR_SHAPE,
                               "concat: input %d is %s but input 0 is %s (all but the last axis must match)", i,
                               sn_shape_str(b, sa, sizeof sa), sn_shape_str(a, sb, sizeof sb));
    }
    return SN_OK;
}

sn_tensor *sn_concat(sn_ctx *ctx, int n, sn_tensor *const *xs)
{
    if (sn_ctx_status(ctx)) return NULL;
    if (!xs || n < 1) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "concat: needs at least one input, got %d", xs ? n : 0);
        return NULL;
    }
    cat_geom g;
    if (sn_any_null(ctx, xs, n) || check_inputs(ctx, n, xs) || geometry(ctx, n, xs, &g)) return NULL;
    int64_t shape[SN_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[xs[0]->ndim - 1] = g.c_out;
    sn_tensor *y = sn_tensor_new(ctx, xs[0]->ndim, shape);
    if (!y) return NULL;
    forward(y->data, xs, &g);
    if (sn_needs_grad(ctx, xs, n) && !sn_record(ctx, &concat_op, y, xs, n, 0)) return NULL;
    return y;
}
