/* The Auto-DeepLab supernet on a tiny configuration: structure, and the
 * gradient of the loss with respect to weights, alpha and beta against
 * central finite differences (loss summed in float64) along the gradient
 * and a random direction, per parameter group (weights, alpha, beta). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/search.h"
#include "support/check.h"
#include "support/dircheck.h"

enum { N = 4, H = 32, W = 32, CLASSES = 3 };

static sn_supernet_config tiny_config(void)
{
    sn_supernet_config c;
    sn_supernet_config_default(&c);
    c.n_layers = 3, c.n_blocks = 2, c.filter_multiplier = 2, c.n_classes = CLASSES, c.stem_channels = 4;
    return c;
}

typedef struct problem {
    sn_ctx *ctx;
    sn_supernet *net;
    float *images;
    uint8_t labels[N * H * W];
} problem;

/* Loss in eval-free training mode; batch norm uses batch statistics (and
 * would update running ones: restored by the caller). */
static double loss_of(problem *p, bool backward)
{
    sn_ctx *ctx = p->ctx;
    sn_tensor *x = sn_tensor_new4(ctx, N, H, W, 3);
    memcpy(x->data, p->images, sizeof(float) * N * H * W * 3);
    sn_tensor *logits = sn_supernet_forward(ctx, p->net, x, true);
    sn_tensor *loss = sn_softmax_cross_entropy(ctx, logits, p->labels, 255, NULL);
    double v = loss ? loss->data[0] : NAN;
    if (backward) CHECK(sn_backward(ctx, loss) == SN_OK, "supernet backward: %s", sn_ctx_error(ctx));
    sn_step_end(ctx);
    return v;
}

static double loss_only(void *user) { return loss_of(user, false); }

static void check_group(problem *p, const sn_param_set *set, const char *what, uint64_t seed)
{
    dir_check_set(loss_only, p, set, what, seed, 1e-4);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    sn_supernet net;
    sn_supernet_config cfg = tiny_config();
    CHECK(sn_supernet_init(ctx, &net, &cfg, 1) == SN_OK, "init: %s", sn_ctx_error(ctx));
    CHECK(net.alpha->shape[0] == 5 && net.alpha->shape[1] == 8, "alpha is 5 edges x 8 ops");
    CHECK(net.beta->numel == 2 * 4 * 3, "beta has (L-1) x levels x 3 entries");
    CHECK(net.nodes[0].exists && !net.nodes[1].exists && net.nodes[2 * 4 + 2].exists && !net.nodes[2 * 4 + 3].exists,
          "layer l has levels 0..l");
    CHECK(net.nodes[1 * 4 + 0].has_in[1] && !net.nodes[1 * 4 + 0].has_in[0] && !net.nodes[1 * 4 + 0].has_in[2],
          "node (1,0) comes only from (0,0): layer 0 has no level 1");
    CHECK(net.nodes[1 * 4 + 1].has_in[2] && !net.nodes[1 * 4 + 1].has_in[1], "node (1,1) comes down from (0,0)");
    CHECK(net.nodes[2 * 4 + 0].has_in[0] && net.nodes[2 * 4 + 0].has_in[1], "node (2,0) from (1,0) and up from (1,1)");

    problem p = {.ctx = ctx, .net = &net};
    p.images = random_floats(N * H * W * 3, 5);
    sn_rng rng;
    sn_rng_seed(&rng, 9);
    for (int i = 0; i < N * H * W; i++) p.labels[i] = (uint8_t)sn_rng_below(&rng, CLASSES);
    p.labels[3] = 255;

    /* Running statistics change with every forward; keep them fixed so that
     * all evaluations see the same function (they do not enter the
     * training-mode output anyway). */
    /* Spread alpha and beta (search starts them at 1e-3 N(0,1), where the
     * mixing weights are all equal and their gradients tiny) so that the
     * architecture derivatives are well above the float32 noise. */
    sn_rng_fill_normal(&rng, net.alpha->data, net.alpha->numel, 0, 1);
    sn_rng_fill_normal(&rng, net.beta->data, net.beta->numel, 0, 1);
    sn_zero_grad(net.weights.items, net.weights.n);
    sn_zero_grad(net.arch.items, net.arch.n);
    double l0 = loss_of(&p, true);
    CHECK(isfinite(l0) && l0 > 0, "finite positive loss %g", l0);
    check_group(&p, &net.weights, "weights", 12);
    /* alpha alone and beta alone, so one cannot hide the other. */
    sn_param_set a = {0}, b = {0};
    sn_param_set_add(&a, net.alpha);
    sn_param_set_add(&b, net.beta);
    check_group(&p, &a, "alpha", 13);
    check_group(&p, &b, "beta", 14);
    sn_param_set_free(&a);
    sn_param_set_free(&b);

    /* Recomputing the cells in backward gives the same loss and gradients. */
    sn_param_set *sets[2] = {&net.weights, &net.arch};
    int64_t nw = sn_param_set_numel(&net.weights), na = sn_param_set_numel(&net.arch);
    float *g_plain = malloc(sizeof(float) * (size_t)(nw + na)), *g_rec = malloc(sizeof(float) * (size_t)(nw + na));
    double losses[2];
    for (int rec = 0; rec < 2; rec++) {
        net.cfg.recompute = rec == 1;
        sn_zero_grad(net.weights.items, net.weights.n);
        sn_zero_grad(net.arch.items, net.arch.n);
        losses[rec] = loss_of(&p, true);
        int64_t off = 0;
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < sets[k]->n; i++) {
                memcpy((rec ? g_rec : g_plain) + off, sets[k]->items[i]->grad, sizeof(float) * (size_t)sets[k]->items[i]->numel);
                off += sets[k]->items[i]->numel;
            }
    }
    net.cfg.recompute = false;
    CHECK(losses[0] == losses[1], "recompute: same loss (%.9g vs %.9g)", losses[0], losses[1]);
    CHECK(rel_err_f32(g_rec, g_plain, nw + na, 1e-6) < 1e-5, "recompute: same gradients (rel err %g)",
          rel_err_f32(g_rec, g_plain, nw + na, 1e-6));
    free(g_plain), free(g_rec);
    free(p.images);
    sn_supernet_free(&net);
    sn_ctx_destroy(ctx);
    return check_summary("supernet");
}
