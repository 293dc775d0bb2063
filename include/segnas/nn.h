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
/* The same when the caller has already applied the module's ReLU-before to x
 * (shared by several modules reading one input). */
sn_tensor *sn_conv_bn_forward_after_relu(sn_ctx *ctx, const sn_conv_bn *m, sn_tensor *x_relu, bool training);

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
/* Whether the operator begins with ReLU(x) (the sep convs, the stride-1
 * atrous convs, the projecting skip_connect): callers running several
 * operators on one x compute that ReLU once and pass it as x_relu (saves a
 * pass and an activation per operator; NULL: the operator computes it).
 * NULL output for 'none' is not an error: check sn_ctx_status for failures. */
bool sn_cell_op_starts_with_relu(const sn_cell_op_module *m);
sn_tensor *sn_cell_op_forward(sn_ctx *ctx, const sn_cell_op_module *m, sn_tensor *x, sn_tensor *x_relu,
                              bool training);

/* Counts of what a module costs, accumulated by the *_cost functions of
 * the models layer: parameters and multiply-adds of one forward pass. */
typedef struct sn_cost {
    int64_t params;
    double madds;
} sn_cost;

/* Multiply-adds of a convolution producing out_h x out_w (batch 1). */
double sn_conv_madds(const sn_conv *m, int64_t out_h, int64_t out_w);
int64_t sn_conv_params_count(const sn_conv *m);

/* ==== Context and graph-reasoning heads (helper "heads", issue 6) ========
 * Drop-in replacements for ASPP: every head maps {N,H,W,C_in} to
 * {N,H,W,C_out}. The graph heads follow the three steps of the seed notes
 * (pixels to entities, reasoning over entities, entities back to pixels),
 * computed in the {N, HW, C} matrix form with sn_matmul.
 *
 * *_cost: batch 1 at an h x w input; madds count the convolutions and matrix
 * products (softmax, normalisation, pooling, resizing and elementwise work
 * are not counted); params count every learnable tensor (batch-norm gamma
 * and beta included, running statistics not). Where C_in != C_out the
 * residual goes through a 1x1 projection without bias. */

/* A^2-Net double attention (Chen et al., NeurIPS 2018): gather
 * G = softmax_HW(theta(X))^T phi(X) (K global descriptors of c_mid
 * channels), distribute Z = softmax_K(rho(X)) G, then a 1x1 conv back to
 * c_out plus the residual. O(HW C K). theta has no bias: a per-descriptor
 * constant does not change a softmax over HW. */
typedef struct sn_a2_head {
    sn_conv phi, theta, rho, out, proj;
    bool has_proj;
    int64_t c_in, c_out, c_mid, k;
} sn_a2_head;
int sn_a2_init(sn_nn_builder *b, sn_a2_head *m, int64_t c_in, int64_t c_out, int64_t c_mid, int64_t k);
sn_tensor *sn_a2_forward(sn_ctx *ctx, const sn_a2_head *m, sn_tensor *x, bool training);
sn_cost sn_a2_cost(const sn_a2_head *m, int64_t h, int64_t w);

/* Non-local block, embedded Gaussian (Wang et al., CVPR 2018), for
 * comparison: Y = softmax(theta(X) phi(X)^T) g(X) over all HW x HW pixel
 * pairs, a 1x1 conv back to c_out, plus the residual. O((HW)^2 (C + K)). */
typedef struct sn_nonlocal_head {
    sn_conv theta, phi, g, out, proj;
    bool has_proj;
    int64_t c_in, c_out, c_mid, k;
} sn_nonlocal_head;
int sn_nonlocal_init(sn_nn_builder *b, sn_nonlocal_head *m, int64_t c_in, int64_t c_out, int64_t c_mid, int64_t k);
sn_tensor *sn_nonlocal_forward(sn_ctx *ctx, const sn_nonlocal_head *m, sn_tensor *x, bool training);
sn_cost sn_nonlocal_cost(const sn_nonlocal_head *m, int64_t h, int64_t w);

/* GloRe unit (Chen et al., CVPR 2019): state reduction X_s = conv(X) (state
 * channels), projection B = conv(X) to `nodes` nodes, V = B^T X_s, graph
 * convolution Z = relu(((I - A_g) V) W_g) with A_g {nodes,nodes} and W_g
 * {state,state} learned (the paper's two 1-D convs, kernel 1), reprojection
 * B Z, 1x1 conv to c_out, batch norm, plus the residual. */
typedef struct sn_glore_head {
    sn_conv state, project, extend, proj;
    sn_bn bn;
    sn_tensor *adj, *wg; /* A_g, W_g */
    bool has_proj;
    int64_t c_in, c_out, nodes, state_channels;
} sn_glore_head;
int sn_glore_init(sn_nn_builder *b, sn_glore_head *m, int64_t c_in, int64_t c_out, int64_t nodes,
                  int64_t state_channels);
