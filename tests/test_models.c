/* The discrete Auto-DeepLab network: output shapes, the gradient of the
 * loss with respect to all weights against central finite differences
 * (along the gradient and a random direction, as test_supernet), eval
 * mode, the analytic cost against the paper's Table 2 and against the
 * built network, other genotypes (an 'up' transition, a path starting at
 * level 1) and bad genotypes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/models.h"
#include "support/check.h"
#include "support/dircheck.h"

enum { N = 2, H = 65, W = 65, CLASSES = 3 };

/* Small heads so that the many forward passes of the finite differences
 * stay fast; the cost test uses the paper's widths. */
static sn_model_config tiny_config(const sn_genotype *g, int filters)
{
    sn_model_config c;
    sn_model_config_default(&c, g);
    c.genotype.filter_multiplier = filters;
    c.n_classes = CLASSES, c.stem_channels = 4, c.aspp_channels = 6, c.decoder_low_channels = 3,
    c.decoder_channels = 5;
    return c;
}

typedef struct problem {
    sn_ctx *ctx;
    sn_model *net;
    bool training; /* batch statistics in BN */
    float *images;
    uint8_t labels[N * H * W];
} problem;

static void bn_momentum(sn_bn *bn, float momentum) { bn->momentum = momentum; }

static void cell_op_momentum(sn_cell_op_module *op, float momentum)
{
    bn_momentum(&op->pw1.bn, momentum);
    bn_momentum(&op->pw2.bn, momentum);
    bn_momentum(&op->main.bn, momentum);
}

/* Sets the momentum of every batch norm of the network. */
static void model_momentum(sn_model *m, float momentum)
{
    for (int i = 0; i < 3; i++) bn_momentum(&m->stem[i].bn, momentum);
    for (int l = 0; l < m->cfg.genotype.n_layers; l++) {
        sn_model_cell *c = &m->cells[l];
        bn_momentum(&c->pre_prev.bn, momentum);
        bn_momentum(&c->pre_prev_prev.bn, momentum);
        for (int b = 0; b < m->cfg.genotype.cell.n_blocks; b++)
            for (int k = 0; k < 2; k++) cell_op_momentum(&c->ops[b][k], momentum);
    }
    bn_momentum(&m->aspp.pool.bn, momentum);
    bn_momentum(&m->aspp.b1x1.bn, momentum);
    for (int i = 0; i < 3; i++) bn_momentum(&m->aspp.b3x3[i].bn, momentum);
    bn_momentum(&m->aspp.proj.bn, momentum);
    bn_momentum(&m->decoder.low_proj.bn, momentum);
    for (int i = 0; i < 2; i++) bn_momentum(&m->decoder.conv[i].bn, momentum);
}

static double loss_of(problem *p, bool backward)
{
    sn_ctx *ctx = p->ctx;
    sn_tensor *x = sn_tensor_new4(ctx, N, H, W, 3);
    memcpy(x->data, p->images, sizeof(float) * N * H * W * 3);
    sn_model_run run = {.training = p->training};
    sn_tensor *logits = sn_model_forward(ctx, p->net, x, &run);
    sn_tensor *loss = sn_softmax_cross_entropy(ctx, logits, p->labels, 255, NULL);
    double v = loss ? loss->data[0] : NAN;
    if (backward) CHECK(sn_backward(ctx, loss) == SN_OK, "model backward: %s", sn_ctx_error(ctx));
    sn_step_end(ctx);
    return v;
}

static double loss_only(void *user) { return loss_of(user, false); }

static void check_gradient(problem *p, const char *what, uint64_t seed)
{
    const sn_param_set *set = &p->net->weights;
    sn_zero_grad(set->items, set->n);
    double l0 = loss_of(p, true);
    CHECK(isfinite(l0) && l0 > 0, "%s: finite positive loss %g", what, l0);
    dir_check_set(loss_only, p, set, what, seed, 1.2e-5);
}

