/* Random architectures (sn_genotype_random): always valid (decodable space,
 * JSON round trip, the model builder accepts them), seeded, and uniform:
 * the path over the enumerated trellis walks, the cell's inputs and
 * operators over their choices (chi-square bounds that a per-step uniform
 * path sampler is shown to fail). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/models.h"
#include "segnas/search.h"
#include "support/check.h"

#define LEVELS 4

static bool path_valid(const sn_genotype *g)
{
    if (g->path[0] != 0) return false;
    for (int l = 1; l < g->n_layers; l++) {
        int s = g->path[l - 1], d = g->path[l] - s + 1;
        if (!sn_transition_valid(s, d, g->n_levels)) return false;
    }
    return true;
}

static bool cell_valid(const sn_cell_genotype *c)
{
    for (int b = 0; b < c->n_blocks; b++) {
        if (c->input[b][0] == c->input[b][1]) return false;
        for (int k = 0; k < 2; k++)
            if (c->input[b][k] < 0 || c->input[b][k] > b + 1 || c->op[b][k] <= SN_CELL_NONE ||
                c->op[b][k] >= SN_CELL_OP_COUNT)
                return false;
    }
    return true;
}

static void test_valid_and_round_trip(void)
{
    sn_rng rng;
    sn_rng_seed(&rng, 11);
    int bad_path = 0, bad_cell = 0, bad_json = 0, bad_plan = 0, n = 0;
    sn_ctx *ctx = test_ctx();
    for (int L = 1; L <= 14; L++)
        for (int B = 1; B <= SN_MAX_BLOCKS; B++)
            for (int rep = 0; rep < 8; rep++, n++) {
                sn_genotype g, back;
                CHECK(sn_genotype_random(&g, L, LEVELS, B, 1 + rep, &rng) == SN_OK, "L=%d B=%d", L, B);
                bad_path += !path_valid(&g) || g.n_layers != L || g.n_levels != LEVELS;
                bad_cell += !cell_valid(&g.cell) || g.cell.n_blocks != B || g.filter_multiplier != 1 + rep;
                char *text = sn_genotype_to_json(&g), err[256];
                bad_json += !text || sn_genotype_from_json(text, "random", &back, err, sizeof err) != SN_OK ||
                            memcmp(&g, &back, sizeof g) != 0;
                free(text);
                sn_model_config cfg;
                sn_model_config_default(&cfg, &g);
                cfg.n_classes = 8;
                sn_cell_plan plans[SN_MAX_LAYERS];
                if (sn_model_plan(ctx, &cfg, plans) != SN_OK) bad_plan++, sn_ctx_clear_error(ctx);
            }
    CHECK(bad_path == 0, "paths are walks from level 0 within the trellis (%d of %d bad)", bad_path, n);
    CHECK(bad_cell == 0, "cells: distinct inputs, non-none operators (%d of %d bad)", bad_cell, n);
    CHECK(bad_json == 0, "JSON write/read round trip is exact (%d of %d differ)", bad_json, n);
    CHECK(bad_plan == 0, "the model planner accepts them (%d of %d refused)", bad_plan, n);
    sn_ctx_destroy(ctx);
}

/* Two random networks are built and run forward (small: F = 2, 32x32). */
static void test_model_builds(void)
{
    sn_ctx *ctx = test_ctx();
    for (uint64_t seed = 1; seed <= 2; seed++) {
        sn_rng rng;
        sn_rng_seed(&rng, seed);
        sn_genotype g;
        sn_genotype_random(&g, 5, LEVELS, 3, 2, &rng);
        sn_model_config cfg;
        sn_model_config_default(&cfg, &g);
        cfg.n_classes = 3, cfg.stem_channels = 4, cfg.aspp_channels = 8;
        cfg.decoder_low_channels = 4, cfg.decoder_channels = 8;
        sn_model m;
        int rc = sn_model_init(ctx, &m, &cfg, seed);
        CHECK(rc == SN_OK, "seed %llu: model init: %s", (unsigned long long)seed, sn_ctx_error(ctx));
        if (rc) {
            sn_ctx_clear_error(ctx);
            continue;
        }
        sn_tensor *x = sn_tensor_new4(ctx, 2, 32, 32, 3);
        fill_normal(x, seed, 1);
        sn_model_run run = {.training = true};
        sn_tensor *y = sn_model_forward(ctx, &m, x, &run);
        CHECK(y && y->shape[0] == 2 && y->shape[1] == 32 && y->shape[2] == 32 && y->shape[3] == 3,
              "seed %llu: forward gives {2,32,32,3} logits: %s", (unsigned long long)seed,
              y ? "wrong shape" : sn_ctx_error(ctx));
        sn_step_end(ctx);
        sn_model_free(&m);
    }
    sn_ctx_destroy(ctx);
}

