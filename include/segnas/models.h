/* segnas layer 5: discrete networks built from a genotype.
 *
 * The Auto-DeepLab network (Liu et al., CVPR 2019, section 5 / Fig. 3) as the
 * official code builds it (tensorflow/models research/deeplab/core
 * nas_network.py `_nas_stem`, `_build_nas_base`; nas_cell.py `NASBaseCell`;
 * research/deeplab/model.py for ASPP and the DeepLabv3+ decoder):
 *   stem: conv 3x3 s2 64-BN-ReLU, conv 3x3 64-BN, ReLU, conv 3x3 s2 128-BN;
 *   one cell per layer along genotype.path, block width F*2^level, cell
 *   output the B blocks concatenated;
 *   ReLU, ASPP (1x1, three dense 3x3 atrous, image pooling; 256 channels,
 *   concat, 1x1 projection), DeepLabv3+ decoder on the stride-4 feature
 *   (48-channel 1x1 projection, two dense 3x3 convs of 256), classifier,
 *   bilinear upsampling to the input.
 * Any genotype (any path length, any cell) can be built. */
#ifndef SEGNAS_MODELS_H
#define SEGNAS_MODELS_H

#include <stdbool.h>
#include <stdint.h>

#include "segnas/nn.h"
#include "segnas/search.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The context module after the backbone (issue 6): ASPP, as the paper, or
 * one of the context / graph-reasoning heads of segnas/nn.h, each mapping
 * the last cell's output to aspp_channels for the decoder. */
typedef enum sn_head_kind {
    SN_HEAD_ASPP,
    SN_HEAD_PPM,
    SN_HEAD_GLORE,
    SN_HEAD_A2,
    SN_HEAD_GCU,
    SN_HEAD_SGR,
    SN_HEAD_NONLOCAL,
    SN_HEAD_COUNT
} sn_head_kind;

/* "aspp", "ppm", "glore", "a2", "gcu", "sgr", "nonlocal"; "?" otherwise. */
const char *sn_head_name(int kind);
/* The kind named `name`, or -1. */
int sn_head_parse(const char *name);

typedef struct sn_model_config {
    sn_genotype genotype;       /* path, cell and F (genotype.filter_multiplier) */
    int n_classes;              /* default 19 (Cityscapes) */
    int stem_channels;          /* 64: the stem ends with 2x this */
    int aspp_channels;          /* 256 */
    int decoder_low_channels;   /* 48: projection of the stride-4 feature */
    int decoder_channels;       /* 256 */
    bool decoder;               /* false: logits from ASPP, upsampled directly */
    float aspp_dropout;         /* 0.1 after the ASPP projection (model.py keep 0.9) */
    float drop_path_keep_prob;  /* 1 = no drop path (nas_network.py config) */
    int64_t total_steps;        /* for the drop-path schedule */
    int head;                   /* sn_head_kind; default SN_HEAD_ASPP */
    /* SGR's prior adjacency, n_classes x n_classes row-major (e.g. the
     * co-occurrence matrix of `segnas data inspect`); NULL = identity. Read
     * by sn_model_init only (the normalised copy is a buffer of the model). */
    const float *sgr_adjacency;
} sn_model_config;

/* Defaults above for genotype g (copied). */
void sn_model_config_default(sn_model_config *c, const sn_genotype *g);

/* S / M / L of the paper's Table 2: F = 20 / 32 / 48; 0 for other letters. */
int sn_model_variant_filters(char variant);

/* Geometry of cell l, derived from the genotype (shared by the builder and
 * the cost model). */
typedef struct sn_cell_plan {
    int level;             /* path[l] */
    int stride;            /* 2 when going down a level, else 1 */
    bool up;               /* H^{l-1} resized x2 before the cell */
    int64_t c;             /* block width F*2^level */
    int64_t c_prev;        /* channels of H^{l-1} */
    int64_t c_prev_prev;   /* channels of H^{l-2} */
    bool prev_prev_proj;   /* ReLU-1x1-BN on H^{l-2} (channels differ from c) */
} sn_cell_plan;

/* Validates the genotype (names the bad field) and fills plans[0..n_layers). */
int sn_model_plan(sn_ctx *ctx, const sn_model_config *c, sn_cell_plan *plans);

typedef struct sn_model_cell {
    sn_cell_plan plan;
    sn_conv_bn pre_prev;      /* H^{l-1}: ReLU-1x1-BN to c ('1x1', 'beginning_bn') */
    sn_conv_bn pre_prev_prev; /* H^{l-2}: ReLU-1x1-BN when prev_prev_proj */
    sn_cell_op_module ops[SN_MAX_BLOCKS][2];
} sn_model_cell;

/* ASPP (DeepLabv3, model.py `_extract_features`): 1x1, three dense 3x3
 * atrous convs and image pooling, each conv-BN-ReLU to `c`; concatenation
 * and a 1x1 conv-BN-ReLU projection. */
typedef struct sn_aspp {
    sn_conv_bn b1x1, b3x3[3], pool, proj;
    int rates[3];
    int64_t c_in, c;
} sn_aspp;

/* Rates 6, 12, 18 at output stride 16, scaled by 16 / output_stride (at
 * least 1): 12, 24, 36 at 8. */
void sn_aspp_rates(int output_stride, int rates[3]);
int sn_aspp_init(sn_nn_builder *b, sn_aspp *m, int64_t c_in, int64_t c, int output_stride);
sn_tensor *sn_aspp_forward(sn_ctx *ctx, const sn_aspp *m, sn_tensor *x, bool training);

