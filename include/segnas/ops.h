/* segnas layer 2: differentiable ops.
 *
 * Each builder computes its output now and, when gradients are enabled and
 * an input requires them, records a node on the tape. All return NULL on
 * failure with the reason on the context (see tensor.h), and return NULL at
 * once when given a NULL input.
 *
 * Layouts: activations NHWC {N,H,W,C}; convolution weights HWIO
 * {KH,KW,C_in/groups,C_out}; depthwise weights are the groups == C_in case,
 * {KH,KW,1,C}. Biases, batch-norm parameters and statistics are {C}.
 */
#ifndef SEGNAS_OPS_H
#define SEGNAS_OPS_H

#include "segnas/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- convolution -------------------------------------------------------- */
typedef struct sn_conv_params {
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int dilation_h, dilation_w; /* 1 = no dilation (note: oneDNN counts from 0) */
    int groups;                 /* 1 = dense; C_in = depthwise */
} sn_conv_params;

/* TensorFlow 'SAME' padding for a square kernel k, stride, dilation and
 * input size (H == W not required: uses in_h/in_w). */
sn_conv_params sn_conv_same(int k, int stride, int dilation, int groups, int64_t in_h, int64_t in_w);

/* y = conv(x, w) + b. b may be NULL. Dispatches to oneDNN or to our own
 * NHWC depthwise kernels (dilated depthwise, and backward of 5x5 depthwise,
 * where oneDNN 2.6 has no fast path). */
sn_tensor *sn_conv2d(sn_ctx *ctx, sn_tensor *x, sn_tensor *w, sn_tensor *b, const sn_conv_params *p);

/* ---- pooling ------------------------------------------------------------ */
typedef enum sn_pool_kind { SN_POOL_MAX, SN_POOL_AVG } sn_pool_kind;
/* k x k window, stride, symmetric-or-SAME padding given explicitly.
 * Average pooling excludes padded cells from the count (TF 'SAME'). */
sn_tensor *sn_pool2d(sn_ctx *ctx, sn_tensor *x, sn_pool_kind kind, int k, int stride, int pad_top,
                     int pad_left, int pad_bottom, int pad_right);
/* 3x3 'SAME' pooling with the given stride, as the search operators use. */
sn_tensor *sn_pool3x3_same(sn_ctx *ctx, sn_tensor *x, sn_pool_kind kind, int stride);
/* {N,H,W,C} -> {N,1,1,C} */
sn_tensor *sn_global_avg_pool(sn_ctx *ctx, sn_tensor *x);

/* ---- normalisation ------------------------------------------------------ */
/* Batch norm over N,H,W per channel. gamma/beta may be NULL (affine=false).
 * training: normalise with batch statistics and update the running ones:
 * running = (1 - momentum) * running + momentum * batch (unbiased variance).
 * Otherwise normalise with the running statistics. */
sn_tensor *sn_batch_norm(sn_ctx *ctx, sn_tensor *x, sn_tensor *gamma, sn_tensor *beta,
                         sn_tensor *running_mean, sn_tensor *running_var, bool training,
                         float momentum, float eps);

/* ---- elementwise and combination ---------------------------------------- */
sn_tensor *sn_relu(sn_ctx *ctx, sn_tensor *x);
sn_tensor *sn_add(sn_ctx *ctx, sn_tensor *a, sn_tensor *b);     /* same shapes */
sn_tensor *sn_mul(sn_ctx *ctx, sn_tensor *a, sn_tensor *b);     /* same shapes */
/* y = s * x with s a one-element tensor (e.g. a learnable scalar). */
sn_tensor *sn_scale(sn_ctx *ctx, sn_tensor *x, sn_tensor *s);
/* The mixed op: y = sum_i softmax(logits)_i * xs[i]; logits has n elements.
 * xs[i] == NULL stands for the zero op ('none'). At least one non-NULL. */
sn_tensor *sn_weighted_sum(sn_ctx *ctx, int n, sn_tensor *const *xs, sn_tensor *logits);
/* y = sum_i coef[i]->data[index[i]] * xs[i]: a sum weighted by single
 * elements of other tensors (e.g. Auto-DeepLab's beta, whose softmax groups
 * run over a node's OUTGOING transitions while the sum runs over its
 * incoming ones). Gradients flow to xs and to those coefficient elements.
 * All xs the same shape; at least one. */