/* Builds, checks the output shape in training and eval mode, the analytic
 * parameter count and the gradient.
 *
 * The gradient: in training mode, batch norm couples the samples and a deep
 * narrow network at initialisation has exploding gradients (the mean-field
 * result for BN+ReLU stacks): with the paper's 12 cells at F = 2 the
 * gradient norm reaches ~100, concentrated in the stem, and central
 * differences only approach it as h -> 0 (error ~ h, ReLU kinks) before
 * float32 noise takes over; with batch norm on running statistics
 * (calibrated on the batch) it is ~2e4. Neither can be checked by finite
 * differences in float32, so the gradient is checked on the paper's
 * genotype cut to 6 cells (down and up transitions included) and on a
 * 5-cell genotype with other operators, in both BN modes; the 12-cell
 * network is checked for shapes, eval mode and its parameter count. */
static void check_network(sn_ctx *ctx, const sn_model_config *cfg, const char *what, uint64_t seed, bool grad)
{
    sn_model net;
    int rc = sn_model_init(ctx, &net, cfg, seed);
    CHECK(rc == SN_OK, "%s: init: %s", what, sn_ctx_error(ctx));
    if (rc) {
        sn_model_free(&net);
        sn_ctx_clear_error(ctx);
        return;
    }
    sn_model_costs cost;
    CHECK(sn_model_cost(ctx, cfg, H, W, &cost) == SN_OK, "%s: cost: %s", what, sn_ctx_error(ctx));
    CHECK(cost.total.params == sn_param_set_numel(&net.weights), "%s: analytic params %lld == built %lld", what,
          (long long)cost.total.params, (long long)sn_param_set_numel(&net.weights));

    problem p = {.ctx = ctx, .net = &net, .images = random_floats(N * H * W * 3, seed + 1)};
    /* Images with different global statistics, as real ones: the
     * image-pooling branch normalises N pooled vectors over the batch. */
    for (int n = 0; n < N; n++)
        for (int64_t i = 0; i < H * W * 3; i++) {
            float *v = &p.images[n * H * W * 3 + i];
            *v = *v * (0.5f + 0.5f * (float)n) + 0.4f * (float)n - 0.6f;
        }
    sn_rng rng;
    sn_rng_seed(&rng, seed + 2);
    for (int i = 0; i < N * H * W; i++) p.labels[i] = (uint8_t)sn_rng_below(&rng, CLASSES);
    p.labels[7] = 255;

    /* Training forward (momentum 1: running statistics := this batch's). */
    model_momentum(&net, 1.0f);
    sn_tensor *x = sn_tensor_new4(ctx, N, H, W, 3);
    memcpy(x->data, p.images, sizeof(float) * N * H * W * 3);
    sn_model_run train = {.training = true};
    sn_tensor *y = sn_model_forward(ctx, &net, x, &train);
    CHECK(y && y->ndim == 4 && y->shape[0] == N && y->shape[1] == H && y->shape[2] == W && y->shape[3] == CLASSES,
          "%s: logits are {%d,%d,%d,%d}: %s", what, N, H, W, CLASSES, y ? "" : sn_ctx_error(ctx));
    bool finite = y != NULL;
    for (int64_t i = 0; y && i < y->numel; i++) finite &= isfinite(y->data[i]) != 0;
    CHECK(finite, "%s: finite training logits", what);
    sn_step_end(ctx);
    model_momentum(&net, 0.1f);

    /* Eval mode: running statistics, no tape; deterministic. */
    bool old = sn_set_grad_enabled(ctx, false);
    sn_model_run eval = {.training = false};
    float *first = NULL;
    size_t scoped_bytes = 0;
    for (int pass = 0; pass < 2; pass++) {
        x = sn_tensor_new4(ctx, N, H, W, 3);
        memcpy(x->data, p.images, sizeof(float) * N * H * W * 3);
        y = sn_model_forward(ctx, &net, x, &eval);
        CHECK(y && y->shape[1] == H && y->shape[3] == CLASSES && sn_tape_size(ctx) == 0,
              "%s: eval forward, nothing on the tape: %s", what, y ? "" : sn_ctx_error(ctx));
        if (!y) break;
        if (!pass) {
            scoped_bytes = sn_arena_used(sn_ctx_step_arena(ctx));
            first = malloc(sizeof(float) * (size_t)y->numel);
            memcpy(first, y->data, sizeof(float) * (size_t)y->numel);
        } else {
            CHECK(!memcmp(first, y->data, sizeof(float) * (size_t)y->numel), "%s: eval mode is deterministic", what);
        }
        sn_step_end(ctx);
    }
    /* Without a tape the cells and the head run as scoped segments
     * (sn_recompute): the same logits as the plain eval-mode pass with the
     * tape on, and a step arena holding little more than their outputs. */
    sn_set_grad_enabled(ctx, true);
    x = sn_tensor_new4(ctx, N, H, W, 3);
    memcpy(x->data, p.images, sizeof(float) * N * H * W * 3);
    sn_tensor *y_plain = sn_model_forward(ctx, &net, x, &eval);
    size_t plain_bytes = sn_arena_used(sn_ctx_step_arena(ctx));
    CHECK(y_plain && first && !memcmp(first, y_plain->data, sizeof(float) * (size_t)y_plain->numel),
          "%s: scoped (no tape) and plain eval forward give the same logits", what);
    CHECK(scoped_bytes < plain_bytes / 2, "%s: scoped inference keeps %zu bytes in the step arena, plain %zu", what,
          scoped_bytes, plain_bytes);
    sn_step_end(ctx);
    free(first);
    sn_set_grad_enabled(ctx, old);

    char label[64];
    snprintf(label, sizeof label, "%s (eval BN)", what);
    if (grad) {
        p.training = false;
        check_gradient(&p, label, seed + 3);
        snprintf(label, sizeof label, "%s (batch BN)", what);
        p.training = true;
        check_gradient(&p, label, seed + 4);
    }
    free(p.images);
    sn_model_free(&net);
}

