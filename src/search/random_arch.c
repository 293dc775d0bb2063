/* Architectures drawn at random from the Auto-DeepLab space, the baseline
 * a search must beat (the paper's section 5 compares against random
 * search; Li & Talwalkar 2019 show it is a strong one). The space is
 * exactly the one decoding produces (search.h):
 *  - the path: a walk of L-1 transitions from level 0 (as sn_viterbi_decode
 *    assumes) moving by -1, 0 or +1 within 0..n_levels-1
 *    (sn_transition_valid), drawn uniformly over ALL such walks, not by a
 *    uniform choice per step (which would favour paths near the boundary
 *    levels, where fewer directions exist);
 *  - the cell: per block two distinct inputs among H^{l-2}, H^{l-1} and the
 *    earlier blocks, each with a non-none operator (sn_cell_decode). */
#include <string.h>

#include "segnas/search.h"
#include "segnas/tensor.h"

/* completions[t][s]: number of valid walks from (layer t, level s) to the
 * last layer; the uniform path picks each step in proportion to them. */
static void count_completions(int n_layers, int n_levels, double completions[][SN_MAX_LEVELS])
{
    for (int s = 0; s < n_levels; s++) completions[n_layers - 1][s] = 1;
    for (int t = n_layers - 2; t >= 0; t--)
        for (int s = 0; s < n_levels; s++) {
            completions[t][s] = 0;
            for (int d = 0; d < 3; d++)
                if (sn_transition_valid(s, d, n_levels)) completions[t][s] += completions[t + 1][s + d - 1];
        }
}

static void random_path(int n_layers, int n_levels, sn_rng *rng, int *path)
{
    double completions[SN_MAX_LAYERS][SN_MAX_LEVELS];
    count_completions(n_layers, n_levels, completions);
    path[0] = 0;
    for (int t = 0; t + 1 < n_layers; t++) {
        int s = path[t], next = -1;
        double u = sn_rng_uniform(rng) * completions[t][s];
        for (int d = 0; d < 3 && next < 0; d++) {
            if (!sn_transition_valid(s, d, n_levels)) continue;
            u -= completions[t + 1][s + d - 1];
            if (u < 0) next = s + d - 1;
        }
        /* Rounding can leave u at exactly 0 after the last valid direction. */
        for (int d = 2; next < 0 && d >= 0; d--)
            if (sn_transition_valid(s, d, n_levels)) next = s + d - 1;
        path[t + 1] = next;
    }
}

/* An ordered pair of distinct inputs is uniform over ordered pairs, hence
 * over the unordered sets the block sum sees; operators 1..OP_COUNT-1. */
static void random_cell(int n_blocks, sn_rng *rng, sn_cell_genotype *cell)
{
    cell->n_blocks = n_blocks;
    for (int b = 0; b < n_blocks; b++) {
        int n_in = b + 2;
        int first = (int)sn_rng_below(rng, (uint64_t)n_in);
        int second = (int)sn_rng_below(rng, (uint64_t)n_in - 1);
        if (second >= first) second++;
        cell->input[b][0] = first, cell->input[b][1] = second;
        for (int k = 0; k < 2; k++) cell->op[b][k] = 1 + (int)sn_rng_below(rng, SN_CELL_OP_COUNT - 1);
    }
}

int sn_genotype_random(sn_genotype *g, int n_layers, int n_levels, int n_blocks, int filters, sn_rng *rng)
{
    if (n_layers < 1 || n_layers > SN_MAX_LAYERS || n_levels < 1 || n_levels > SN_MAX_LEVELS || n_blocks < 1 ||
        n_blocks > SN_MAX_BLOCKS || filters < 1)
        return SN_ERR_ARG;
    memset(g, 0, sizeof *g);
    g->n_layers = n_layers, g->n_levels = n_levels, g->filter_multiplier = filters;
    random_path(n_layers, n_levels, rng, g->path);
    random_cell(n_blocks, rng, &g->cell);
    return SN_OK;
}
