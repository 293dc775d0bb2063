/* Training a discrete network from a genotype (segnas train): DeepLab's
 * recipe, see segnas/train.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/train.h"

void sn_train_options_default(sn_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->lr = 0.05, o->power = 0.9, o->momentum = 0.9, o->weight_decay = 1e-4, o->total_steps = 1;
}

/* Splits the weights by the number of axes: kernels and matrices are
 * decayed, biases and BN scale / shift are not. */
static int add_groups(sn_trainer *t)
{
    const sn_param_set *w = &t->model.weights;
    sn_tensor **decay = malloc(sizeof *decay * (size_t)(w->n + 1)), **rest = malloc(sizeof *rest * (size_t)(w->n + 1));
    if (!decay || !rest) {
        free(decay), free(rest);
        return sn_ctx_fail(t->ctx, SN_ERR_NOMEM, "out of memory for the optimiser groups");
    }
    int nd = 0, nr = 0;
    for (int i = 0; i < w->n; i++) {
        if (w->items[i]->ndim >= 2) decay[nd++] = w->items[i];
        else rest[nr++] = w->items[i];
    }
    sn_optim_group_config gd = sn_optim_sgd_config(t->opt.lr, t->opt.momentum, t->opt.weight_decay, false);
    gd.name = "weights";
    sn_optim_group_config gr = sn_optim_sgd_config(t->opt.lr, t->opt.momentum, 0.0, false);
    gr.name = "no_decay";
    t->group_decay = sn_optim_add_group(t->optim, &gd, decay, nd);
    t->group_no_decay = t->group_decay < 0 ? -1 : sn_optim_add_group(t->optim, &gr, rest, nr);
    free(decay), free(rest);
    return t->group_decay < 0 || t->group_no_decay < 0 ? sn_ctx_status(t->ctx) : SN_OK;
}

int sn_trainer_init(sn_trainer *t, sn_ctx *ctx, const sn_model_config *cfg, const sn_train_options *o,
                    uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->ctx = ctx;
    t->opt = *o;
    if (!(o->lr > 0) || !(o->power > 0) || o->momentum < 0 || o->momentum >= 1 || o->weight_decay < 0 ||
        o->total_steps < 1)
        return sn_ctx_fail(ctx, SN_ERR_ARG,
                           "train: lr %g (> 0), power %g (> 0), momentum %g ([0,1)), weight decay %g (>= 0), "
                           "%lld steps (>= 1)", o->lr, o->power, o->momentum, o->weight_decay,
                           (long long)o->total_steps);
    if (o->class_weighted)
        for (int k = 0; k < cfg->n_classes; k++)
            if (!(o->class_weights[k] >= 0.0f) || !isfinite(o->class_weights[k]))
                return sn_ctx_fail(ctx, SN_ERR_ARG, "train: class weight %d is %g (finite, >= 0)", k,
                                   (double)o->class_weights[k]);
    if (sn_model_init(ctx, &t->model, cfg, seed)) return sn_ctx_status(ctx);
    sn_rng_seed(&t->rng, seed ^ 0xd209a7u);
    t->optim = sn_optim_create(ctx);
    if (!t->optim) return sn_ctx_status(ctx);
    return add_groups(t);
}

void sn_trainer_free(sn_trainer *t)
{
    if (t->optim) sn_optim_destroy(t->optim);
    sn_model_free(&t->model);
    memset(t, 0, sizeof *t);
}

double sn_trainer_lr(const sn_trainer *t)
{
    sn_schedule s = sn_schedule_poly(t->opt.lr, t->opt.power, t->opt.total_steps);
    return sn_schedule_lr(&s, t->step);
}

int sn_train_step(sn_trainer *t, const float *images, const uint8_t *labels, int n, int h, int w, double *loss)
{
    sn_ctx *ctx = t->ctx;
    double lr = sn_trainer_lr(t);
    sn_optim_set_lr(t->optim, t->group_decay, lr);
    sn_optim_set_lr(t->optim, t->group_no_decay, lr);
    sn_optim_zero_grad(t->optim, t->group_decay);
    sn_optim_zero_grad(t->optim, t->group_no_decay);
    sn_tensor *x = sn_tensor_new4(ctx, n, h, w, 3);
    if (x) memcpy(x->data, images, sizeof(float) * (size_t)x->numel);
    sn_model_run run = {.training = true, .step = t->step, .rng = &t->rng};
    sn_tensor *logits = sn_model_forward(ctx, &t->model, x, &run);
    sn_tensor *l = sn_softmax_cross_entropy(ctx, logits, labels, 255,
                                            t->opt.class_weighted ? t->opt.class_weights : NULL);
    int rc = l ? sn_backward(ctx, l) : sn_ctx_status(ctx);
    if (loss) *loss = l ? l->data[0] : NAN;
    if (!rc) rc = sn_optim_step(t->optim, t->group_decay);
    if (!rc) rc = sn_optim_step(t->optim, t->group_no_decay);
    sn_step_end(ctx);
    if (!rc) t->step++;
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void sn_median_frequency_weights(const int64_t *class_pixels, const int64_t *image_pixels, int n_classes,
                                 float *weights)
{
    double freq[256], sorted[256];
    int m = 0;
    for (int k = 0; k < n_classes && k < 256; k++) {
        freq[k] = image_pixels[k] > 0 && class_pixels[k] > 0 ? (double)class_pixels[k] / (double)image_pixels[k] : 0;
        if (freq[k] > 0) sorted[m++] = freq[k];
    }
    qsort(sorted, (size_t)m, sizeof *sorted, cmp_double);
    double median = m == 0 ? 1.0 : m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
    for (int k = 0; k < n_classes && k < 256; k++) weights[k] = freq[k] > 0 ? (float)(median / freq[k]) : 0.0f;
}
