/* Optimisers with parameter groups: SGD (momentum, Nesterov, weight decay)
 * and Adam (L2 weight decay). The update rules follow torch.optim.SGD and
 * torch.optim.Adam (single-tensor CPU path) operation by operation, in
 * float32, so a run can be compared with PyTorch. Auto-DeepLab uses SGD on
 * the network weights and Adam on the architecture parameters alpha/beta
 * (Sec. 5 of the paper), hence two groups with their own hyper-parameters.
 *
 * State (momentum buffers, Adam moments) is allocated once, in the
 * persistent arena, when a group is added: a step allocates nothing. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/train.h"

/* Below this many elements a parameter is updated by one thread: an OpenMP
 * fork/join costs a few microseconds, the update of 64K floats about as
 * much. */
#define OPTIM_PARALLEL_MIN ((int64_t)1 << 16)

typedef struct optim_param {
    sn_tensor *p;
    sn_tensor *s1; /* SGD momentum buffer, or Adam's first moment m */
    sn_tensor *s2; /* Adam's second moment v */
    int64_t step;  /* updates applied to this parameter (PyTorch's state["step"]) */
} optim_param;

typedef struct optim_group {
    sn_optim_group_config cfg; /* cfg.name points into the persistent arena */
    optim_param *params;
    int n;
    int64_t step;
} optim_group;

struct sn_optim {
    sn_ctx *ctx;
    optim_group *groups;
    int n_groups, cap;
};

sn_optim_group_config sn_optim_sgd_config(double lr, double momentum, double weight_decay,
                                          bool nesterov)
{
    sn_optim_group_config c = {0};
    c.kind = SN_OPTIM_SGD;
    c.lr = lr;
    c.momentum = momentum;
    c.weight_decay = weight_decay;
    c.nesterov = nesterov;
    return c;
}

sn_optim_group_config sn_optim_adam_config(double lr, double weight_decay)
{
    sn_optim_group_config c = {0};
    c.kind = SN_OPTIM_ADAM;
    c.lr = lr;
    c.weight_decay = weight_decay;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    return c;
}

sn_optim *sn_optim_create(sn_ctx *ctx)
{
    sn_optim *opt = calloc(1, sizeof *opt);
    if (!opt) {
        sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory creating an optimiser");
        return NULL;
    }
    opt->ctx = ctx;
    return opt;
}

void sn_optim_destroy(sn_optim *opt)
{
    if (!opt) return;
    free(opt->groups);
    free(opt);
}

int sn_optim_num_groups(const sn_optim *opt) { return opt->n_groups; }

/* ---- adding a group ------------------------------------------------------ */
static bool bad_real(double x, double lo) { return !(x >= lo) || !isfinite(x); }

static int check_config(sn_ctx *ctx, const sn_optim_group_config *c)
{
    const char *g = c->name ? c->name : "(unnamed)";
    if (c->kind != SN_OPTIM_SGD && c->kind != SN_OPTIM_ADAM)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group %s: unknown kind %d", g, (int)c->kind);
    if (bad_real(c->lr, 0))
        return sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group %s: lr %g must be >= 0", g, c->lr);
    if (bad_real(c->weight_decay, 0))
        return sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group %s: weight_decay %g must be >= 0", g,
                           c->weight_decay);
    if (c->kind == SN_OPTIM_SGD) {
        if (bad_real(c->momentum, 0))
            return sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group %s: momentum %g must be >= 0", g,
                               c->momentum);
        if (c->nesterov && c->momentum <= 0)
            return sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group %s: nesterov needs momentum > 0", g);
        if (c->fused_momentum && (c->momentum <= 0 || c->nesterov))
            return sn_ctx_fail(ctx, SN_ERR_ARG,
                               "optimiser group %s: fused momentum needs momentum > 0 and no nesterov", g);
        return SN_OK;
    }
    if (bad_real(c->beta1, 0) || c->beta1 >= 1 || bad_real(c->beta2, 0) || c->beta2 >= 1)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group %s: Adam betas (%g, %g) must be in [0, 1)",
                           g, c->beta1, c->beta2);
    if (bad_real(c->eps, 0))
        return sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group %s: eps %g must be >= 0", g, c->eps);
    return SN_OK;
}

static const char *param_label(const sn_tensor *p, int index, char *buf, size_t len)
{
    if (p->name) return p->name;
    snprintf(buf, len, "p%d", index);
    return buf;
}

