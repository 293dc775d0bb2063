/* Plain-C, double-precision reference implementations of every op: the test
 * oracles for the fast kernels and the functions that finite differences
 * differentiate. Same layouts as the engine (NHWC, HWIO weights). Written for
 * obviousness, not speed. */
#ifndef SEGNAS_TEST_REF_H
#define SEGNAS_TEST_REF_H

#include <stdbool.h>
#include <stdint.h>

void ref_relu(const double *x, double *y, int64_t n);
void ref_add(const double *a, const double *b, double *y, int64_t n);
void ref_mul(const double *a, const double *b, double *y, int64_t n);

/* y = sum_i coef[i] * xs[i] */
void ref_linear_combination(int n, const double *const *xs, const double *coef, double *y, int64_t numel);

/* Convolution, NHWC input {n,h,w,ci}, HWIO weights {kh,kw,ci/groups,co},
 * optional bias {co}; output {n,oh,ow,co} with
 * oh = (h + pad_t + pad_b - dil_h*(kh-1) - 1) / stride_h + 1 (likewise ow). */
typedef struct ref_conv_shape {
    int64_t n, h, w, ci, co;
    int kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, dil_h, dil_w, groups;
} ref_conv_shape;
int64_t ref_conv_out_h(const ref_conv_shape *s);
int64_t ref_conv_out_w(const ref_conv_shape *s);
void ref_conv2d(const ref_conv_shape *s, const double *x, const double *w, const double *b, double *y);
/* Its gradients for output gradient dy: dx {n,h,w,ci}, dw (HWIO), db {co}
 * (all overwritten). */
void ref_conv2d_backward(const ref_conv_shape *s, const double *x, const double *w, const double *dy, double *dx,
                         double *dw, double *db);

/* Combination ops (helper "combine"). Weighted sum: xs[i] may be NULL (the
 * zero op); all others have numel elements. */
void ref_weighted_sum(int n, const double *const *xs, const double *logits, double *y, int64_t numel);
/* Concatenation along the last axis of n inputs {rows, channels[i]}. */
void ref_concat(int n, const double *const *xs, const int64_t *channels, int64_t rows, double *y);
/* Softmax over the last axis of a {rows, k} array. */
void ref_softmax(const double *x, double *y, int64_t rows, int64_t k);
/* Mean softmax cross-entropy over `pixels` rows of k logits, as PyTorch's
 * CrossEntropyLoss(weight=, ignore_index=); 0 when every pixel is ignored. */
double ref_softmax_ce(const double *logits, const uint8_t *labels, int64_t pixels, int64_t k, int ignore_label,
                      const double *class_weights);
/* c {batch,m,n} = op(a) op(b); a is stored {m,k} ({k,m} if trans_a), per
 * batch when a_batched else shared by every batch; likewise b {k,n}/{n,k}. */
typedef struct ref_matmul_shape {
    int64_t batch, m, k, n;
    bool trans_a, trans_b, a_batched, b_batched;
} ref_matmul_shape;
void ref_matmul(const ref_matmul_shape *s, const double *a, const double *b, double *c);

/* Pooling (helper "poolbn"): k x k window, max or average over the real
 * (unpadded) cells; out = (h + pad_t + pad_b - k) / stride + 1. */
typedef struct ref_pool_shape {
    int64_t n, h, w, c;
    int k, stride, pad_t, pad_l, pad_b, pad_r;
    bool max;
} ref_pool_shape;
int64_t ref_pool_out_h(const ref_pool_shape *s);
int64_t ref_pool_out_w(const ref_pool_shape *s);
void ref_pool2d(const ref_pool_shape *s, const double *x, double *y);
/* {n,h,w,c} -> {n,c} means. */
void ref_global_avg_pool(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c);
/* Batch norm over rows = N*H*W pixels of c channels; gamma/beta may be NULL.
 * Train: batch mean and BIASED variance (written to mean/var). */
void ref_batch_norm_train(const double *x, const double *gamma, const double *beta, double *y, double *mean,
                          double *var, int64_t rows, int64_t c, double eps);
void ref_batch_norm_eval(const double *x, const double *gamma, const double *beta, const double *mean,
                         const double *var, double *y, int64_t rows, int64_t c, double eps);
/* Bilinear resize {n,h,w,c} -> {n,oh,ow,c} with PyTorch's semantics. */
void ref_resize_bilinear(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t oh,
                         int64_t ow, bool align_corners);

/* Head ops (helper "heads"): PyTorch AdaptiveAvgPool2d on NHWC; GCU's
 * Gaussian logits over rows {rows,c} against {k,c} centres and scales; the
 * (normalised) mean residual z {b,k,c} of x {b,p,c} under q {b,p,k}. */
void ref_adaptive_avg_pool2d(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t oh,
                             int64_t ow);
void ref_gaussian_logits(const double *x, const double *centres, const double *sigma, double *y, int64_t rows,
                         int64_t k, int64_t c);
void ref_soft_residual_mean(const double *x, const double *q, const double *centres, const double *sigma,
                            double *z, int64_t b, int64_t p, int64_t k, int64_t c, bool normalize);

/* Helpers append their declarations above this line. */
#endif
