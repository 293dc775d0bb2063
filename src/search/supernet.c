/* The Auto-DeepLab supernet: the network-level trellis of Eq. 6 with every
 * cell a continuous relaxation over the cell space (Eq. 1-4).
 *
 * Layer 0 sits at level 0 (it takes the stem's stride-4 output); node (l, s)
 * exists for s <= min(l, n_levels-1). Node outputs are
 *   H^l_s = sum_d beta^{l-1}_{src->s} Cell_d(H^{l-1}_src, H^{l-2}_s)
 * with beta normalised over each SOURCE node's outgoing directions (Eq. 7). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/search.h"
#include "tensor/internal.h"

void sn_supernet_config_default(sn_supernet_config *c)
{
    *c = (sn_supernet_config){.n_layers = 12, .n_levels = 4, .n_blocks = 5, .filter_multiplier = 8,
                              .n_classes = 19, .stem_channels = 64, .aspp_channels = 0, .affine = false};
}

int64_t sn_supernet_level_channels(const sn_supernet_config *c, int level)
{
    return (int64_t)c->n_blocks * c->filter_multiplier << level;
}

static int64_t block_width(const sn_supernet_config *c, int level) { return (int64_t)c->filter_multiplier << level; }

static int top_level(const sn_supernet_config *c, int layer)
{
    return layer < c->n_levels - 1 ? layer : c->n_levels - 1;
}

static sn_trellis_node *node_at(const sn_supernet *net, int layer, int level)
{
    return &net->nodes[layer * net->cfg.n_levels + level];
}

/* ---- construction -------------------------------------------------------- */
static int search_cell_init(sn_nn_builder *b, sn_search_cell *cell, const sn_supernet_config *cfg, int level,
                            int64_t prev_prev_channels)
{
    cell->c = block_width(cfg, level);
    int n_edges = sn_cell_edge_count(cfg->n_blocks);
    cell->ops = calloc((size_t)n_edges * SN_CELL_OP_COUNT, sizeof *cell->ops);
    if (!cell->ops) return sn_ctx_fail(b->ctx, SN_ERR_NOMEM, "out of memory for the cell at %s", b->prefix);
    size_t at = sn_nn_push(b, "pre_prev_prev");
    int rc = sn_conv_bn_init(b, &cell->pre_prev_prev, prev_prev_channels, cell->c, 1, 1, 1, 1, true, false,
                             cfg->affine);
    sn_nn_pop(b, at);
    for (int e = 0; e < n_edges && !rc; e++)
        for (int k = 0; k < SN_CELL_OP_COUNT && !rc; k++) {
            at = sn_nn_push(b, "edge%d", e);
            rc = sn_cell_op_init(b, &cell->ops[e * SN_CELL_OP_COUNT + k], k, cell->c, cell->c, 1, cfg->affine);
            sn_nn_pop(b, at);
        }
    return rc;
}

/* Channels of H^{l-2} as seen by node (l, s): see prev_prev_input(). */
static int64_t prev_prev_channels(const sn_supernet_config *cfg, int layer, int level)
{
    if (layer == 0) return cfg->stem_channels;        /* stem's second conv */
    if (layer == 1) return 2 * (int64_t)cfg->stem_channels; /* stem output */
    int s = level <= top_level(cfg, layer - 2) ? level : top_level(cfg, layer - 2);
    return sn_supernet_level_channels(cfg, s);
}

static int transition_init(sn_nn_builder *b, sn_conv_bn *t, int d, int64_t c_src, int64_t c_out, bool affine)
{
    /* d = 2: from the finer level, a stride-2 3x3 conv; otherwise 1x1. */
    int k = d == 2 ? 3 : 1, stride = d == 2 ? 2 : 1;
    return sn_conv_bn_init(b, t, c_src, c_out, k, stride, 1, 1, true, false, affine);
}

