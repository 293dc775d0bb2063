/* Training and inference of a discrete network (the pieces `segnas train`,
 * `eval` and `predict` are made of): the loss of a tiny network on the
 * synthetic data falls over 30 SGD steps; a checkpoint round trip rebuilds
 * the same network from the sidecar alone (identical logits, head and SGR
 * adjacency included); single-scale inference through the multi-scale path
 * equals the plain forward; flip and sliding windows behave; every head's
 * analytic parameter count matches the built network; median-frequency
 * weights on a known example. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "segnas/eval.h"
#include "segnas/train.h"
#include "support/check.h"

enum { S = 32, BATCH = 4, POOL = 8, CLASSES = SN_SYNTH_CLASSES };

/* The paper's cell on a 4-cell path down to stride 32 and back up one
 * level, F = 2, narrow head and decoder. */
static sn_model_config tiny_config(int head)
{
    sn_genotype g;
    sn_genotype_autodeeplab(&g);
    static const int path[4] = {0, 1, 2, 1};
    g.n_layers = 4;
    memcpy(g.path, path, sizeof path);
    g.filter_multiplier = 2;
    sn_model_config c;
    sn_model_config_default(&c, &g);
    c.n_classes = CLASSES, c.stem_channels = 8, c.aspp_channels = 16, c.decoder_low_channels = 8;
    c.decoder_channels = 16, c.head = head;
    return c;
}

typedef struct samples {
    float images[POOL][S * S * 3];
    uint8_t labels[POOL][S * S];
    sn_image img[POOL];
} samples;

static void make_samples(samples *s)
{
    sn_synth_config sc;
    sn_synth_config_default(&sc);
    sc.height = sc.width = S;
    sn_augment_config aug;
    sn_augment_config_default(&aug);
    for (int i = 0; i < POOL; i++) {
        sn_image label = {0};
        char err[256];
        memset(&s->img[i], 0, sizeof s->img[i]);
        CHECK(sn_synth_generate(&sc, i, &s->img[i], &label, err, sizeof err) == 0, "synth %d: %s", i, err);
        sn_image_to_float(&s->img[i], S, S, aug.mean, aug.std, s->images[i], err, sizeof err);
        memcpy(s->labels[i], label.data, S * S);
        sn_image_free(&label);
    }
}

static void batch_of(const samples *s, int first, float *x, uint8_t *y)
{
    for (int b = 0; b < BATCH; b++) {
        int i = (first + b) % POOL;
        memcpy(x + (size_t)b * S * S * 3, s->images[i], sizeof s->images[i]);
        memcpy(y + (size_t)b * S * S, s->labels[i], S * S);
    }
}

static void check_loss_falls(sn_ctx *ctx, const samples *s)
{
    sn_model_config cfg = tiny_config(SN_HEAD_ASPP);
    cfg.aspp_dropout = 0;
    sn_train_options o;
    sn_train_options_default(&o);
    o.total_steps = 30;
    sn_trainer t;
    CHECK(sn_trainer_init(&t, ctx, &cfg, &o, 7) == SN_OK, "trainer init: %s", sn_ctx_error(ctx));
    static float x[BATCH * S * S * 3];
    static uint8_t y[BATCH * S * S];
    double first = 0, last = 0;
    int ok = 1;
    for (int step = 0; step < 30 && ok; step++) {
        double loss = NAN;
        batch_of(s, step * BATCH, x, y);
        ok = sn_train_step(&t, x, y, BATCH, S, S, &loss) == SN_OK && isfinite(loss);
        if (step < 5) first += loss / 5;
        if (step >= 25) last += loss / 5;
    }
    CHECK(ok, "30 training steps run: %s", sn_ctx_error(ctx));
    CHECK(t.step == 30, "step counter %lld", (long long)t.step);
    CHECK(last < 0.8 * first, "loss falls: first 5 steps %.4f, last 5 %.4f", first, last);
    CHECK(fabs(sn_trainer_lr(&t) - 0.0) < 1e-12, "poly lr at the end is 0, got %g", sn_trainer_lr(&t));
    sn_trainer_free(&t);
}