/* DeepLabv3+ decoder (model.py `refine_by_decoder`): 1x1 conv-BN-ReLU of
 * the low-level feature to c_low, the ASPP output resized to it, concat,
 * two dense 3x3 conv-BN-ReLU of c, then the 1x1 classifier (with bias). */
typedef struct sn_decoder {
    sn_conv_bn low_proj, conv[2];
    sn_conv classifier;
} sn_decoder;

int sn_decoder_init(sn_nn_builder *b, sn_decoder *m, int64_t c_aspp, int64_t c_low_in, int64_t c_low, int64_t c,
                    int n_classes);
/* Logits at the low-level feature's size. */
sn_tensor *sn_decoder_forward(sn_ctx *ctx, const sn_decoder *m, sn_tensor *aspp_out, sn_tensor *low,
                              bool training);

/* One non-ASPP context head (only the member of `kind` is built). Widths
 * from the head's output width c (context_head.c says why): PPM branches
 * c/4; GloRe c/4 nodes of c/2 state channels; A2 c/4 descriptors of c/4
 * channels; GCU units of 2, 4, 8, 32 vertices, c/4 channels each; SGR one
 * node per class, d = e = c/4; non-local c/2 embedding and value channels. */
typedef struct sn_context_head {
    int kind;
    sn_ppm_head ppm;
    sn_glore_head glore;
    sn_a2_head a2;
    sn_gcu_head gcu;
    sn_sgr_head sgr;
    sn_nonlocal_head nonlocal;
} sn_context_head;

int sn_context_head_init(sn_nn_builder *b, sn_context_head *m, int kind, int64_t c_in, int64_t c_out, int n_classes,
                         const float *sgr_adjacency);
sn_tensor *sn_context_head_forward(sn_ctx *ctx, const sn_context_head *m, sn_tensor *x, bool training);
sn_cost sn_context_head_cost(const sn_context_head *m, int64_t h, int64_t w);

typedef struct sn_model {
    sn_model_config cfg;
    sn_conv_bn stem[3];
    sn_model_cell *cells;      /* n_layers */
    int low_level_cell;        /* last cell at level 0 (decoder input); -1 = the stem */
    sn_aspp aspp;              /* cfg.head == SN_HEAD_ASPP */
    sn_context_head context;   /* any other head */
    sn_decoder decoder;
    sn_conv classifier;        /* only without the decoder */
    sn_param_set weights, buffers;
} sn_model;

int sn_model_init(sn_ctx *ctx, sn_model *m, const sn_model_config *cfg, uint64_t seed);
void sn_model_free(sn_model *m);

/* How one forward pass runs. training: batch statistics in BN (running ones
 * updated). Dropout and drop path run only when training and rng != NULL. */
typedef struct sn_model_run {
    bool training;
    int64_t step;  /* global training step, for the drop-path schedule */
    sn_rng *rng;
} sn_model_run;

/* Logits {N,H,W,n_classes} at the input size for images {N,H,W,3}. */
sn_tensor *sn_model_forward(sn_ctx *ctx, const sn_model *m, sn_tensor *images, const sn_model_run *run);

/* Keep probability of drop path in cell `cell` at `step` (nas_cell.py
 * `_apply_drop_path`): p_c = 1 - (cell+1)/L * (1 - p), then
 * 1 - min(1, step/total) * (1 - p_c). */
float sn_model_drop_path_keep(const sn_model_config *c, int cell, int64_t step);

/* ---- analytic cost ---------------------------------------------------------
 * Counted from the configuration and the input size, not by running.
 * params: learnable (conv weights and biases, BN scale and shift; not the
 * running statistics). Multiply-adds, batch 1, split by kind: */
typedef struct sn_part_cost {
    int64_t params;
    double conv_madds;   /* convolutions, dense, depthwise and 1x1 */
    double tf_madds;     /* conv_madds as TensorFlow 1.x's profiler counts the official graph, whose dilated
                          * convolutions run on inputs padded to a multiple of the rate (cost.c) */
    double bn_elems;     /* elements through batch norm (one multiply-add each at inference) */
    double resize_elems; /* output elements of bilinear resizes (4 multiply-adds each) */
    double pool_elems;   /* output elements of 3x3 pooling, and inputs of global pooling */
    double add_elems;    /* elements of block sums */
    double madds;        /* the total this project reports: see sn_model_cost */
} sn_part_cost;

typedef enum sn_model_part {
    SN_PART_STEM,
    SN_PART_CELLS,
    SN_PART_ASPP, /* the context head, whichever it is ("head") */
    SN_PART_DECODER,
    SN_PART_COUNT
} sn_model_part;

typedef struct sn_model_cost {
    sn_part_cost part[SN_PART_COUNT];
    sn_part_cost total;
} sn_model_costs;

#define SN_PART_HEAD SN_PART_ASPP

const char *sn_model_part_name(int part);

/* Cost of the network for one in_h x in_w image. A head other than ASPP is
 * counted by its own sn_*_cost (convolutions and matrix products, both in
 * conv_madds; every learnable tensor in params). */
int sn_model_cost(sn_ctx *ctx, const sn_model_config *c, int64_t in_h, int64_t in_w, sn_model_costs *out);

#ifdef __cplusplus
}
#endif
#endif
