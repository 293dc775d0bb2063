/* Convolution, batch norm and their [ReLU]-conv-BN-[ReLU] composition. */
#include <math.h>

#include "segnas/nn.h"

int sn_conv_init(sn_nn_builder *b, sn_conv *m, int64_t c_in, int64_t c_out, int k, int stride,
                 int dilation, int groups, bool bias)
{
    if (groups < 1 || c_in % groups || c_out % groups)
        return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: %lld -> %lld channels do not split into %d groups",
                           b->prefix, (long long)c_in, (long long)c_out, groups);
    *m = (sn_conv){.k = k, .stride = stride, .dilation = dilation, .groups = groups, .c_in = c_in, .c_out = c_out};
    int64_t shape[4] = {k, k, c_in / groups, c_out};
    m->w = sn_nn_param(b, "weight", 4, shape);
    if (!m->w) return sn_ctx_status(b->ctx);
    /* He normal over the fan-in: keeps activations' variance through ReLU. */
    float std = sqrtf(2.0f / (float)(k * k * (c_in / groups)));
    sn_rng_fill_normal(b->rng, m->w->data, m->w->numel, 0.0f, std);
    if (bias) {
        m->b = sn_nn_param(b, "bias", 1, &c_out);
        if (!m->b) return sn_ctx_status(b->ctx);
    }
    return SN_OK;
}

sn_tensor *sn_conv_forward(sn_ctx *ctx, const sn_conv *m, sn_tensor *x)
{
    if (!x) return NULL;
    sn_conv_params p = sn_conv_same(m->k, m->stride, m->dilation, m->groups, x->shape[1], x->shape[2]);
    return sn_conv2d(ctx, x, m->w, m->b, &p);
}

int sn_bn_init(sn_nn_builder *b, sn_bn *m, int64_t c, bool affine)
{
    *m = (sn_bn){.momentum = 0.1f, .eps = 1e-5f};
    if (affine) {
        m->gamma = sn_nn_param(b, "gamma", 1, &c);
        m->beta = sn_nn_param(b, "beta", 1, &c);
        if (!m->gamma || !m->beta) return sn_ctx_status(b->ctx);
        sn_tensor_fill(m->gamma, 1.0f);
    }
    m->mean = sn_nn_buffer(b, "running_mean", 1, &c);
    m->var = sn_nn_buffer(b, "running_var", 1, &c);
    if (!m->mean || !m->var) return sn_ctx_status(b->ctx);
    sn_tensor_fill(m->var, 1.0f);
    return SN_OK;
}

sn_tensor *sn_bn_forward(sn_ctx *ctx, const sn_bn *m, sn_tensor *x, bool training)
{
    return sn_batch_norm(ctx, x, m->gamma, m->beta, m->mean, m->var, training, m->momentum, m->eps);
}

int sn_conv_bn_init(sn_nn_builder *b, sn_conv_bn *m, int64_t c_in, int64_t c_out, int k, int stride,
                    int dilation, int groups, bool relu_before, bool relu_after, bool affine)
{
    m->relu_before = relu_before;
    m->relu_after = relu_after;
    size_t at = sn_nn_push(b, "conv");
    int rc = sn_conv_init(b, &m->conv, c_in, c_out, k, stride, dilation, groups, false);
    sn_nn_pop(b, at);
    if (rc) return rc;
    at = sn_nn_push(b, "bn");
    rc = sn_bn_init(b, &m->bn, c_out, affine);
    sn_nn_pop(b, at);
    return rc;
}

sn_tensor *sn_conv_bn_forward(sn_ctx *ctx, const sn_conv_bn *m, sn_tensor *x, bool training)
{
    return sn_conv_bn_forward_after_relu(ctx, m, m->relu_before ? sn_relu(ctx, x) : x, training);
}

sn_tensor *sn_conv_bn_forward_after_relu(sn_ctx *ctx, const sn_conv_bn *m, sn_tensor *x_relu, bool training)
{
    sn_tensor *y = sn_bn_forward(ctx, &m->bn, sn_conv_forward(ctx, &m->conv, x_relu), training);
    return m->relu_after ? sn_relu(ctx, y) : y;
}

double sn_conv_madds(const sn_conv *m, int64_t out_h, int64_t out_w)
{
    return (double)out_h * out_w * m->c_out * (double)m->k * m->k * (m->c_in / m->groups);
}

int64_t sn_conv_params_count(const sn_conv *m)
{
    return (int64_t)m->k * m->k * (m->c_in / m->groups) * m->c_out + (m->b ? m->c_out : 0);
}