sn_tensor *sn_linear_combination(sn_ctx *ctx, int n, sn_tensor *const *xs, sn_tensor *const *coef,
                                 const int *index);
/* Concatenation along the last (channel) axis. */
sn_tensor *sn_concat(sn_ctx *ctx, int n, sn_tensor *const *xs);
/* Bilinear resize of {N,H,W,C} to {N,out_h,out_w,C}. align_corners as in
 * PyTorch/TF: true maps corner pixel centres onto each other. */
sn_tensor *sn_resize_bilinear(sn_ctx *ctx, sn_tensor *x, int64_t out_h, int64_t out_w, bool align_corners);
/* Softmax over the last axis. */
sn_tensor *sn_softmax(sn_ctx *ctx, sn_tensor *x);
/* Mean softmax cross-entropy of logits {N,H,W,K} against labels (N*H*W
 * bytes, class index or `ignore_label`). class_weights (K floats) may be NULL;
 * with weights the mean is weighted (sum w_y * nll / sum w_y), as PyTorch.
 * Returns a one-element tensor; a label >= K that is not ignore_label is an
 * error naming the value. All pixels ignored gives loss 0. */
sn_tensor *sn_softmax_cross_entropy(sn_ctx *ctx, sn_tensor *logits, const uint8_t *labels,
                                    int ignore_label, const float *class_weights);
/* Sum of all elements to a one-element tensor (used by losses and tests). */
sn_tensor *sn_sum(sn_ctx *ctx, sn_tensor *x);

/* ---- matrices ------------------------------------------------------------ */
/* Batched matrix product on the last two axes: a {B,M,K} (or {M,K}) times
 * b {B,K,N} -> {B,M,N}; trans_a/trans_b read a/b transposed. */
sn_tensor *sn_matmul(sn_ctx *ctx, sn_tensor *a, sn_tensor *b, bool trans_a, bool trans_b);

/* ---- regularisation -------------------------------------------------------- */
/* Inverted dropout: zero with probability p, scale the rest by 1/(1-p). */
sn_tensor *sn_dropout(sn_ctx *ctx, sn_tensor *x, float p, sn_rng *rng);
/* Drop path: per sample (first axis), keep with keep_prob and scale by
 * 1/keep_prob, else zero. */
sn_tensor *sn_drop_path(sn_ctx *ctx, sn_tensor *x, float keep_prob, sn_rng *rng);

/* Name of the implementation oneDNN chose for the last primitive that the
 * op kind `op` ("conv_fwd", "conv_bwd_data", ...) created, for benchmarks
 * to print; "" if none. */
const char *sn_impl_name(sn_ctx *ctx, const char *op);

/* ---- ops of the context and graph heads (helper "heads", issue 6) ---------- */
/* Adaptive average pooling {N,H,W,C} -> {N,out_h,out_w,C}: output cell i
 * averages rows [floor(i H/out_h), ceil((i+1) H/out_h)), likewise columns
 * (PyTorch's AdaptiveAvgPool2d; PSPNet's pyramid bins). 1 <= out <= in. */
sn_tensor *sn_adaptive_avg_pool2d(sn_ctx *ctx, sn_tensor *x, int64_t out_h, int64_t out_w);
/* Gaussian soft-assignment logits (GCU, Li & Gupta 2018, Eq. 1): x {...,C},
 * centres and sigma {K,C} -> {...,K} with
 * logit_ik = -1/2 sum_c ((x_ic - centres_kc) / sigma_kc)^2.
 * A softmax over the last axis gives the assignment q. */
sn_tensor *sn_gaussian_logits(sn_ctx *ctx, sn_tensor *x, sn_tensor *centres, sn_tensor *sigma);
/* Mean scaled residual per centre (GCU Eq. 2; NetVLAD with sigma = 1):
 * x {B,P,C}, q {B,P,K} (positive mass per centre), centres/sigma {K,C} ->
 * z {B,K,C}, z'_k = sum_i q_ik (x_i - w_k) / sigma_k / sum_i q_ik, and
 * z_k = z'_k / ||z'_k|| when normalize. */
sn_tensor *sn_soft_residual_mean(sn_ctx *ctx, sn_tensor *x, sn_tensor *q, sn_tensor *centres, sn_tensor *sigma,
                                 bool normalize);

#ifdef __cplusplus
}
#endif
#endif
