/* The discrete Auto-DeepLab network built from a genotype, as the official
 * code builds it: tensorflow/models research/deeplab/core/nas_network.py
 * (`_nas_stem`, `_build_nas_base`) and nas_cell.py (`NASBaseCell`).
 * ASPP and the decoder live in aspp.c and decoder.c, the cost model in
 * cost.c; this file holds the plan (geometry per cell), the builder and the
 * forward pass. */
#include <stdlib.h>
#include <string.h>

#include "segnas/models.h"

void sn_model_config_default(sn_model_config *c, const sn_genotype *g)
{
    *c = (sn_model_config){.genotype = *g,
                           .n_classes = 19,
                           .stem_channels = 64,
                           .aspp_channels = 256,
                           .decoder_low_channels = 48,
                           .decoder_channels = 256,
                           .decoder = true,
                           .aspp_dropout = 0.1f,
                           .drop_path_keep_prob = 1.0f,
                           .total_steps = 1,
                           .head = SN_HEAD_ASPP,
                           .sgr_adjacency = NULL};
}

int sn_model_variant_filters(char variant)
{
    switch (variant) {
    case 'S': case 's': return 20;
    case 'M': case 'm': return 32;
    case 'L': case 'l': return 48;
    default: return 0;
    }
}

/* ---- validation and plan -------------------------------------------------- */
static int check_genotype(sn_ctx *ctx, const sn_genotype *g)
{
    if (g->n_levels < 1 || g->n_levels > SN_MAX_LEVELS)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "genotype: %d levels (1..%d)", g->n_levels, SN_MAX_LEVELS);
    if (g->n_layers < 1 || g->n_layers > SN_MAX_LAYERS)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "genotype: path of %d layers (1..%d)", g->n_layers, SN_MAX_LAYERS);
    if (g->filter_multiplier < 1 || g->filter_multiplier > 4096)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "genotype: F = %d (1..4096)", g->filter_multiplier);
    for (int l = 0; l < g->n_layers; l++) {
        int s = g->path[l], step = s - (l ? g->path[l - 1] : 0);
        if (s < 0 || s >= g->n_levels)
            return sn_ctx_fail(ctx, SN_ERR_ARG, "genotype: path[%d] = %d is not a level in 0..%d", l, s,
                               g->n_levels - 1);
        if (step < -1 || step > 1)
            return sn_ctx_fail(ctx, SN_ERR_ARG,
                               "genotype: path[%d] = %d moves %+d levels (a path starts at level 0 or 1 and moves "
                               "by at most one level per layer)", l, s, step);
    }
    const sn_cell_genotype *c = &g->cell;
    if (c->n_blocks < 1 || c->n_blocks > SN_MAX_BLOCKS)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "genotype: cell of %d blocks (1..%d)", c->n_blocks, SN_MAX_BLOCKS);
    for (int b = 0; b < c->n_blocks; b++)
        for (int k = 0; k < 2; k++) {
            if (c->input[b][k] < 0 || c->input[b][k] > b + 1)
                return sn_ctx_fail(ctx, SN_ERR_ARG, "genotype: cell block %d input %d is %d (0..%d)", b, k,
                                   c->input[b][k], b + 1);
            if (c->op[b][k] <= SN_CELL_NONE || c->op[b][k] >= SN_CELL_OP_COUNT)
                return sn_ctx_fail(ctx, SN_ERR_ARG,
                                   "genotype: cell block %d input %d has operator %d ('none' or unknown; a "
                                   "discrete cell needs one of 1..%d)", b, k, c->op[b][k], SN_CELL_OP_COUNT - 1);
        }
    return SN_OK;
}