/* PyTorch refuses a parameter in two groups (it would be updated twice). */
static int check_params(sn_optim *opt, const char *gname, sn_tensor *const *params, int n)
{
    char buf[32];
    for (int i = 0; i < n; i++) {
        if (!params[i])
            return sn_ctx_fail(opt->ctx, SN_ERR_ARG, "optimiser group %s: parameter %d is NULL", gname, i);
        for (int j = 0; j < i; j++)
            if (params[j] == params[i])
                return sn_ctx_fail(opt->ctx, SN_ERR_ARG, "optimiser group %s: parameter %s listed twice",
                                   gname, param_label(params[i], i, buf, sizeof buf));
        for (int g = 0; g < opt->n_groups; g++)
            for (int j = 0; j < opt->groups[g].n; j++)
                if (opt->groups[g].params[j].p == params[i])
                    return sn_ctx_fail(opt->ctx, SN_ERR_ARG,
                                       "optimiser group %s: parameter %s is already in group %s", gname,
                                       param_label(params[i], i, buf, sizeof buf),
                                       opt->groups[g].cfg.name);
    }
    return SN_OK;
}

/* "optim.<group>.<parameter>.<suffix>": the checkpoint name of a state tensor. */
static void state_name(char *name, size_t len, const char *gname, const sn_tensor *p, int index,
                       const char *suffix)
{
    char buf[32];
    snprintf(name, len, "optim.%s.%s.%s", gname, param_label(p, index, buf, sizeof buf), suffix);
}

static sn_tensor *state_tensor(sn_ctx *ctx, const char *gname, const sn_tensor *p, int index,
                               const char *suffix)
{
    char name[512];
    state_name(name, sizeof name, gname, p, index, suffix);
    return sn_buffer_new(ctx, name, p->ndim, p->shape); /* zero-filled */
}

/* A copy of s in the persistent arena (NULL with ctx failed when out of
 * memory). */
static char *arena_strdup(sn_ctx *ctx, const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = sn_arena_alloc(sn_ctx_param_arena(ctx), len);
    if (copy) memcpy(copy, s, len);
    else sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for the optimiser name %s", s);
    return copy;
}

/* The fused momentum buffer: a persistent tensor over p's gradient buffer,
 * named like state_tensor's (checkpoints save and restore it). */
static sn_tensor *grad_as_state(sn_ctx *ctx, const char *gname, sn_tensor *p, int index)
{
    char name[512];
    state_name(name, sizeof name, gname, p, index, "buf");
    sn_tensor *t = sn_arena_alloc(sn_ctx_param_arena(ctx), sizeof *t);
    if (!t) {
        sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for the optimiser state of %s", name);
        return NULL;
    }
    char *copy = arena_strdup(ctx, name);
    if (!copy) return NULL;
    *t = (sn_tensor){.ndim = p->ndim, .numel = p->numel, .data = p->grad, .is_param = true, .name = copy};
    memcpy(t->shape, p->shape, sizeof t->shape);
    return t;
}

static int init_group(sn_optim *opt, optim_group *grp, const sn_optim_group_config *cfg,
                      sn_tensor *const *params, int n)
{
    sn_ctx *ctx = opt->ctx;
    char idx[16];
    snprintf(idx, sizeof idx, "%d", opt->n_groups);
    grp->cfg = *cfg;
    grp->cfg.name = arena_strdup(ctx, cfg->name ? cfg->name : idx);
    if (!grp->cfg.name) return SN_ERR_NOMEM;
    grp->n = n;
    grp->step = 0;
    grp->params = sn_arena_alloc(sn_ctx_param_arena(ctx), (size_t)(n ? n : 1) * sizeof *grp->params);
    if (!grp->params) return sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for optimiser group %s", grp->cfg.name);
    bool adam = cfg->kind == SN_OPTIM_ADAM, mom = cfg->kind == SN_OPTIM_SGD && cfg->momentum != 0;
    for (int i = 0; i < n; i++) {
        optim_param *op = &grp->params[i];
        memset(op, 0, sizeof *op);
        op->p = params[i];
        if (adam) {
            op->s1 = state_tensor(ctx, grp->cfg.name, params[i], i, "m");
            op->s2 = state_tensor(ctx, grp->cfg.name, params[i], i, "v");
            if (!op->s1 || !op->s2) return sn_ctx_status(ctx);
        } else if (mom && cfg->fused_momentum) {
            if (!params[i]->grad)
                return sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group %s: fused momentum needs persistent "
                                   "gradients (parameter %d has none)", grp->cfg.name, i);
            op->s1 = grad_as_state(ctx, grp->cfg.name, params[i], i);
            if (!op->s1) return sn_ctx_status(ctx);
        } else if (mom) {
            op->s1 = state_tensor(ctx, grp->cfg.name, params[i], i, "buf");
            if (!op->s1) return sn_ctx_status(ctx);
        }
    }
    return SN_OK;
}

