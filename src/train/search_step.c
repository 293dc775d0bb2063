/* The bi-level search loop of Auto-DeepLab (section 4.2, first order):
 * alternate SGD on the weights (trainA) and Adam on alpha/beta (trainB). */
#include <math.h>
#include <string.h>

#include "segnas/search.h"
#include "segnas/train.h"
#include "segnas/eval.h"

void sn_search_options_default(sn_search_options *o)
{
    *o = (sn_search_options){.epochs = 40, .arch_start_epoch = -1, .steps_per_epoch = 0, .w_lr = 0.025,
                             .w_lr_min = 0.001, .w_momentum = 0.9, .w_weight_decay = 3e-4, .a_lr = 3e-3,
                             .a_weight_decay = 1e-3};
}

int sn_searcher_init(sn_searcher *s, sn_ctx *ctx, const sn_supernet_config *cfg, const sn_search_options *o,
                     uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->opt = *o;
    if (o->epochs < 1 || o->steps_per_epoch < 1)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "search: --epochs %d and steps per epoch %lld must be positive",
                           o->epochs, (long long)o->steps_per_epoch);
    if (sn_supernet_init(ctx, &s->net, cfg, seed)) return sn_ctx_status(ctx);
    s->optim = sn_optim_create(ctx);
    if (!s->optim) return sn_ctx_status(ctx);
    sn_optim_group_config gw = sn_optim_sgd_config(o->w_lr, o->w_momentum, o->w_weight_decay, false);
    gw.fused_momentum = o->w_momentum > 0; /* one weight-sized buffer less (group_step zeroes each step) */
    gw.name = "weights";
    sn_optim_group_config ga = sn_optim_adam_config(o->a_lr, o->a_weight_decay);
    ga.name = "arch";
    s->group_w = sn_optim_add_group(s->optim, &gw, s->net.weights.items, s->net.weights.n);
    s->group_a = sn_optim_add_group(s->optim, &ga, s->net.arch.items, s->net.arch.n);
    return s->group_w < 0 || s->group_a < 0 ? sn_ctx_status(ctx) : SN_OK;
}

void sn_searcher_free(sn_searcher *s)
{
    if (s->optim) sn_optim_destroy(s->optim);
    sn_supernet_free(&s->net);
    memset(s, 0, sizeof *s);
}

double sn_search_weight_lr(const sn_searcher *s)
{
    sn_schedule sched = sn_schedule_cosine(s->opt.w_lr, s->opt.w_lr_min, (int64_t)s->opt.epochs * s->opt.steps_per_epoch);
    return sn_schedule_lr(&sched, s->weight_steps);
}

static void set_requires_grad(const sn_param_set *set, bool on)
{
    for (int i = 0; i < set->n; i++) set->items[i]->requires_grad = on;
}

static sn_tensor *batch_loss(sn_searcher *s, const float *images, const uint8_t *labels, int n, int h, int w)
{
    sn_tensor *x = sn_tensor_new4(s->ctx, n, h, w, 3);
    if (!x) return NULL;
    memcpy(x->data, images, sizeof(float) * (size_t)x->numel);
    sn_tensor *logits = sn_supernet_forward(s->ctx, &s->net, x, true);
    return sn_softmax_cross_entropy(s->ctx, logits, labels, 255, NULL);
}

/* Forward + backward + optimiser step of one group, with the other group's
 * parameters frozen so that no gradient work is spent on them. */
static int group_step(sn_searcher *s, int group, const sn_param_set *frozen,
                      const float *images, const uint8_t *labels, int n, int h, int w, double *loss)
{
    sn_ctx *ctx = s->ctx;
    set_requires_grad(frozen, false);
    sn_optim_zero_grad(s->optim, group);
    sn_tensor *l = batch_loss(s, images, labels, n, h, w);
    int rc = l ? sn_backward(ctx, l) : sn_ctx_status(ctx);
    if (loss) *loss = l ? l->data[0] : NAN;
    if (!rc) rc = sn_optim_step(s->optim, group);
    sn_step_end(ctx);
    set_requires_grad(frozen, true);
    return rc;
}

int sn_search_weight_step(sn_searcher *s, const float *images, const uint8_t *labels, int n, int h, int w,
                          double *loss)
{
    sn_optim_set_lr(s->optim, s->group_w, sn_search_weight_lr(s));
    int rc = group_step(s, s->group_w, &s->net.arch, images, labels, n, h, w, loss);
    if (!rc) s->weight_steps++;
    return rc;
}

int sn_search_arch_step(sn_searcher *s, const float *images, const uint8_t *labels, int n, int h, int w,
                        double *loss)
{
    int rc = group_step(s, s->group_a, &s->net.weights, images, labels, n, h, w, loss);
    if (!rc) s->arch_steps++;
    return rc;
}

int sn_search_predict(sn_searcher *s, const float *images, int n, int h, int w, uint8_t *pred)
{
    sn_ctx *ctx = s->ctx;
    bool old = sn_set_grad_enabled(ctx, false);
    sn_tensor *x = sn_tensor_new4(ctx, n, h, w, 3);
    if (x) memcpy(x->data, images, sizeof(float) * (size_t)x->numel);
    sn_tensor *logits = sn_supernet_forward(ctx, &s->net, x, false);
    if (logits) sn_argmax_channels(logits, pred);
    sn_set_grad_enabled(ctx, old);
    sn_step_end(ctx);
    return logits ? SN_OK : sn_ctx_status(ctx);
}

void sn_search_decode(const sn_searcher *s, sn_genotype *g)
{
    const sn_supernet_config *c = &s->net.cfg;
    memset(g, 0, sizeof *g);
    g->n_layers = c->n_layers;
    g->n_levels = c->n_levels;
    g->filter_multiplier = c->filter_multiplier;
    sn_viterbi_decode(s->net.beta->data, c->n_layers, c->n_levels, g->path);
    sn_cell_decode(s->net.alpha->data, c->n_blocks, SN_CELL_OP_COUNT, &g->cell);
}