static int node_init(sn_nn_builder *b, sn_supernet *net, int layer, int level)
{
    const sn_supernet_config *cfg = &net->cfg;
    sn_trellis_node *node = node_at(net, layer, level);
    node->exists = true;
    int rc = SN_OK;
    for (int d = 0; d < 3 && !rc; d++) {
        int src = level - d + 1;
        int64_t c_src;
        if (layer == 0) {
            if (d != 1) continue; /* the stem output, at level 0 */
            c_src = 2 * (int64_t)cfg->stem_channels;
        } else {
            if (src < 0 || src > top_level(cfg, layer - 1)) continue;
            c_src = sn_supernet_level_channels(cfg, src);
        }
        node->has_in[d] = true;
        size_t at = sn_nn_push(b, "layer%d.level%d.in%d", layer, level, d);
        size_t at2 = sn_nn_push(b, "transition");
        rc = transition_init(b, &node->transition[d], d, c_src, block_width(cfg, level), cfg->affine);
        sn_nn_pop(b, at2);
        if (!rc) rc = search_cell_init(b, &node->cell[d], cfg, level, prev_prev_channels(cfg, layer, level));
        sn_nn_pop(b, at);
    }
    return rc;
}

static int aspp_init(sn_nn_builder *b, sn_aspp_search *a, const sn_supernet_config *cfg, int level)
{
    int64_t c_in = sn_supernet_level_channels(cfg, level);
    int64_t c = cfg->aspp_channels ? cfg->aspp_channels : c_in;
    int rate = 96 / (4 << level); /* 3x3 rate 96/s: 24, 12, 6, 3 */
    if (rate < 1) rate = 1;
    size_t at = sn_nn_push(b, "aspp%d", level);
    int rc = SN_OK;
    size_t at2 = sn_nn_push(b, "b1x1");
    rc = rc ? rc : sn_conv_bn_init(b, &a->branch_1x1, c_in, c, 1, 1, 1, 1, false, true, true);
    sn_nn_pop(b, at2);
    at2 = sn_nn_push(b, "b3x3");
    rc = rc ? rc : sn_conv_bn_init(b, &a->branch_3x3, c_in, c, 3, 1, rate, 1, false, true, true);
    sn_nn_pop(b, at2);
    at2 = sn_nn_push(b, "bpool");
    rc = rc ? rc : sn_conv_bn_init(b, &a->branch_pool, c_in, c, 1, 1, 1, 1, false, true, true);
    sn_nn_pop(b, at2);
    at2 = sn_nn_push(b, "classifier");
    rc = rc ? rc : sn_conv_init(b, &a->classifier, 3 * c, cfg->n_classes, 1, 1, 1, 1, true);
    sn_nn_pop(b, at2);
    sn_nn_pop(b, at);
    return rc;
}

static int check_config(sn_ctx *ctx, const sn_supernet_config *c)
{
    if (c->n_layers < 1 || c->n_layers > SN_MAX_LAYERS)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "--layers %d: must be in 1..%d", c->n_layers, SN_MAX_LAYERS);
    if (c->n_levels < 1 || c->n_levels > SN_MAX_LEVELS)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "--levels %d: must be in 1..%d", c->n_levels, SN_MAX_LEVELS);
    if (c->n_blocks < 1 || c->n_blocks > SN_MAX_BLOCKS)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "--blocks %d: must be in 1..%d", c->n_blocks, SN_MAX_BLOCKS);
    if (c->filter_multiplier < 1 || c->n_classes < 2 || c->n_classes > 255 || c->stem_channels < 1 ||
        c->aspp_channels < 0)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "supernet: bad F %d, classes %d, stem %d or ASPP width %d",
                           c->filter_multiplier, c->n_classes, c->stem_channels, c->aspp_channels);
    return SN_OK;
}

static int stem_init(sn_nn_builder *b, sn_supernet *net)
{
    int64_t c = net->cfg.stem_channels;
    const int64_t in[3] = {3, c, c}, out[3] = {c, c, 2 * c};
    const int stride[3] = {2, 1, 2};
    int rc = SN_OK;
    for (int i = 0; i < 3 && !rc; i++) {
        size_t at = sn_nn_push(b, "stem%d", i);
        rc = sn_conv_bn_init(b, &net->stem[i], in[i], out[i], 3, stride[i], 1, 1, false, true, true);
        sn_nn_pop(b, at);
    }
    return rc;
}

