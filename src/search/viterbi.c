/* Network-level decoding: beta as transition probabilities between layers
 * (Auto-DeepLab section 4.3), the most probable path by Viterbi. */
#include <assert.h>
#include <math.h>

#include "segnas/search.h"

bool sn_transition_valid(int s, int d, int n_levels)
{
    int to = s + d - 1;
    return d >= 0 && d < 3 && to >= 0 && to < n_levels;
}

/* log softmax over the valid directions of source level s (Eq. 7: a node's
 * outgoing betas sum to one). */
static void log_probs(const float *logits, int s, int n_levels, double lp[3])
{
    double m = -INFINITY, sum = 0;
    for (int d = 0; d < 3; d++)
        if (sn_transition_valid(s, d, n_levels)) m = fmax(m, logits[d]);
    for (int d = 0; d < 3; d++)
        if (sn_transition_valid(s, d, n_levels)) sum += exp(logits[d] - m);
    for (int d = 0; d < 3; d++)
        lp[d] = sn_transition_valid(s, d, n_levels) ? logits[d] - m - log(sum) : -INFINITY;
}

double sn_space_paths(int n_layers, int n_levels)
{
    assert(n_levels >= 1 && n_levels <= SN_MAX_LEVELS);
    double count[SN_MAX_LEVELS] = {1}, next[SN_MAX_LEVELS];
    for (int t = 0; t + 1 < n_layers; t++) {
        for (int s = 0; s < n_levels; s++) next[s] = 0;
        for (int s = 0; s < n_levels; s++)
            for (int d = 0; d < 3; d++)
                if (sn_transition_valid(s, d, n_levels)) next[s + d - 1] += count[s];
        for (int s = 0; s < n_levels; s++) count[s] = next[s];
    }
    double total = 0;
    for (int s = 0; s < n_levels; s++) total += count[s];
    return total;
}

double sn_viterbi_decode(const float *beta_logits, int n_layers, int n_levels, int *path)
{
    assert(n_layers >= 1 && n_layers <= SN_MAX_LAYERS && n_levels >= 1 && n_levels <= SN_MAX_LEVELS);
    double score[SN_MAX_LEVELS] = {0}, next[SN_MAX_LEVELS] = {0};
    int from[SN_MAX_LAYERS][SN_MAX_LEVELS];
    for (int s = 0; s < n_levels; s++) score[s] = s == 0 ? 0 : -INFINITY, from[0][s] = -1;
    for (int t = 0; t + 1 < n_layers; t++) {
        for (int s = 0; s < n_levels; s++) next[s] = -INFINITY, from[t + 1][s] = -1;
        for (int s = 0; s < n_levels; s++) {
            if (score[s] == -INFINITY) continue; /* unreachable in the first layers */
            double lp[3];
            log_probs(beta_logits + ((size_t)t * n_levels + s) * 3, s, n_levels, lp);
            for (int d = 0; d < 3; d++) {
                if (lp[d] == -INFINITY) continue;
                int to = s + d - 1;
                /* Strict > keeps the lowest source level on ties. */
                if (score[s] + lp[d] > next[to]) next[to] = score[s] + lp[d], from[t + 1][to] = s;
            }
        }
        for (int s = 0; s < n_levels; s++) score[s] = next[s];
    }
    int end = 0;
    for (int s = 1; s < n_levels; s++)
        if (score[s] > score[end]) end = s;
    double best = score[end];
    for (int t = n_layers - 1; t >= 0; t--) {
        path[t] = end;
        if (t) end = from[t][end];
    }
    return best;
}

double sn_path_log_prob(const float *beta_logits, int n_layers, int n_levels, const int *path)
{
    if (path[0] != 0) return -INFINITY;
    double total = 0;
    for (int t = 0; t + 1 < n_layers; t++) {
        int s = path[t], d = path[t + 1] - path[t] + 1;
        if (s < 0 || s >= n_levels || !sn_transition_valid(s, d, n_levels)) return -INFINITY;
        double lp[3];
        log_probs(beta_logits + ((size_t)t * n_levels + s) * 3, s, n_levels, lp);
        total += lp[d];
    }
    return total;
}
