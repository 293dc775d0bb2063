/* segnas layer 3: modules built from ops.
 *
 * A module is a plain struct holding its parameters (persistent tensors) and
 * configuration, with an `_init` that creates the parameters through an
 * sn_nn_builder (which names them and collects them for the optimiser and
 * checkpoints) and a `_forward` that records ops on the tape.
 *
 * Conventions: NHWC activations, HWIO conv weights; `training` selects batch
 * statistics (and updates running ones) in batch norm. */
#ifndef SEGNAS_NN_H
#define SEGNAS_NN_H

#include "segnas/ops.h"
#include "segnas/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameter collections ---------------------------------------------- */
typedef struct sn_param_set {
    sn_tensor **items;
    int n, cap;
} sn_param_set;

int sn_param_set_add(sn_param_set *s, sn_tensor *t); /* 0 or SN_ERR_NOMEM */
void sn_param_set_free(sn_param_set *s);
int64_t sn_param_set_numel(const sn_param_set *s);
/* The tensor named `name`, or NULL. */
sn_tensor *sn_param_set_find(const sn_param_set *s, const char *name);

/* Creates named parameters under a path prefix ("cell3.edge5.sep3.dw1") and
 * collects them: learnable weights into `params`, batch-norm statistics into
 * `buffers`. Initialisation draws from `rng`. */
typedef struct sn_nn_builder {
    sn_ctx *ctx;
    sn_rng *rng;
    sn_param_set *params;
    sn_param_set *buffers;
    char prefix[192];
} sn_nn_builder;

/* Appends ".name" (or "name" at the root) to the prefix; returns the old
 * length for sn_nn_pop. printf-style. */
size_t sn_nn_push(sn_nn_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sn_nn_pop(sn_nn_builder *b, size_t old_len);
/* A parameter named prefix.leaf, zero-filled; NULL with ctx failed. */
sn_tensor *sn_nn_param(sn_nn_builder *b, const char *leaf, int ndim, const int64_t *shape);
sn_tensor *sn_nn_buffer(sn_nn_builder *b, const char *leaf, int ndim, const int64_t *shape);

/* ---- convolution and batch norm --------------------------------------------- */
typedef struct sn_conv {
    sn_tensor *w, *b; /* b may be NULL */
    int k, stride, dilation, groups;
    int64_t c_in, c_out;
} sn_conv;

/* He-normal weights (fan_in, gain sqrt(2)), zero bias. 'SAME' padding. */
int sn_conv_init(sn_nn_builder *b, sn_conv *m, int64_t c_in, int64_t c_out, int k, int stride,
                 int dilation, int groups, bool bias);
sn_tensor *sn_conv_forward(sn_ctx *ctx, const sn_conv *m, sn_tensor *x);

typedef struct sn_bn {
    sn_tensor *gamma, *beta; /* NULL when not affine */
    sn_tensor *mean, *var;   /* running statistics (buffers) */
    float momentum, eps;
} sn_bn;

/* gamma = 1, beta = 0, running mean 0 and var 1; momentum 0.1 (PyTorch
 * convention, = 1 - TF decay 0.9), eps 1e-5. */
int sn_bn_init(sn_nn_builder *b, sn_bn *m, int64_t c, bool affine);
sn_tensor *sn_bn_forward(sn_ctx *ctx, const sn_bn *m, sn_tensor *x, bool training);

/* [ReLU] -> conv -> BN [-> ReLU]: the building brick of every cell op. */
typedef struct sn_conv_bn {
    sn_conv conv;
    sn_bn bn;
    bool relu_before, relu_after;
} sn_conv_bn;

int sn_conv_bn_init(sn_nn_builder *b, sn_conv_bn *m, int64_t c_in, int64_t c_out, int k, int stride,
                    int dilation, int groups, bool relu_before, bool relu_after, bool affine);
sn_tensor *sn_conv_bn_forward(sn_ctx *ctx, const sn_conv_bn *m, sn_tensor *x, bool training);

/* ---- the Auto-DeepLab cell operators (official definitions, DESIGN.md) ---
 * sep_conv_kxk: (ReLU, depthwise kxk, pointwise 1x1, BN) twice, stride on the
 * first depthwise; atrous_kxk: ReLU, dense kxk conv rate 2, BN (with stride
 * 2 the input is first resized by 0.5 and the rate is 1, as the official
 * code does); pools: 3x3 'SAME' with the stride; skip_connect: identity, or
 * ReLU-1x1 conv-BN with stride 2; a 1x1 conv + BN follows a pool and replaces
 * the identity wherever channel counts differ; none: zero (NULL output). */
typedef struct sn_cell_op_module {
    int kind; /* sn_cell_op of segnas/search.h */
    int stride;
    int64_t c_in, c_out;
    sn_conv_bn dw1, pw1, dw2, pw2; /* sep conv (dw has no BN: pw's BN serves both) */
    sn_conv_bn main;               /* atrous conv, or the 1x1 projection */
    bool has_proj;
} sn_cell_op_module;

int sn_cell_op_init(sn_nn_builder *b, sn_cell_op_module *m, int kind, int64_t c_in, int64_t c_out,
                    int stride, bool affine);
/* NULL output for 'none' is not an error: check sn_ctx_status for failures. */
sn_tensor *sn_cell_op_forward(sn_ctx *ctx, const sn_cell_op_module *m, sn_tensor *x, bool training);

/* Counts of what a module costs, accumulated by the *_cost functions of
 * the models layer: parameters and multiply-adds of one forward pass. */
typedef struct sn_cost {
    int64_t params;
    double madds;
} sn_cost;

/* Multiply-adds of a convolution producing out_h x out_w (batch 1). */
double sn_conv_madds(const sn_conv *m, int64_t out_h, int64_t out_w);
int64_t sn_conv_params_count(const sn_conv *m);

#ifdef __cplusplus
}
#endif
#endif
