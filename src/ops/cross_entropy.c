/* Mean softmax cross-entropy over the pixels of {N,H,W,K} logits, fused
 * log-softmax + NLL, as PyTorch's CrossEntropyLoss(weight=w, ignore_index=):
 *   loss = sum_p w[y_p] (logsumexp(x_p) - x_p[y_p]) / sum_p w[y_p]
 * over the pixels whose label is not ignored (w = 1 without class weights).
 *
 * The loss is a scalar, so its gradient wrt the logits is known in the
 * forward pass: (softmax(x_p) - onehot(y_p)) w[y_p] / sum w. The forward
 * writes it into the node (one float per logit, the exps it computes anyway)
 * and the backward only scales it by the incoming gradient: no second exp
 * pass, and the caller's label buffer need not outlive the call. */
#include <math.h>

#include "ops/ops_common.h"
#include "ops/vmath.h"

typedef struct ce_saved {
    float *grad; /* d loss / d logits for d loss = 1 */
} ce_saved;

typedef struct ce_problem {
    const float *x;
    const uint8_t *labels;
    const float *class_weights;
    int64_t pixels, k;
    int ignore;
    float scale; /* 1 / sum of weights, 0 when no pixel counts */
} ce_problem;

/* Checks every label and returns sum w[y] over counted pixels; -1 with the
 * context failed on a bad label. */
static double weight_total(sn_ctx *ctx, const ce_problem *pb)
{
    double den = 0;
    for (int64_t p = 0; p < pb->pixels; p++) {
        int y = pb->labels[p];
        if (y == pb->ignore) continue;
        if (y >= pb->k) {
            sn_ctx_fail(ctx, SN_ERR_ARG,
                        "softmax_cross_entropy: label %d at pixel %lld is not a class of %lld and not the "
                        "ignore label %d",
                        y, (long long)p, (long long)pb->k, pb->ignore);
            return -1;
        }
        den += pb->class_weights ? pb->class_weights[y] : 1.0;
    }
    return den;
}

/* The weighted NLL of pixel p; with g, also writes its gradient row. */
static double pixel_loss(const ce_problem *pb, int64_t p, float *restrict g)
{
    const float *restrict x = pb->x + p * pb->k;
    int64_t k = pb->k;
    int y = pb->labels[p];
    if (y == pb->ignore) {
        if (g)
            for (int64_t c = 0; c < k; c++) g[c] = 0;
        return 0;
    }
    float m = sn_row_max(x, k), s = 0;
    if (g) {
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < k; c++) {
            g[c] = sn_vexpf(x[c] - m);
            s += g[c];
        }
    } else {
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < k; c++) s += sn_vexpf(x[c] - m);
    }
    float w = pb->class_weights ? pb->class_weights[y] : 1.0f;
    if (g) {
        float f = w * pb->scale / s;
#pragma omp simd
        for (int64_t c = 0; c < k; c++) g[c] *= f;
        g[y] -= w * pb->scale;
    }
    return (double)w * ((double)m + log((double)s) - (double)x[y]);
}

/* Sum of the weighted NLL over all pixels, on `nt` threads with per-thread
 * partial sums added in thread order (deterministic for a thread count). */
static double total_loss(const ce_problem *pb, float *grad, double *part, int nt)
{
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int th = 0; th < nt; th++) {
        double acc = 0;
        for (int64_t p = pb->pixels * th / nt; p < pb->pixels * (th + 1) / nt; p++)
            acc += pixel_loss(pb, p, grad ? grad + p * pb->k : NULL);
        part[th] = acc;
    }
    double sum = 0;
    for (int th = 0; th < nt; th++) sum += part[th];
    return sum;
}

static int ce_backward(sn_ctx *ctx, sn_node *node)
{
    sn_tensor *x = node->in[0];
    float *gx = sn_grad_of(ctx, x);
    if (!gx) return ctx_status(ctx);
    const ce_saved *sv = node->saved;
    const float *g = sv->grad;
    float dl = node->out->grad[0];
    int64_t n = x->numel;
#pragma omp parallel for simd if (parallel : n > SN_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += dl * g[i];
    return SN_OK;
}

static const sn_op_info cross_entropy_op = {"softmax_cross_entropy", ce_backward};

sn_tensor *sn_softmax_cross_entropy(sn_ctx *ctx, sn_tensor *logits, const uint8_t *labels, int ignore_label,
                                    const float *class_weights)
{
    if (sn_any_null(ctx, &logits, 1)) return NULL;
    if (!labels) {
        sn_ctx_fail(ctx, SN_ERR_ARG, "softmax_cross_entropy: NULL labels");
        return NULL;
    }
    if (logits->ndim < 1) {
        sn_ctx_fail(ctx, SN_ERR_SHAPE, "softmax_cross_entropy: logits must have a class axis, got a scalar");
        return NULL;
    }
    int64_t k = logits->shape[logits->ndim - 1];
    ce_problem pb = {logits->data, labels, class_weights, logits->numel / k, k, ignore_label, 0};
    double den = weight_total(ctx, &pb);
    if (den < 0) return NULL;
    /* No counted pixel (or zero total weight): loss 0, zero gradient, where
     * PyTorch would give NaN. */
    pb.scale = den > 0 ? (float)(1.0 / den) : 0.0f;
    int64_t one = 1;
    sn_tensor *loss = sn_tensor_new(ctx, 1, &one);
    if (!loss) return NULL;
    bool record = sn_needs_grad(ctx, &logits, 1);
    float *grad = record ? sn_step_alloc(ctx, (size_t)logits->numel * sizeof *grad) : NULL;
    int nt = logits->numel > SN_PAR_MIN ? sn_get_num_threads() : 1;
    double *part = sn_step_alloc(ctx, (size_t)nt * sizeof *part);
    if ((record && !grad) || !part) return NULL;
    double total = total_loss(&pb, grad, part, nt);
    loss->data[0] = den > 0 ? (float)(total / den) : 0.0f;
    if (record) {
        sn_node *node = sn_record(ctx, &cross_entropy_op, loss, &logits, 1, sizeof(ce_saved));
        if (!node) return NULL;
        ((ce_saved *)node->saved)->grad = grad;
    }
    return loss;
}