/* Table 2 of the paper (Cityscapes, 1024x2048): F, params, Multi-Adds. */
static const struct {
    char variant;
    double params_m, madds_b, ours_b;
} paper_table[3] = {{'S', 10.15, 333.25, 317.54}, {'M', 21.62, 460.93, 434.99}, {'L', 44.42, 695.03, 653.58}};

static void paper_cost(sn_ctx *ctx, int i, int64_t h, int64_t w, sn_model_costs *cost)
{
    sn_genotype g;
    sn_genotype_autodeeplab(&g);
    g.filter_multiplier = sn_model_variant_filters(paper_table[i].variant);
    sn_model_config c;
    sn_model_config_default(&c, &g);
    CHECK(sn_model_cost(ctx, &c, h, w, cost) == SN_OK, "cost: %s", sn_ctx_error(ctx));
}

static void check_paper_costs(sn_ctx *ctx)
{
    for (int i = 0; i < 3; i++) {
        char v = paper_table[i].variant;
        sn_model_costs cost;
        paper_cost(ctx, i, 1024, 2048, &cost);
        double pm = cost.total.params / 1e6, mb = cost.total.madds / 1e9;
        printf("  Auto-DeepLab-%c: %.4fM params (paper %.2fM), %.2fB Multi-Adds (paper %.2fB, %+.2f%%)\n", v, pm,
               paper_table[i].params_m, mb, paper_table[i].madds_b, 100 * (mb / paper_table[i].madds_b - 1));
        CHECK(fabs(round(pm * 100) / 100 - paper_table[i].params_m) < 1e-9,
              "%c: params %.4fM round to the paper's %.2fM", v, pm, paper_table[i].params_m);
        /* Our own count (convolutions at 1024x2048) is 4.7 / 5.6 / 6.0%
         * under the paper's; cost.c says why. */
        CHECK(fabs(mb - paper_table[i].ours_b) < 0.01, "%c: Multi-Adds %.3fB == the derived %.2fB", v, mb,
              paper_table[i].ours_b);
        /* Counted as the paper did: TensorFlow's padding of dilated convs,
         * at 1024x2048 and at DeepLab's evaluation size 1025x2049. */
        double tf = cost.total.tf_madds / 1e9, rel = tf / paper_table[i].madds_b - 1;
        CHECK(rel < 0 && rel > -0.05, "%c: TF-count %.2fB within 5%% under %.2fB", v, tf, paper_table[i].madds_b);
        paper_cost(ctx, i, 1025, 2049, &cost);
        tf = cost.total.tf_madds / 1e9, rel = tf / paper_table[i].madds_b - 1;
        printf("  Auto-DeepLab-%c at 1025x2049: TF-count %.2fB (%+.2f%%)\n", v, tf, 100 * rel);
        CHECK(rel < 0 && rel > -0.02, "%c: 1025x2049 TF-count %.2fB within 2%% under %.2fB", v, tf,
              paper_table[i].madds_b);
    }
}