static int arch_init(sn_nn_builder *b, sn_supernet *net)
{
    const sn_supernet_config *cfg = &net->cfg;
    int64_t alpha_shape[2] = {sn_cell_edge_count(cfg->n_blocks), SN_CELL_OP_COUNT};
    int64_t n_beta = (int64_t)(cfg->n_layers > 1 ? cfg->n_layers - 1 : 1) * cfg->n_levels * 3;
    sn_nn_builder ab = *b;
    ab.params = &net->arch;
    ab.prefix[0] = '\0';
    net->alpha = sn_nn_param(&ab, "alpha", 2, alpha_shape);
    net->beta = sn_nn_param(&ab, "beta", 1, &n_beta);
    if (!net->alpha || !net->beta) return sn_ctx_status(b->ctx);
    /* Section 4.2: alpha and beta start at 1e-3 * N(0, 1). */
    sn_rng_fill_normal(b->rng, net->alpha->data, net->alpha->numel, 0.0f, 1e-3f);
    sn_rng_fill_normal(b->rng, net->beta->data, net->beta->numel, 0.0f, 1e-3f);
    return SN_OK;
}

int sn_supernet_init(sn_ctx *ctx, sn_supernet *net, const sn_supernet_config *cfg, uint64_t seed)
{
    memset(net, 0, sizeof *net);
    if (check_config(ctx, cfg)) return sn_ctx_status(ctx);
    net->cfg = *cfg;
    net->nodes = calloc((size_t)cfg->n_layers * cfg->n_levels, sizeof *net->nodes);
    net->aspp = calloc((size_t)cfg->n_levels, sizeof *net->aspp);
    if (!net->nodes || !net->aspp) return sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for the supernet");
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &net->weights, .buffers = &net->buffers};
    int rc = stem_init(&b, net);
    for (int l = 0; l < cfg->n_layers && !rc; l++)
        for (int s = 0; s <= top_level(cfg, l) && !rc; s++) rc = node_init(&b, net, l, s);
    for (int s = 0; s <= top_level(cfg, cfg->n_layers - 1) && !rc; s++) rc = aspp_init(&b, &net->aspp[s], cfg, s);
    if (!rc) rc = arch_init(&b, net);
    return rc;
}

void sn_supernet_free(sn_supernet *net)
{
    if (net->nodes)
        for (int i = 0; i < net->cfg.n_layers * net->cfg.n_levels; i++)
            for (int d = 0; d < 3; d++) free(net->nodes[i].cell[d].ops);
    free(net->nodes);
    free(net->aspp);
    sn_param_set_free(&net->weights);
    sn_param_set_free(&net->arch);
    sn_param_set_free(&net->buffers);
    memset(net, 0, sizeof *net);
}

/* ---- forward -------------------------------------------------------------- */
static sn_tensor *resize_to(sn_ctx *ctx, sn_tensor *x, const sn_tensor *like)
{
    if (!x || !like) return NULL;
    if (x->shape[1] == like->shape[1] && x->shape[2] == like->shape[2]) return x;
    return sn_resize_bilinear(ctx, x, like->shape[1], like->shape[2], false);
}

/* One search cell: Eq. 2 (each block sums mixed ops over all its inputs),
 * output the concatenation of the blocks. */
static sn_tensor *search_cell_forward(sn_ctx *ctx, const sn_supernet *net, const sn_search_cell *cell,
                                      sn_tensor *prev_prev, sn_tensor *prev, bool training)
{
    int n_blocks = net->cfg.n_blocks;
    /* ReLU(state) once per state, shared by every operator of every edge
     * leaving it (the sep and atrous convs all begin with it). */
    sn_tensor *states[SN_MAX_BLOCKS + 2], *relus[SN_MAX_BLOCKS + 2];
    states[0] = sn_conv_bn_forward(ctx, &cell->pre_prev_prev, resize_to(ctx, prev_prev, prev), training);
    states[1] = prev;
    for (int blk = 0; blk < n_blocks; blk++) {
        sn_tensor *sum = NULL;
        relus[blk + 1] = sn_relu(ctx, states[blk + 1]);
        if (blk == 0) relus[0] = sn_relu(ctx, states[0]);
        for (int j = 0; j < blk + 2; j++) {
            int e = sn_cell_block_first_edge(blk) + j;
            sn_tensor *outs[SN_CELL_OP_COUNT];
            for (int k = 0; k < SN_CELL_OP_COUNT; k++)
                outs[k] = sn_cell_op_forward(ctx, &cell->ops[e * SN_CELL_OP_COUNT + k], states[j], relus[j],
                                             training);
            sn_tensor *mixed = sn_weighted_sum(ctx, SN_CELL_OP_COUNT, outs, sn_param_rows(ctx, net->alpha, e, 1));
            sum = sum ? sn_add(ctx, sum, mixed) : mixed;
        }
        states[blk + 2] = sum;
    }
    return sn_concat(ctx, n_blocks, states + 2);
}

