/* Softmax cross-entropy: a hand-computed value, ignored pixels, class
 * weights (PyTorch's weighted mean), all pixels ignored, a bad label, and
 * gradients against float64 central differences of the reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "support/check.h"

/* 1x1x2x3: pixel 0 logits (1,2,3), pixel 1 (0,0,0). */
static sn_tensor *tiny_logits(sn_ctx *ctx)
{
    sn_tensor *x = sn_tensor_new4(ctx, 1, 1, 2, 3);
    const float v[6] = {1, 2, 3, 0, 0, 0};
    memcpy(x->data, v, sizeof v);
    x->requires_grad = true;
    return x;
}

static void test_hand_computed(sn_ctx *ctx)
{
    /* log(e + e^2 + e^3) - 3 = 0.40760596444438013; log 3 = 1.0986122886681098. */
    const double l0 = 0.40760596444438013, l1 = 1.0986122886681098;
    const uint8_t labels[2] = {2, 0};
    sn_tensor *loss = sn_softmax_cross_entropy(ctx, tiny_logits(ctx), labels, 255, NULL);
    CHECK(loss && loss->numel == 1, "loss is a scalar: %s", sn_ctx_error(ctx));
    CHECK_NEAR(loss->data[0], (l0 + l1) / 2, 1e-6, "mean of two pixels");
    sn_step_end(ctx);

    const uint8_t one_ignored[2] = {2, 255};
    loss = sn_softmax_cross_entropy(ctx, tiny_logits(ctx), one_ignored, 255, NULL);
    CHECK_NEAR(loss->data[0], l0, 1e-6, "ignored pixel leaves the mean");
    sn_step_end(ctx);

    const float w[3] = {0.5f, 1.0f, 2.0f};
    sn_tensor *x = tiny_logits(ctx);
    loss = sn_softmax_cross_entropy(ctx, x, labels, 255, w);
    CHECK_NEAR(loss->data[0], (2 * l0 + 0.5 * l1) / 2.5, 1e-6, "weighted mean as PyTorch");

    /* Gradient by hand: (softmax - onehot) w_y / sum w. */
    CHECK(sn_backward(ctx, loss) == SN_OK, "backward");
    double s = exp(1.0) + exp(2.0) + exp(3.0);
    double want[6] = {2 * exp(1.0) / s / 2.5, 2 * exp(2.0) / s / 2.5, 2 * (exp(3.0) / s - 1) / 2.5,
                      0.5 * (1.0 / 3 - 1) / 2.5, 0.5 / 3 / 2.5, 0.5 / 3 / 2.5};
    double e = rel_err_f32_f64(x->grad, want, 6, 1e-6);
    CHECK(e < 1e-6, "hand-computed gradient rel err %g", e);
    sn_step_end(ctx);
}

static void test_all_ignored(sn_ctx *ctx)
{
    const uint8_t labels[2] = {255, 255};
    sn_tensor *x = tiny_logits(ctx);
    sn_tensor *loss = sn_softmax_cross_entropy(ctx, x, labels, 255, NULL);
    CHECK(loss && loss->data[0] == 0.0f, "all ignored: loss 0");
    CHECK(sn_backward(ctx, loss) == SN_OK, "all ignored: backward");
    bool zero = true;
    for (int i = 0; i < 6; i++) zero &= x->grad[i] == 0.0f;
    CHECK(zero, "all ignored: zero gradient");
    sn_step_end(ctx);
}