/* TensorFlow's count of a dilated conv covers its input padded to a
 * multiple of the rate. Auto-DeepLab-S at 1025x2049, by hand:
 * - ASPP on 129x257, 200 -> 256 channels, 3x3 at rates 12, 24, 36: outputs
 *   132x264, 144x264, 144x288, i.e. 1695 + 4863 + 8319 = 14877 extra
 *   positions of 9 * 200 * 256 = 460800 multiply-adds.
 * - The cells' rate-2 convs on odd maps 257x513, 129x257, 65x129, 33x65
 *   gain 771, 387, 195, 99 positions. A cell has atrous 5x5 + 3x3 + 5x5
 *   (59 c^2 per position), a cell going down only the last 5x5 (the
 *   others are strided: rate 1), c = 20 * 2^level. Level 0: cells 0-2
 *   (3 * 59); level 1: cells 3 (down), 5, 11 (25 + 2 * 59); level 2: 4, 6
 *   (down), 7, 10 (2 * 25 + 2 * 59); level 3: 8 (down), 9 (25 + 59). */
static void check_tf_count(sn_ctx *ctx)
{
    sn_model_costs cost;
    paper_cost(ctx, 0, 1025, 2049, &cost);
    double aspp = 14877.0 * 460800;
    double cells = 400.0 * (771 * 177 + 387 * 4 * 143 + 195 * 16 * 168 + 99 * 64 * 84);
    double extra_head = cost.part[SN_PART_HEAD].tf_madds - cost.part[SN_PART_HEAD].conv_madds;
    double extra_cells = cost.part[SN_PART_CELLS].tf_madds - cost.part[SN_PART_CELLS].conv_madds;
    CHECK(fabs(extra_head - aspp) < 1, "ASPP: TF counts %.0f more, by hand %.0f", extra_head, aspp);
    CHECK(fabs(extra_cells - cells) < 1, "cells: TF counts %.0f more, by hand %.0f", extra_cells, cells);
    CHECK(cost.part[SN_PART_STEM].tf_madds == cost.part[SN_PART_STEM].conv_madds &&
              cost.part[SN_PART_DECODER].tf_madds == cost.part[SN_PART_DECODER].conv_madds,
          "no dilated convs in the stem and decoder");
    /* At 1024x2048 the levels are even: only ASPP's rates pad
     * (128x256 -> 132x264, 144x264, 144x288). */
    paper_cost(ctx, 0, 1024, 2048, &cost);
    aspp = (2080.0 + 5248 + 8704) * 460800;
    extra_head = cost.part[SN_PART_HEAD].tf_madds - cost.part[SN_PART_HEAD].conv_madds;
    CHECK(fabs(extra_head - aspp) < 1, "ASPP at 1024x2048: TF counts %.0f more, by hand %.0f", extra_head, aspp);
    CHECK(cost.total.tf_madds - cost.total.conv_madds == extra_head, "only ASPP pads at 1024x2048");
}

