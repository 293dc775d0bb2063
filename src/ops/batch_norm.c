/* Batch normalization over N, H, W per channel (Ioffe & Szegedy 2015,
 * Alg. 1), with PyTorch's conventions for the running statistics:
 * running = (1 - momentum) * running + momentum * batch, where the batch
 * variance fed to the running one is unbiased (n / (n - 1)) while the
 * normalisation itself uses the biased one. The arithmetic runs on oneDNN
 * (ops/onednn/batch_norm.c), except with very few values per channel (see
 * SMALL_BN_COUNT) and with channel counts that are not a multiple of 16
 * (ops/bn_narrow.c); this file checks shapes, keeps the running statistics
 * and records the node. */
#include <math.h>
#include <string.h>

#include "ops/bn_narrow.h"

typedef struct bn_saved {
    sn_bn_shape s;
    /* The mean and variance the forward normalised with (batch statistics
     * in training, a copy of the running ones in eval), in the step arena. */
    float *mean, *var;
} bn_saved;

/* With fewer values per channel than this (ASPP's image-pooling branch: a
 * 1x1 map, so N values), a plain loop in double replaces oneDNN: the
 * primitive's cost is all overhead there, and at N = 2 the training
 * backward is a near-exact cancellation (x_hat = +-1) that float32 sums
 * turn into noise well above 1e-4 of the gradients upstream. */
#define SMALL_BN_COUNT 16

/* Mean and biased variance, in double, of m values `stride` floats apart. */
static void batch_stats(const float *x, int64_t stride, int64_t m, double *mean, double *var)
{
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < m; i++) sum += x[i * stride];
    double mu = sum / (double)m;
    for (int64_t i = 0; i < m; i++) sq += (x[i * stride] - mu) * (x[i * stride] - mu);
    *mean = mu, *var = sq / (double)m;
}

static void small_bn_forward(const sn_bn_shape *s, const float *x, const float *gamma, const float *beta,
                             float *mean, float *var, float *y)
{
    int64_t m = s->n * s->h * s->w, c = s->c;
    for (int64_t k = 0; k < c; k++) {
        double mu = mean[k], v = var[k];
        if (!s->global_stats) {
            batch_stats(x + k, c, m, &mu, &v);
            mean[k] = (float)mu, var[k] = (float)v;
        }
        double a = (gamma ? gamma[k] : 1.0) / sqrt(v + s->eps), b = (beta ? beta[k] : 0.0) - a * mu;
        for (int64_t i = 0; i < m; i++) y[i * c + k] = (float)(a * x[i * c + k] + b);
    }
}

static void small_bn_backward(const sn_bn_shape *s, const float *x, const float *dy, const float *gamma,
                              const float *mean, const float *var, float *dx, bool accumulate, float *dgamma,
                              float *dbeta)
{
    int64_t m = s->n * s->h * s->w, c = s->c;
    for (int64_t k = 0; k < c; k++) {
        double mu = mean[k], v = var[k];
        if (!s->global_stats) batch_stats(x + k, c, m, &mu, &v); /* as the forward had them, unrounded */
        double rstd = 1.0 / sqrt(v + s->eps), sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t i = 0; i < m; i++) {
            sum_dy += dy[i * c + k];
            sum_dy_xhat += dy[i * c + k] * (x[i * c + k] - mu) * rstd;
        }
        double g = (gamma ? gamma[k] : 1.0) * rstd;
        for (int64_t i = 0; i < m; i++) {
            double d = dy[i * c + k];
            if (!s->global_stats)
                d -= (sum_dy + (x[i * c + k] - mu) * rstd * sum_dy_xhat) / (double)m;
            dx[i * c + k] = (float)((accumulate ? dx[i * c + k] : 0.0) + g * d);
        }
        if (dgamma) dgamma[k] += (float)sum_dy_xhat;
        if (dbeta) dbeta[k] += (float)sum_dy;
    }
}

static bool small_bn(const sn_bn_shape *s) { return s->n * s->h * s->w < SMALL_BN_COUNT; }

static int bn_backward(sn_ctx *ctx, sn_node *node)
{
    const bn_saved *sv = node->saved;
    sn_tensor *x = node->in[0], *gamma = node->in[1], *beta = node->in[2];
    bool fresh = true;
    float *dx = x->requires_grad ? sn_grad_for_write(ctx, x, &fresh)
                                 : sn_step_alloc(ctx, (size_t)x->numel * sizeof(float)); /* discarded */
    float *dgamma = gamma && gamma->requires_grad ? sn_grad_of(ctx, gamma) : NULL;
    float *dbeta = beta && beta->requires_grad ? sn_grad_of(ctx, beta) : NULL;
    if (!dx || (gamma && gamma->requires_grad && !dgamma) || (beta && beta->requires_grad && !dbeta))
        return ctx_status(ctx);
    if (small_bn(&sv->s)) {
        small_bn_backward(&sv->s, x->data, node->out->grad, gamma ? gamma->data : NULL, sv->mean, sv->var, dx,
                          !fresh, dgamma, dbeta);
        return SN_OK;
    }
    if (sn_bn_narrow_suits(&sv->s)) {
        sn_bn_narrow_backward(&sv->s, x->data, node->out->grad, gamma ? gamma->data : NULL, sv->mean, sv->var, dx,
                              !fresh, dgamma, dbeta);
        return SN_OK;
    }
    return sn_dnnl_bn_backward(ctx, &sv->s, x->data, node->out->grad, gamma ? gamma->data : NULL,
                               beta ? beta->data : NULL, sv->mean, sv->var, dx, !fresh, dgamma, dbeta);
}