static sn_tensor *transition_forward(sn_ctx *ctx, const sn_trellis_node *node, int d, sn_tensor *src,
                                     const int64_t size[2], bool training)
{
    if (d == 0 && src) src = sn_resize_bilinear(ctx, src, size[0], size[1], false);
    return sn_conv_bn_forward(ctx, &node->transition[d], src, training);
}

/* Cell d of a node with the transition into it: in[0] is H^{l-2}, in[1]
 * the source node's output H^{l-1}. */
typedef struct cell_call {
    const sn_supernet *net;
    const sn_trellis_node *node;
    int d;
    int64_t size[2]; /* the node's map (a copy: the backward runs after the forward returned) */
    bool training;
} cell_call;

static sn_tensor *cell_segment(sn_ctx *ctx, void *user, sn_tensor *const *in, int n)
{
    (void)n;
    const cell_call *c = user;
    sn_tensor *p = transition_forward(ctx, c->node, c->d, in[1], c->size, c->training);
    return search_cell_forward(ctx, c->net, &c->node->cell[c->d], in[0], p, c->training);
}

/* Beta probabilities of the source node (t, src): a softmax over its
 * valid directions, which are contiguous in beta. Returns the tensor and
 * writes the offset of direction 0 within it. */
static sn_tensor *source_probs(sn_ctx *ctx, const sn_supernet *net, int t, int src, int *d_first)
{
    int lo = src > 0 ? 0 : 1, hi = src < net->cfg.n_levels - 1 ? 2 : 1;
    *d_first = lo;
    int64_t off = ((int64_t)t * net->cfg.n_levels + src) * 3 + lo;
    return sn_softmax(ctx, sn_param_rows(ctx, net->beta, off, hi - lo + 1));
}

typedef struct layer_state {
    sn_tensor *h[SN_MAX_LEVELS];
    sn_tensor *probs[SN_MAX_LEVELS]; /* outgoing beta of each node */
    int d_first[SN_MAX_LEVELS];
} layer_state;

static sn_tensor *prev_prev_input(const sn_supernet *net, int layer, int level, sn_tensor *stem_mid,
                                  sn_tensor *stem_out, const layer_state *pp)
{
    if (layer == 0) return stem_mid;
    if (layer == 1) return stem_out;
    int top = top_level(&net->cfg, layer - 2);
    return pp->h[level <= top ? level : top];
}

/* One layer: every cell of every node (each with the transition into it),
 * then each node's mix of its cells by the incoming beta. With
 * cfg.recompute a cell keeps only its output until the backward pass runs
 * it again (the supernet's memory becomes that of its cell outputs plus one
 * cell per thread: the 321x321 search fits in memory this way), and the
 * cells of a layer, which do not feed each other, run side by side, one per
 * thread (sn_recompute_all). The transition inside the cell's segment is
 * recomputed too: at 321x321 that keeps 484 MiB fewer activations. */
static int layer_forward(sn_ctx *ctx, const sn_supernet *net, int layer, layer_state *cur, const layer_state *prev,
                         const layer_state *pp, sn_tensor *stem_mid, sn_tensor *stem_out,
                         const int64_t sizes[][2], bool training)
{
    enum { MAX_CELLS = SN_MAX_LEVELS * 3 };
    sn_segment_call calls[MAX_CELLS];
    sn_tensor *outs[MAX_CELLS];
    int n = 0, top = top_level(&net->cfg, layer);
    for (int s = 0; s <= top; s++) {
        const sn_trellis_node *node = node_at(net, layer, s);
        sn_tensor *h_pp = prev_prev_input(net, layer, s, stem_mid, stem_out, pp);
        for (int d = 0; d < 3; d++) {
            if (!node->has_in[d]) continue;
            sn_tensor *h_prev = layer == 0 ? stem_out : prev->h[s - d + 1];
            cell_call *call = sn_step_alloc(ctx, sizeof *call);
            if (!call) return sn_ctx_status(ctx);
            *call = (cell_call){net, node, d, {sizes[s][0], sizes[s][1]}, training};
            calls[n++] = (sn_segment_call){cell_segment, call, {h_pp, h_prev}, 2};
        }
    }
    if (net->cfg.recompute) {
        if (sn_recompute_all(ctx, n, calls, outs)) return sn_ctx_status(ctx);
    } else {
        for (int i = 0; i < n; i++) outs[i] = cell_segment(ctx, calls[i].user, calls[i].inputs, 2);
    }
    for (int s = 0, i = 0; s <= top; s++) {
        const sn_trellis_node *node = node_at(net, layer, s);
        sn_tensor *mix[3], *coef[3];
        int index[3], m = 0;
        for (int d = 0; d < 3; d++) {
            if (!node->has_in[d]) continue;
            int src = s - d + 1;
            mix[m] = outs[i++];
            if (layer > 0) coef[m] = prev->probs[src], index[m] = d - prev->d_first[src];
            m++;
        }
        /* layer 0: a single input, weight one */
        cur->h[s] = layer == 0 ? mix[0] : sn_linear_combination(ctx, m, mix, coef, index);
    }
    return sn_ctx_status(ctx);
}

