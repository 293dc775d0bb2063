/* Graph Convolution Units (Li & Gupta, "Beyond Grids: Learning Graph
 * Representations for Visual Recognition", NeurIPS 2018). Per unit of V
 * vertices, with X the {HW, C} pixel matrix:
 *   graph projection    q_ij^k = softmax_k(-||(x_ij - w_k)/sigma_k||^2 / 2)
 *                       z_k = z'_k / ||z'_k||, z'_k the q-weighted mean of
 *                       (x_ij - w_k)/sigma_k                    (Eq. 1-2)
 *   graph convolution   A = Z Z^T (cosine similarities of the normalised
 *                       vertex features: sample dependent), Z~ = relu(A Z W_g)
 *   graph reprojection  X~ = Q Z~
 * The head concatenates the units' outputs (2, 4, 8, 32 vertices, as the
 * paper's segmentation setting) with X and maps to c_out with a 1x1 conv.
 * Projection and aggregation are the fused ops of src/ops/soft_assign.c. */
#include "nn/head_util.h"

static const int default_vertices[4] = {2, 4, 8, 32};

static int unit_init(sn_nn_builder *b, sn_gcu_unit *u, int64_t c_in, int64_t vertices, int64_t c_unit)
{
    u->vertices = vertices;
    int64_t shape[2] = {vertices, c_in};
    u->centres = sn_nn_param(b, "centres", 2, shape);
    u->sigma = sn_nn_param(b, "sigma", 2, shape);
    if (!u->centres || !u->sigma) return sn_ctx_status(b->ctx);
    /* Centres spread like normalised features; unit scales. (The paper
     * starts them from k-means over features of the trained backbone.) */
    sn_rng_fill_normal(b->rng, u->centres->data, u->centres->numel, 0.0f, 1.0f);
    sn_tensor_fill(u->sigma, 1.0f);
    u->wg = head_matrix(b, "graph_weight", c_in, c_unit, sqrt(2.0 / (double)c_in));
    return u->wg ? SN_OK : sn_ctx_status(b->ctx);
}

int sn_gcu_init(sn_nn_builder *b, sn_gcu_head *m, int64_t c_in, int64_t c_out, int n_units, const int *vertices,
                int64_t c_unit)
{
    if (!vertices) vertices = default_vertices, n_units = 4;
    if (c_in < 1 || c_out < 1 || c_unit < 1 || n_units < 1 || n_units > SN_GCU_MAX_UNITS)
        return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: GCU head needs positive sizes and 1..%d units, got c_in %lld "
                           "c_out %lld c_unit %lld units %d", b->prefix, SN_GCU_MAX_UNITS, (long long)c_in,
                           (long long)c_out, (long long)c_unit, n_units);
    *m = (sn_gcu_head){.n_units = n_units, .c_in = c_in, .c_out = c_out, .c_unit = c_unit};
    for (int i = 0; i < n_units; i++) {
        if (vertices[i] < 1)
            return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: GCU unit %d has %d vertices", b->prefix, i, vertices[i]);
        size_t at = sn_nn_push(b, "unit%d", i);
        int rc = unit_init(b, &m->units[i], c_in, vertices[i], c_unit);
        sn_nn_pop(b, at);
        if (rc) return rc;
    }
    return head_conv1x1(b, "fuse", &m->fuse, c_in + n_units * c_unit, c_out, true);
}

/* X~ {N,HW,c_unit} of one unit. */
static sn_tensor *unit_forward(sn_ctx *ctx, const sn_gcu_unit *u, sn_tensor *rows)
{
    sn_tensor *q = sn_softmax(ctx, sn_gaussian_logits(ctx, rows, u->centres, u->sigma)); /* {N,HW,V} */
    sn_tensor *z = sn_soft_residual_mean(ctx, rows, q, u->centres, u->sigma, true);      /* {N,V,C} */
    sn_tensor *adj = sn_matmul(ctx, z, z, false, true);                                   /* {N,V,V} */
    sn_tensor *zt = sn_relu(ctx, sn_matmul(ctx, sn_matmul(ctx, adj, z, false, false), u->wg, false, false));
    return sn_matmul(ctx, q, zt, false, false);
}

sn_tensor *sn_gcu_forward(sn_ctx *ctx, const sn_gcu_head *m, sn_tensor *x, bool training)
{
    (void)training; /* no batch norm */
    if (!head_input_ok(ctx, "gcu", x, m->c_in)) return NULL;
    int64_t h = x->shape[1], w = x->shape[2];
    sn_tensor *rows = head_rows(ctx, x);
    sn_tensor *parts[1 + SN_GCU_MAX_UNITS] = {x};
    for (int i = 0; i < m->n_units; i++) parts[1 + i] = head_map(ctx, unit_forward(ctx, &m->units[i], rows), h, w);
    return sn_conv_forward(ctx, &m->fuse, sn_concat(ctx, 1 + m->n_units, parts));
}

sn_cost sn_gcu_cost(const sn_gcu_head *m, int64_t h, int64_t w)
{
    sn_cost c = {0};
    double p = (double)h * w, ci = (double)m->c_in, cu = (double)m->c_unit;
    for (int i = 0; i < m->n_units; i++) {
        double v = (double)m->units[i].vertices;
        c.madds += 2 * p * v * ci;   /* assignment logits and residual means */
        c.madds += 2 * v * v * ci;   /* A = Z Z^T and A Z */
        c.madds += v * ci * cu;      /* W_g */
        c.madds += p * v * cu;       /* reprojection */
        c.params += 2 * m->units[i].vertices * m->c_in + m->c_in * m->c_unit;
    }
    head_cost_conv(&c, &m->fuse, h, w);
    return c;
}