/* The analytic count equals the built network at the paper's size too. */
static void check_full_params(sn_ctx *ctx)
{
    sn_genotype g;
    sn_genotype_autodeeplab(&g);
    sn_model_config c;
    sn_model_config_default(&c, &g);
    sn_model net;
    CHECK(sn_model_init(ctx, &net, &c, 3) == SN_OK, "Auto-DeepLab-S init: %s", sn_ctx_error(ctx));
    sn_model_costs cost;
    CHECK(sn_model_cost(ctx, &c, 1024, 2048, &cost) == SN_OK, "cost: %s", sn_ctx_error(ctx));
    CHECK(cost.total.params == sn_param_set_numel(&net.weights), "S: analytic params %lld == built %lld",
          (long long)cost.total.params, (long long)sn_param_set_numel(&net.weights));
    CHECK(net.low_level_cell == 2, "the decoder reads Cell_2 (feature_extractor.py nas_hnasnet), got %d",
          net.low_level_cell);
    CHECK(net.aspp.rates[0] == 12 && net.aspp.rates[1] == 24 && net.aspp.rates[2] == 36,
          "ASPP rates 12/24/36 at output stride 8, got %d/%d/%d", net.aspp.rates[0], net.aspp.rates[1],
          net.aspp.rates[2]);
    /* Cell 3 goes down (0 -> 1), cell 5 up (2 -> 1). */
    CHECK(net.cells[3].plan.stride == 2 && !net.cells[3].plan.up && net.cells[5].plan.up &&
              net.cells[5].plan.stride == 1 && net.cells[3].ops[0][0].stride == 2 &&
              net.cells[3].ops[2][0].stride == 1,
          "strides: down cells stride the ops fed by the cell inputs only");
    sn_model_free(&net);
}

static void expect_bad(sn_ctx *ctx, const sn_genotype *g, const char *needle, const char *what)
{
    sn_model_config c = tiny_config(g, 2);
    sn_model net;
    int rc = sn_model_init(ctx, &net, &c, 1);
    const char *msg = sn_ctx_error(ctx);
    CHECK(rc == SN_ERR_ARG && msg && strstr(msg, needle), "%s: SN_ERR_ARG naming '%s', got %d '%s'", what, needle, rc,
          msg ? msg : "");
    sn_model_free(&net);
    sn_ctx_clear_error(ctx);
    sn_model_costs cost;
    CHECK(sn_model_cost(ctx, &c, 64, 64, &cost) == SN_ERR_ARG, "%s: the cost model refuses it too", what);
    sn_ctx_clear_error(ctx);
}

