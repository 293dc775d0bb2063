/* Elementwise ops: relu, add, mul, scale by a scalar tensor, sum. Simple
 * loops that the compiler vectorises; OpenMP only for large tensors, where
 * the fork/join (a few us) pays for itself. */
#include <string.h>

#include "ops/ops_common.h"

/* ---- relu ---------------------------------------------------------------- */
static int relu_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0];
    float *gx = sn_grad_of(ctx, x);
    if (!gx) return ctx_status(ctx);
    const float *gy = node->out->grad, *y = node->out->data;
    int64_t n = x->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += y[i] > 0 ? gy[i] : 0.0f;
    return SN_OK;
}

static const sn_op_info relu_op = {"relu", relu_backward};

sn_tensor *sn_relu(sn_ctx *ctx, sn_tensor *x)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    sn_tensor *y = sn_tensor_empty_like(ctx, x);
    if (!y) return NULL;
    const float *xd = x->data;
    float *yd = y->data;
    int64_t n = x->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) yd[i] = xd[i] > 0 ? xd[i] : 0.0f;
    if (sn_needs_grad(ctx, &x, 1) && !sn_record(ctx, &relu_op, y, &x, 1, 0)) return NULL;
    return y;
}

/* ---- add ----------------------------------------------------------------- */
static void accumulate(float *dst, const float *src, int64_t n)
{
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

static int add_backward(sn_ctx *ctx, sn_node *node)
{
    for (int k = 0; k < 2; k++) {
        sn_tensor *x = node->in[k];
        if (!x->requires_grad) continue;
        float *gx = sn_grad_of(ctx, x);
        if (!gx) return ctx_status(ctx);
        accumulate(gx, node->out->grad, x->numel);
    }
    return SN_OK;
}

static const sn_op_info add_op = {"add", add_backward};

static int check_same(sn_ctx *ctx, const char *op, const sn_tensor *a, const sn_tensor *b)
{
    if (sn_same_shape(a, b)) return SN_OK;
    char sa[64], sb[64];
    return sn_ctx_fail(ctx, SN_ERR_SHAPE, "%s: shapes %s and %s differ", op,
                       sn_shape_str(a, sa, sizeof sa), sn_shape_str(b, sb, sizeof sb));
}

sn_tensor *sn_add(sn_ctx *ctx, sn_tensor *a, sn_tensor *b)
{
    sn_tensor *in[2] = {a, b};
    if (sn_any_null(ctx, in, 2) || check_same(ctx, "add", a, b)) return NULL;
    sn_tensor *y = sn_tensor_empty_like(ctx, a);
    if (!y) return NULL;
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
    int64_t n = a->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) yd[i] = ad[i] + bd[i];
    if (sn_needs_grad(ctx, in, 2) && !sn_record(ctx, &add_op, y, in, 2, 0)) return NULL;
    return y;
}

/* ---- mul ----------------------------------------------------------------- */
static int mul_backward(sn_ctx *ctx, sn_node *node)
{
    const float *gy = node->out->grad;
    for (int k = 0; k < 2; k++) {
        sn_tensor *x = node->in[k];
        if (!x->requires_grad) continue;
        float *gx = sn_grad_of(ctx, x);
        if (!gx) return ctx_status(ctx);
        const float *other = node->in[1 - k]->data;
        int64_t n = x->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * other[i];
    }
    return SN_OK;
}

static const sn_op_info mul_op = {"mul", mul_backward};

sn_tensor *sn_mul(sn_ctx *ctx, sn_tensor *a, sn_tensor *b)
{
    sn_tensor *in[2] = {a, b};
    if (sn_any_null(ctx, in, 2) || check_same(ctx, "mul", a, b)) return NULL;
    sn_tensor *y = sn_tensor_empty_like(ctx, a);
    if (!y) return NULL;
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
    int64_t n = a->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) yd[i] = ad[i] * bd[i];
    if (sn_needs_grad(ctx, in, 2) && !sn_record(ctx, &mul_op, y, in, 2, 0)) return NULL;
    return y;
}

/* ---- scale by a one-element tensor ----------------------------------------- */
static int scale_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0], *s = node->in[1];
    const float *gy = node->out->grad;
    int64_t n = x->numel;
    if (x->requires_grad) {
        float *gx = sn_grad_of(ctx, x);
        if (!gx) return ctx_status(ctx);
        float sv = s->data[0];
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] += sv * gy[i];
    }
    if (s->requires_grad) {
        float *gs = sn_grad_of(ctx, s);
        if (!gs) return ctx_status(ctx);
        const float *xd = x->data;
        double acc = 0;
#pragma omp parallel for simd reduction(+ : acc) if (parallel : n > SN_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) acc += (double)xd[i] * gy[i];
        gs[0] += (float)acc;
    }
    return SN_OK;
}

static const sn_op_info scale_op = {"scale", scale_backward};

sn_tensor *sn_scale(sn_ctx *ctx, sn_tensor *x, sn_tensor *s)
{
    sn_tensor *in[2] = {x, s};
    if (sn_any_null(ctx, in, 2)) return NULL;
    if (s->numel != 1) {
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "scale: the scale must have one element, got %lld",
                    (long long)s->numel);
        return NULL;
    }
    sn_tensor *y = sn_tensor_empty_like(ctx, x);
    if (!y) return NULL;
    const float *xd = x->data;
    float *yd = y->data, sv = s->data[0];
    int64_t n = x->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) yd[i] = sv * xd[i];
    if (sn_needs_grad(ctx, in, 2) && !sn_record(ctx, &scale_op, y, in, 2, 0)) return NULL;
    return y;
}

/* ---- sum to a scalar --------------------------------------------------------- */
static int sum_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0];
    float *gx = sn_grad_of(ctx, x);
    if (!gx) return ctx_status(ctx);
    float g = node->out->grad[0];
    int64_t n = x->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g;
    return SN_OK;
}

static const sn_op_info sum_op = {"sum", sum_backward};

sn_tensor *sn_sum(sn_ctx *ctx, sn_tensor *x)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    int64_t one = 1;
    sn_tensor *y = sn_tensor_new(ctx, 1, &one);
    if (!y) return NULL;
    const float *xd = x->data;
    int64_t n = x->numel;
    double acc = 0;
#pragma omp parallel for simd reduction(+ : acc) if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) acc += xd[i];
    y->data[0] = (float)acc;
    if (sn_needs_grad(ctx, &x, 1) && !sn_record(ctx, &sum_op, y, &x, 1, 0)) return NULL;
    return y;
}
