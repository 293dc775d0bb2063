/* Gaussian soft assignment of feature vectors to K learned centres, and the
 * normalised mean residual per centre: the graph projection of the Graph
 * Convolution Unit (Li & Gupta, "Beyond Grids", NeurIPS 2018, Eq. 1-2):
 *
 *   logit_ik = -1/2 || (x_i - w_k) / sigma_k ||^2        (sn_gaussian_logits)
 *   q_ik     = softmax_k(logit_ik)                        (sn_softmax)
 *   z'_k     = sum_i q_ik (x_i - w_k) / sigma_k / sum_i q_ik
 *   z_k      = z'_k / ||z'_k||                            (sn_soft_residual_mean)
 *
 * Both are also NetVLAD's assignment and aggregation (sigma = 1) and are
 * kept general: any number of leading axes for the logits, the assignment
 * q passed in (any weights, not only a softmax).
 *
 * Fused because, with the ops at hand, the per-dimension scale sigma_kc
 * inside a squared distance and the division by the assignment mass would
 * take a dozen temporaries of size P x K x C; here each pass is O(P K C)
 * with no temporary beyond the output. */
#include <math.h>
#include <string.h>

#include "ops/ops_common.h"

/* ---- Gaussian logits ---------------------------------------------------------- */
static int glogits_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0], *w = node->in[1], *sg = node->in[2];
    int64_t k = w->shape[0], c = w->shape[1], rows = x->numel / c;
    const float *g = node->out->grad, *xd = x->data, *wd = w->data, *sd = sg->data;
    /* d/dx_ic = -sum_k g_ik (x_ic - w_kc) / sigma_kc^2 */
    if (x->requires_grad) {
        float *gx = sn_grad_of(ctx, x);
        if (!gx) return ctx_status(ctx);
#pragma omp parallel for if (rows * k * c > SN_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t kk = 0; kk < k; kk++) {
                float gik = g[i * k + kk];
                for (int64_t ch = 0; ch < c; ch++) {
                    float s = sd[kk * c + ch];
                    gx[i * c + ch] -= gik * (xd[i * c + ch] - wd[kk * c + ch]) / (s * s);
                }
            }
    }
    /* d/dw_kc = sum_i g_ik (x_ic - w_kc) / sigma^2; d/dsigma_kc = sum_i g_ik (x_ic - w_kc)^2 / sigma^3 */
    float *gw = w->requires_grad ? sn_grad_of(ctx, w) : NULL;
    float *gs = sg->requires_grad ? sn_grad_of(ctx, sg) : NULL;
    if ((w->requires_grad && !gw) || (sg->requires_grad && !gs)) return ctx_status(ctx);
    if (!gw && !gs) return SN_OK;
#pragma omp parallel for if (rows * k * c > SN_PAR_MIN) schedule(static)
    for (int64_t kk = 0; kk < k; kk++)
        for (int64_t ch = 0; ch < c; ch++) {
            double aw = 0, as = 0;
            float wv = wd[kk * c + ch];
            for (int64_t i = 0; i < rows; i++) {
                double d = xd[i * c + ch] - wv, gik = g[i * k + kk];
                aw += gik * d;
                as += gik * d * d;
            }
            double s = sd[kk * c + ch];
            if (gw) gw[kk * c + ch] += (float)(aw / (s * s));
            if (gs) gs[kk * c + ch] += (float)(as / (s * s * s));
        }
    return SN_OK;
}

static const sn_op_info glogits_op = {"gaussian_logits", glogits_backward};

static int check_centres(sn_ctx *ctx, const char *op, const sn_tensor *x, const sn_tensor *w, const sn_tensor *s)
{
    char sx[64], sw[64], ss[64];
    if (w->ndim != 2 || !sn_same_shape(w, s) || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "%s: input %s, centres %s and scales %s do not fit (want {...,C}, "
                           "{K,C}, {K,C})", op, sn_shape_str(x, sx, sizeof sx), sn_shape_str(w, sw, sizeof sw),
                           sn_shape_str(s, ss, sizeof ss));
    return SN_OK;
}

