/* A^2-Net double attention head (Chen et al., "A^2-Nets: Double Attention
 * Networks", NeurIPS 2018), in the matrix form of the seed notes:
 *   [phi(X) softmax(theta(X))^T] softmax(rho(X))
 * with X the {HW, C} pixel matrix. Gathering first and distributing second
 * (the associativity the paper exploits) keeps it O(HW C K), against the
 * O((HW)^2) of Non-local. */
#include "nn/head_util.h"

int sn_a2_init(sn_nn_builder *b, sn_a2_head *m, int64_t c_in, int64_t c_out, int64_t c_mid, int64_t k)
{
    if (c_in < 1 || c_out < 1 || c_mid < 1 || k < 1)
        return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: A2 head needs positive sizes, got c_in %lld c_out %lld c_mid "
                           "%lld k %lld", b->prefix, (long long)c_in, (long long)c_out, (long long)c_mid,
                           (long long)k);
    *m = (sn_a2_head){.c_in = c_in, .c_out = c_out, .c_mid = c_mid, .k = k, .has_proj = c_in != c_out};
    int rc = head_conv1x1(b, "phi", &m->phi, c_in, c_mid, true);
    if (!rc) rc = head_conv1x1(b, "theta", &m->theta, c_in, k, false);
    if (!rc) rc = head_conv1x1(b, "rho", &m->rho, c_in, k, true);
    if (!rc) rc = head_conv1x1(b, "out", &m->out, c_mid, c_out, true);
    if (!rc && m->has_proj) rc = head_conv1x1(b, "proj", &m->proj, c_in, c_out, false);
    return rc;
}

sn_tensor *sn_a2_forward(sn_ctx *ctx, const sn_a2_head *m, sn_tensor *x, bool training)
{
    (void)training; /* no batch norm */
    if (!head_input_ok(ctx, "a2", x, m->c_in)) return NULL;
    int64_t h = x->shape[1], w = x->shape[2];
    sn_tensor *rows = head_rows(ctx, x);                                     /* {N,HW,C} */
    sn_tensor *feat = head_rows(ctx, sn_conv_forward(ctx, &m->phi, x));     /* {N,HW,c_mid} */
    /* theta(X)^T = W_theta^T X^T, {N,K,HW}: the softmax over HW becomes one
     * over the last axis without a transpose. */
    sn_tensor *gather = sn_softmax(ctx, sn_matmul(ctx, head_conv_matrix(ctx, &m->theta), rows, true, true));
    sn_tensor *g = sn_matmul(ctx, gather, feat, false, false);              /* {N,K,c_mid} */
    sn_tensor *distribute = sn_softmax(ctx, head_rows(ctx, sn_conv_forward(ctx, &m->rho, x))); /* {N,HW,K} */
    sn_tensor *z = head_map(ctx, sn_matmul(ctx, distribute, g, false, false), h, w);
    return head_residual(ctx, &m->proj, m->has_proj, x, sn_conv_forward(ctx, &m->out, z));
}

sn_cost sn_a2_cost(const sn_a2_head *m, int64_t h, int64_t w)
{
    sn_cost c = {0};
    double p = (double)h * w;
    head_cost_conv(&c, &m->phi, h, w);
    head_cost_conv(&c, &m->theta, h, w);
    head_cost_conv(&c, &m->rho, h, w);
    c.madds += 2 * p * m->k * m->c_mid; /* gather and distribute */
    head_cost_conv(&c, &m->out, h, w);
    if (m->has_proj) head_cost_conv(&c, &m->proj, h, w);
    return c;
}
