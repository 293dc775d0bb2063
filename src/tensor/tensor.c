/* Tensor constructors. Activations live in the per-step arena, parameters
 * and buffers in the persistent one. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "context.h"

static int check_shape(sn_ctx *ctx, int ndim, const int64_t *shape, int64_t *numel)
{
    if (ndim < 0 || ndim > SN_MAX_DIMS)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "tensor rank %d outside 0..%d", ndim, SN_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || n > INT64_MAX / 4 / shape[i])
            return sn_ctx_fail(ctx, SN_ERR_SHAPE, "bad tensor dimension %d = %" PRId64, i, shape[i]);
        n *= shape[i];
    }
    *numel = n;
    return SN_OK;
}

static sn_tensor *tensor_in(sn_ctx *ctx, sn_arena *arena, int ndim, const int64_t *shape)
{
    int64_t numel;
    if (ctx->status || check_shape(ctx, ndim, shape, &numel)) return NULL;
    sn_tensor *t = sn_arena_alloc(arena, sizeof *t);
    float *data = t ? sn_arena_alloc(arena, (size_t)numel * sizeof(float)) : NULL;
    if (!data) {
        sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for a tensor of %" PRId64 " floats", numel);
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->data = data;
    return t;
}

sn_tensor *sn_tensor_new(sn_ctx *ctx, int ndim, const int64_t *shape)
{
    return tensor_in(ctx, ctx->step, ndim, shape);
}

sn_tensor *sn_tensor_new4(sn_ctx *ctx, int64_t n, int64_t h, int64_t w, int64_t c)
{
    int64_t shape[4] = {n, h, w, c};
    return sn_tensor_new(ctx, 4, shape);
}

sn_tensor *sn_tensor_empty_like(sn_ctx *ctx, const sn_tensor *like)
{
    return sn_tensor_new(ctx, like->ndim, like->shape);
}

sn_tensor *sn_tensor_zeros_like(sn_ctx *ctx, const sn_tensor *like)
{
    sn_tensor *t = sn_tensor_empty_like(ctx, like);
    if (t) memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

static sn_tensor *persistent(sn_ctx *ctx, const char *name, int ndim, const int64_t *shape,
                             bool with_grad)
{
    sn_tensor *t = tensor_in(ctx, ctx->params, ndim, shape);
    if (!t) return NULL;
    memset(t->data, 0, (size_t)t->numel * sizeof(float));
    if (with_grad) {
        t->grad = sn_arena_alloc(ctx->params, (size_t)t->numel * sizeof(float));
        if (!t->grad) {
            sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for the gradient of %s", name ? name : "a parameter");
            return NULL;
        }
        memset(t->grad, 0, (size_t)t->numel * sizeof(float));
        t->requires_grad = true;
    }
    if (name) {
        size_t len = strlen(name) + 1;
        char *copy = sn_arena_alloc(ctx->params, len);
        if (copy) memcpy(copy, name, len);
        t->name = copy;
    }
    t->is_param = true;
    return t;
}

sn_tensor *sn_param_new(sn_ctx *ctx, const char *name, int ndim, const int64_t *shape)
{
    return persistent(ctx, name, ndim, shape, true);
}

sn_tensor *sn_buffer_new(sn_ctx *ctx, const char *name, int ndim, const int64_t *shape)
{
    return persistent(ctx, name, ndim, shape, false);
}

bool sn_same_shape(const sn_tensor *a, const sn_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *sn_shape_str(const sn_tensor *t, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? "x%" PRId64 : "%" PRId64, t->shape[i]);
    if (t->ndim == 0) snprintf(buf, len, "scalar");
    return buf;
}

void sn_tensor_fill(sn_tensor *t, float v)
{
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
}

bool sn_any_null(const sn_ctx *ctx, sn_tensor *const *in, int n)
{
    if (ctx->status) return true;
    for (int i = 0; i < n; i++)
        if (!in[i]) return true;
    return false;
}

/* ---- reshape: a view; backward adds the gradient back unchanged -------- */
static int reshape_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0];
    float *gx = sn_grad_of(ctx, x);
    if (!gx) return ctx->status;
    const float *gy = node->out->grad;
    for (int64_t i = 0; i < x->numel; i++) gx[i] += gy[i];
    return SN_OK;
}

static const sn_op_info reshape_op = {"reshape", reshape_backward};

sn_tensor *sn_reshape(sn_ctx *ctx, sn_tensor *x, int ndim, const int64_t *shape)
{
    int64_t numel;
    if (sn_any_null(ctx, &x, 1) || check_shape(ctx, ndim, shape, &numel)) return NULL;
    if (numel != x->numel) {
        char buf[64];
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "reshape of %s (%" PRId64 " elements) to %" PRId64 " elements",
                    sn_shape_str(x, buf, sizeof buf), x->numel, numel);
        return NULL;
    }
    sn_tensor *y = sn_step_alloc(ctx, sizeof *y);
    if (!y) return NULL;
    memset(y, 0, sizeof *y);
    y->ndim = ndim;
    for (int i = 0; i < ndim; i++) y->shape[i] = shape[i];
    y->numel = numel;
    y->data = x->data;
    if (sn_needs_grad(ctx, &x, 1) && !sn_record(ctx, &reshape_op, y, &x, 1, 0)) return NULL;
    return y;
}

sn_tensor *sn_param_rows(sn_ctx *ctx, sn_tensor *param, int64_t first, int64_t n)
{
    if (sn_any_null(ctx, &param, 1)) return NULL;
    int64_t row = param->ndim ? param->numel / param->shape[0] : 1;
    if (!param->is_param || !param->grad || param->ndim < 1 || first < 0 || n < 1 || first + n > param->shape[0]) {
        char buf[64];
        sn_ctx_fail(ctx, SN_ERR_ARG, "rows %lld..%lld of %s %s", (long long)first, (long long)(first + n),
                    param->is_param ? "parameter" : "non-parameter", sn_shape_str(param, buf, sizeof buf));
        return NULL;
    }
    sn_tensor *v = sn_step_alloc(ctx, sizeof *v);
    if (!v) return NULL;
    *v = *param;
    v->shape[0] = n;
    v->numel = n * row;
    v->data = param->data + first * row;
    v->grad = param->grad + first * row;
    v->node = NULL;
    /* Segments running concurrently may take the same rows (the supernet's
     * cells share alpha): each sums into its own buffer, and the parent adds
     * them up in segment order, so no two threads write one gradient. */
    if (ctx->keep && ctx->grad_enabled && !(v->grad = sn_lane_private_grad(ctx, v->grad, v->numel))) return NULL;
    return v;
}
