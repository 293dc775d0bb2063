/* sn_batch_norm: training forward against the double reference, gradients
 * of the full batch-statistics function of x, gamma and beta against
 * float64 central differences, running-statistic updates (PyTorch's
 * momentum and unbiased variance) against values computed here, eval mode
 * (forward, gradients, dx = dy * gamma / sqrt(var + eps)), affine=false,
 * gradient accumulation, error paths, both arithmetic paths (ours below 16
 * channels and off multiples of 16, C = 3 in the tests above; oneDNN's) on
 * larger maps against the closed-form gradient, and the oneDNN
 * implementations for a search-size activation (none may be `ref`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "support/check.h"

#define N 2
#define H 4
#define W 5
#define C 3
#define ROWS (N * H * W)
#define NUMEL (ROWS * C)
static const float EPS = 1e-3f;

typedef struct bn_user {
    bool gamma, beta, train;
    const double *mean, *var; /* eval: constants */
} bn_user;

static void bn_fn(void *u, const double *const *in, double *out)
{
    const bn_user *b = u;
    const double *gamma = b->gamma ? in[1] : NULL, *beta = b->beta ? in[2] : NULL;
    if (b->train) {
        double mean[C], var[C];
        ref_batch_norm_train(in[0], gamma, beta, out, mean, var, ROWS, C, EPS);
    } else {
        ref_batch_norm_eval(in[0], gamma, beta, b->mean, b->var, out, ROWS, C, EPS);
    }
}

typedef struct bn_inputs {
    sn_tensor *x, *gamma, *beta, *rm, *rv;
} bn_inputs;

static bn_inputs make_inputs(sn_ctx *ctx, bool gamma, bool beta, uint64_t seed)
{
    int64_t cs[1] = {C};
    bn_inputs in = {leaf4(ctx, N, H, W, C, seed), NULL, NULL, sn_tensor_new(ctx, 1, cs), sn_tensor_new(ctx, 1, cs)};
    /* Channels with different means and scales, as after a convolution. */
    for (int64_t i = 0; i < NUMEL; i++) in.x->data[i] = in.x->data[i] * (1.0f + (float)(i % C)) + 0.5f * (float)(i % C);
    if (gamma) in.gamma = leaf(ctx, 1, cs, seed + 1);
    if (beta) in.beta = leaf(ctx, 1, cs, seed + 2);
    for (int c = 0; c < C; c++) {
        in.rm->data[c] = 0.25f * (float)c - 0.1f;
        in.rv->data[c] = 0.5f + 0.75f * (float)c;
    }
    return in;
}

/* Forward vs reference and gradients vs finite differences, in training
 * (batch statistics) or eval (running statistics) mode. */
static void check_mode(sn_ctx *ctx, bool has_gamma, bool has_beta, bool train)
{
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", train ? "train" : "eval", has_gamma ? " gamma" : "", has_beta ? " beta" : "");
    bn_inputs in = make_inputs(ctx, has_gamma, has_beta, train ? 10 : 20);
    double rm0[C], rv0[C];
    for (int c = 0; c < C; c++) rm0[c] = in.rm->data[c], rv0[c] = in.rv->data[c];
    sn_tensor *y = sn_batch_norm(ctx, in.x, in.gamma, in.beta, in.rm, in.rv, train, 0.1f, EPS);
    CHECK(y != NULL, "%s: %s", name, sn_ctx_error(ctx));
    if (!y) {
        sn_ctx_clear_error(ctx);
        sn_step_end(ctx);
        return;
    }
    double *xd = to_f64(in.x->data, NUMEL), want[NUMEL];
    double *gd = has_gamma ? to_f64(in.gamma->data, C) : NULL, *bd = has_beta ? to_f64(in.beta->data, C) : NULL;
    bn_user u = {has_gamma, has_beta, train, rm0, rv0};
    const double *ins[3] = {xd, gd, bd};
    bn_fn(&u, ins, want);
    double fe = rel_err_f32_f64(y->data, want, NUMEL, 1e-6);
    CHECK(fe < 1e-5, "%s forward rel err %g", name, fe);

    float *r = random_floats(NUMEL, 3);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s backward: %s", name, sn_ctx_error(ctx));
    const float *inputs[3] = {in.x->data, has_gamma ? in.gamma->data : NULL, has_beta ? in.beta->data : NULL};
    const float *grads[3] = {in.x->grad, has_gamma ? in.gamma->grad : NULL, has_beta ? in.beta->grad : NULL};
    int64_t sizes[3] = {NUMEL, has_gamma ? C : 0, has_beta ? C : 0}; /* absent: nothing read */
    double ge = gradcheck(bn_fn, &u, 3, inputs, sizes, grads, r, NUMEL, 1e-3);
    CHECK(ge < 1e-3, "%s gradient rel err %g", name, ge);

    if (!train) { /* the closed form of the eval-mode data gradient */
        double worst = 0;
        for (int64_t i = 0; i < NUMEL; i++) {
            int c = (int)(i % C);
            double g = has_gamma ? gd[c] : 1.0, e = r[i] * g / sqrt(rv0[c] + EPS);
            worst = fmax(worst, fabs(in.x->grad[i] - e) / fmax(1.0, fabs(e)));
        }
        CHECK(worst < 1e-5, "%s: dx = dy * gamma / sqrt(var + eps) (err %g)", name, worst);
        int same = 1;
        for (int c = 0; c < C; c++) same &= in.rm->data[c] == (float)rm0[c] && in.rv->data[c] == (float)rv0[c];
        CHECK(same, "%s leaves the running statistics alone", name);
    }
    free(xd), free(gd), free(bd), free(r);
    sn_step_end(ctx);
}