static int check_config(sn_ctx *ctx, const sn_model_config *c)
{
    int rc = check_genotype(ctx, &c->genotype);
    if (rc) return rc;
    if (c->n_classes < 2 || c->n_classes > 255)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "model: %d classes (2..255: labels are bytes, 255 ignored)", c->n_classes);
    if (c->stem_channels < 1 || c->aspp_channels < 1 || c->decoder_low_channels < 1 || c->decoder_channels < 1)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "model: stem %d, ASPP %d, decoder %d/%d channels must be >= 1",
                           c->stem_channels, c->aspp_channels, c->decoder_low_channels, c->decoder_channels);
    if (!(c->drop_path_keep_prob > 0.0f && c->drop_path_keep_prob <= 1.0f) || c->total_steps < 1)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "model: drop-path keep probability %g (0..1] over %lld steps (>= 1)",
                           (double)c->drop_path_keep_prob, (long long)c->total_steps);
    if (c->head < 0 || c->head >= SN_HEAD_COUNT)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "model: head %d unknown (0..%d)", c->head, SN_HEAD_COUNT - 1);
    if (!(c->aspp_dropout >= 0.0f && c->aspp_dropout < 1.0f))
        return sn_ctx_fail(ctx, SN_ERR_ARG, "model: ASPP dropout %g must be in [0, 1)", (double)c->aspp_dropout);
    return SN_OK;
}

static int64_t cell_output_channels(const sn_genotype *g, int level)
{
    return (int64_t)g->cell.n_blocks * g->filter_multiplier << level;
}

/* nas_network.py `_build_nas_base`: filter_scaling doubles going down and
 * halves going up; cell 0 comes from the stem at level 0 (stride 2 when
 * path[0] = 1). H^{l-2} of cell 0 is the stem's second conv (stride 2), of
 * cell 1 the stem output (`cell_outputs[-2]`). */
int sn_model_plan(sn_ctx *ctx, const sn_model_config *c, sn_cell_plan *plans)
{
    int rc = check_config(ctx, c);
    if (rc) return rc;
    const sn_genotype *g = &c->genotype;
    for (int l = 0; l < g->n_layers; l++) {
        sn_cell_plan *p = &plans[l];
        int prev_level = l ? g->path[l - 1] : 0;
        p->level = g->path[l];
        p->stride = p->level > prev_level ? 2 : 1;
        p->up = p->level < prev_level;
        p->c = (int64_t)g->filter_multiplier << p->level;
        p->c_prev = l ? cell_output_channels(g, prev_level) : 2 * (int64_t)c->stem_channels;
        p->c_prev_prev = l == 0   ? c->stem_channels
                         : l == 1 ? 2 * (int64_t)c->stem_channels
                                  : cell_output_channels(g, g->path[l - 2]);
        /* nas_cell.py `_cell_base`: the 1x1 only where widths differ. */
        p->prev_prev_proj = p->c_prev_prev != p->c;
    }
    return SN_OK;
}

float sn_model_drop_path_keep(const sn_model_config *c, int cell, int64_t step)
{
    double p = c->drop_path_keep_prob;
    double layer_ratio = (double)(cell + 1) / c->genotype.n_layers;
    p = 1.0 - layer_ratio * (1.0 - p);
    double ratio = (double)step / (double)c->total_steps;
    if (ratio > 1.0) ratio = 1.0;
    if (ratio < 0.0) ratio = 0.0;
    return (float)(1.0 - ratio * (1.0 - p));
}

/* ---- construction ------------------------------------------------------------ */
static int stem_init(sn_nn_builder *b, sn_model *m)
{
    int64_t c = m->cfg.stem_channels;
    const int64_t in[3] = {3, c, c}, out[3] = {c, c, 2 * c};
    const int stride[3] = {2, 1, 2};
    /* conv0-BN-ReLU; conv1-BN (kept pre-ReLU as H^{-2}); ReLU-conv2-BN. */
    const bool relu_before[3] = {false, false, true}, relu_after[3] = {true, false, false};
    int rc = SN_OK;
    for (int i = 0; i < 3 && !rc; i++) {
        size_t at = sn_nn_push(b, "stem%d", i);
        rc = sn_conv_bn_init(b, &m->stem[i], in[i], out[i], 3, stride[i], 1, 1, relu_before[i], relu_after[i], true);
        sn_nn_pop(b, at);
    }
    return rc;
}

