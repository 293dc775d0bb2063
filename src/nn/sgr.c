/* Symbolic Graph Reasoning layer (Liang et al., "Symbolic Graph Reasoning
 * Meets Convolutions", NeurIPS 2018), with X the {HW, C} pixel matrix and M
 * symbolic nodes:
 *   local-to-semantic voting  a_{x->n} = softmax_n(W_a^T x)          (Eq. 2)
 *                             H^ps = a^T X W^ps                     (Eq. 1)
 *   graph reasoning           H^g = relu(A^g B W^g), B = relu(H^ps)  (Eq. 3)
 *   semantic-to-local mapping a_{h->x} = softmax_n(score(h_n, x))    (Eq. 5)
 *                             X' = relu(A^sp H^g W^sp) + X           (Eq. 4)
 * A^g is the caller's prior (a knowledge graph, or class co-occurrence from
 * `segnas data inspect --cooccurrence`), normalised D^-1/2 A D^-1/2 as in
 * GCN. Without linguistic embeddings S, B = relu(H^ps) alone. The paper's
 * linear score W^s^T [h_n, x] loses its x part under a softmax over nodes
 * (the same for every pixel), so the score is the bilinear
 * (x W_sx) . (h_n W_sh). */
#include <math.h>

#include "nn/head_util.h"

/* D^-1/2 A D^-1/2 with D the row sums; a node without edges keeps a zero
 * row. NULL adjacency: the identity (no propagation between nodes). */
static int set_adjacency(sn_nn_builder *b, sn_tensor *adj, const float *a, int64_t m)
{
    float *out = adj->data;
    if (!a) {
        for (int64_t i = 0; i < m * m; i++) out[i] = i % (m + 1) == 0 ? 1.0f : 0.0f;
        return SN_OK;
    }
    for (int64_t i = 0; i < m * m; i++)
        if (!(a[i] >= 0) || !isfinite(a[i]))
            return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: SGR adjacency entry (%lld, %lld) is %g: must be finite "
                               "and >= 0", b->prefix, (long long)(i / m), (long long)(i % m), (double)a[i]);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) {
            double di = 0, dj = 0;
            for (int64_t k = 0; k < m; k++) di += a[i * m + k], dj += a[j * m + k];
            out[i * m + j] = di > 0 && dj > 0 ? (float)(a[i * m + j] / sqrt(di * dj)) : 0.0f;
        }
    return SN_OK;
}

int sn_sgr_init(sn_nn_builder *b, sn_sgr_head *m, int64_t c_in, int64_t c_out, int64_t nodes, int64_t d,
                int64_t e, const float *adjacency)
{
    if (c_in < 1 || c_out < 1 || nodes < 1 || d < 1 || e < 1)
        return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: SGR head needs positive sizes, got c_in %lld c_out %lld nodes "
                           "%lld d %lld e %lld", b->prefix, (long long)c_in, (long long)c_out, (long long)nodes,
                           (long long)d, (long long)e);
    *m = (sn_sgr_head){.c_in = c_in, .c_out = c_out, .nodes = nodes, .d = d, .e = e, .has_proj = c_in != c_out};
    int rc = head_conv1x1(b, "vote", &m->vote, c_in, nodes, true);
    if (!rc && m->has_proj) rc = head_conv1x1(b, "proj", &m->proj, c_in, c_out, false);
    if (rc) return rc;
    m->w_ps = head_matrix(b, "w_ps", c_in, d, sqrt(1.0 / (double)c_in));
    m->w_g = head_matrix(b, "w_g", d, d, sqrt(2.0 / (double)d));
    m->w_sx = head_matrix(b, "w_sx", c_in, e, sqrt(1.0 / (double)c_in));
    m->w_sh = head_matrix(b, "w_sh", d, e, sqrt(1.0 / (double)d));
    m->w_sp = head_matrix(b, "w_sp", d, c_out, sqrt(2.0 / (double)d));
    int64_t shape[2] = {nodes, nodes};
    m->adj = sn_nn_buffer(b, "adjacency", 2, shape);
    if (!m->w_ps || !m->w_g || !m->w_sx || !m->w_sh || !m->w_sp || !m->adj) return sn_ctx_status(b->ctx);
    return set_adjacency(b, m->adj, adjacency, nodes);
}

sn_tensor *sn_sgr_forward(sn_ctx *ctx, const sn_sgr_head *m, sn_tensor *x, bool training)
{
    (void)training; /* no batch norm */
    if (!head_input_ok(ctx, "sgr", x, m->c_in)) return NULL;
    int64_t h = x->shape[1], w = x->shape[2];
    sn_tensor *rows = head_rows(ctx, x);                                               /* {N,HW,C} */
    sn_tensor *vote = sn_softmax(ctx, head_rows(ctx, sn_conv_forward(ctx, &m->vote, x))); /* {N,HW,M} */
    sn_tensor *hps = sn_matmul(ctx, sn_matmul(ctx, vote, rows, true, false), m->w_ps, false, false); /* {N,M,D} */
    sn_tensor *bm = sn_relu(ctx, hps);
    sn_tensor *hg = sn_relu(ctx, sn_matmul(ctx, sn_matmul(ctx, m->adj, bm, false, false), m->w_g, false, false));
    sn_tensor *score = sn_matmul(ctx, sn_matmul(ctx, rows, m->w_sx, false, false),
                                 sn_matmul(ctx, hg, m->w_sh, false, false), false, true); /* {N,HW,M} */
    sn_tensor *asp = sn_softmax(ctx, score);
    sn_tensor *y = sn_relu(ctx, sn_matmul(ctx, asp, sn_matmul(ctx, hg, m->w_sp, false, false), false, false));
    return head_residual(ctx, &m->proj, m->has_proj, x, head_map(ctx, y, h, w));
}

sn_cost sn_sgr_cost(const sn_sgr_head *m, int64_t h, int64_t w)
{
    sn_cost c = {0};
    double p = (double)h * w, ci = (double)m->c_in, n = (double)m->nodes, d = (double)m->d, e = (double)m->e;
    head_cost_conv(&c, &m->vote, h, w);
    c.madds += p * n * ci + n * ci * d;          /* voting, W^ps */
    c.madds += n * n * d + n * d * d;            /* A^g B, W^g */
    c.madds += p * ci * e + n * d * e + p * n * e; /* the mapping scores */
    c.madds += n * d * (double)m->c_out + p * n * (double)m->c_out; /* W^sp, A^sp */
    c.params += m->c_in * m->d + m->d * m->d + m->c_in * m->e + m->d * m->e + m->d * m->c_out;
    if (m->has_proj) head_cost_conv(&c, &m->proj, h, w);
    return c;
}