/* running = 0.9 * running + 0.1 * batch, batch variance unbiased (n/(n-1)),
 * computed here in double from x. */
static void test_running_stats(sn_ctx *ctx)
{
    bn_inputs in = make_inputs(ctx, true, true, 30);
    const float m = 0.1f;
    double want_m[C], want_v[C];
    for (int c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int r = 0; r < ROWS; r++) s += in.x->data[r * C + c];
        double mean = s / ROWS;
        for (int r = 0; r < ROWS; r++) ss += (in.x->data[r * C + c] - mean) * (in.x->data[r * C + c] - mean);
        want_m[c] = (1 - m) * in.rm->data[c] + m * mean;
        want_v[c] = (1 - m) * in.rv->data[c] + m * ss / (ROWS - 1);
    }
    sn_tensor *y = sn_batch_norm(ctx, in.x, in.gamma, in.beta, in.rm, in.rv, true, m, EPS);
    CHECK(y != NULL, "running stats: %s", sn_ctx_error(ctx));
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(in.rm->data[c], want_m[c], 1e-6, "running mean");
        CHECK_NEAR(in.rv->data[c], want_v[c], 1e-5, "running variance (unbiased)");
    }
    /* Without running statistics training still works (track_running_stats=False). */
    y = sn_batch_norm(ctx, in.x, in.gamma, in.beta, NULL, NULL, true, m, EPS);
    CHECK(y != NULL, "training without running statistics: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* y = bn(x) + bn(x): the second backward must add to the first, for x and
 * for gamma/beta. */
static void test_accumulation(sn_ctx *ctx)
{
    float once[NUMEL + 2 * C];
    for (int uses = 1; uses <= 2; uses++) {
        bn_inputs in = make_inputs(ctx, true, true, 40);
        sn_tensor *y = sn_batch_norm(ctx, in.x, in.gamma, in.beta, in.rm, in.rv, true, 0.1f, EPS);
        if (uses == 2) y = sn_add(ctx, y, sn_batch_norm(ctx, in.x, in.gamma, in.beta, in.rm, in.rv, true, 0.1f, EPS));
        /* a non-uniform output gradient: sum() alone gives dx = 0 in training */
        float *r = random_floats(NUMEL, 4);
        CHECK(sn_backward_from(ctx, y, r) == SN_OK, "accumulation backward: %s", sn_ctx_error(ctx));
        free(r);
        float got[NUMEL + 2 * C];
        memcpy(got, in.x->grad, sizeof(float) * NUMEL);
        memcpy(got + NUMEL, in.gamma->grad, sizeof(float) * C);
        memcpy(got + NUMEL + C, in.beta->grad, sizeof(float) * C);
        if (uses == 1) {
            memcpy(once, got, sizeof once);
        } else {
            double worst = 0;
            for (int i = 0; i < NUMEL + 2 * C; i++) worst = fmax(worst, fabs(got[i] - 2.0 * once[i]));
            CHECK(worst < 1e-5, "batch norm used twice: gradients double (diff %g)", worst);
        }
        /* gamma/beta are step-arena leaves here: their gradients go with the step */
        sn_step_end(ctx);
    }
}

/* Only gamma requires a gradient: the data gradient is computed and dropped. */
static void test_params_only(sn_ctx *ctx)
{
    bn_inputs in = make_inputs(ctx, true, true, 50);
    in.x->requires_grad = false;
    sn_tensor *y = sn_batch_norm(ctx, in.x, in.gamma, in.beta, in.rm, in.rv, true, 0.1f, EPS);
    float *r = random_floats(NUMEL, 6);
    CHECK(y && sn_backward_from(ctx, y, r) == SN_OK, "params-only backward: %s", sn_ctx_error(ctx));
    CHECK(in.x->grad == NULL && in.gamma->grad != NULL, "no gradient into x, one into gamma");
    double want = 0;
    for (int64_t i = 0; i < NUMEL; i += C) want += r[i];
    CHECK(in.beta->grad && fabs(in.beta->grad[0] - want) < 1e-5, "dbeta = sum of dy");
    free(r);
    sn_step_end(ctx);
}

static void expect_error(sn_ctx *ctx, sn_tensor *y, int status, const char *needle, const char *what)
{
    CHECK(y == NULL && sn_ctx_status(ctx) == status, "%s fails with %s (got %s)", what, sn_status_name(status),
          sn_status_name(sn_ctx_status(ctx)));
    CHECK(strstr(sn_ctx_error(ctx), needle) != NULL, "%s: message names %s: %s", what, needle, sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
}

static void test_errors(sn_ctx *ctx)
{
    bn_inputs in = make_inputs(ctx, true, true, 60);
    int64_t c4[1] = {4}, sh3[3] = {4, 4, 3};
    sn_tensor *g4 = leaf(ctx, 1, c4, 1), *x3 = leaf(ctx, 3, sh3, 2), *x1 = leaf4(ctx, 1, 1, 1, C, 3);
    expect_error(ctx, sn_batch_norm(ctx, in.x, g4, in.beta, in.rm, in.rv, true, 0.1f, EPS), SN_ERR_SHAPE,
                 "gamma 4", "gamma of the wrong size");
    expect_error(ctx, sn_batch_norm(ctx, in.x, in.gamma, in.beta, g4, in.rv, true, 0.1f, EPS), SN_ERR_SHAPE,
                 "2x4x5x3", "running mean of the wrong size");
    expect_error(ctx, sn_batch_norm(ctx, x3, NULL, NULL, NULL, NULL, true, 0.1f, EPS), SN_ERR_SHAPE, "4x4x3",
                 "3-D input");
    expect_error(ctx, sn_batch_norm(ctx, in.x, in.gamma, in.beta, NULL, NULL, false, 0.1f, EPS), SN_ERR_ARG,
                 "eval mode", "eval without running statistics");
    expect_error(ctx, sn_batch_norm(ctx, in.x, in.gamma, in.beta, in.rm, NULL, true, 0.1f, EPS), SN_ERR_ARG,
                 "both", "one running statistic");
    expect_error(ctx, sn_batch_norm(ctx, x1, NULL, NULL, NULL, NULL, true, 0.1f, EPS), SN_ERR_SHAPE, "1x1x1x3",
                 "one value per channel in training");
    expect_error(ctx, sn_batch_norm(ctx, in.x, NULL, NULL, in.rm, in.rv, true, 1.5f, EPS), SN_ERR_ARG,
                 "momentum 1.5", "momentum out of range");
    expect_error(ctx, sn_batch_norm(ctx, in.x, NULL, NULL, in.rm, in.rv, true, 0.1f, -1.0f), SN_ERR_ARG, "eps -1",
                 "negative eps");
    CHECK(sn_batch_norm(ctx, x1, NULL, NULL, in.rm, in.rv, false, 0.1f, EPS) != NULL,
          "eval mode accepts one value per channel: %s", sn_ctx_error(ctx));
    CHECK(sn_batch_norm(ctx, NULL, NULL, NULL, NULL, NULL, true, 0.1f, EPS) == NULL, "NULL input propagates");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* Few values per channel (the plain double path of batch_norm.c): 1x1 maps
 * at batch 2, as ASPP's image pooling makes, and 2x1x3. Forward against the
 * reference, gradients against finite differences, in both modes. */
typedef struct small_user {
    int64_t rows;
    bool train;
    const double *mean, *var;
} small_user;

static void small_fn(void *u, const double *const *in, double *out)
{
    const small_user *b = u;
    double mean[C], var[C];
    if (b->train) ref_batch_norm_train(in[0], in[1], in[2], out, mean, var, b->rows, C, EPS);
    else ref_batch_norm_eval(in[0], in[1], in[2], b->mean, b->var, out, b->rows, C, EPS);
}

static void test_small(sn_ctx *ctx)
{
    int64_t cs[1] = {C}, widths[2] = {1, 3};
    double rm[C] = {0.1, -0.2, 0.3}, rv[C] = {0.5, 1.5, 0.8};
    for (int wi = 0; wi < 2; wi++)
        for (int train = 1; train >= 0; train--) {
            int64_t rows = 2 * widths[wi], numel = rows * C;
            sn_tensor *x = leaf4(ctx, 2, 1, widths[wi], C, 70 + wi), *g = leaf(ctx, 1, cs, 71), *b = leaf(ctx, 1, cs, 72);
            sn_tensor *m = sn_tensor_new(ctx, 1, cs), *v = sn_tensor_new(ctx, 1, cs);
            for (int c = 0; c < C; c++) m->data[c] = (float)rm[c], v->data[c] = (float)rv[c];
            sn_tensor *y = sn_batch_norm(ctx, x, g, b, m, v, train, 0.1f, EPS);
            CHECK(y != NULL, "2x1x%lld %s: %s", (long long)widths[wi], train ? "train" : "eval", sn_ctx_error(ctx));
            if (!y) break;
            double *xd = to_f64(x->data, numel), *gd = to_f64(g->data, C), *bd = to_f64(b->data, C), want[6 * C];
            small_user u = {rows, train, rm, rv};
            const double *ins[3] = {xd, gd, bd};
            small_fn(&u, ins, want);
            double fe = rel_err_f32_f64(y->data, want, numel, 1e-6);
            CHECK(fe < 1e-5, "2x1x%lld %s forward rel err %g", (long long)widths[wi], train ? "train" : "eval", fe);
            float *r = random_floats(numel, 73);
            CHECK(sn_backward_from(ctx, y, r) == SN_OK, "small backward: %s", sn_ctx_error(ctx));
            const float *inputs[3] = {x->data, g->data, b->data}, *grads[3] = {x->grad, g->grad, b->grad};
            int64_t sizes[3] = {numel, C, C};
            double ge = gradcheck(small_fn, &u, 3, inputs, sizes, grads, r, numel, 1e-3);
            CHECK(ge < 1e-3, "2x1x%lld %s gradient rel err %g", (long long)widths[wi], train ? "train" : "eval", ge);
            free(xd), free(gd), free(bd), free(r);
            sn_step_end(ctx);
        }
}

/* Both arithmetic paths at sizes the finite differences cannot afford:
 * channel counts that are not a multiple of 16 (ops/bn_narrow.c: 3, 8, 20,
 * 40, with a partial period at the end and many float partial sums) and
 * ones that are (oneDNN: 16, 48). Forward against ref_batch_norm_*, the
 * gradients against the closed form in double:
 *   dx = gamma r (dy - mean(dy) - xhat mean(dy xhat))  (training),
 *   dx = gamma r dy (eval), dgamma = sum dy xhat, dbeta = sum dy. */
static void check_closed_form(sn_ctx *ctx, int64_t h, int64_t w, int64_t c, bool train)
{
    int64_t cs[1] = {c}, rows = 2 * h * w, n = rows * c;
    sn_tensor *x = leaf4(ctx, 2, h, w, c, 30 + c), *g = leaf(ctx, 1, cs, 31), *b = leaf(ctx, 1, cs, 32);
    sn_tensor *rm = sn_tensor_new(ctx, 1, cs), *rv = sn_tensor_new(ctx, 1, cs);
    for (int64_t i = 0; i < n; i++) x->data[i] = x->data[i] * (1.0f + (float)(i % c % 5)) + 0.3f * (float)(i % c);
    for (int64_t k = 0; k < c; k++) rm->data[k] = 0.1f * (float)k, rv->data[k] = 0.5f + 0.2f * (float)k;
    double *xd = to_f64(x->data, n), *gd = to_f64(g->data, c), *bd = to_f64(b->data, c);
    double *want = malloc((size_t)n * sizeof *want), *mean = malloc((size_t)c * sizeof *mean);
    double *var = malloc((size_t)c * sizeof *var);
    for (int64_t k = 0; k < c; k++) mean[k] = rm->data[k], var[k] = rv->data[k];
    if (train) ref_batch_norm_train(xd, gd, bd, want, mean, var, rows, c, EPS);
    else ref_batch_norm_eval(xd, gd, bd, mean, var, want, rows, c, EPS);
    sn_tensor *y = sn_batch_norm(ctx, x, g, b, rm, rv, train, 0.1f, EPS);
    float *dy = random_floats(n, 33);
    CHECK(y && sn_backward_from(ctx, y, dy) == SN_OK, "2x%lldx%lldx%lld: %s", (long long)h, (long long)w,
          (long long)c, sn_ctx_error(ctx));
    if (y) {
        double fe = rel_err_f32_f64(y->data, want, n, 1e-6);
        double *s1 = calloc((size_t)c, sizeof *s1), *s2 = calloc((size_t)c, sizeof *s2);
        for (int64_t i = 0; i < n; i++) {
            int64_t k = i % c;
            s1[k] += dy[i], s2[k] += dy[i] * (xd[i] - mean[k]) / sqrt(var[k] + EPS);
        }
        double *dx = malloc((size_t)n * sizeof *dx), *dg = malloc((size_t)c * sizeof *dg);
        for (int64_t i = 0; i < n; i++) {
            int64_t k = i % c;
            double r = 1.0 / sqrt(var[k] + EPS), xhat = (xd[i] - mean[k]) * r;
            dx[i] = gd[k] * r * (train ? dy[i] - s1[k] / (double)rows - xhat * s2[k] / (double)rows : dy[i]);
        }
        for (int64_t k = 0; k < c; k++) dg[k] = s2[k];
        double ge = rel_err_f32_f64(x->grad, dx, n, 1e-6), gg = rel_err_f32_f64(g->grad, dg, c, 1e-6);
        double gb = rel_err_f32_f64(b->grad, s1, c, 1e-6);
        CHECK(fe < 1e-5 && ge < 1e-4 && gg < 1e-4 && gb < 1e-4,
              "2x%lldx%lldx%lld %s: forward %g, dx %g, dgamma %g, dbeta %g", (long long)h, (long long)w,
              (long long)c, train ? "train" : "eval", fe, ge, gg, gb);
        free(s1), free(s2), free(dx), free(dg);
    }
    free(xd), free(gd), free(bd), free(want), free(mean), free(var), free(dy);
    sn_step_end(ctx);
}

static void test_closed_form(sn_ctx *ctx)
{
    const int64_t sizes[][3] = {{7, 5, 3}, {33, 33, 8}, {9, 7, 20}, {6, 5, 40}, {9, 7, 16}, {6, 5, 48}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int train = 1; train >= 0; train--)
            check_closed_form(ctx, sizes[i][0], sizes[i][1], sizes[i][2], train);
}

/* A search-size activation (2x80x80x48) must not run on oneDNN's
 * reference implementations, in either mode (DESIGN.md). */
static void test_impls(sn_ctx *ctx)
{
    int64_t cs[1] = {48};
    for (int train = 1; train >= 0; train--) {
        sn_tensor *x = leaf4(ctx, 2, 80, 80, 48, 9), *g = leaf(ctx, 1, cs, 10), *b = leaf(ctx, 1, cs, 11);
        sn_tensor *rm = sn_tensor_new(ctx, 1, cs), *rv = sn_tensor_new(ctx, 1, cs);
        sn_tensor_fill(rm, 0.0f);
        sn_tensor_fill(rv, 1.0f);
        sn_tensor *y = sn_batch_norm(ctx, x, g, b, rm, rv, train, 0.1f, 1e-5f);
        float *r = random_floats(y ? y->numel : 1, 12);
        CHECK(y && sn_backward_from(ctx, y, r) == SN_OK, "80x80 batch norm: %s", sn_ctx_error(ctx));
        free(r);
        const char *f = sn_impl_name(ctx, "bnorm_fwd"), *bw = sn_impl_name(ctx, "bnorm_bwd");
        printf("batch norm %s 2x80x80x48: fwd %s, bwd %s\n", train ? "train" : "eval", f, bw);
        CHECK(*f && strncmp(f, "ref", 3) != 0, "bnorm_fwd implementation %s", f);
        CHECK(*bw && strncmp(bw, "ref", 3) != 0, "bnorm_bwd implementation %s", bw);
        sn_step_end(ctx);
    }
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    for (int train = 1; train >= 0; train--)
        for (int affine = 3; affine >= 0; affine--) check_mode(ctx, affine & 1, affine & 2, train);
    test_running_stats(ctx);
    test_accumulation(ctx);
    test_params_only(ctx);
    test_errors(ctx);
    test_small(ctx);
    test_closed_form(ctx);
    test_impls(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("batch_norm");
}