static int cell_init(sn_nn_builder *b, sn_model_cell *cell, const sn_cell_genotype *g, int index)
{
    const sn_cell_plan *p = &cell->plan;
    size_t at = sn_nn_push(b, "cell%d", index);
    size_t at2 = sn_nn_push(b, "pre_prev");
    int rc = sn_conv_bn_init(b, &cell->pre_prev, p->c_prev, p->c, 1, 1, 1, 1, true, false, true);
    sn_nn_pop(b, at2);
    if (!rc && p->prev_prev_proj) {
        at2 = sn_nn_push(b, "pre_prev_prev");
        rc = sn_conv_bn_init(b, &cell->pre_prev_prev, p->c_prev_prev, p->c, 1, 1, 1, 1, true, false, true);
        sn_nn_pop(b, at2);
    }
    for (int blk = 0; blk < g->n_blocks && !rc; blk++)
        for (int k = 0; k < 2 && !rc; k++) {
            /* nas_cell.py `_apply_conv_operation`: only ops fed by the
             * cell inputs take the stride. */
            int stride = g->input[blk][k] < 2 ? p->stride : 1;
            at2 = sn_nn_push(b, "block%d.%s", blk, k ? "right" : "left");
            rc = sn_cell_op_init(b, &cell->ops[blk][k], g->op[blk][k], p->c, p->c, stride, true);
            sn_nn_pop(b, at2);
        }
    sn_nn_pop(b, at);
    return rc;
}

/* The decoder's low-level feature: the last cell at level 0 (Cell_2 for the
 * paper's network: deeplab/core/feature_extractor.py, nas_hnasnet decoder
 * end point at stride 4), or the stem output when the path skips level 0. */
static int low_level_cell(const sn_genotype *g)
{
    int last = -1;
    for (int l = 0; l < g->n_layers; l++)
        if (g->path[l] == 0) last = l;
    return last;
}

static int head_init(sn_nn_builder *b, sn_model *m, const float *sgr_adjacency)
{
    const sn_model_config *c = &m->cfg;
    const sn_genotype *g = &c->genotype;
    int last = g->path[g->n_layers - 1];
    int64_t c_top = cell_output_channels(g, last);
    int rc = c->head == SN_HEAD_ASPP ? sn_aspp_init(b, &m->aspp, c_top, c->aspp_channels, 4 << last)
                                     : sn_context_head_init(b, &m->context, c->head, c_top, c->aspp_channels,
                                                            c->n_classes, sgr_adjacency);
    if (rc) return rc;
    if (c->decoder) {
        int64_t c_low = m->low_level_cell < 0 ? 2 * (int64_t)c->stem_channels : cell_output_channels(g, 0);
        size_t at = sn_nn_push(b, "decoder");
        rc = sn_decoder_init(b, &m->decoder, c->aspp_channels, c_low, c->decoder_low_channels, c->decoder_channels,
                             c->n_classes);
        sn_nn_pop(b, at);
        return rc;
    }
    size_t at = sn_nn_push(b, "logits");
    rc = sn_conv_init(b, &m->classifier, c->aspp_channels, c->n_classes, 1, 1, 1, 1, true);
    sn_nn_pop(b, at);
    return rc;
}

int sn_model_init(sn_ctx *ctx, sn_model *m, const sn_model_config *cfg, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    sn_cell_plan plans[SN_MAX_LAYERS];
    int rc = sn_model_plan(ctx, cfg, plans);
    if (rc) return rc;
    m->cfg = *cfg;
    m->cfg.sgr_adjacency = NULL; /* read here only; the model keeps its own copy */
    const sn_genotype *g = &cfg->genotype;
    m->cells = calloc((size_t)g->n_layers, sizeof *m->cells);
    if (!m->cells) return sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for %d cells", g->n_layers);
    m->low_level_cell = low_level_cell(g);
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &m->weights, .buffers = &m->buffers};
    rc = stem_init(&b, m);
    for (int l = 0; l < g->n_layers && !rc; l++) {
        m->cells[l].plan = plans[l];
        rc = cell_init(&b, &m->cells[l], &g->cell, l);
    }
    if (!rc) rc = head_init(&b, m, cfg->sgr_adjacency);
    return rc;
}