static void test_seeds(void)
{
    enum { N = 20 };
    sn_genotype g[N], again;
    for (int i = 0; i < N; i++) {
        sn_rng rng;
        sn_rng_seed(&rng, (uint64_t)i + 1);
        sn_genotype_random(&g[i], 6, LEVELS, 5, 4, &rng);
    }
    int same = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) same += !memcmp(&g[i], &g[j], sizeof g[i]);
    CHECK(same == 0, "seeds 1..%d give %d distinct genotypes (%d equal pairs)", N, N, same);
    sn_rng rng;
    sn_rng_seed(&rng, 3);
    sn_genotype_random(&again, 6, LEVELS, 5, 4, &rng);
    CHECK(!memcmp(&again, &g[2], sizeof again), "the same seed gives the same genotype");
    CHECK(sn_genotype_random(&again, 0, LEVELS, 5, 4, &rng) == SN_ERR_ARG, "L = 0 refused");
    CHECK(sn_genotype_random(&again, SN_MAX_LAYERS + 1, LEVELS, 5, 4, &rng) == SN_ERR_ARG, "L too large refused");
    CHECK(sn_genotype_random(&again, 6, LEVELS, SN_MAX_BLOCKS + 1, 4, &rng) == SN_ERR_ARG, "B too large refused");
    CHECK(sn_genotype_random(&again, 6, 0, 5, 4, &rng) == SN_ERR_ARG, "0 levels refused");
    CHECK(sn_genotype_random(&again, 6, LEVELS, 5, 0, &rng) == SN_ERR_ARG, "F = 0 refused");
}

/* Every valid walk of L-1 steps from level 0, by brute force over the 3^(L-1)
 * direction sequences, as base-3 codes of the moves. */
static int enumerate_paths(int L, int paths[][SN_MAX_LAYERS])
{
    int n_seq = 1, count = 0;
    for (int t = 1; t < L; t++) n_seq *= 3;
    for (int code = 0; code < n_seq; code++) {
        sn_genotype g = {.n_layers = L, .n_levels = LEVELS};
        for (int t = 1, c = code; t < L; t++, c /= 3) g.path[t] = g.path[t - 1] + c % 3 - 1;
        bool ok = true;
        for (int t = 0; t < L; t++) ok = ok && g.path[t] >= 0 && g.path[t] < LEVELS;
        if (ok) memcpy(paths[count++], g.path, sizeof g.path);
    }
    return count;
}

/* The biased alternative the test must reject: a uniform choice among the
 * valid directions at each step. */
static void per_step_path(int L, sn_rng *rng, int *path)
{
    path[0] = 0;
    for (int t = 1; t < L; t++) {
        int dirs[3], n = 0;
        for (int d = 0; d < 3; d++)
            if (sn_transition_valid(path[t - 1], d, LEVELS)) dirs[n++] = d;
        path[t] = path[t - 1] + dirs[sn_rng_below(rng, (uint64_t)n)] - 1;
    }
}

static double chi_square(const long *counts, int k, long draws)
{
    double expected = (double)draws / k, x2 = 0;
    for (int i = 0; i < k; i++) x2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    return x2;
}

