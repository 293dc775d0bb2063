/* segnas layer 4: search spaces, decoding and genotypes.
 *
 * Auto-DeepLab (Liu et al., CVPR 2019) indexing used throughout:
 *  - levels 0..n_levels-1 stand for downsample rates 4, 8, 16, 32;
 *  - cell layers 0..L-1; layer 0 takes the stem's stride-4 output and so sits
 *    at level 0 (this gives the paper's 2.9e4 paths for L = 12: the number of
 *    walks of L-1 steps from level 0 that move by at most one level, 28657);
 *  - a transition t (0 <= t < L-1) goes from layer t to layer t+1; its
 *    beta logits are beta[t][s][d] for the source level s and direction
 *    d = 0 (to level s-1, finer), 1 (stay), 2 (to s+1, coarser). The
 *    probabilities are a softmax over the VALID directions of each source
 *    node (Eq. 7 of the paper: the outgoing betas of a node sum to one), so
 *    the top and bottom levels normalise over two directions;
 *  - a cell has B blocks; block i has i+2 candidate inputs: 0 = H^{l-2},
 *    1 = H^{l-1}, 2+j = block j; edges are numbered block by block,
 *    input by input (2+3+4+5+6 = 20 edges for B = 5).
 */
#ifndef SEGNAS_SEARCH_H
#define SEGNAS_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segnas/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SN_MAX_LAYERS 64
#define SN_MAX_BLOCKS 8
#define SN_MAX_LEVELS 6

/* The Auto-DeepLab cell operators (official definitions, DESIGN.md). */
typedef enum sn_cell_op {
    SN_CELL_NONE,
    SN_CELL_MAX_POOL_3X3,
    SN_CELL_AVG_POOL_3X3,
    SN_CELL_SKIP_CONNECT,
    SN_CELL_SEP_CONV_3X3,
    SN_CELL_SEP_CONV_5X5,
    SN_CELL_ATROUS_3X3,
    SN_CELL_ATROUS_5X5,
    SN_CELL_OP_COUNT
} sn_cell_op;

const char *sn_cell_op_name(int op);
/* -1 if unknown. */
int sn_cell_op_parse(const char *name);

/* Number of mixed edges of a B-block cell: sum_{i<B} (i+2). */
int sn_cell_edge_count(int n_blocks);
/* First edge index of block i. */
int sn_cell_block_first_edge(int block);

/* Search-space sizes (as doubles: 5.6e14 does not fit an int32). Paths:
 * walks of L-1 transitions from level 0 within n_levels. Cells: each block
 * picks two (input, op) pairs independently, prod_i ((i+2) * n_ops)^2. */
double sn_space_paths(int n_layers, int n_levels);
double sn_space_cells(int n_blocks, int n_ops);

/* True if direction d is valid from level s in a trellis of n_levels. */
bool sn_transition_valid(int s, int d, int n_levels);

/* Viterbi decoding of the network level (section 4.3): the path of
 * maximum product of transition probabilities. beta_logits has
 * (n_layers-1) * n_levels * 3 floats laid out [t][s][d]; invalid entries are
 * ignored. Writes path[0..n_layers-1] (levels; path[0] = 0) and returns the
 * log-probability of the path. */
double sn_viterbi_decode(const float *beta_logits, int n_layers, int n_levels, int *path);

/* Log-probability of a given path under beta (for tests and reports);
 * -INFINITY if the path is not a valid walk from level 0. */
double sn_path_log_prob(const float *beta_logits, int n_layers, int n_levels, const int *path);

/* A decoded cell: per block two (input, op) pairs. */
typedef struct sn_cell_genotype {
    int n_blocks;
    int input[SN_MAX_BLOCKS][2];
    int op[SN_MAX_BLOCKS][2];
} sn_cell_genotype;

/* Cell decoding (section 4.3, as DARTS): alpha_logits has
 * edge_count * n_ops floats, softmax per edge over all ops (none
 * included). Per block, keep the 2 inputs with the strongest non-none
 * probability and, for each, the argmax non-none operator. Ties break
 * towards the lower index. n_ops must be SN_CELL_OP_COUNT with op 0 = none. */
void sn_cell_decode(const float *alpha_logits, int n_blocks, int n_ops, sn_cell_genotype *out);

/* A whole architecture: network-level path plus cell. */
typedef struct sn_genotype {
    int n_layers;
    int n_levels;
    int path[SN_MAX_LAYERS];
    sn_cell_genotype cell;
    int filter_multiplier; /* F */
} sn_genotype;

/* The network found in the paper (official TF `hnasnet`), F = 20 (the -S
 * variant; change filter_multiplier for M = 32, L = 48). */
void sn_genotype_autodeeplab(sn_genotype *g);

/* Genotype JSON (versioned): {"format":"segnas-genotype","version":1,
 * "path":[...],"cell":[[[in,"op"],[in,"op"]],...],"F":20,"levels":4}.
 * Read validates every field and names the offending one. */
