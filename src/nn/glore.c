/* GloRe unit (Chen et al., "Graph-Based Global Reasoning Networks", CVPR
 * 2019), five 1x1 convolutions' worth of work:
 *   X_s = state(X) {HW,S}, B = project(X) {HW,Nn}      coordinate space
 *   V = B^T X_s {Nn,S}                                    projection
 *   Z = relu(((I - A_g) V) W_g)                           graph convolution
 *   Y = BN(extend(B Z)) + X                               reprojection
 * A_g and W_g are the paper's two kernel-1 Conv1d (over nodes, over state
 * channels), here plain matrices. The paper's code computes (A_g - I) V: the
 * sign is absorbed by the learned A_g; we follow the paper's text. A_g has
 * no bias (a per-node bias would need a broadcast add). The paper's BN is
 * kept so the unit starts close to the identity with the residual. */
#include "nn/head_util.h"

int sn_glore_init(sn_nn_builder *b, sn_glore_head *m, int64_t c_in, int64_t c_out, int64_t nodes,
                  int64_t state_channels)
{
    if (c_in < 1 || c_out < 1 || nodes < 1 || state_channels < 1)
        return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: GloRe head needs positive sizes, got c_in %lld c_out %lld "
                           "nodes %lld state %lld", b->prefix, (long long)c_in, (long long)c_out,
                           (long long)nodes, (long long)state_channels);
    *m = (sn_glore_head){.c_in = c_in, .c_out = c_out, .nodes = nodes, .state_channels = state_channels,
                         .has_proj = c_in != c_out};
    int rc = head_conv1x1(b, "state", &m->state, c_in, state_channels, true);
    if (!rc) rc = head_conv1x1(b, "project", &m->project, c_in, nodes, true);
    if (!rc) rc = head_conv1x1(b, "extend", &m->extend, state_channels, c_out, false);
    if (!rc && m->has_proj) rc = head_conv1x1(b, "proj", &m->proj, c_in, c_out, false);
    if (rc) return rc;
    size_t at = sn_nn_push(b, "bn");
    rc = sn_bn_init(b, &m->bn, c_out, true);
    sn_nn_pop(b, at);
    if (rc) return rc;
    m->adj = head_matrix(b, "adjacency", nodes, nodes, 1.0 / sqrt((double)nodes));
    m->wg = head_matrix(b, "graph_weight", state_channels, state_channels, sqrt(2.0 / (double)state_channels));
    return m->adj && m->wg ? SN_OK : sn_ctx_status(b->ctx);
}

sn_tensor *sn_glore_forward(sn_ctx *ctx, const sn_glore_head *m, sn_tensor *x, bool training)
{
    if (!head_input_ok(ctx, "glore", x, m->c_in)) return NULL;
    int64_t h = x->shape[1], w = x->shape[2];
    sn_tensor *xs = head_rows(ctx, sn_conv_forward(ctx, &m->state, x));   /* {N,HW,S} */
    sn_tensor *bp = head_rows(ctx, sn_conv_forward(ctx, &m->project, x)); /* {N,HW,Nn} */
    sn_tensor *v = sn_matmul(ctx, bp, xs, true, false);                    /* {N,Nn,S} */
    sn_tensor *diffused = head_sub(ctx, v, sn_matmul(ctx, m->adj, v, false, false));
    sn_tensor *z = sn_relu(ctx, sn_matmul(ctx, diffused, m->wg, false, false));
    sn_tensor *y = head_map(ctx, sn_matmul(ctx, bp, z, false, false), h, w); /* {N,H,W,S} */
    y = sn_bn_forward(ctx, &m->bn, sn_conv_forward(ctx, &m->extend, y), training);
    return head_residual(ctx, &m->proj, m->has_proj, x, y);
}

sn_cost sn_glore_cost(const sn_glore_head *m, int64_t h, int64_t w)
{
    sn_cost c = {0};
    double p = (double)h * w, nn = (double)m->nodes, s = (double)m->state_channels;
    head_cost_conv(&c, &m->state, h, w);
    head_cost_conv(&c, &m->project, h, w);
    c.madds += 2 * p * nn * s;          /* projection and reprojection */
    c.madds += nn * nn * s + nn * s * s; /* A_g V and (.) W_g */
    c.params += m->nodes * m->nodes + m->state_channels * m->state_channels;
    head_cost_conv(&c, &m->extend, h, w);
    head_cost_bn(&c, &m->bn, m->c_out);
    if (m->has_proj) head_cost_conv(&c, &m->proj, h, w);
    return c;
}
