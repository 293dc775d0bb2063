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

#ifdef __cplusplus
}
#endif
#endif