int sn_genotype_write_json(const sn_genotype *g, const char *path, char *err, size_t errlen);
int sn_genotype_read_json(const char *path, sn_genotype *g, char *err, size_t errlen);
/* Same, from/to a string (malloc'ed result for to_string). */
char *sn_genotype_to_json(const sn_genotype *g);
int sn_genotype_from_json(const char *text, const char *source_name, sn_genotype *g, char *err, size_t errlen);


/* ---- the Auto-DeepLab supernet (continuous relaxation, Eq. 1-8) ------------ */
typedef struct sn_supernet_config {
    int n_layers;          /* L, default 12 */
    int n_levels;          /* default 4: downsample 4, 8, 16, 32 */
    int n_blocks;          /* B, default 5 */
    int filter_multiplier; /* F, default 8: level s has B*F*2^s channels */
    int n_classes;
    int stem_channels;     /* stem: 3x3 s2 -> C, 3x3 -> C, 3x3 s2 -> 2C; default 64 */
    int aspp_channels;     /* ASPP branch width; 0 = the level's width */
    bool affine;           /* learnable BN scale/shift in the cells (default false, as DARTS) */
    bool recompute;        /* keep only cell outputs; recompute cells in backward (sn_recompute) */
} sn_supernet_config;

void sn_supernet_config_default(sn_supernet_config *c);

typedef struct sn_search_cell {
    int64_t c;                /* block width F*2^s */
    sn_conv_bn pre_prev_prev; /* H^{l-2}: resized to this node, ReLU-1x1-BN to c */
    sn_cell_op_module *ops;   /* n_edges * SN_CELL_OP_COUNT candidates */
} sn_search_cell;

/* Node (layer l, level s). Incoming direction d (as in beta) came from
 * level s-d+1: d = 2 from the finer level (ReLU-3x3 stride-2 conv-BN),
 * d = 1 from the same level (ReLU-1x1-BN), d = 0 from the coarser level
 * (bilinear x2, ReLU-1x1-BN). Each transition also serves as the cell's
 * preprocessing of H^{l-1} to the block width. */
typedef struct sn_trellis_node {
    bool exists;
    bool has_in[3];
    sn_conv_bn transition[3];
    sn_search_cell cell[3];
} sn_trellis_node;

typedef struct sn_aspp_search {
    sn_conv_bn branch_1x1, branch_3x3, branch_pool;
    sn_conv classifier; /* 1x1 over the concatenation, with bias */
} sn_aspp_search;

typedef struct sn_supernet {
    sn_supernet_config cfg;
    sn_conv_bn stem[3];
    sn_trellis_node *nodes; /* n_layers * n_levels */
    sn_aspp_search *aspp;   /* n_levels heads at the last layer */
    sn_tensor *alpha;       /* {n_edges, SN_CELL_OP_COUNT} */
    sn_tensor *beta;        /* {(n_layers-1) * n_levels * 3} */
    sn_param_set weights, arch, buffers;
} sn_supernet;

/* Creates every parameter (He-normal weights; alpha, beta ~ 1e-3 N(0,1) as
 * section 4.2) in the context's persistent arena. */
int sn_supernet_init(sn_ctx *ctx, sn_supernet *net, const sn_supernet_config *cfg, uint64_t seed);
void sn_supernet_free(sn_supernet *net);
/* Logits {N,H,W,n_classes} at the input resolution for images {N,H,W,3}. */
sn_tensor *sn_supernet_forward(sn_ctx *ctx, const sn_supernet *net, sn_tensor *images, bool training);
int64_t sn_supernet_level_channels(const sn_supernet_config *c, int level);
/* The "auto" choice of cfg.recompute for an input of height x width on
 * `threads` threads: on over 160 px (memory), and on with 2+ threads, where
 * the cells of a layer run side by side (sn_recompute_all) and beat keeping
 * every activation (L=12 F=8, batch 2, 2 threads, seconds per weight / arch
 * step: 64x64 0.59 / 0.30 vs 0.74 / 0.40, 128x128 1.24 / 0.81 vs 1.40 / 0.89). */
bool sn_supernet_auto_recompute(int64_t height, int64_t width, int threads);


/* ---- random architectures (the baseline of a search) ------------------------
 * A genotype drawn from the space decoding produces: the path uniformly over
 * all walks of n_layers-1 transitions from level 0 (moves -1/0/+1 within
 * 0..n_levels-1, as sn_viterbi_decode), the cell with per block two
 * distinct uniform inputs, each with a uniform non-none operator.
 * SN_ERR_ARG for sizes outside 1..SN_MAX_LAYERS / SN_MAX_LEVELS /
 * SN_MAX_BLOCKS or filters < 1. */
int sn_genotype_random(sn_genotype *g, int n_layers, int n_levels, int n_blocks, int filters, sn_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