sn_tensor *sn_gaussian_logits(sn_ctx *ctx, sn_tensor *x, sn_tensor *centres, sn_tensor *sigma)
{
    sn_tensor *in[3] = {x, centres, sigma};
    if (sn_any_null(ctx, in, 3) || check_centres(ctx, "gaussian_logits", x, centres, sigma)) return NULL;
    int64_t k = centres->shape[0], c = centres->shape[1], rows = x->numel / c;
    int64_t shape[SN_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = k;
    sn_tensor *y = sn_tensor_new(ctx, x->ndim, shape);
    if (!y) return NULL;
    const float *xd = x->data, *wd = centres->data, *sd = sigma->data;
    float *yd = y->data;
#pragma omp parallel for if (rows * k * c > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < rows; i++)
        for (int64_t kk = 0; kk < k; kk++) {
            float acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t ch = 0; ch < c; ch++) {
                float d = (xd[i * c + ch] - wd[kk * c + ch]) / sd[kk * c + ch];
                acc += d * d;
            }
            yd[i * k + kk] = -0.5f * acc;
        }
    if (sn_needs_grad(ctx, in, 3) && !sn_record(ctx, &glogits_op, y, in, 3, 0)) return NULL;
    return y;
}

/* ---- normalised mean residual ------------------------------------------------ */
/* Keeps ||z'|| away from 0 in the normalisation (and its gradient finite). */
#define NORM_EPS 1e-12f

typedef struct srm_saved {
    float *zp;   /* z' {B,K,C} before normalisation */
    float *mass; /* sum_i q_ik {B,K} */
    float *norm; /* sqrt(||z'_k||^2 + eps) {B,K}, 1 when not normalising */
    bool normalize;
} srm_saved;

/* dz' from dz for one row: (dz - z (z . dz)) / norm, z = z'/norm. */
static void unnormalise_grad(const float *zp, const float *gz, float norm, bool normalize, float *out, int64_t c)
{
    if (!normalize) {
        memcpy(out, gz, (size_t)c * sizeof *out);
        return;
    }
    float dot = 0;
    for (int64_t ch = 0; ch < c; ch++) dot += zp[ch] * gz[ch];
    float inv = 1.0f / norm, inv3 = inv * inv * inv;
    for (int64_t ch = 0; ch < c; ch++) out[ch] = gz[ch] * inv - zp[ch] * dot * inv3;
}

/* One sample b. With ds_k = dz'_k / n_k and dn_k = -(dz'_k . z'_k) / n_k:
 * dq_ik = ds_k . (x_i - w_k)/sigma_k + dn_k, dx_i = sum_k q_ik ds_k / sigma_k,
 * dw_k = -n_k ds_k / sigma_k, dsigma_k = -dz'_k z'_k / sigma_k (elementwise). */
static void srm_backward_sample(const srm_saved *sv, const float *x, const float *q, const float *w,
                                const float *sg, const float *gz, float *dzp, float *gx, float *gq, float *gw,
                                float *gs, int64_t p, int64_t k, int64_t c)
{
    float *dn = dzp + k * c; /* scratch: k more floats */
    for (int64_t kk = 0; kk < k; kk++) {
        const float *zp = sv->zp + kk * c;
        float *d = dzp + kk * c;
        unnormalise_grad(zp, gz + kk * c, sv->norm[kk], sv->normalize, d, c);
        float n = sv->mass[kk], dot = 0;
        for (int64_t ch = 0; ch < c; ch++) dot += d[ch] * zp[ch];
        dn[kk] = -dot / n;
        for (int64_t ch = 0; ch < c; ch++) {
            if (gs) gs[kk * c + ch] -= d[ch] * zp[ch] / sg[kk * c + ch];
            d[ch] /= n; /* now ds_k */
            if (gw) gw[kk * c + ch] -= n * d[ch] / sg[kk * c + ch];
        }
    }
    for (int64_t i = 0; i < p; i++)
        for (int64_t kk = 0; kk < k; kk++) {
            const float *ds = dzp + kk * c;
            float qik = q[i * k + kk], acc = 0;
            for (int64_t ch = 0; ch < c; ch++) {
                float inv = 1.0f / sg[kk * c + ch];
                acc += ds[ch] * (x[i * c + ch] - w[kk * c + ch]) * inv;
                if (gx) gx[i * c + ch] += qik * ds[ch] * inv;
            }
            if (gq) gq[i * k + kk] += acc + dn[kk];
        }
}