static const sn_op_info bn_op = {"batch_norm", bn_backward};

static int check_vec(sn_ctx *ctx, const char *what, const sn_tensor *v, const sn_tensor *x)
{
    if (!v || (v->ndim == 1 && v->shape[0] == x->shape[3])) return SN_OK;
    char sv[64], sx[64];
    return sn_ctx_fail(ctx, SN_ERR_SHAPE, "batch_norm: %s %s must be {%lld} for input %s", what,
                       sn_shape_str(v, sv, sizeof sv), (long long)x->shape[3], sn_shape_str(x, sx, sizeof sx));
}

static int check_args(sn_ctx *ctx, const sn_tensor *x, const sn_tensor *gamma, const sn_tensor *beta,
                      const sn_tensor *rm, const sn_tensor *rv, bool training, float momentum, float eps)
{
    char sx[64];
    sn_shape_str(x, sx, sizeof sx);
    if (x->ndim != 4 || x->numel == 0)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "batch_norm: input %s is not a non-empty 4-D NHWC tensor", sx);
    if (!(eps >= 0.0f) || !isfinite(eps))
        return sn_ctx_fail(ctx, SN_ERR_ARG, "batch_norm: eps %g must be finite and >= 0", (double)eps);
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return sn_ctx_fail(ctx, SN_ERR_ARG, "batch_norm: momentum %g must lie in [0, 1]", (double)momentum);
    if ((rm == NULL) != (rv == NULL))
        return sn_ctx_fail(ctx, SN_ERR_ARG, "batch_norm: give both running statistics or neither");
    if (!training && !rm)
        return sn_ctx_fail(ctx, SN_ERR_ARG, "batch_norm: eval mode needs the running mean and variance");
    int64_t per_channel = x->shape[0] * x->shape[1] * x->shape[2];
    /* As PyTorch: one value per channel has no variance to normalise by. */
    if (training && per_channel < 2)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE,
                           "batch_norm: training needs more than one value per channel, input %s has %lld", sx,
                           (long long)per_channel);
    if (check_vec(ctx, "gamma", gamma, x) || check_vec(ctx, "beta", beta, x) ||
        check_vec(ctx, "running mean", rm, x) || check_vec(ctx, "running variance", rv, x))
        return SN_ERR_SHAPE;
    return SN_OK;
}

/* running = (1 - m) * running + m * batch; batch variance made unbiased. */
static void update_running(float *rm, float *rv, const float *mean, const float *var, int64_t c, int64_t count,
                           float momentum)
{
    float unbias = (float)count / (float)(count - 1);
    for (int64_t i = 0; i < c; i++) {
        rm[i] = (1.0f - momentum) * rm[i] + momentum * mean[i];
        rv[i] = (1.0f - momentum) * rv[i] + momentum * var[i] * unbias;
    }
}

sn_tensor *sn_batch_norm(sn_ctx *ctx, sn_tensor *x, sn_tensor *gamma, sn_tensor *beta, sn_tensor *running_mean,
                         sn_tensor *running_var, bool training, float momentum, float eps)
{
    sn_tensor *in[3] = {x, gamma, beta};
    if (sn_any_null(ctx, &x, 1) ||
        check_args(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps))
        return NULL;
    int64_t c = x->shape[3];
    sn_bn_shape s = {.n = x->shape[0], .h = x->shape[1], .w = x->shape[2], .c = c, .eps = eps,
                     .scale = gamma != NULL, .shift = beta != NULL, .global_stats = !training};
    sn_tensor *y = sn_tensor_empty_like(ctx, x);
    float *stats = sn_step_alloc(ctx, 2 * (size_t)c * sizeof(float));
    if (!y || !stats) return NULL;
    float *mean = stats, *var = stats + c;
    if (!training) {
        memcpy(mean, running_mean->data, (size_t)c * sizeof(float));
        memcpy(var, running_var->data, (size_t)c * sizeof(float));
    }
    if (small_bn(&s))
        small_bn_forward(&s, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, mean, var, y->data);
    else if (sn_bn_narrow_suits(&s))
        sn_bn_narrow_forward(&s, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, mean, var, y->data);
    else if (sn_dnnl_bn_forward(ctx, &s, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, mean, var,
                                y->data))
        return NULL;
    /* A recomputed segment (sn_recompute) already updated them once. */
    if (training && running_mean && !sn_recomputing(ctx))
        update_running(running_mean->data, running_var->data, mean, var, c, s.n * s.h * s.w, momentum);
    if (!sn_needs_grad(ctx, in, 3)) return y;
    sn_node *node = sn_record(ctx, &bn_op, y, in, 3, sizeof(bn_saved));
    if (!node) return NULL;
    *(bn_saved *)node->saved = (bn_saved){s, mean, var};
    return y;
}
