/* Gradient checkpointing: a segment run through sn_recompute gives the same
 * output, gradients and batch-norm statistics as the plain code, while the
 * step arena keeps only the segment's output; a group of segments run side
 * by side (sn_recompute_all, 2 threads) gives what the plain code gives,
 * with inputs and parameter rows shared between segments, the same bits on
 * every run, and the thread setting back as it was. */
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

/* ---- a group of segments ---------------------------------------------------------- */
enum { GROUP = 5, GN0 = 2 * 9 * 9 * 4, GN1 = 2 * 9 * 9 * 6 };

typedef struct member {
    net *m;
    sn_tensor *alpha; /* shared by all members: row `row` scales the output */
    int row, index;
    bool fail;
} member;

static sn_tensor *member_segment(sn_ctx *ctx, void *user, sn_tensor *const *in, int n)
{
    const member *u = user;
    if (u->fail) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "member %d fails on purpose", u->index);
        return NULL;
    }
    return sn_scale(ctx, segment(ctx, u->m, in, n), sn_param_rows(ctx, u->alpha, u->row, 1));
}

typedef struct group_result {
    float y[GROUP][GN1], gx0[GN0], gx1[GROUP][GN1], *pg;
} group_result;

/* loss = sum_i sum(r * member_i(x0, x1_i)): x0 feeds every member, x1_i
 * member i alone; members 2i and 2i+1 share alpha's row i. */
static void run_group(sn_ctx *ctx, member *mem, bool grouped, const float *x0v, const float *x1v, const float *r,
                      const sn_param_set *params, group_result *res)
{
    sn_tensor *x0 = sn_tensor_new4(ctx, 2, 9, 9, 4), *x1[GROUP], *outs[GROUP];
    memcpy(x0->data, x0v, sizeof(float) * GN0);
    x0->requires_grad = true;
    sn_segment_call calls[GROUP];
    for (int i = 0; i < GROUP; i++) {
        x1[i] = sn_tensor_new4(ctx, 2, 9, 9, 6);
        memcpy(x1[i]->data, x1v + i * GN1, sizeof(float) * GN1);
        x1[i]->requires_grad = true;
        calls[i] = (sn_segment_call){member_segment, &mem[i], {x0, x1[i]}, 2};
    }
    if (grouped) {
        CHECK(sn_recompute_all(ctx, GROUP, calls, outs) == SN_OK, "group ran: %s", sn_ctx_error(ctx));
        CHECK(sn_get_num_threads() == 2, "the thread setting is back after the group (%d)", sn_get_num_threads());
    } else {
        for (int i = 0; i < GROUP; i++) outs[i] = member_segment(ctx, &mem[i], calls[i].inputs, 2);
    }
    sn_tensor *sum = NULL;
    for (int i = 0; i < GROUP; i++) {
        memcpy(res->y[i], outs[i]->data, sizeof(float) * GN1);
        sum = sum ? sn_add(ctx, sum, outs[i]) : outs[i];
    }
    CHECK(sn_backward_from(ctx, sum, r) == SN_OK, "group backward: %s", sn_ctx_error(ctx));
    memcpy(res->gx0, x0->grad, sizeof(float) * GN0);
    for (int i = 0; i < GROUP; i++) memcpy(res->gx1[i], x1[i]->grad, sizeof(float) * GN1);
    int64_t off = 0;
    for (int i = 0; i < params->n; i++) {
        memcpy(res->pg + off, params->items[i]->grad, sizeof(float) * (size_t)params->items[i]->numel);
        off += params->items[i]->numel;
    }
    sn_step_end(ctx);
}

