/* Inverted dropout and drop path (stochastic depth).
 *
 * Dropout draws one 64-bit key from the caller's stream and derives element
 * j's random bits by hashing key + j (the splitmix64 finaliser, a bijective
 * mixer): counter-based, so the mask is the same for any thread count and
 * the loop runs in parallel and vectorises. Drop path keeps or drops whole
 * samples (first axis) with one uniform draw each, as the official NAS
 * code's drop_path: keep with keep_prob and scale the kept ones by
 * 1/keep_prob so the expectation is unchanged. Both save their mask in the
 * node (step arena); backward is dx += dy * mask * scale. */
#include <math.h>

#include "ops/ops_common.h"

/* ---- dropout -------------------------------------------------------------------- */
typedef struct dropout_saved {
    const uint8_t *keep;
    float scale;
} dropout_saved;

static inline uint32_t hash_bits(uint64_t key, int64_t j)
{
    uint64_t z = key + (uint64_t)j * 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* keep[j] = (u_j >= p) with u_j uniform on 2^-32 steps; y = keep * scale * x.
 * Blocks for the threads, a simd loop inside each (clang 14 does not
 * vectorise this body under a combined `parallel for simd`). */
#define DROPOUT_BLOCK 4096

static void dropout_forward(const float *restrict x, float *restrict y, uint8_t *restrict keep, int64_t n,
                            uint64_t key, uint64_t threshold, float scale)
{
    int64_t nblocks = (n + DROPOUT_BLOCK - 1) / DROPOUT_BLOCK;
#pragma omp parallel for if (n > SN_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t lo = b * DROPOUT_BLOCK, hi = lo + DROPOUT_BLOCK < n ? lo + DROPOUT_BLOCK : n;
#pragma omp simd
        for (int64_t j = lo; j < hi; j++) {
            uint8_t k = (uint64_t)hash_bits(key, j) >= threshold;
            keep[j] = k;
            y[j] = k ? x[j] * scale : 0.0f;
        }
    }
}

static int dropout_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0];
    float *gx = sn_grad_of(ctx, x);
    if (!gx) return ctx_status(ctx);
    const dropout_saved *sv = node->saved;
    const uint8_t *keep = sv->keep;
    const float *gy = node->out->grad;
    float scale = sv->scale;
    int64_t n = x->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) gx[j] += keep[j] ? gy[j] * scale : 0.0f;
    return SN_OK;
}

static const sn_op_info dropout_op = {"dropout", dropout_backward};

sn_tensor *sn_dropout(sn_ctx *ctx, sn_tensor *x, float p, sn_rng *rng)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    if (!(p >= 0.0f && p < 1.0f)) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "dropout: probability %g outside [0, 1)", (double)p);
        return NULL;
    }
    if (p == 0.0f) return x;
    if (!rng) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "dropout: NULL random stream");
        return NULL;
    }
    sn_tensor *y = sn_tensor_empty_like(ctx, x);
    uint8_t *keep = y ? sn_step_alloc(ctx, (size_t)x->numel) : NULL;
    if (!keep) return NULL;
    float scale = 1.0f / (1.0f - p);
    uint64_t threshold = (uint64_t)ldexp((double)p, 32); /* p < 1: at most 2^32 - 1 after rounding */
    dropout_forward(x->data, y->data, keep, x->numel, sn_rng_next(rng), threshold, scale);
    if (sn_needs_grad(ctx, &x, 1)) {
        sn_node *node = sn_record(ctx, &dropout_op, y, &x, 1, sizeof(dropout_saved));
        if (!node) return NULL;
        *(dropout_saved *)node->saved = (dropout_saved){keep, scale};
    }
    return y;
}

/* ---- drop path ------------------------------------------------------------------ */
typedef struct drop_path_saved {
    const float *factor; /* per sample: 1/keep_prob or 0 */
} drop_path_saved;

/* y[s, :] = factor[s] * x[s, :] over `samples` rows of `row` floats. */
static void scale_rows(const float *x, float *y, const float *factor, int64_t samples, int64_t row, bool add)
{
    int64_t n = samples * row;
#pragma omp parallel for if (n > SN_PAR_MIN) schedule(static)
    for (int64_t s = 0; s < samples; s++) {
        const float *restrict xs = x + s * row;
        float *restrict ys = y + s * row;
        float f = factor[s];
        if (add) {
#pragma omp simd
            for (int64_t j = 0; j < row; j++) ys[j] += xs[j] * f;
        } else {
#pragma omp simd
            for (int64_t j = 0; j < row; j++) ys[j] = xs[j] * f;
        }
    }
}

static int drop_path_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0];
    float *gx = sn_grad_of(ctx, x);
    if (!gx) return ctx_status(ctx);
    const drop_path_saved *sv = node->saved;
    int64_t samples = x->shape[0];
    scale_rows(node->out->grad, gx, sv->factor, samples, x->numel / samples, true);
    return SN_OK;
}

static const sn_op_info drop_path_op = {"drop_path", drop_path_backward};

sn_tensor *sn_drop_path(sn_ctx *ctx, sn_tensor *x, float keep_prob, sn_rng *rng)
{
    if (sn_any_null(ctx, &x, 1)) return NULL;
    if (!(keep_prob > 0.0f && keep_prob <= 1.0f)) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "drop_path: keep probability %g outside (0, 1]", (double)keep_prob);
        return NULL;
    }
    if (keep_prob == 1.0f) return x;
    if (!rng) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "drop_path: NULL random stream");
        return NULL;
    }
    if (x->ndim < 1) {
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "drop_path: needs a sample axis, got a scalar");
        return NULL;
    }
    int64_t samples = x->shape[0];
    sn_tensor *y = sn_tensor_empty_like(ctx, x);
    float *factor = y ? sn_step_alloc(ctx, (size_t)samples * sizeof *factor) : NULL;
    if (!factor) return NULL;
    float scale = 1.0f / keep_prob;
    for (int64_t s = 0; s < samples; s++) factor[s] = sn_rng_uniform(rng) < keep_prob ? scale : 0.0f;
    scale_rows(x->data, y->data, factor, samples, x->numel / samples, false);
    if (sn_needs_grad(ctx, &x, 1)) {
        sn_node *node = sn_record(ctx, &drop_path_op, y, &x, 1, sizeof(drop_path_saved));
        if (!node) return NULL;
        ((drop_path_saved *)node->saved)->factor = factor;
    }
    return y;
}