sn_tensor *sn_glore_forward(sn_ctx *ctx, const sn_glore_head *m, sn_tensor *x, bool training);
sn_cost sn_glore_cost(const sn_glore_head *m, int64_t h, int64_t w);

/* Graph Convolution Units (Li & Gupta, "Beyond Grids", NeurIPS 2018). One
 * unit of V vertices: Gaussian soft assignment q = softmax_V(-||(x - w_k) /
 * sigma_k||^2 / 2) (centres w and scales sigma learned, {V,C_in}),
 * normalised mean residuals Z {V,C_in}, adjacency A = Z Z^T (cosine
 * similarities, as the paper), graph convolution Z~ = relu(A Z W_g),
 * reprojection X~ = Q Z~. The head runs units of 2, 4, 8, 32 vertices
 * (by default), concatenates their outputs with the input and maps to c_out
 * with a 1x1 conv. */
#define SN_GCU_MAX_UNITS 8
typedef struct sn_gcu_unit {
    sn_tensor *centres, *sigma, *wg;
    int64_t vertices;
} sn_gcu_unit;
typedef struct sn_gcu_head {
    sn_gcu_unit units[SN_GCU_MAX_UNITS];
    int n_units;
    sn_conv fuse;
    int64_t c_in, c_out, c_unit;
} sn_gcu_head;
/* vertices: n_units counts (NULL: {2, 4, 8, 32} and n_units 4); c_unit:
 * output channels of each unit. */
int sn_gcu_init(sn_nn_builder *b, sn_gcu_head *m, int64_t c_in, int64_t c_out, int n_units, const int *vertices,
                int64_t c_unit);
sn_tensor *sn_gcu_forward(sn_ctx *ctx, const sn_gcu_head *m, sn_tensor *x, bool training);
sn_cost sn_gcu_cost(const sn_gcu_head *m, int64_t h, int64_t w);

/* Symbolic Graph Reasoning (Liang et al., NeurIPS 2018) over M symbolic
 * nodes with a PRIOR adjacency (e.g. class co-occurrence from
 * `segnas data inspect --cooccurrence`), normalised to D^-1/2 A D^-1/2:
 *   voting      a_{x->n} = softmax_n(W_a^T x), H^ps = sum_x a x W^ps  {M,D}
 *   reasoning   H^g = relu(A^g B W^g), B = relu(H^ps)  (no linguistic
 *               embeddings: the paper's B = [relu(H^ps), S] without S)
 *   mapping     a_{h->x} = softmax_n(score(h_n, x)), X' = relu(A^sp H^g W^sp)
 *               + X.
 * The paper's score W^s^T [h, x] is linear: under a softmax over nodes its
 * x part cancels and every pixel would get the same weights, so the score
 * here is bilinear, (x W_sx) . (h W_sh), with an e-dimensional embedding. */
typedef struct sn_sgr_head {
    sn_conv vote, proj;
    sn_tensor *w_ps, *w_g, *w_sx, *w_sh, *w_sp;
    sn_tensor *adj; /* normalised prior, a buffer */
    bool has_proj;
    int64_t c_in, c_out, nodes, d, e;
} sn_sgr_head;
/* adjacency: nodes x nodes, row-major, non-negative (NULL: identity). */
int sn_sgr_init(sn_nn_builder *b, sn_sgr_head *m, int64_t c_in, int64_t c_out, int64_t nodes, int64_t d,
                int64_t e, const float *adjacency);
sn_tensor *sn_sgr_forward(sn_ctx *ctx, const sn_sgr_head *m, sn_tensor *x, bool training);
sn_cost sn_sgr_cost(const sn_sgr_head *m, int64_t h, int64_t w);

/* PSPNet pyramid pooling (Zhao et al., CVPR 2017): adaptive average pooling
 * to 1, 2, 3, 6 bins (capped at the input size), 1x1 conv-BN-ReLU to
 * c_branch each, bilinear upsampling (align_corners), concatenation with
 * the input, 3x3 conv-BN-ReLU to c_out. */
#define SN_PPM_LEVELS 4
typedef struct sn_ppm_head {
    sn_conv_bn branch[SN_PPM_LEVELS], fuse;
    int bins[SN_PPM_LEVELS];
    int64_t c_in, c_out, c_branch;
} sn_ppm_head;
int sn_ppm_init(sn_nn_builder *b, sn_ppm_head *m, int64_t c_in, int64_t c_out, int64_t c_branch);
sn_tensor *sn_ppm_forward(sn_ctx *ctx, const sn_ppm_head *m, sn_tensor *x, bool training);
sn_cost sn_ppm_cost(const sn_ppm_head *m, int64_t h, int64_t w);
/* ==== end of the heads section ================================================ */

#ifdef __cplusplus
}
#endif
#endif