int sn_optim_add_group(sn_optim *opt, const sn_optim_group_config *cfg, sn_tensor *const *params, int n)
{
    sn_ctx *ctx = opt->ctx;
    if (n < 0 || (n > 0 && !params)) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "optimiser group: bad parameter list (n = %d)", n);
        return -1;
    }
    if (check_config(ctx, cfg) || check_params(opt, cfg->name ? cfg->name : "(unnamed)", params, n))
        return -1;
    if (opt->n_groups == opt->cap) {
        int cap = opt->cap ? opt->cap * 2 : 4;
        optim_group *g = realloc(opt->groups, (size_t)cap * sizeof *g);
        if (!g) {
            sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory adding an optimiser group");
            return -1;
        }
        opt->groups = g;
        opt->cap = cap;
    }
    if (init_group(opt, &opt->groups[opt->n_groups], cfg, params, n)) return -1;
    return opt->n_groups++;
}

/* ---- the update rules ---------------------------------------------------- */
/* Parallel reductions run over chunks, each reduced by one vector loop:
 * clang 14 cannot vectorise an OpenMP reduction inside `parallel for simd`. */
#define OPTIM_CHUNK ((int64_t)1 << 14)

/* Nonzero when some element is NaN or +-Inf (exponent bits all ones): an
 * integer OR, which vectorises without reassociating float arithmetic. */
static uint32_t nonfinite_chunk(const float *restrict g, int64_t n)
{
    uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &g[i], sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad;
}

/* One reduction per parameter (the cheap check the step needs). */
static bool all_finite(const float *g, int64_t n)
{
    int64_t chunks = (n + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
    uint32_t bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * OPTIM_CHUNK, len = n - lo < OPTIM_CHUNK ? n - lo : OPTIM_CHUNK;
        bad |= nonfinite_chunk(g + lo, len);
    }
    return bad == 0;
}

/* torch.optim.SGD, dampening 0:
 *   d = g + wd p;  buf = d (first step) | momentum buf + d;
 *   d = d + momentum buf (nesterov) | buf;  p -= lr d. */
static void sgd_update(float *restrict p, const float *restrict g, float *restrict buf, int64_t n,
                       float lr, float wd, float mom, bool nesterov, bool first)
{
    if (!buf) {
#pragma omp parallel for simd schedule(static) if (n >= OPTIM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
        return;
    }
    /* First step: PyTorch sets buf = d. With buf cleared and momentum 0
     * for this step, bm * buf + d is exactly d, and the loops stay branch-free
     * (and so vectorised). */
    float bm = mom;
    if (first) {
        memset(buf, 0, (size_t)n * sizeof *buf);
        bm = 0.0f;
    }
    if (nesterov) {
#pragma omp parallel for simd schedule(static) if (n >= OPTIM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            float b = bm * buf[i] + d;
            buf[i] = b;
            p[i] -= lr * (d + mom * b);
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n >= OPTIM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            float b = bm * buf[i] + (g[i] + wd * p[i]);
            buf[i] = b;
            p[i] -= lr * b;
        }
    }
}

/* Fused momentum: buf already holds momentum * buf + g (zero_grad scaled
 * it, backward added g); torch's buf = momentum buf + (g + wd p) follows by
 * adding the decay, then p -= lr buf. */
static void fused_sgd_update(float *restrict p, float *restrict buf, int64_t n, float lr, float wd)
{
#pragma omp parallel for simd schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        float b = buf[i] + wd * p[i];
        buf[i] = b;
        p[i] -= lr * b;
    }
}

/* torch.optim.Adam (amsgrad off):
 *   d = g + wd p;  m = b1 m + (1 - b1) d;  v = b2 v + (1 - b2) d^2;
 *   p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
static void adam_update(float *restrict p, const float *restrict g, float *restrict m,
                        float *restrict v, int64_t n, const sn_optim_group_config *c, int64_t t)
{
    float wd = (float)c->weight_decay, b1 = (float)c->beta1, b2 = (float)c->beta2;
    float eps = (float)c->eps;
    double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
    float step_size = (float)(c->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    /* No `simd`: sqrtf may set errno, so without -fno-math-errno neither gcc
     * nor clang vectorises it. Adam updates only the architecture
     * parameters (thousands of floats), so this costs nothing measurable. */
#pragma omp parallel for schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        float mi = b1 * m[i] + (1.0f - b1) * d;
        float vi = b2 * v[i] + (1.0f - b2) * d * d;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}

static optim_group *group_at(const sn_optim *opt, int group)
{
    if (group < 0 || group >= opt->n_groups) return NULL;
    return &opt->groups[group];
}