static void test_bad_label(sn_ctx *ctx)
{
    const uint8_t labels[2] = {0, 3};
    CHECK(sn_softmax_cross_entropy(ctx, tiny_logits(ctx), labels, 255, NULL) == NULL, "label 3 of 3 classes");
    CHECK(sn_ctx_status(ctx) == SN_ERR_ARG, "status is SN_ERR_ARG");
    CHECK(strstr(sn_ctx_error(ctx), "label 3") && strstr(sn_ctx_error(ctx), "pixel 1"),
          "message names the value and the pixel: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    /* The ignore label may itself be >= K (255); another value may not. */
    const uint8_t labels2[2] = {0, 254};
    CHECK(sn_softmax_cross_entropy(ctx, tiny_logits(ctx), labels2, 255, NULL) == NULL, "label 254");
    sn_ctx_clear_error(ctx);
    CHECK(sn_softmax_cross_entropy(ctx, tiny_logits(ctx), NULL, 255, NULL) == NULL &&
              sn_ctx_status(ctx) == SN_ERR_ARG,
          "NULL labels");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* ---- random logits against the reference ------------------------------------- */
typedef struct ce_case {
    const uint8_t *labels;
    int64_t pixels, k;
    const double *weights;
} ce_case;

static void ce_fn(void *u, const double *const *in, double *out)
{
    const ce_case *c = u;
    out[0] = ref_softmax_ce(in[0], c->labels, c->pixels, c->k, 255, c->weights);
}

static void check_random(sn_ctx *ctx, int64_t n, int64_t h, int64_t w, int64_t k, bool weighted, bool fd)
{
    char name[64];
    snprintf(name, sizeof name, "ce %lldx%lldx%lldx%lld%s", (long long)n, (long long)h, (long long)w,
             (long long)k, weighted ? " weighted" : "");
    sn_tensor *x = leaf4(ctx, n, h, w, k, 51);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] *= 3; /* peaked distributions too */
    int64_t pixels = n * h * w;
    uint8_t *labels = malloc((size_t)pixels);
    sn_rng g;
    sn_rng_seed(&g, 52);
    for (int64_t p = 0; p < pixels; p++) labels[p] = sn_rng_below(&g, 5) == 0 ? 255 : (uint8_t)sn_rng_below(&g, (uint64_t)k);
    float *cw = malloc((size_t)k * sizeof *cw);
    double *cw64 = malloc((size_t)k * sizeof *cw64);
    for (int64_t c = 0; c < k; c++) cw64[c] = cw[c] = 0.25f + 0.5f * (float)c;
    ce_case cs = {labels, pixels, k, weighted ? cw64 : NULL};
    sn_tensor *loss = sn_softmax_cross_entropy(ctx, x, labels, 255, weighted ? cw : NULL);
    CHECK(loss != NULL, "%s: %s", name, sn_ctx_error(ctx));
    if (!loss) return;
    double *xd = to_f64(x->data, x->numel), want;
    ce_fn(&cs, (const double *const *)&xd, &want);
    CHECK_NEAR(loss->data[0], want, 1e-5, name);
    const float dl = 1.7f;
    CHECK(sn_backward_from(ctx, loss, &dl) == SN_OK, "%s backward", name);
    if (fd) {
        const float *in[1] = {x->data}, *gr[1] = {x->grad};
        int64_t size = x->numel;
        double e = gradcheck(ce_fn, &cs, 1, in, &size, gr, &dl, 1, 1e-3);
        CHECK(e < 1e-3, "%s gradient rel err %g", name, e);
    } else { /* too large for differences: dl (softmax - onehot) w_y / sum w, in double */
        double *want_g = malloc((size_t)x->numel * sizeof *want_g), den = 0;
        ref_softmax(xd, want_g, pixels, k);
        for (int64_t p = 0; p < pixels; p++)
            if (labels[p] != 255) den += weighted ? cw64[labels[p]] : 1;
        for (int64_t p = 0; p < pixels; p++) {
            double wy = labels[p] == 255 ? 0 : weighted ? cw64[labels[p]] : 1;
            for (int64_t c = 0; c < k; c++)
                want_g[p * k + c] = dl * wy * (want_g[p * k + c] - (c == labels[p])) / den;
        }
        double e = rel_err_f32_f64(x->grad, want_g, x->numel, 1e-12);
        CHECK(e < 1e-4, "%s gradient rel err %g", name, e);
        free(want_g);
    }
    free(labels), free(cw), free(cw64), free(xd);
    sn_step_end(ctx);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_hand_computed(ctx);
    test_all_ignored(ctx);
    test_bad_label(ctx);
    check_random(ctx, 2, 3, 4, 5, false, true);
    check_random(ctx, 2, 3, 4, 5, true, true);
    check_random(ctx, 1, 2, 3, 19, true, true);
    check_random(ctx, 2, 32, 32, 19, true, false); /* the parallel path */
    sn_ctx_destroy(ctx);
    return check_summary("cross_entropy");
}