static sn_tensor *aspp_forward(sn_ctx *ctx, const sn_aspp_search *a, sn_tensor *x, bool training)
{
    if (!x) return NULL;
    sn_tensor *pooled = sn_conv_bn_forward(ctx, &a->branch_pool, sn_global_avg_pool(ctx, x), training);
    sn_tensor *branches[3] = {
        sn_conv_bn_forward(ctx, &a->branch_1x1, x, training),
        sn_conv_bn_forward(ctx, &a->branch_3x3, x, training),
        pooled ? sn_resize_bilinear(ctx, pooled, x->shape[1], x->shape[2], false) : NULL,
    };
    return sn_conv_forward(ctx, &a->classifier, sn_concat(ctx, 3, branches));
}

bool sn_supernet_auto_recompute(int64_t height, int64_t width, int threads)
{
    return height > 160 || width > 160 || threads > 1;
}

sn_tensor *sn_supernet_forward(sn_ctx *ctx, const sn_supernet *net, sn_tensor *images, bool training)
{
    const sn_supernet_config *cfg = &net->cfg;
    if (!images) return NULL;
    if (images->ndim != 4 || images->shape[3] != 3) {
        char buf[64];
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "supernet input must be {N,H,W,3}, got %s", sn_shape_str(images, buf, sizeof buf));
        return NULL;
    }
    sn_tensor *stem_a = sn_conv_bn_forward(ctx, &net->stem[0], images, training);
    sn_tensor *stem_mid = sn_conv_bn_forward(ctx, &net->stem[1], stem_a, training);
    sn_tensor *stem_out = sn_conv_bn_forward(ctx, &net->stem[2], stem_mid, training);
    if (!stem_out) return NULL;
    int64_t sizes[SN_MAX_LEVELS][2];
    sizes[0][0] = stem_out->shape[1], sizes[0][1] = stem_out->shape[2];
    for (int s = 1; s < cfg->n_levels; s++)
        sizes[s][0] = (sizes[s - 1][0] + 1) / 2, sizes[s][1] = (sizes[s - 1][1] + 1) / 2;

    layer_state states[3] = {0}; /* rolling: layer l-2, l-1, l */
    for (int l = 0; l < cfg->n_layers; l++) {
        layer_state *cur = &states[l % 3], *prev = &states[(l + 2) % 3], *pp = &states[(l + 1) % 3];
        memset(cur, 0, sizeof *cur);
        if (layer_forward(ctx, net, l, cur, prev, pp, stem_mid, stem_out, sizes, training)) return NULL;
        for (int s = 0; s <= top_level(cfg, l) && l + 1 < cfg->n_layers; s++)
            cur->probs[s] = source_probs(ctx, net, l, s, &cur->d_first[s]);
        if (sn_ctx_status(ctx)) return NULL;
    }
    const layer_state *last = &states[(cfg->n_layers - 1) % 3];
    sn_tensor *sum = NULL;
    for (int s = 0; s <= top_level(cfg, cfg->n_layers - 1); s++) {
        sn_tensor *logits = aspp_forward(ctx, &net->aspp[s], last->h[s], training);
        logits = sn_resize_bilinear(ctx, logits, images->shape[1], images->shape[2], false);
        sum = sum ? sn_add(ctx, sum, logits) : logits;
    }
    return sum;
}