void sn_model_free(sn_model *m)
{
    free(m->cells);
    sn_param_set_free(&m->weights);
    sn_param_set_free(&m->buffers);
    memset(m, 0, sizeof *m);
}

/* ---- forward -------------------------------------------------------------------- */
/* The official code resizes with align_corners=True (deeplab/core/utils.py
 * `resize_bilinear`). */
static sn_tensor *resize_to(sn_ctx *ctx, sn_tensor *x, int64_t h, int64_t w)
{
    if (!x || (x->shape[1] == h && x->shape[2] == w)) return x;
    return sn_resize_bilinear(ctx, x, h, w, true);
}

static sn_tensor *cell_forward(sn_ctx *ctx, const sn_model *m, int index, sn_tensor *prev, sn_tensor *prev_prev,
                               const int64_t (*sizes)[2], const sn_model_run *run)
{
    const sn_model_cell *cell = &m->cells[index];
    const sn_cell_plan *p = &cell->plan;
    const sn_cell_genotype *g = &m->cfg.genotype.cell;
    if (!prev || !prev_prev) return NULL;
    /* Going up, H^{l-1} is resized x2 first; we resize to the level's size
     * (what TF's scale_dimension gives for the 4k+1 crop sizes it uses),
     * so a level has one size whatever the path. */
    if (p->up) prev = resize_to(ctx, prev, sizes[p->level][0], sizes[p->level][1]);
    if (!prev) return NULL;
    sn_tensor *states[SN_MAX_BLOCKS + 2];
    prev_prev = resize_to(ctx, prev_prev, prev->shape[1], prev->shape[2]);
    states[0] = p->prev_prev_proj ? sn_conv_bn_forward(ctx, &cell->pre_prev_prev, prev_prev, run->training)
                                  : prev_prev;
    states[1] = sn_conv_bn_forward(ctx, &cell->pre_prev, prev, run->training);
    bool drop = run->training && run->rng && m->cfg.drop_path_keep_prob < 1.0f;
    float keep = drop ? sn_model_drop_path_keep(&m->cfg, index, run->step) : 1.0f;
    /* ReLU(state), computed once for the operators that begin with it. */
    sn_tensor *relus[SN_MAX_BLOCKS + 2] = {0};
    for (int blk = 0; blk < g->n_blocks; blk++) {
        sn_tensor *y[2];
        for (int k = 0; k < 2; k++) {
            int in = g->input[blk][k];
            const sn_cell_op_module *op = &cell->ops[blk][k];
            if (sn_cell_op_starts_with_relu(op) && !relus[in]) relus[in] = sn_relu(ctx, states[in]);
            y[k] = sn_cell_op_forward(ctx, op, states[in], relus[in], run->training);
            /* nas_cell.py: drop path on every operator but the identity
             * ('none' there, skip_connect here). */
            if (drop && keep < 1.0f && g->op[blk][k] != SN_CELL_SKIP_CONNECT)
                y[k] = sn_drop_path(ctx, y[k], keep, run->rng);
        }
        states[blk + 2] = sn_add(ctx, y[0], y[1]);
    }
    return sn_concat(ctx, g->n_blocks, states + 2);
}

/* The context module on the last cell's output (at its level). */
static sn_tensor *context_forward(sn_ctx *ctx, const sn_model *m, sn_tensor *top, const sn_model_run *run)
{
    /* nas_network.py: ReLU after the last cell. */
    sn_tensor *x = sn_relu(ctx, top);
    x = m->cfg.head == SN_HEAD_ASPP ? sn_aspp_forward(ctx, &m->aspp, x, run->training)
                                    : sn_context_head_forward(ctx, &m->context, x, run->training);
    if (run->training && run->rng && m->cfg.aspp_dropout > 0.0f) x = sn_dropout(ctx, x, m->cfg.aspp_dropout, run->rng);
    return x;
}

