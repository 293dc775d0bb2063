/* The Auto-DeepLab cell search space: operator names, edge numbering,
 * space size and the decoding of alpha (section 4.3 of the paper). */
#include <math.h>
#include <string.h>

#include "segnas/search.h"

static const char *const op_names[SN_CELL_OP_COUNT] = {
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "atrous_3x3", "atrous_5x5",
};

const char *sn_cell_op_name(int op)
{
    return op >= 0 && op < SN_CELL_OP_COUNT ? op_names[op] : "?";
}

int sn_cell_op_parse(const char *name)
{
    for (int i = 0; i < SN_CELL_OP_COUNT; i++)
        if (!strcmp(op_names[i], name)) return i;
    return -1;
}

int sn_cell_block_first_edge(int block)
{
    /* sum_{i<block} (i+2) */
    return block * (block + 3) / 2;
}

int sn_cell_edge_count(int n_blocks) { return sn_cell_block_first_edge(n_blocks); }

double sn_space_cells(int n_blocks, int n_ops)
{
    double n = 1;
    for (int i = 0; i < n_blocks; i++) n *= pow((double)(i + 2) * n_ops, 2);
    return n;
}

/* softmax(logits)[k] for the edge's n_ops logits. */
static void softmax(const float *logits, int n, double *p)
{
    double m = logits[0], s = 0;
    for (int k = 1; k < n; k++) m = fmax(m, logits[k]);
    for (int k = 0; k < n; k++) s += p[k] = exp(logits[k] - m);
    for (int k = 0; k < n; k++) p[k] /= s;
}

void sn_cell_decode(const float *alpha_logits, int n_blocks, int n_ops, sn_cell_genotype *out)
{
    memset(out, 0, sizeof *out);
    out->n_blocks = n_blocks;
    for (int b = 0; b < n_blocks; b++) {
        int n_in = b + 2, first = sn_cell_block_first_edge(b);
        double strength[SN_MAX_BLOCKS + 2];
        int best_op[SN_MAX_BLOCKS + 2];
        for (int j = 0; j < n_in; j++) {
            double p[SN_CELL_OP_COUNT] = {0};
            softmax(alpha_logits + (size_t)(first + j) * n_ops, n_ops, p);
            best_op[j] = 1;
            for (int k = 2; k < n_ops; k++) /* op 0 = none never wins */
                if (p[k] > p[best_op[j]]) best_op[j] = k;
            strength[j] = p[best_op[j]];
        }
        /* Top-2 inputs by strength; strict > keeps the lower index on ties. */
        int first_pick = 0;
        for (int j = 1; j < n_in; j++)
            if (strength[j] > strength[first_pick]) first_pick = j;
        int second = first_pick == 0 ? 1 : 0;
        for (int j = 0; j < n_in; j++)
            if (j != first_pick && strength[j] > strength[second]) second = j;
        out->input[b][0] = first_pick, out->op[b][0] = best_op[first_pick];
        out->input[b][1] = second, out->op[b][1] = best_op[second];
    }
}