static void check_bad_genotypes(sn_ctx *ctx)
{
    sn_genotype g;
    sn_genotype_autodeeplab(&g);
    g.path[4] = 3; /* 1 -> 3 */
    expect_bad(ctx, &g, "path[4]", "a jump of two levels");
    sn_genotype_autodeeplab(&g);
    g.path[0] = 2, g.path[1] = 2;
    expect_bad(ctx, &g, "path[0]", "a path starting at level 2");
    sn_genotype_autodeeplab(&g);
    g.path[2] = 4;
    expect_bad(ctx, &g, "path[2]", "a level beyond the trellis");
    sn_genotype_autodeeplab(&g);
    g.cell.op[2][1] = SN_CELL_NONE;
    expect_bad(ctx, &g, "block 2 input 1", "the 'none' operator");
    sn_genotype_autodeeplab(&g);
    g.cell.input[1][0] = 3;
    expect_bad(ctx, &g, "block 1 input 0", "an input from a later block");
    sn_genotype_autodeeplab(&g);
    g.n_layers = 0;
    expect_bad(ctx, &g, "0 layers", "an empty path");
    sn_genotype_autodeeplab(&g);
    sn_model_config c = tiny_config(&g, 2);
    sn_model_costs cost;
    CHECK(sn_model_cost(ctx, &c, 0, 64, &cost) == SN_ERR_ARG, "an empty input size is refused");
    sn_ctx_clear_error(ctx);
    /* A wrong input shape is an SN_ERR_SHAPE naming it. */
    sn_model net;
    CHECK(sn_model_init(ctx, &net, &c, 1) == SN_OK, "init: %s", sn_ctx_error(ctx));
    sn_tensor *x = sn_tensor_new4(ctx, 1, 9, 9, 4);
    sn_model_run run = {.training = false};
    CHECK(!sn_model_forward(ctx, &net, x, &run) && sn_ctx_status(ctx) == SN_ERR_SHAPE &&
              strstr(sn_ctx_error(ctx), "1x9x9x4"),
          "4-channel input: SN_ERR_SHAPE naming 1x9x9x4, got '%s'", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
    sn_model_free(&net);
}

static void check_drop_path(sn_ctx *ctx)
{
    sn_genotype g;
    sn_genotype_autodeeplab(&g);
    sn_model_config c = tiny_config(&g, 2);
    c.drop_path_keep_prob = 0.9f, c.total_steps = 100;
    CHECK_NEAR(sn_model_drop_path_keep(&c, 11, 100), 0.9, 1e-6, "last cell at the end keeps 0.9");
    CHECK_NEAR(sn_model_drop_path_keep(&c, 5, 50), 1 - 0.5 * (6.0 / 12) * 0.1, 1e-6, "cell 5 half way");
    CHECK_NEAR(sn_model_drop_path_keep(&c, 11, 0), 1.0, 1e-6, "step 0 keeps all");
    CHECK_NEAR(sn_model_drop_path_keep(&c, 0, 1000), 1 - 0.1 / 12, 1e-6, "past the end stays at the final value");
    /* A training step with drop path and dropout runs and gives gradients. */
    c.drop_path_keep_prob = 0.5f, c.total_steps = 1;
    sn_model net;
    CHECK(sn_model_init(ctx, &net, &c, 4) == SN_OK, "init: %s", sn_ctx_error(ctx));
    sn_rng rng;
    sn_rng_seed(&rng, 6);
    sn_tensor *x = sn_tensor_new4(ctx, N, 33, 33, 3);
    fill_normal(x, 7, 1.0f);
    sn_model_run run = {.training = true, .step = 5, .rng = &rng};
    sn_tensor *y = sn_model_forward(ctx, &net, x, &run);
    CHECK(y && y->shape[1] == 33 && sn_backward(ctx, sn_sum(ctx, y)) == SN_OK, "drop-path step: %s",
          sn_ctx_error(ctx));
    sn_step_end(ctx);
    sn_model_free(&net);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    check_paper_costs(ctx);
    check_tf_count(ctx);
    check_full_params(ctx);
    check_bad_genotypes(ctx);
    check_drop_path(ctx);

    sn_genotype g;
    sn_genotype_autodeeplab(&g);
    sn_model_config c = tiny_config(&g, 2);
    check_network(ctx, &c, "paper network", 11, false);
    /* Its first six cells: path 0 0 0 1 2 1, the decoder on Cell_2. */
    c.genotype.n_layers = 6;
    check_network(ctx, &c, "paper, 6 cells", 12, true);

    /* Starts at level 1 (cell 0 strides), goes up twice, visits level 0 at
     * cell 3 only (the decoder's input); pools, skip and atrous with stride. */
    static const int path[5] = {1, 2, 1, 0, 1};
    static const int cell[3][2][2] = {
        {{0, SN_CELL_MAX_POOL_3X3}, {1, SN_CELL_ATROUS_3X3}},
        {{1, SN_CELL_SKIP_CONNECT}, {2, SN_CELL_AVG_POOL_3X3}},
        {{0, SN_CELL_SEP_CONV_5X5}, {3, SN_CELL_SKIP_CONNECT}},
    };
    sn_genotype_autodeeplab(&g);
    g.n_layers = 5;
    memcpy(g.path, path, sizeof path);
    g.cell.n_blocks = 3;
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < 2; k++) g.cell.input[b][k] = cell[b][k][0], g.cell.op[b][k] = cell[b][k][1];
    c = tiny_config(&g, 3);
    check_network(ctx, &c, "up + level-1 start", 21, true);

    sn_ctx_destroy(ctx);
    return check_summary("models");
}