/* Logits at the decoder's (or the context module's) resolution. */
static sn_tensor *logits_forward(sn_ctx *ctx, const sn_model *m, sn_tensor *x, sn_tensor *low, bool training)
{
    if (m->cfg.decoder) return sn_decoder_forward(ctx, &m->decoder, x, low, training);
    return sn_conv_forward(ctx, &m->classifier, x);
}

/* Without a tape (inference) the stem's first layer, each cell, the context
 * module and the decoder run as sn_recompute segments, so that only their
 * outputs stay in the step arena: peak memory is the largest segment's
 * activations, not the whole pass's. */
typedef struct scoped_call {
    const sn_model *m;
    const sn_model_run *run;
    const int64_t (*sizes)[2];
    int cell;
} scoped_call;

static sn_tensor *stem0_segment(sn_ctx *ctx, void *user, sn_tensor *const *in, int n)
{
    (void)n;
    const scoped_call *c = user;
    return sn_conv_bn_forward(ctx, &c->m->stem[0], in[0], c->run->training);
}

static sn_tensor *cell_segment(sn_ctx *ctx, void *user, sn_tensor *const *in, int n)
{
    (void)n;
    const scoped_call *c = user;
    return cell_forward(ctx, c->m, c->cell, in[0], in[1], c->sizes, c->run);
}

static sn_tensor *context_segment(sn_ctx *ctx, void *user, sn_tensor *const *in, int n)
{
    (void)n;
    const scoped_call *c = user;
    return context_forward(ctx, c->m, in[0], c->run);
}

static sn_tensor *logits_segment(sn_ctx *ctx, void *user, sn_tensor *const *in, int n)
{
    const scoped_call *c = user;
    return logits_forward(ctx, c->m, in[0], n > 1 ? in[1] : NULL, c->run->training);
}

/* Runs `fn` as a scoped segment when `scoped`, else as plain code. */
static sn_tensor *segment(sn_ctx *ctx, bool scoped, sn_segment_fn fn, scoped_call *call, sn_tensor *const *in, int n)
{
    return scoped ? sn_recompute(ctx, fn, call, in, n) : fn(ctx, call, in, n);
}

sn_tensor *sn_model_forward(sn_ctx *ctx, const sn_model *m, sn_tensor *images, const sn_model_run *run)
{
    if (!images) return NULL;
    if (images->ndim != 4 || images->shape[3] != 3) {
        char buf[64];
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "model input must be {N,H,W,3}, got %s", sn_shape_str(images, buf, sizeof buf));
        return NULL;
    }
    const sn_genotype *g = &m->cfg.genotype;
    bool scoped = !sn_grad_enabled(ctx);
    scoped_call call = {.m = m, .run = run};
    sn_tensor *x = segment(ctx, scoped, stem0_segment, &call, &images, 1);
    sn_tensor *prev_prev = sn_conv_bn_forward(ctx, &m->stem[1], x, run->training);
    sn_tensor *prev = sn_conv_bn_forward(ctx, &m->stem[2], prev_prev, run->training);
    if (!prev) return NULL;
    int64_t sizes[SN_MAX_LEVELS][2];
    sizes[0][0] = prev->shape[1], sizes[0][1] = prev->shape[2];
    for (int s = 1; s < g->n_levels; s++)
        sizes[s][0] = (sizes[s - 1][0] + 1) / 2, sizes[s][1] = (sizes[s - 1][1] + 1) / 2;
    call.sizes = (const int64_t(*)[2])sizes;
    sn_tensor *low = prev;
    for (int l = 0; l < g->n_layers; l++) {
        sn_tensor *in[2] = {prev, prev_prev};
        call.cell = l;
        sn_tensor *out = segment(ctx, scoped, cell_segment, &call, in, 2);
        if (!out) return NULL;
        if (l == m->low_level_cell) low = out;
        prev_prev = prev;
        prev = out;
    }
    sn_tensor *head_in[2] = {segment(ctx, scoped, context_segment, &call, &prev, 1), low};
    if (!head_in[0]) return NULL;
    sn_tensor *logits = segment(ctx, scoped, logits_segment, &call, head_in, m->cfg.decoder ? 2 : 1);
    return resize_to(ctx, logits, images->shape[1], images->shape[2]);
}
