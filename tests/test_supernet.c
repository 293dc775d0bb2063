/* The Auto-DeepLab supernet on a tiny configuration: structure, and the
 * gradient of the loss with respect to weights, alpha and beta against
 * central finite differences (loss summed in float64) along random
 * directions, one per parameter group. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/search.h"
#include "support/check.h"

enum { N = 2, H = 32, W = 32, CLASSES = 3 };

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

/* Directional derivative check over a parameter set. */
static void check_group(problem *p, const sn_param_set *set, const char *what, double h, uint64_t seed)
{
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    int64_t total = sn_param_set_numel(set);
    float *dir = malloc(sizeof(float) * (size_t)total), *saved = malloc(sizeof(float) * (size_t)total);
    sn_rng_fill_normal(&rng, dir, total, 0, 1);
    double analytic = 0;
    int64_t off = 0;
    for (int i = 0; i < set->n; i++) {
        sn_tensor *t = set->items[i];
        for (int64_t k = 0; k < t->numel; k++) analytic += (double)t->grad[k] * dir[off + k];
        memcpy(saved + off, t->data, sizeof(float) * (size_t)t->numel);
        off += t->numel;
    }
    double l[2];
    for (int side = 0; side < 2; side++) {
        off = 0;
        for (int i = 0; i < set->n; i++) {
            sn_tensor *t = set->items[i];
            for (int64_t k = 0; k < t->numel; k++)
                t->data[k] = saved[off + k] + (float)((side ? -h : h) * dir[off + k]);
            off += t->numel;
        }
        l[side] = loss_of(p, false);
    }
    off = 0;
    for (int i = 0; i < set->n; i++) {
        memcpy(set->items[i]->data, saved + off, sizeof(float) * (size_t)set->items[i]->numel);
        off += set->items[i]->numel;
    }
    double fd = (l[0] - l[1]) / (2 * h);
    double rel = fabs(analytic - fd) / fmax(fabs(fd), 1e-8);
    printf("  %-8s analytic %+.6e  finite difference %+.6e  rel err %.2e\n", what, analytic, fd, rel);
    CHECK(rel < 1e-2, "%s directional derivative rel err %g", what, rel);
    free(dir), free(saved);
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
    sn_zero_grad(net.weights.items, net.weights.n);
    sn_zero_grad(net.arch.items, net.arch.n);
    double l0 = loss_of(&p, true);
    CHECK(isfinite(l0) && l0 > 0, "finite positive loss %g", l0);
    CHECK(fabs(l0 - log(CLASSES)) < 1.0, "initial loss near log(classes): %g", l0);
    check_group(&p, &net.arch, "alpha+beta", 1e-2, 11);
    check_group(&p, &net.weights, "weights", 1e-3, 12);
    /* alpha alone and beta alone, so one cannot hide the other. */
    sn_param_set a = {0}, b = {0};
    sn_param_set_add(&a, net.alpha);
    sn_param_set_add(&b, net.beta);
    check_group(&p, &a, "alpha", 1e-2, 13);
    check_group(&p, &b, "beta", 1e-2, 14);
    sn_param_set_free(&a);
    sn_param_set_free(&b);
    free(p.images);
    sn_supernet_free(&net);
    sn_ctx_destroy(ctx);
    return check_summary("supernet");
}