static int srm_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0], *q = node->in[1], *w = node->in[2], *sg = node->in[3];
    const srm_saved *sv = node->saved;
    int64_t b = x->shape[0], p = x->shape[1], c = x->shape[2], k = w->shape[0];
    float *g[4] = {0};
    for (int i = 0; i < 4; i++)
        if (node->in[i]->requires_grad && !(g[i] = sn_grad_of(ctx, node->in[i]))) return ctx_status(ctx);
    float *dzp = sn_step_alloc(ctx, (size_t)(k * c + k) * sizeof *dzp);
    if (!dzp) return ctx_status(ctx);
    /* Samples in sequence: the centre and scale gradients are shared. */
    for (int64_t s = 0; s < b; s++) {
        srm_saved one = {sv->zp + s * k * c, sv->mass + s * k, sv->norm + s * k, sv->normalize};
        srm_backward_sample(&one, x->data + s * p * c, q->data + s * p * k, w->data, sg->data,
                            node->out->grad + s * k * c, dzp, g[0] ? g[0] + s * p * c : NULL,
                            g[1] ? g[1] + s * p * k : NULL, g[2], g[3], p, k, c);
    }
    return SN_OK;
}

static const sn_op_info srm_op = {"soft_residual_mean", srm_backward};

static void srm_forward_sample(const float *x, const float *q, const float *w, const float *sg, float *zp,
                               float *mass, float *norm, float *z, bool normalize, int64_t p, int64_t k,
                               int64_t c)
{
    memset(zp, 0, (size_t)(k * c) * sizeof *zp);
    memset(mass, 0, (size_t)k * sizeof *mass);
    for (int64_t i = 0; i < p; i++)
        for (int64_t kk = 0; kk < k; kk++) {
            float qik = q[i * k + kk];
            mass[kk] += qik;
            for (int64_t ch = 0; ch < c; ch++) zp[kk * c + ch] += qik * (x[i * c + ch] - w[kk * c + ch]);
        }
    for (int64_t kk = 0; kk < k; kk++) {
        /* A centre no input is assigned to (all q underflowed) keeps z' finite. */
        if (mass[kk] < 1e-30f) mass[kk] = 1e-30f;
        float ss = 0;
        for (int64_t ch = 0; ch < c; ch++) {
            float v = zp[kk * c + ch] / (sg[kk * c + ch] * mass[kk]);
            zp[kk * c + ch] = v;
            ss += v * v;
        }
        norm[kk] = normalize ? sqrtf(ss + NORM_EPS) : 1.0f;
        for (int64_t ch = 0; ch < c; ch++) z[kk * c + ch] = zp[kk * c + ch] / norm[kk];
    }
}

sn_tensor *sn_soft_residual_mean(sn_ctx *ctx, sn_tensor *x, sn_tensor *q, sn_tensor *centres, sn_tensor *sigma,
                                 bool normalize)
{
    sn_tensor *in[4] = {x, q, centres, sigma};
    if (sn_any_null(ctx, in, 4) || check_centres(ctx, "soft_residual_mean", x, centres, sigma)) return NULL;
    int64_t k = centres->shape[0], c = centres->shape[1];
    char sx[64], sq[64];
    if (x->ndim != 3 || q->ndim != 3 || q->shape[0] != x->shape[0] || q->shape[1] != x->shape[1] ||
        q->shape[2] != k) {
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "soft_residual_mean: input %s and assignment %s do not fit (want {B,P,C} "
                    "and {B,P,%lld})", sn_shape_str(x, sx, sizeof sx), sn_shape_str(q, sq, sizeof sq),
                    (long long)k);
        return NULL;
    }
    int64_t b = x->shape[0], p = x->shape[1], shape[3] = {b, k, c};
    sn_tensor *z = sn_tensor_new(ctx, 3, shape);
    srm_saved sv = {sn_step_alloc(ctx, (size_t)(b * k * c) * sizeof(float)),
                    sn_step_alloc(ctx, (size_t)(b * k) * sizeof(float)),
                    sn_step_alloc(ctx, (size_t)(b * k) * sizeof(float)), normalize};
    if (!z || !sv.zp || !sv.mass || !sv.norm) return NULL;
#pragma omp parallel for if (b * p * k * c > SN_PAR_MIN) schedule(static)
    for (int64_t s = 0; s < b; s++)
        srm_forward_sample(x->data + s * p * c, q->data + s * p * k, centres->data, sigma->data,
                           sv.zp + s * k * c, sv.mass + s * k, sv.norm + s * k, z->data + s * k * c, normalize, p,
                           k, c);
    if (sn_needs_grad(ctx, in, 4)) {
        sn_node *node = sn_record(ctx, &srm_op, z, in, 4, sizeof sv);
        if (!node) return NULL;
        *(srm_saved *)node->saved = sv;
    }
    return z;
}
