/* Decoding of the Auto-DeepLab search: Viterbi against brute force, cell
 * decoding on hand-made alpha, search-space sizes, genotype JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/search.h"
#include "support/check.h"

/* Enumerates every direction sequence and keeps the best valid path. */
static double brute_force(const float *beta, int L, int levels, int *best_path)
{
    int n_seq = 1;
    for (int t = 0; t + 1 < L; t++) n_seq *= 3;
    double best = -INFINITY;
    for (int code = 0; code < n_seq; code++) {
        int path[SN_MAX_LAYERS] = {0}, c = code;
        for (int t = 1; t < L; t++, c /= 3) path[t] = path[t - 1] + c % 3 - 1;
        double lp = sn_path_log_prob(beta, L, levels, path);
        if (lp > best) {
            best = lp;
            memcpy(best_path, path, sizeof path);
        }
    }
    return best;
}

static void test_viterbi(void)
{
    sn_rng rng;
    sn_rng_seed(&rng, 7);
    int worse = 0, mismatch = 0, cases = 0;
    for (int L = 1; L <= 8; L++)
        for (int levels = 1; levels <= 4; levels++)
            for (int rep = 0; rep < 5; rep++) {
                float beta[SN_MAX_LAYERS * SN_MAX_LEVELS * 3];
                sn_rng_fill_normal(&rng, beta, (L - 1 > 0 ? L - 1 : 1) * levels * 3, 0, 2);
                int vpath[SN_MAX_LAYERS], bpath[SN_MAX_LAYERS];
                double v = sn_viterbi_decode(beta, L, levels, vpath);
                double b = brute_force(beta, L, levels, bpath);
                double again = sn_path_log_prob(beta, L, levels, vpath);
                worse += fabs(v - b) > 1e-9 || fabs(again - v) > 1e-9;
                mismatch += memcmp(vpath, bpath, (size_t)L * sizeof(int)) != 0;
                cases++;
            }
    CHECK(worse == 0, "Viterbi score equals the brute-force optimum (%d of %d differ)", worse, cases);
    CHECK(mismatch == 0, "Viterbi path equals the brute-force path (%d of %d differ)", mismatch, cases);
}

static void test_viterbi_normalisation(void)
{
    /* Two layers, 4 levels. From level 0 only "stay" and "up" exist: with
     * logits (ignored, 0, log 3) the probabilities are 1/4 and 3/4. */
    float beta[1 * 4 * 3] = {100, 0, logf(3)};
    int path[2];
    double lp = sn_viterbi_decode(beta, 2, 4, path);
    CHECK(path[0] == 0 && path[1] == 1, "goes up with probability 3/4");
    CHECK_NEAR(lp, log(0.75), 1e-6, "top/bottom levels normalise over valid directions only");
}

static void test_space_sizes(void)
{
    CHECK_NEAR(sn_space_paths(12, 4), 28657, 0, "L=12 paths (paper: 2.9e4)");
    CHECK_NEAR(sn_space_cells(5, 8), 518400.0 * pow(8, 10), 1e-12, "B=5 cells (paper: 5.6e14)");
    CHECK(fabs(sn_space_cells(5, 8) / 5.6e14 - 1) < 0.01, "cells within 1%% of 5.6e14");
    CHECK(sn_cell_edge_count(5) == 20 && sn_cell_block_first_edge(2) == 5, "20 edges for B=5");
}

static void test_cell_decode(void)
{
    /* B = 2: block 0 has edges 0,1 (inputs 0,1); block 1 edges 2,3,4. */
    float alpha[5 * SN_CELL_OP_COUNT] = {0};
    /* edge 0: none dominates, but sep_conv_5x5 is its best real op (0.2) */
    alpha[0 * 8 + SN_CELL_NONE] = 5, alpha[0 * 8 + SN_CELL_SEP_CONV_5X5] = 2;
    /* edge 1: strong skip */
    alpha[1 * 8 + SN_CELL_SKIP_CONNECT] = 3;
    /* block 1: input 2 (block 0) strongest with atrous_3x3, input 0 second
     * with max pool; input 1 weakest. */
    alpha[4 * 8 + SN_CELL_ATROUS_3X3] = 4;
    alpha[2 * 8 + SN_CELL_MAX_POOL_3X3] = 2;
    alpha[3 * 8 + SN_CELL_AVG_POOL_3X3] = 1;
    sn_cell_genotype g;
    sn_cell_decode(alpha, 2, SN_CELL_OP_COUNT, &g);
    CHECK(g.input[0][0] == 1 && g.op[0][0] == SN_CELL_SKIP_CONNECT, "block 0 first: input 1 skip");
    CHECK(g.input[0][1] == 0 && g.op[0][1] == SN_CELL_SEP_CONV_5X5, "block 0 second: input 0, none excluded");
    CHECK(g.input[1][0] == 2 && g.op[1][0] == SN_CELL_ATROUS_3X3, "block 1 first: block 0 atrous");
    CHECK(g.input[1][1] == 0 && g.op[1][1] == SN_CELL_MAX_POOL_3X3, "block 1 second: input 0 max pool");
}

static void test_genotype_json(void)
{
    sn_genotype g, back;
    sn_genotype_autodeeplab(&g);
    char *text = sn_genotype_to_json(&g);
    char err[256];
    CHECK(sn_genotype_from_json(text, "mem", &back, err, sizeof err) == SN_OK, "round trip: %s", err);
    CHECK(memcmp(&g, &back, sizeof g) == 0, "round trip is exact");
    CHECK(strstr(text, "\"atrous_5x5\"") != NULL, "operators are written by name");
    free(text);

    const char *bad[][2] = {
        {"{", "not valid JSON"},
        {"{\"format\":\"x\"}", "\"format\""},
        {"{\"format\":\"segnas-genotype\",\"version\":9,\"F\":8,\"levels\":4}", "version"},
        {"{\"format\":\"segnas-genotype\",\"version\":1,\"F\":8,\"levels\":4,\"path\":[0,2],\"cell\":[]}", "path[1]"},
        {"{\"format\":\"segnas-genotype\",\"version\":1,\"F\":8,\"levels\":4,\"path\":[0],"
         "\"cell\":[[[0,\"sep_conv_3x3\"],[2,\"skip_connect\"]]]}", "cell[0][1]"},
        {"{\"format\":\"segnas-genotype\",\"version\":1,\"F\":8,\"levels\":4,\"path\":[0],"
         "\"cell\":[[[0,\"conv_9x9\"],[1,\"skip_connect\"]]]}", "conv_9x9"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = sn_genotype_from_json(bad[i][0], "g.json", &back, err, sizeof err);
        CHECK(rc == SN_ERR_FORMAT && strstr(err, bad[i][1]) && strstr(err, "g.json"),
              "bad genotype %zu rejected naming %s: %s", i, bad[i][1], err);
    }
    CHECK(sn_genotype_read_json("/nonexistent/g.json", &back, err, sizeof err) == SN_ERR_IO &&
              strstr(err, "/nonexistent/g.json"),
          "missing file named: %s", err);
}

int main(void)
{
    test_viterbi();
    test_viterbi_normalisation();
    test_space_sizes();
    test_cell_decode();
    test_genotype_json();
    return check_summary("search_decode");
}
