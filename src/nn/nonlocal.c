/* Non-local block, embedded Gaussian form (Wang et al., "Non-local Neural
 * Networks", CVPR 2018): Y = softmax(theta(X) phi(X)^T) g(X), the HW x HW
 * affinity that A^2-Net avoids; here as the O((HW)^2 (C + K)) reference
 * point of the seed notes' comparison. */
#include "nn/head_util.h"

int sn_nonlocal_init(sn_nn_builder *b, sn_nonlocal_head *m, int64_t c_in, int64_t c_out, int64_t c_mid, int64_t k)
{
    if (c_in < 1 || c_out < 1 || c_mid < 1 || k < 1)
        return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: non-local head needs positive sizes, got c_in %lld c_out "
                           "%lld c_mid %lld k %lld", b->prefix, (long long)c_in, (long long)c_out,
                           (long long)c_mid, (long long)k);
    *m = (sn_nonlocal_head){.c_in = c_in, .c_out = c_out, .c_mid = c_mid, .k = k, .has_proj = c_in != c_out};
    int rc = head_conv1x1(b, "theta", &m->theta, c_in, k, true);
    if (!rc) rc = head_conv1x1(b, "phi", &m->phi, c_in, k, true);
    if (!rc) rc = head_conv1x1(b, "g", &m->g, c_in, c_mid, true);
    if (!rc) rc = head_conv1x1(b, "out", &m->out, c_mid, c_out, true);
    if (!rc && m->has_proj) rc = head_conv1x1(b, "proj", &m->proj, c_in, c_out, false);
    return rc;
}

sn_tensor *sn_nonlocal_forward(sn_ctx *ctx, const sn_nonlocal_head *m, sn_tensor *x, bool training)
{
    (void)training; /* no batch norm */
    if (!head_input_ok(ctx, "nonlocal", x, m->c_in)) return NULL;
    int64_t h = x->shape[1], w = x->shape[2];
    sn_tensor *q = head_rows(ctx, sn_conv_forward(ctx, &m->theta, x)); /* {N,HW,K} */
    sn_tensor *k = head_rows(ctx, sn_conv_forward(ctx, &m->phi, x));   /* {N,HW,K} */
    sn_tensor *v = head_rows(ctx, sn_conv_forward(ctx, &m->g, x));     /* {N,HW,c_mid} */
    sn_tensor *affinity = sn_softmax(ctx, sn_matmul(ctx, q, k, false, true)); /* {N,HW,HW} */
    sn_tensor *y = head_map(ctx, sn_matmul(ctx, affinity, v, false, false), h, w);
    return head_residual(ctx, &m->proj, m->has_proj, x, sn_conv_forward(ctx, &m->out, y));
}

sn_cost sn_nonlocal_cost(const sn_nonlocal_head *m, int64_t h, int64_t w)
{
    sn_cost c = {0};
    double p = (double)h * w;
    head_cost_conv(&c, &m->theta, h, w);
    head_cost_conv(&c, &m->phi, h, w);
    head_cost_conv(&c, &m->g, h, w);
    c.madds += p * p * (double)(m->k + m->c_mid); /* affinity and aggregation */
    head_cost_conv(&c, &m->out, h, w);
    if (m->has_proj) head_cost_conv(&c, &m->proj, h, w);
    return c;
}