static void test_group(sn_ctx *ctx)
{
    sn_rng rng;
    sn_rng_seed(&rng, 9);
    sn_param_set params = {0}, buffers = {0};
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &params, .buffers = &buffers};
    net nets[GROUP];
    member mem[GROUP];
    int64_t ashape[1] = {3};
    sn_tensor *alpha = sn_param_new(ctx, "alpha", 1, ashape);
    for (int i = 0; i < 3; i++) alpha->data[i] = 0.5f + 0.25f * (float)i;
    sn_param_set_add(&params, alpha);
    for (int i = 0; i < GROUP; i++) {
        sn_conv_bn_init(&b, &nets[i].a, 4, 8, 3, 1, 1, 1, false, true, true);
        sn_conv_bn_init(&b, &nets[i].b, 8, 6, 3, 1, 2, 1, true, false, true);
        mem[i] = (member){&nets[i], alpha, i / 2, i, false};
    }
    float *x0 = random_floats(GN0, 11), *x1 = random_floats(GROUP * GN1, 12), *r = random_floats(GN1, 13);
    int64_t np = sn_param_set_numel(&params), nb = sn_param_set_numel(&buffers);
    group_result *res = malloc(3 * sizeof *res);
    float *stats[3];
    for (int k = 0; k < 3; k++) { /* plain, grouped, grouped again */
        for (int i = 0; i < buffers.n; i++)
            sn_tensor_fill(buffers.items[i], strstr(buffers.items[i]->name, "var") ? 1.0f : 0.0f);
        sn_zero_grad(params.items, params.n);
        res[k].pg = malloc(sizeof(float) * (size_t)np);
        run_group(ctx, mem, k > 0, x0, x1, r, &params, &res[k]);
        stats[k] = malloc(sizeof(float) * (size_t)nb);
        int64_t off = 0;
        for (int i = 0; i < buffers.n; i++, off += buffers.items[i - 1]->numel)
            memcpy(stats[k] + off, buffers.items[i]->data, sizeof(float) * (size_t)buffers.items[i]->numel);
    }
    CHECK(rel_err_f32(&res[1].y[0][0], &res[0].y[0][0], GROUP * GN1, 1e-6) < 1e-6, "group: same outputs");
    CHECK(rel_err_f32(res[1].gx0, res[0].gx0, GN0, 1e-6) < 1e-6, "group: same gradient of the shared input");
    CHECK(rel_err_f32(&res[1].gx1[0][0], &res[0].gx1[0][0], GROUP * GN1, 1e-6) < 1e-6,
          "group: same gradients of the members' own inputs");
    CHECK(rel_err_f32(res[1].pg + 0, res[0].pg + 0, 3, 1e-6) < 1e-6, "group: same gradient of the shared rows");
    CHECK(rel_err_f32(res[1].pg, res[0].pg, np, 1e-6) < 1e-6, "group: same parameter gradients");
    CHECK(rel_err_f32(stats[1], stats[0], nb, 1e-6) < 1e-6, "group: running statistics updated once");
    CHECK(memcmp(res[2].pg, res[1].pg, sizeof(float) * (size_t)np) == 0 &&
              memcmp(res[2].gx0, res[1].gx0, sizeof res[1].gx0) == 0,
          "group: the same bits on a second run");

    /* A member that fails: the group reports its message. */
    mem[3].fail = true;
    sn_tensor *xa = sn_tensor_new4(ctx, 2, 9, 9, 4), *xb = sn_tensor_new4(ctx, 2, 9, 9, 6), *outs[GROUP];
    sn_tensor_fill(xa, 1.0f), sn_tensor_fill(xb, 1.0f);
    sn_segment_call calls[GROUP];
    for (int i = 0; i < GROUP; i++) calls[i] = (sn_segment_call){member_segment, &mem[i], {xa, xb}, 2};
    int rc = sn_recompute_all(ctx, GROUP, calls, outs);
    CHECK(rc == SN_ERR_ARG && strstr(sn_ctx_error(ctx), "member 3 fails on purpose") && !outs[0],
          "group: a member's failure is the group's (rc %d, '%s')", rc, sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
    for (int k = 0; k < 3; k++) free(res[k].pg), free(stats[k]);
    free(res), free(x0), free(x1), free(r);
    sn_param_set_free(&params), sn_param_set_free(&buffers);
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
    test_group(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("recompute");
}
