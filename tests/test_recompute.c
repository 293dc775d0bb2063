/* Gradient checkpointing: a segment run through sn_recompute gives the same
 * output, gradients and batch-norm statistics as the plain code, while the
 * step arena keeps only the segment's output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/nn.h"
#include "support/check.h"

typedef struct net {
    sn_conv_bn a, b;
} net;

static sn_tensor *segment(sn_ctx *ctx, void *user, sn_tensor *const *in, int n)
{
    (void)n;
    net *m = user;
    sn_tensor *h = sn_conv_bn_forward(ctx, &m->a, in[0], true);
    return sn_add(ctx, sn_conv_bn_forward(ctx, &m->b, h, true), in[1]);
}

/* loss = sum(r * segment(x0, x1)); returns the arena bytes used. */
static size_t run(sn_ctx *ctx, net *m, bool recompute, const float *x0v, const float *x1v, const float *r,
                  float *y_out, float *gx0, float *gx1)
{
    sn_tensor *x0 = sn_tensor_new4(ctx, 2, 9, 9, 4), *x1 = sn_tensor_new4(ctx, 2, 9, 9, 6);
    memcpy(x0->data, x0v, sizeof(float) * 2 * 9 * 9 * 4);
    memcpy(x1->data, x1v, sizeof(float) * 2 * 9 * 9 * 6);
    x0->requires_grad = x1->requires_grad = true;
    sn_tensor *in[2] = {x0, x1};
    sn_tensor *y = recompute ? sn_recompute(ctx, segment, m, in, 2) : segment(ctx, m, in, 2);
    size_t used = sn_arena_used(sn_ctx_step_arena(ctx));
    CHECK(y != NULL, "segment ran: %s", sn_ctx_error(ctx));
    memcpy(y_out, y->data, sizeof(float) * (size_t)y->numel);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "backward: %s", sn_ctx_error(ctx));
    memcpy(gx0, x0->grad, sizeof(float) * (size_t)x0->numel);
    memcpy(gx1, x1->grad, sizeof(float) * (size_t)x1->numel);
    sn_step_end(ctx);
    return used;
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    sn_rng rng;
    sn_rng_seed(&rng, 4);
    sn_param_set params = {0}, buffers = {0};
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &params, .buffers = &buffers};
    net m;
    sn_conv_bn_init(&b, &m.a, 4, 8, 3, 1, 1, 1, false, true, true);
    sn_conv_bn_init(&b, &m.b, 8, 6, 3, 1, 2, 1, true, false, true);
    enum { N0 = 2 * 9 * 9 * 4, N1 = 2 * 9 * 9 * 6 };
    float *x0 = random_floats(N0, 1), *x1 = random_floats(N1, 2), *r = random_floats(N1, 3);
    float y[2][N1], g0[2][N0], g1[2][N1];
    float *pg[2], *stats[2];
    int64_t np = sn_param_set_numel(&params), nb = sn_param_set_numel(&buffers);
    size_t used[2];
    for (int k = 0; k < 2; k++) {
        /* same starting state for both runs */
        for (int i = 0; i < buffers.n; i++)
            sn_tensor_fill(buffers.items[i], strstr(buffers.items[i]->name, "var") ? 1.0f : 0.0f);
        sn_zero_grad(params.items, params.n);
        used[k] = run(ctx, &m, k == 1, x0, x1, r, y[k], g0[k], g1[k]);
        pg[k] = malloc(sizeof(float) * (size_t)np);
        stats[k] = malloc(sizeof(float) * (size_t)nb);
        int64_t off = 0;
        for (int i = 0; i < params.n; i++, off += params.items[i - 1]->numel)
            memcpy(pg[k] + off, params.items[i]->grad, sizeof(float) * (size_t)params.items[i]->numel);
        off = 0;
        for (int i = 0; i < buffers.n; i++, off += buffers.items[i - 1]->numel)
            memcpy(stats[k] + off, buffers.items[i]->data, sizeof(float) * (size_t)buffers.items[i]->numel);
    }
    CHECK(rel_err_f32(y[1], y[0], N1, 1e-6) == 0, "same output");
    CHECK(rel_err_f32(g0[1], g0[0], N0, 1e-6) < 1e-6, "same input gradient (x0)");
    CHECK(rel_err_f32(g1[1], g1[0], N1, 1e-6) < 1e-6, "same input gradient (x1, the skip)");
    CHECK(rel_err_f32(pg[1], pg[0], np, 1e-6) < 1e-6, "same parameter gradients");
    CHECK(rel_err_f32(stats[1], stats[0], nb, 1e-6) == 0, "running statistics updated once, as without recomputation");
    CHECK(used[1] < used[0] / 2, "the step arena keeps only the output (%zu vs %zu bytes)", used[1], used[0]);
    for (int k = 0; k < 2; k++) free(pg[k]), free(stats[k]);
    free(x0), free(x1), free(r);
    sn_param_set_free(&params), sn_param_set_free(&buffers);
    sn_ctx_destroy(ctx);
    return check_summary("recompute");
}