int sn_optim_step(sn_optim *opt, int group)
{
    optim_group *grp = group_at(opt, group);
    if (!grp)
        return sn_ctx_fail(opt->ctx, SN_ERR_ARG, "optimiser step: no group %d (have %d)", group,
                           opt->n_groups);
    /* Check every gradient first so a failed step leaves the group unchanged. */
    for (int i = 0; i < grp->n; i++) {
        const sn_tensor *p = grp->params[i].p;
        char buf[32];
        if (p->grad && !all_finite(p->grad, p->numel))
            return sn_ctx_fail(opt->ctx, SN_ERR_NUMERIC,
                               "non-finite gradient in parameter %s (optimiser group %s, step %" PRId64 ")",
                               param_label(p, i, buf, sizeof buf), grp->cfg.name, grp->step + 1);
    }
    const sn_optim_group_config *c = &grp->cfg;
    for (int i = 0; i < grp->n; i++) {
        optim_param *op = &grp->params[i];
        sn_tensor *p = op->p;
        if (!p->grad) continue;
        op->step++;
        if (c->kind == SN_OPTIM_ADAM)
            adam_update(p->data, p->grad, op->s1->data, op->s2->data, p->numel, c, op->step);
        else if (c->fused_momentum)
            fused_sgd_update(p->data, p->grad, p->numel, (float)c->lr, (float)c->weight_decay);
        else
            sgd_update(p->data, p->grad, op->s1 ? op->s1->data : NULL, p->numel, (float)c->lr,
                       (float)c->weight_decay, (float)c->momentum, c->nesterov, op->step == 1);
    }
    grp->step++;
    return SN_OK;
}

void sn_optim_zero_grad(sn_optim *opt, int group)
{
    optim_group *grp = group_at(opt, group);
    if (!grp) return;
    for (int i = 0; i < grp->n; i++) {
        sn_tensor *p = grp->params[i].p;
        if (!p->grad) continue;
        if (grp->cfg.fused_momentum && grp->params[i].step > 0) { /* keep momentum * buf */
            float m = (float)grp->cfg.momentum, *g = p->grad;
            int64_t n = p->numel;
#pragma omp parallel for simd schedule(static) if (n >= OPTIM_PARALLEL_MIN)
            for (int64_t j = 0; j < n; j++) g[j] *= m;
        } else {
            memset(p->grad, 0, (size_t)p->numel * sizeof(float));
        }
    }
}

void sn_optim_set_lr(sn_optim *opt, int group, double lr)
{
    optim_group *grp = group_at(opt, group);
    if (grp) grp->cfg.lr = lr;
}

double sn_optim_get_lr(const sn_optim *opt, int group)
{
    const optim_group *grp = group_at(opt, group);
    return grp ? grp->cfg.lr : NAN;
}

int64_t sn_optim_get_step(const sn_optim *opt, int group)
{
    const optim_group *grp = group_at(opt, group);
    return grp ? grp->step : -1;
}

void sn_optim_set_step(sn_optim *opt, int group, int64_t step)
{
    optim_group *grp = group_at(opt, group);
    if (!grp || step < 0) return;
    grp->step = step;
    for (int i = 0; i < grp->n; i++) grp->params[i].step = step;
}

int sn_optim_state_tensors(const sn_optim *opt, sn_tensor **out, int max)
{
    int count = 0;
    for (int g = 0; g < opt->n_groups; g++)
        for (int i = 0; i < opt->groups[g].n; i++) {
            const optim_param *op = &opt->groups[g].params[i];
            sn_tensor *s[2] = {op->s1, op->s2};
            for (int k = 0; k < 2; k++) {
                if (!s[k]) continue;
                if (count < max) out[count] = s[k];
                count++;
            }
        }
    return count;
}

/* ---- gradient clipping --------------------------------------------------- */
static double sum_squares_chunk(const float *restrict g, int64_t n)
{
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; i++) acc += (double)g[i] * g[i];
    return acc;
}

static double sum_squares(const float *g, int64_t n)
{
    int64_t chunks = (n + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
    double acc = 0;
#pragma omp parallel for reduction(+ : acc) schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * OPTIM_CHUNK, len = n - lo < OPTIM_CHUNK ? n - lo : OPTIM_CHUNK;
        acc += sum_squares_chunk(g + lo, len);
    }
    return acc;
}

double sn_clip_grad_norm(sn_tensor *const *params, int n, double max_norm)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        if (params[i]->grad) total += sum_squares(params[i]->grad, params[i]->numel);
    total = sqrt(total);
    if (!isfinite(total)) return total;
    double coef = max_norm / (total + 1e-6);
    if (coef >= 1.0) return total;
    float c = (float)coef;
    for (int i = 0; i < n; i++) {
        float *restrict g = params[i]->grad;
        int64_t m = params[i]->numel;
        if (!g) continue;
#pragma omp parallel for simd schedule(static) if (m >= OPTIM_PARALLEL_MIN)
        for (int64_t j = 0; j < m; j++) g[j] *= c;
    }
    return total;
}
