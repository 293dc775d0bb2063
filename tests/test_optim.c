/* Optimisers and schedules: SGD (momentum, Nesterov, weight decay) and Adam
 * against double-precision re-implementations of the torch.optim update
 * rules over several steps, hand-computed first steps, parameter groups,
 * non-finite gradients, gradient clipping; cosine / poly / warmup values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/train.h"
#include "support/check.h"

/* ---- double-precision references (torch/optim/sgd.py, adam.py) --------- */
static void ref_sgd(double *p, const double *g, double *buf, int64_t n, double lr, double wd, double mom,
                    bool nesterov, bool first)
{
    for (int64_t i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        if (mom != 0) {
            buf[i] = first ? d : mom * buf[i] + d;
            d = nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

static void ref_adam(double *p, const double *g, double *m, double *v, int64_t n, double lr, double wd,
                     double b1, double b2, double eps, int64_t t)
{
    double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
    for (int64_t i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * d;
        v[i] = b2 * v[i] + (1 - b2) * d * d;
        double mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

static sn_tensor *param(sn_ctx *ctx, const char *name, int64_t n, uint64_t seed)
{
    int64_t shape[1] = {n};
    sn_tensor *t = sn_param_new(ctx, name, 1, shape);
    fill_normal(t, seed, 1.0f);
    return t;
}

static void set_grad(sn_tensor *t, uint64_t seed)
{
    float *r = random_floats(t->numel, seed);
    memcpy(t->grad, r, (size_t)t->numel * sizeof(float));
    free(r);
}

/* Runs `steps` updates of one group against the reference; returns the
 * worst relative error of parameters and state over all steps. */
static double run_against_ref(sn_ctx *ctx, const sn_optim_group_config *cfg, int64_t n, int steps)
{
    sn_tensor *p = param(ctx, "w", n, 7);
    sn_optim *opt = sn_optim_create(ctx);
    int g = sn_optim_add_group(opt, cfg, &p, 1);
    sn_tensor *state[2] = {NULL, NULL};
    int ns = sn_optim_state_tensors(opt, state, 2);
    double *rp = to_f64(p->data, n), *s1 = calloc((size_t)n, sizeof(double)), *s2 = calloc((size_t)n, sizeof(double));
    double worst = g == 0 ? 0 : INFINITY;
    for (int t = 1; t <= steps && g == 0; t++) {
        set_grad(p, 100 + (uint64_t)t);
        double *rg = to_f64(p->grad, n);
        if (cfg->kind == SN_OPTIM_ADAM)
            ref_adam(rp, rg, s1, s2, n, cfg->lr, cfg->weight_decay, cfg->beta1, cfg->beta2, cfg->eps, t);
        else
            ref_sgd(rp, rg, s1, n, cfg->lr, cfg->weight_decay, cfg->momentum, cfg->nesterov, t == 1);
        free(rg);
        if (sn_optim_step(opt, g) != SN_OK) worst = INFINITY;
        worst = fmax(worst, rel_err_f32_f64(p->data, rp, n, 1e-3));
        if (ns >= 1) worst = fmax(worst, rel_err_f32_f64(state[0]->data, s1, n, 1e-3));
        if (ns >= 2) worst = fmax(worst, rel_err_f32_f64(state[1]->data, s2, n, 1e-6));
    }
    CHECK(sn_optim_get_step(opt, g) == steps, "group step count %lld", (long long)sn_optim_get_step(opt, g));
    free(rp), free(s1), free(s2);
    sn_optim_destroy(opt);
    return worst;
}

static void test_against_reference(sn_ctx *ctx)
{
    struct {
        const char *what;
        sn_optim_group_config cfg;
        int64_t n;
    } cases[] = {
        {"sgd plain", sn_optim_sgd_config(0.1, 0, 0, false), 37},
        {"sgd weight decay", sn_optim_sgd_config(0.05, 0, 0.01, false), 37},
        {"sgd momentum", sn_optim_sgd_config(0.025, 0.9, 3e-4, false), 37},
        {"sgd nesterov", sn_optim_sgd_config(0.025, 0.9, 3e-4, true), 37},
        {"adam", sn_optim_adam_config(3e-3, 0), 37},
        {"adam weight decay", sn_optim_adam_config(3e-3, 1e-3), 37},
        /* > 64K elements: the OpenMP path. */
        {"sgd momentum large", sn_optim_sgd_config(0.025, 0.9, 3e-4, true), 100003},
        {"adam large", sn_optim_adam_config(3e-3, 1e-3), 100003},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double e = run_against_ref(ctx, &cases[i].cfg, cases[i].n, 6);
        CHECK(e < 2e-5, "%s: rel err %g over 6 steps", cases[i].what, e);
    }
    sn_optim_group_config c = sn_optim_adam_config(0.01, 0);
    c.beta1 = 0.5, c.beta2 = 0.9, c.eps = 1e-3;
    double e = run_against_ref(ctx, &c, 50, 8);
    CHECK(e < 2e-5, "adam (0.5, 0.9, eps 1e-3): rel err %g", e);
}

/* Hand-computed: p = 1, g = 0.5, lr 0.1, wd 0.1, momentum 0.9.
 * step 1: d = 0.6, buf = 0.6, p = 0.94; step 2: d = 0.594, buf = 1.134,
 * p = 0.8266. Nesterov step 1: p = 1 - 0.1 (0.6 + 0.54) = 0.886. */
static void test_sgd_by_hand(sn_ctx *ctx)
{
    sn_tensor *a = param(ctx, "a", 1, 1), *b = param(ctx, "b", 1, 2);
    sn_optim *opt = sn_optim_create(ctx);
    sn_optim_group_config c = sn_optim_sgd_config(0.1, 0.9, 0.1, false);
    int ga = sn_optim_add_group(opt, &c, &a, 1);
    c.nesterov = true;
    int gb = sn_optim_add_group(opt, &c, &b, 1);
    a->data[0] = b->data[0] = 1.0f;
    a->grad[0] = b->grad[0] = 0.5f;
    sn_optim_step(opt, ga);
    sn_optim_step(opt, gb);
    CHECK_NEAR(a->data[0], 0.94, 1e-6, "sgd momentum step 1");
    CHECK_NEAR(b->data[0], 0.886, 1e-6, "sgd nesterov step 1");
    sn_optim_step(opt, ga);
    CHECK_NEAR(a->data[0], 0.8266, 1e-6, "sgd momentum step 2");
    CHECK(a->grad[0] == 0.5f, "step does not zero gradients");
    sn_optim_zero_grad(opt, ga);
    CHECK(a->grad[0] == 0.0f && b->grad[0] == 0.5f, "zero_grad touches its own group only");
    sn_optim_destroy(opt);
}

/* Adam's first step is lr * g / (|g| + eps): about lr * sign(g). */
static void test_adam_first_step(sn_ctx *ctx)
{
    sn_tensor *p = param(ctx, "p", 3, 3);
    float g[3] = {0.5f, -2.0f, 1e-3f};
    for (int i = 0; i < 3; i++) p->data[i] = 1.0f, p->grad[i] = g[i];
    sn_optim *opt = sn_optim_create(ctx);
    sn_optim_group_config c = sn_optim_adam_config(0.01, 0);
    sn_optim_step(opt, sn_optim_add_group(opt, &c, &p, 1));
    CHECK_NEAR(p->data[0], 0.99, 1e-6, "adam step 1, g = 0.5");
    CHECK_NEAR(p->data[1], 1.01, 1e-6, "adam step 1, g = -2");
    CHECK_NEAR(p->data[2], 1.0 - 0.01 * 1e-3 / (1e-3 + 1e-8), 1e-6, "adam step 1, g = 1e-3");
    sn_optim_destroy(opt);
}

static void test_groups(sn_ctx *ctx)
{
    sn_tensor *w[2] = {param(ctx, "w0", 5, 1), param(ctx, "w1", 4, 2)};
    sn_tensor *arch = param(ctx, "alpha", 6, 3);
    sn_optim *opt = sn_optim_create(ctx);
    sn_optim_group_config cw = sn_optim_sgd_config(0.1, 0.9, 3e-4, false);
    cw.name = "weights";
    sn_optim_group_config ca = sn_optim_adam_config(3e-3, 1e-3);
    ca.name = "arch";
    int gw = sn_optim_add_group(opt, &cw, w, 2), ga = sn_optim_add_group(opt, &ca, &arch, 1);
    CHECK(gw == 0 && ga == 1 && sn_optim_num_groups(opt) == 2, "group indices %d %d", gw, ga);
    CHECK(sn_optim_get_lr(opt, gw) == 0.1 && sn_optim_get_lr(opt, ga) == 3e-3, "per-group lr");
    sn_optim_set_lr(opt, gw, 0.05);
    CHECK(sn_optim_get_lr(opt, gw) == 0.05 && sn_optim_get_lr(opt, ga) == 3e-3, "set_lr is per group");

    for (int i = 0; i < 2; i++) set_grad(w[i], 10 + (uint64_t)i);
    set_grad(arch, 12);
    float before = arch->data[0], w_before = w[0]->data[0];
    double want = w[0]->data[0] - 0.05 * (w[0]->grad[0] + 3e-4 * w[0]->data[0]);
    CHECK(sn_optim_step(opt, gw) == SN_OK, "weights step");
    CHECK(arch->data[0] == before, "stepping the weights leaves the architecture alone");
    CHECK(w[0]->data[0] != w_before, "weights moved");
    CHECK_NEAR(w[0]->data[0], want, 1e-6, "weights step used the new lr");
    CHECK(sn_optim_get_step(opt, gw) == 1 && sn_optim_get_step(opt, ga) == 0, "step counts per group");

    sn_tensor *st[16];
    int ns = sn_optim_state_tensors(opt, st, 16);
    CHECK(ns == 4, "state tensors: 2 momentum buffers + m, v (%d)", ns);
    CHECK(ns == 4 && !strcmp(st[0]->name, "optim.weights.w0.buf") && !strcmp(st[3]->name, "optim.arch.alpha.v"),
          "state names %s, %s", ns > 0 ? st[0]->name : "", ns > 3 ? st[3]->name : "");
    sn_optim_set_step(opt, ga, 41);
    CHECK(sn_optim_get_step(opt, ga) == 41, "set_step");
    sn_optim_destroy(opt);
}

static void test_errors(sn_ctx *ctx)
{
    sn_tensor *p[3] = {param(ctx, "e0", 4, 1), param(ctx, "conv.weight", 8, 2), param(ctx, "e2", 3, 3)};
    sn_optim *opt = sn_optim_create(ctx);
    sn_optim_group_config c = sn_optim_sgd_config(0.1, 0.9, 0, false);
    int g = sn_optim_add_group(opt, &c, p, 3);
    for (int i = 0; i < 3; i++) set_grad(p[i], 20 + (uint64_t)i);
    float keep0 = p[0]->data[0];
    p[1]->grad[5] = NAN;
    CHECK(sn_optim_step(opt, g) == SN_ERR_NUMERIC, "NaN gradient -> SN_ERR_NUMERIC");
    CHECK(strstr(sn_ctx_error(ctx), "conv.weight") != NULL, "message names the parameter: %s", sn_ctx_error(ctx));
    CHECK(p[0]->data[0] == keep0 && sn_optim_get_step(opt, g) == 0, "a failed step changes nothing");
    sn_ctx_clear_error(ctx);
    p[1]->grad[5] = 0;
    p[2]->grad[0] = -INFINITY;
    CHECK(sn_optim_step(opt, g) == SN_ERR_NUMERIC, "Inf gradient -> SN_ERR_NUMERIC");
    sn_ctx_clear_error(ctx);
    p[2]->grad[0] = 0;
    CHECK(sn_optim_step(opt, g) == SN_OK, "finite gradients step");

    CHECK(sn_optim_add_group(opt, &c, &p[1], 1) == -1 && sn_ctx_status(ctx) == SN_ERR_ARG,
          "a parameter in two groups is refused");
    CHECK(strstr(sn_ctx_error(ctx), "conv.weight") != NULL, "...naming it: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_tensor *q = param(ctx, "q", 2, 4);
    sn_optim_group_config bad = sn_optim_sgd_config(0.1, 0, 0, true);
    CHECK(sn_optim_add_group(opt, &bad, &q, 1) == -1 && strstr(sn_ctx_error(ctx), "nesterov"),
          "nesterov without momentum: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    bad = sn_optim_adam_config(0.1, 0);
    bad.beta2 = 1.0;
    CHECK(sn_optim_add_group(opt, &bad, &q, 1) == -1 && sn_ctx_status(ctx) == SN_ERR_ARG, "beta2 = 1 refused");
    sn_ctx_clear_error(ctx);
    bad = sn_optim_sgd_config(-1, 0, 0, false);
    CHECK(sn_optim_add_group(opt, &bad, &q, 1) == -1 && strstr(sn_ctx_error(ctx), "lr"), "negative lr refused");
    sn_ctx_clear_error(ctx);
    CHECK(sn_optim_step(opt, 7) == SN_ERR_ARG, "unknown group refused");
    sn_ctx_clear_error(ctx);
    sn_optim_destroy(opt);
}

/* Fused momentum (the gradient buffer is the momentum buffer): driven the
 * way training drives it (zero_grad, backward adds g, step), it follows the
 * double reference of torch.optim.SGD, including the 64K-element OpenMP
 * path, and its state tensor is the gradient buffer under the usual name. */
static void test_fused_momentum(sn_ctx *ctx)
{
    const int64_t sizes[2] = {37, 100003};
    for (int k = 0; k < 2; k++) {
        int64_t n = sizes[k];
        sn_tensor *p = param(ctx, "fw", n, 5);
        sn_optim *opt = sn_optim_create(ctx);
        sn_optim_group_config c = sn_optim_sgd_config(0.025, 0.9, 3e-4, false);
        c.fused_momentum = true;
        int g = sn_optim_add_group(opt, &c, &p, 1);
        sn_tensor *st[2] = {NULL, NULL};
        int ns = sn_optim_state_tensors(opt, st, 2);
        CHECK(g == 0 && ns == 1 && st[0]->data == p->grad && !strcmp(st[0]->name, "optim.0.fw.buf"),
              "fused state is the gradient buffer (%d, %s)", ns, ns ? st[0]->name : "");
        double *rp = to_f64(p->data, n), *buf = calloc((size_t)n, sizeof(double)), worst = 0;
        for (int t = 1; t <= 6 && g == 0; t++) {
            sn_optim_zero_grad(opt, g);
            float *r = random_floats(n, 300 + (uint64_t)t);
            for (int64_t i = 0; i < n; i++) p->grad[i] += r[i]; /* what backward does */
            double *rg = to_f64(r, n);
            ref_sgd(rp, rg, buf, n, c.lr, c.weight_decay, c.momentum, false, t == 1);
            CHECK(sn_optim_step(opt, g) == SN_OK, "fused step %d", t);
            worst = fmax(worst, fmax(rel_err_f32_f64(p->data, rp, n, 1e-3), rel_err_f32_f64(p->grad, buf, n, 1e-3)));
            free(r), free(rg);
        }
        CHECK(worst < 2e-5, "fused momentum, %lld elements: rel err %g over 6 steps", (long long)n, worst);
        free(rp), free(buf);
        sn_optim_destroy(opt);
    }
    sn_tensor *q = param(ctx, "fq", 3, 6);
    sn_optim *opt = sn_optim_create(ctx);
    sn_optim_group_config bad = sn_optim_sgd_config(0.1, 0.9, 0, true);
    bad.fused_momentum = true;
    CHECK(sn_optim_add_group(opt, &bad, &q, 1) == -1 && strstr(sn_ctx_error(ctx), "fused"),
          "fused momentum with nesterov refused: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_optim_destroy(opt);
}

static void test_clip(sn_ctx *ctx)
{
    sn_tensor *a = param(ctx, "ca", 1, 1), *b = param(ctx, "cb", 1, 2);
    a->grad[0] = 3, b->grad[0] = 4;
    sn_tensor *ps[2] = {a, b};
    double norm = sn_clip_grad_norm(ps, 2, 1.0);
    CHECK_NEAR(norm, 5.0, 1e-12, "norm before clipping");
    CHECK_NEAR(a->grad[0], 0.6, 1e-6, "clipped a");
    CHECK_NEAR(b->grad[0], 0.8, 1e-6, "clipped b");
    float ga = a->grad[0];
    norm = sn_clip_grad_norm(ps, 2, 10.0);
    CHECK(a->grad[0] == ga && fabs(norm - 1.0) < 1e-5, "no clipping under the limit (norm %g)", norm);
    b->grad[0] = NAN;
    CHECK(isnan(sn_clip_grad_norm(ps, 2, 1.0)), "NaN gradient gives a NaN norm");
}

static void test_schedules(void)
{
    sn_schedule c = sn_schedule_cosine(0.025, 0.001, 100);
    CHECK_NEAR(sn_schedule_lr(&c, 0), 0.025, 1e-12, "cosine t=0");
    CHECK_NEAR(sn_schedule_lr(&c, 50), 0.013, 1e-12, "cosine t=T/2");
    CHECK_NEAR(sn_schedule_lr(&c, 25), 0.001 + 0.012 * (1 + sqrt(0.5)), 1e-12, "cosine t=T/4");
    CHECK_NEAR(sn_schedule_lr(&c, 100), 0.001, 1e-12, "cosine t=T");
    CHECK_NEAR(sn_schedule_lr(&c, 1000), 0.001, 1e-12, "cosine past T");

    sn_schedule p = sn_schedule_poly(0.01, 0, 200);
    CHECK_NEAR(sn_schedule_lr(&p, 0), 0.01, 1e-12, "poly t=0");
    CHECK_NEAR(sn_schedule_lr(&p, 100), 0.01 * pow(0.5, 0.9), 1e-12, "poly t=T/2 (power 0.9 by default)");
    CHECK_NEAR(sn_schedule_lr(&p, 200), 0.0, 1e-15, "poly t=T");
    p.power = 2.0;
    CHECK_NEAR(sn_schedule_lr(&p, 100), 0.0025, 1e-12, "poly power 2");

    sn_schedule w = sn_schedule_cosine(0.1, 0.0, 110);
    w.warmup_steps = 10;
    CHECK_NEAR(sn_schedule_lr(&w, 0), 0.0, 1e-15, "warmup starts at warmup_start_lr");
    CHECK_NEAR(sn_schedule_lr(&w, 5), 0.05, 1e-12, "warmup half way");
    CHECK_NEAR(sn_schedule_lr(&w, 10), 0.1, 1e-12, "warmup end reaches lr0");
    CHECK_NEAR(sn_schedule_lr(&w, 60), 0.05, 1e-12, "cosine after warmup, half way");
    CHECK_NEAR(sn_schedule_lr(&w, 110), 0.0, 1e-12, "cosine after warmup, end");
    w.warmup_start_lr = 0.02;
    CHECK_NEAR(sn_schedule_lr(&w, 5), 0.06, 1e-12, "warmup from a start lr");

    sn_schedule k = {.kind = SN_SCHEDULE_CONSTANT, .lr0 = 0.3};
    CHECK(sn_schedule_lr(&k, 12345) == 0.3 && sn_schedule_check(&k, NULL, 0) == SN_OK, "constant");
    char err[128] = "";
    CHECK(sn_schedule_check(&c, err, sizeof err) == SN_OK, "valid schedule passes");
    w.total_steps = 5;
    CHECK(sn_schedule_check(&w, err, sizeof err) == SN_ERR_ARG && strstr(err, "warmup"), "total <= warmup: %s", err);
    c.lr_min = 1.0;
    CHECK(sn_schedule_check(&c, err, sizeof err) == SN_ERR_ARG && strstr(err, "lr_min"), "lr_min > lr0: %s", err);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_against_reference(ctx);
    test_sgd_by_hand(ctx);
    test_adam_first_step(ctx);
    test_groups(ctx);
    test_errors(ctx);
    test_fused_momentum(ctx);
    test_clip(ctx);
    test_schedules();
    sn_ctx_destroy(ctx);
    return check_summary("optim");
}