static sn_tensor *eval_logits(sn_ctx *ctx, const sn_model *m, const float *images, int n)
{
    sn_tensor *x = sn_tensor_new4(ctx, n, S, S, 3);
    if (x) memcpy(x->data, images, sizeof(float) * (size_t)x->numel);
    sn_model_run run = {.training = false};
    return sn_model_forward(ctx, m, x, &run);
}

/* A few steps (so BN statistics and momentum are not at their initial
 * values), save, rebuild from the sidecar, load: same logits bit for bit. */
static void check_round_trip(sn_ctx *ctx, const samples *s, int head, const char *dir)
{
    sn_model_config cfg = tiny_config(head);
    float adj[CLASSES * CLASSES];
    for (int i = 0; i < CLASSES * CLASSES; i++) adj[i] = (float)((i * 7) % 5) * 0.25f;
    cfg.sgr_adjacency = head == SN_HEAD_SGR ? adj : NULL;
    sn_train_options o;
    sn_train_options_default(&o);
    o.total_steps = 10, o.class_weighted = true;
    for (int k = 0; k < CLASSES; k++) o.class_weights[k] = 0.5f + 0.25f * k;
    sn_trainer a, b;
    CHECK(sn_trainer_init(&a, ctx, &cfg, &o, 11) == SN_OK, "%s: init: %s", sn_head_name(head), sn_ctx_error(ctx));
    static float x[BATCH * S * S * 3];
    static uint8_t y[BATCH * S * S];
    for (int step = 0; step < 3; step++) {
        batch_of(s, step, x, y);
        CHECK(sn_train_step(&a, x, y, BATCH, S, S, NULL) == SN_OK, "%s: step: %s", sn_head_name(head),
              sn_ctx_error(ctx));
    }
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/train_%s.safetensors", dir, sn_head_name(head));
    CHECK(sn_trainer_save(&a, path, "{\"note\":\"test\"}", err, sizeof err) == 0, "save: %s", err);
    sn_model_config cfg2;
    sn_train_options o2;
    char *extra = NULL;
    CHECK(sn_train_read_config(path, &cfg2, &o2, &extra, err, sizeof err) == 0, "read config: %s", err);
    CHECK(cfg2.head == head && cfg2.genotype.filter_multiplier == 2 && cfg2.genotype.n_layers == 4 &&
              cfg2.n_classes == CLASSES && cfg2.aspp_channels == 16 && cfg2.genotype.path[2] == 2,
          "%s: sidecar config (head %d, F %d, %d layers)", sn_head_name(head), cfg2.head,
          cfg2.genotype.filter_multiplier, cfg2.genotype.n_layers);
    CHECK(o2.class_weighted && o2.class_weights[3] == o.class_weights[3] && o2.total_steps == 10,
          "%s: sidecar options", sn_head_name(head));
    CHECK(extra && strstr(extra, "test"), "extra kept: %s", extra ? extra : "(null)");
    free(extra);
    CHECK(sn_trainer_init(&b, ctx, &cfg2, &o2, 99) == SN_OK, "rebuild: %s", sn_ctx_error(ctx));
    CHECK(sn_trainer_load(&b, path, err, sizeof err) == 0, "load: %s", err);
    CHECK(b.step == 3, "%s: step restored (%lld)", sn_head_name(head), (long long)b.step);
    sn_tensor *la = eval_logits(ctx, &a.model, s->images[0], 1);
    float *copy = la ? malloc(sizeof(float) * (size_t)la->numel) : NULL;
    int64_t n = la ? la->numel : 0;
    if (copy) memcpy(copy, la->data, sizeof(float) * (size_t)n);
    sn_step_end(ctx);
    sn_tensor *lb = eval_logits(ctx, &b.model, s->images[0], 1);
    CHECK(copy && lb && lb->numel == n && !memcmp(copy, lb->data, sizeof(float) * (size_t)n),
          "%s: identical logits after the round trip", sn_head_name(head));
    sn_step_end(ctx);
    /* One more step each: momentum restored means the same update. */
    batch_of(s, 5, x, y);
    sn_train_step(&a, x, y, BATCH, S, S, NULL);
    sn_train_step(&b, x, y, BATCH, S, S, NULL);
    la = eval_logits(ctx, &a.model, s->images[1], 1);
    if (la && copy) memcpy(copy, la->data, sizeof(float) * (size_t)n);
    sn_step_end(ctx);
    lb = eval_logits(ctx, &b.model, s->images[1], 1);
    CHECK(copy && lb && rel_err_f32(lb->data, copy, n, 1e-3) < 1e-5, "%s: same step after resume (rel err %g)",
          sn_head_name(head), copy && lb ? rel_err_f32(lb->data, copy, n, 1e-3) : -1.0);
    sn_step_end(ctx);
    free(copy);
    unlink(path);
    char side[600];
    snprintf(side, sizeof side, "%s.json", path);
    unlink(side);
    sn_trainer_free(&a), sn_trainer_free(&b);
}