/* 99.99% quantile of chi-square with k-1 degrees of freedom (Wilson-Hilferty). */
static double chi_square_bound(int k)
{
    double df = k - 1, z = 3.719;
    double a = 1 - 2 / (9 * df) + z * sqrt(2 / (9 * df));
    return df * a * a * a;
}

static void test_path_uniform(void)
{
    enum { DRAWS = 60000 };
    static int paths[200][SN_MAX_LAYERS];
    for (int L = 3; L <= 5; L++) {
        int k = enumerate_paths(L, paths);
        CHECK(k == (int)sn_space_paths(L, LEVELS), "L=%d: %d enumerated paths == sn_space_paths %.0f", L, k,
              sn_space_paths(L, LEVELS));
        long counts[200] = {0}, biased[200] = {0};
        sn_rng rng, rng_b;
        sn_rng_seed(&rng, 100 + (uint64_t)L), sn_rng_seed(&rng_b, 200 + (uint64_t)L);
        int unknown = 0;
        for (long i = 0; i < DRAWS; i++) {
            sn_genotype g;
            int pb[SN_MAX_LAYERS] = {0};
            sn_genotype_random(&g, L, LEVELS, 1, 1, &rng);
            per_step_path(L, &rng_b, pb);
            int hit = -1, hit_b = -1;
            for (int p = 0; p < k; p++) {
                if (!memcmp(paths[p], g.path, sizeof(int) * (size_t)L)) hit = p;
                if (!memcmp(paths[p], pb, sizeof(int) * (size_t)L)) hit_b = p;
            }
            if (hit < 0) unknown++;
            else counts[hit]++;
            if (hit_b >= 0) biased[hit_b]++;
        }
        int never = 0;
        for (int p = 0; p < k; p++) never += counts[p] == 0;
        double x2 = chi_square(counts, k, DRAWS), x2b = chi_square(biased, k, DRAWS), bound = chi_square_bound(k);
        CHECK(unknown == 0 && never == 0, "L=%d: every draw is an enumerated path (%d not) and every path is drawn "
              "(%d never)", L, unknown, never);
        CHECK(x2 < bound, "L=%d: chi-square %.1f < %.1f (%d paths, %d draws): uniform over paths", L, x2, bound, k,
              DRAWS);
        CHECK(x2b > bound, "L=%d: the per-step sampler fails the same test (chi-square %.1f > %.1f)", L, x2b, bound);
    }
}

/* Block 2 (4 candidate inputs): the 6 unordered input pairs and, on each of
 * the two edges, the 7 operators are uniform. */
static void test_cell_uniform(void)
{
    enum { DRAWS = 42000 };
    long pairs[16] = {0}, ops[SN_CELL_OP_COUNT] = {0};
    sn_rng rng;
    sn_rng_seed(&rng, 5);
    for (long i = 0; i < DRAWS; i++) {
        sn_genotype g;
        sn_genotype_random(&g, 2, LEVELS, 3, 1, &rng);
        int a = g.cell.input[2][0], b = g.cell.input[2][1];
        int lo = a < b ? a : b, hi = a < b ? b : a;
        pairs[lo * 4 + hi]++;
        ops[g.cell.op[2][0]]++, ops[g.cell.op[2][1]]++;
    }
    long pair_counts[6], n = 0;
    for (int lo = 0; lo < 4; lo++)
        for (int hi = lo + 1; hi < 4; hi++) pair_counts[n++] = pairs[lo * 4 + hi];
    double x2 = chi_square(pair_counts, 6, DRAWS), x2o = chi_square(ops + 1, SN_CELL_OP_COUNT - 1, 2 * DRAWS);
    CHECK(ops[SN_CELL_NONE] == 0, "never the none operator");
    CHECK(x2 < chi_square_bound(6), "input pairs uniform: chi-square %.1f < %.1f", x2, chi_square_bound(6));
    CHECK(x2o < chi_square_bound(7), "operators uniform: chi-square %.1f < %.1f", x2o, chi_square_bound(7));
}

int main(void)
{
    test_valid_and_round_trip();
    test_model_builds();
    test_seeds();
    test_path_uniform();
    test_cell_uniform();
    return check_summary("sample_arch");
}
