/* Small helpers shared by the context and graph heads (a2net.c, glore.c,
 * gcu.c, sgr.c, nonlocal.c, ppm.c): views between the NHWC map and the
 * {N, HW, C} matrix form the graph formulas are written in, 1x1 conv weights
 * as matrices, the residual, and cost bookkeeping. */
#ifndef SEGNAS_NN_HEAD_UTIL_H
#define SEGNAS_NN_HEAD_UTIL_H

#include <math.h>

#include "segnas/nn.h"

/* True when x is a 4-D NHWC map with c_in channels; else fails naming it. */
static inline bool head_input_ok(sn_ctx *ctx, const char *head, const sn_tensor *x, int64_t c_in)
{
    if (!x) return false;
    if (x->ndim == 4 && x->shape[3] == c_in) return true;
    char s[64];
    sn_ctx_fail(ctx, SN_ERR_SHAPE, "%s: input %s is not an NHWC map of %lld channels", head,
                sn_shape_str(x, s, sizeof s), (long long)c_in);
    return false;
}

/* {N,H,W,C} -> {N,HW,C}: the pixel-by-feature matrix X of the papers, a
 * view (no copy). */
static inline sn_tensor *head_rows(sn_ctx *ctx, sn_tensor *x)
{
    if (!x) return NULL;
    int64_t shape[3] = {x->shape[0], x->shape[1] * x->shape[2], x->shape[3]};
    return sn_reshape(ctx, x, 3, shape);
}

/* {N,HW,C} -> {N,H,W,C}. */
static inline sn_tensor *head_map(sn_ctx *ctx, sn_tensor *y, int64_t h, int64_t w)
{
    if (!y) return NULL;
    int64_t shape[4] = {y->shape[0], h, w, y->shape[2]};
    return sn_reshape(ctx, y, 4, shape);
}

/* The {1,1,Ci,Co} weight of a 1x1 conv as the {Ci,Co} matrix it is. */
static inline sn_tensor *head_conv_matrix(sn_ctx *ctx, const sn_conv *c)
{
    int64_t shape[2] = {c->c_in, c->c_out};
    return sn_reshape(ctx, c->w, 2, shape);
}

/* A learnable {rows, cols} matrix, N(0, std). */
static inline sn_tensor *head_matrix(sn_nn_builder *b, const char *leaf, int64_t rows, int64_t cols, double std)
{
    int64_t shape[2] = {rows, cols};
    sn_tensor *t = sn_nn_param(b, leaf, 2, shape);
    if (t) sn_rng_fill_normal(b->rng, t->data, t->numel, 0.0f, (float)std);
    return t;
}

/* A named 1x1 conv (He init). */
static inline int head_conv1x1(sn_nn_builder *b, const char *name, sn_conv *c, int64_t c_in, int64_t c_out,
                               bool bias)
{
    size_t at = sn_nn_push(b, "%s", name);
    int rc = sn_conv_init(b, c, c_in, c_out, 1, 1, 1, 1, bias);
    sn_nn_pop(b, at);
    return rc;
}

/* The residual of a head: y + x, or y + proj(x) when the channel counts
 * differ (a 1x1 conv without bias). */
static inline sn_tensor *head_residual(sn_ctx *ctx, const sn_conv *proj, bool has_proj, sn_tensor *x,
                                       sn_tensor *y)
{
    return sn_add(ctx, y, has_proj ? sn_conv_forward(ctx, proj, x) : x);
}

/* a - b (same shapes): b scaled by a constant -1 that takes no gradient. */
static inline sn_tensor *head_sub(sn_ctx *ctx, sn_tensor *a, sn_tensor *b)
{
    int64_t one = 1;
    sn_tensor *minus = sn_tensor_new(ctx, 1, &one);
    if (!minus) return NULL;
    minus->data[0] = -1.0f;
    return sn_add(ctx, a, sn_scale(ctx, b, minus));
}

/* Adds a conv applied at out_h x out_w to a cost. */
static inline void head_cost_conv(sn_cost *c, const sn_conv *m, int64_t out_h, int64_t out_w)
{
    c->params += sn_conv_params_count(m);
    c->madds += sn_conv_madds(m, out_h, out_w);
}

/* Adds a batch norm over c channels (affine parameters only). */
static inline void head_cost_bn(sn_cost *c, const sn_bn *m, int64_t channels)
{
    if (m->gamma) c->params += 2 * channels;
}

#endif