static void softmax_rows(const float *x, int64_t n, int k, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        double m = x[i * k], z = 0;
        for (int c = 1; c < k; c++) m = fmax(m, x[i * k + c]);
        for (int c = 0; c < k; c++) z += exp(x[i * k + c] - m);
        for (int c = 0; c < k; c++) out[i * k + c] = (float)(exp(x[i * k + c] - m) / z);
    }
}

static void mirror_image(sn_image *img)
{
    for (int y = 0; y < img->h; y++)
        for (int a = 0, b = img->w - 1; a < b; a++, b--)
            for (int c = 0; c < img->c; c++) {
                uint8_t *row = img->data + (size_t)y * img->w * img->c, t = row[a * img->c + c];
                row[a * img->c + c] = row[b * img->c + c], row[b * img->c + c] = t;
            }
}

static void check_inference(sn_ctx *ctx, const samples *s)
{
    sn_model_config cfg = tiny_config(SN_HEAD_ASPP);
    sn_model m;
    CHECK(sn_model_init(ctx, &m, &cfg, 5) == SN_OK, "init: %s", sn_ctx_error(ctx));
    enum { P = S * S * CLASSES };
    static float direct[P], probs[P], other[P], tmp[P];
    sn_tensor *l = eval_logits(ctx, &m, s->images[2], 1);
    if (l) softmax_rows(l->data, S * S, CLASSES, direct);
    sn_step_end(ctx);
    sn_infer_config ic;
    sn_infer_config_default(&ic);
    double one = 1.0;
    ic.scales = &one, ic.n_scales = 1;
    CHECK(sn_infer_probs(ctx, &m, &s->img[2], &ic, probs) == SN_OK, "infer: %s", sn_ctx_error(ctx));
    CHECK(rel_err_f32(probs, direct, P, 1e-3) < 1e-5, "scales {1} = single-scale softmax (rel err %g)",
          rel_err_f32(probs, direct, P, 1e-3));
    uint8_t pa[S * S], pb[S * S];
    sn_probs_argmax(probs, S * S, CLASSES, pa);
    l = eval_logits(ctx, &m, s->images[2], 1);
    if (l) sn_argmax_channels(l, pb);
    sn_step_end(ctx);
    CHECK(!memcmp(pa, pb, sizeof pa), "scales {1}: same argmax as the forward pass");
    /* A window as large as the image is the whole image. */
    ic.crop_h = ic.crop_w = S;
    sn_infer_probs(ctx, &m, &s->img[2], &ic, other);
    CHECK(rel_err_f32(other, probs, P, 1e-3) < 1e-6, "a %dx%d window = the whole image", S, S);
    /* Windows of 24 (stride 16: starts 0, 8) still give probabilities. */
    ic.crop_h = ic.crop_w = 24;
    CHECK(sn_infer_probs(ctx, &m, &s->img[2], &ic, other) == SN_OK, "sliding windows: %s", sn_ctx_error(ctx));
    double worst = 0;
    for (int i = 0; i < S * S; i++) {
        double z = 0;
        for (int c = 0; c < CLASSES; c++) z += other[i * CLASSES + c];
        worst = fmax(worst, fabs(z - 1));
    }
    CHECK(worst < 1e-5, "sliding-window probabilities sum to 1 (worst %g)", worst);
    /* Flip: the prediction of a mirrored image, mirrored, is the same. */
    ic.crop_h = ic.crop_w = 0, ic.flip = true;
    double scales[2] = {0.75, 1.25};
    ic.scales = scales, ic.n_scales = 2;
    sn_infer_probs(ctx, &m, &s->img[2], &ic, probs);
    sn_image mir = {0};
    sn_image_alloc(&mir, S, S, 3);
    memcpy(mir.data, s->img[2].data, (size_t)S * S * 3);
    mirror_image(&mir);
    sn_infer_probs(ctx, &m, &mir, &ic, tmp);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            memcpy(other + ((size_t)y * S + x) * CLASSES, tmp + ((size_t)y * S + (S - 1 - x)) * CLASSES,
                   sizeof(float) * CLASSES);
    CHECK(rel_err_f32(other, probs, P, 1e-3) < 1e-4, "multi-scale + flip is mirror-symmetric (rel err %g)",
          rel_err_f32(other, probs, P, 1e-3));
    sn_image_free(&mir);
    double bad = 0;
    ic.scales = &bad, ic.n_scales = 1;
    CHECK(sn_infer_probs(ctx, &m, &s->img[2], &ic, probs) == SN_ERR_ARG && strstr(sn_ctx_error(ctx), "scale"),
          "scale 0 is refused: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_model_free(&m);
}

/* The analytic count (cost.c) against the built network, for every head. */
static void check_head_costs(sn_ctx *ctx)
{
    for (int h = 0; h < SN_HEAD_COUNT; h++) {
        sn_model_config cfg = tiny_config(h);
        sn_model m;
        CHECK(sn_model_init(ctx, &m, &cfg, 1) == SN_OK, "%s: init: %s", sn_head_name(h), sn_ctx_error(ctx));
        sn_model_costs cost;
        CHECK(sn_model_cost(ctx, &cfg, 65, 65, &cost) == SN_OK, "%s: cost: %s", sn_head_name(h), sn_ctx_error(ctx));
        int64_t built = sn_param_set_numel(&m.weights);
        CHECK(cost.total.params == built, "%s: analytic params %lld = built %lld", sn_head_name(h),
              (long long)cost.total.params, (long long)built);
        CHECK(cost.part[SN_PART_HEAD].params > 0 && cost.part[SN_PART_HEAD].madds > 0,
              "%s: the head part has params %lld and madds %g", sn_head_name(h),
              (long long)cost.part[SN_PART_HEAD].params, cost.part[SN_PART_HEAD].madds);
        sn_model_free(&m);
    }
    CHECK(sn_head_parse("glore") == SN_HEAD_GLORE && sn_head_parse("bogus") == -1, "head names parse");
    sn_model_config bad = tiny_config(SN_HEAD_COUNT);
    sn_model m;
    CHECK(sn_model_init(ctx, &m, &bad, 1) == SN_ERR_ARG && strstr(sn_ctx_error(ctx), "head"),
          "unknown head refused: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_model_free(&m);
}

static void check_median_frequency(void)
{
    /* freq = 0.5, 0.1, 0.2, absent: median 0.2 -> weights 0.4, 2, 1, 0. */
    const int64_t cls[4] = {50, 10, 20, 0}, img[4] = {100, 100, 100, 0};
    float w[4];
    sn_median_frequency_weights(cls, img, 4, w);
    CHECK(fabsf(w[0] - 0.4f) < 1e-6f && fabsf(w[1] - 2.0f) < 1e-6f && fabsf(w[2] - 1.0f) < 1e-6f && w[3] == 0.0f,
          "median-frequency weights %g %g %g %g", w[0], w[1], w[2], w[3]);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    static samples s;
    make_samples(&s);
    char dir[] = "/tmp/sn_train_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temporary folder");
    check_median_frequency();
    check_head_costs(ctx);
    check_inference(ctx, &s);
    check_round_trip(ctx, &s, SN_HEAD_ASPP, dir);
    check_round_trip(ctx, &s, SN_HEAD_SGR, dir);
    check_loss_falls(ctx, &s);
    rmdir(dir);
    for (int i = 0; i < POOL; i++) sn_image_free(&s.img[i]);
    sn_ctx_destroy(ctx);
    return check_summary("test_train");
}
