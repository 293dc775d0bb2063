/* Dropout and drop path: mask statistics, expectation, exact gradients,
 * determinism from the seed (and independence from the thread count), the
 * identity cases and bad probabilities. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/check.h"

#define BIG 100003 /* odd, above the parallel threshold */

static void test_dropout_statistics(sn_ctx *ctx)
{
    const float p = 0.3f;
    int64_t n = BIG;
    sn_tensor *x = leaf(ctx, 1, &n, 1);
    sn_tensor *ones = sn_tensor_new(ctx, 1, &n);
    sn_tensor_fill(ones, 1.0f);
    sn_rng rng;
    sn_rng_seed(&rng, 42);
    sn_tensor *y = sn_dropout(ctx, x, p, &rng);
    sn_tensor *y1 = sn_dropout(ctx, ones, p, &rng);
    CHECK(y && y1, "dropout: %s", sn_ctx_error(ctx));
    if (!y || !y1) return;
    int64_t kept = 0;
    double mean = 0;
    bool scaled = true;
    const float scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) {
        kept += y->data[i] != 0;
        scaled &= y->data[i] == 0 || y->data[i] == x->data[i] * scale;
        mean += y1->data[i];
    }
    /* Binomial(n, 0.7): standard deviation of the fraction 0.0014. */
    double frac = (double)kept / n;
    CHECK(fabs(frac - 0.7) < 0.01, "fraction kept %g, want 0.7", frac);
    CHECK(scaled, "kept values are scaled by 1/(1-p)");
    mean /= n;
    CHECK(fabs(mean - 1.0) < 0.015, "expectation preserved: mean %g", mean);

    /* Gradient = mask * scale, exactly. */
    float *r = random_floats(n, 3);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "dropout backward");
    bool exact = true;
    for (int64_t i = 0; i < n; i++) exact &= x->grad[i] == (y->data[i] != 0 ? r[i] * scale : 0.0f);
    CHECK(exact, "dropout gradient is mask * scale * dy exactly");
    free(r);
    sn_step_end(ctx);
}

/* Output of dropout on x (values copied out) for a seed and thread count. */
static float *dropout_run(sn_ctx *ctx, uint64_t seed, int threads)
{
    int64_t n = BIG;
    int old = sn_get_num_threads();
    sn_set_num_threads(threads);
    sn_tensor *x = sn_tensor_new(ctx, 1, &n);
    sn_tensor_fill(x, 1.0f);
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    sn_tensor *y = sn_dropout(ctx, x, 0.5f, &rng);
    float *out = malloc((size_t)n * sizeof *out);
    memcpy(out, y->data, (size_t)n * sizeof *out);
    sn_set_num_threads(old);
    sn_step_end(ctx);
    return out;
}

static void test_dropout_determinism(sn_ctx *ctx)
{
    size_t bytes = (size_t)BIG * sizeof(float);
    float *a = dropout_run(ctx, 7, 2), *b = dropout_run(ctx, 7, 2), *c = dropout_run(ctx, 7, 1),
          *d = dropout_run(ctx, 8, 2);
    CHECK(memcmp(a, b, bytes) == 0, "same seed, same mask");
    CHECK(memcmp(a, c, bytes) == 0, "same mask on 1 and 2 threads");
    CHECK(memcmp(a, d, bytes) != 0, "another seed, another mask");
    free(a), free(b), free(c), free(d);
}

static void test_dropout_edges(sn_ctx *ctx)
{
    sn_tensor *x = leaf4(ctx, 1, 2, 2, 3, 1);
    sn_rng rng;
    sn_rng_seed(&rng, 1);
    int tape = sn_tape_size(ctx);
    CHECK(sn_dropout(ctx, x, 0.0f, &rng) == x && sn_tape_size(ctx) == tape, "p = 0 is the identity, unrecorded");
    CHECK(sn_drop_path(ctx, x, 1.0f, &rng) == x && sn_tape_size(ctx) == tape, "keep_prob = 1 is the identity");
    const float bad_p[3] = {-0.1f, 1.0f, NAN};
    for (int i = 0; i < 3; i++) {
        CHECK(sn_dropout(ctx, x, bad_p[i], &rng) == NULL && sn_ctx_status(ctx) == SN_ERR_ARG,
              "dropout p = %g is an error", (double)bad_p[i]);
        CHECK(strstr(sn_ctx_error(ctx), "dropout") != NULL, "message: %s", sn_ctx_error(ctx));
        sn_ctx_clear_error(ctx);
    }
    const float bad_keep[3] = {0.0f, 1.5f, NAN};
    for (int i = 0; i < 3; i++) {
        CHECK(sn_drop_path(ctx, x, bad_keep[i], &rng) == NULL && sn_ctx_status(ctx) == SN_ERR_ARG,
              "drop_path keep_prob = %g is an error", (double)bad_keep[i]);
        sn_ctx_clear_error(ctx);
    }
    CHECK(sn_dropout(ctx, x, 0.5f, NULL) == NULL && sn_ctx_status(ctx) == SN_ERR_ARG, "NULL rng");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

static void test_drop_path(sn_ctx *ctx)
{
    const float keep = 0.8f, scale = 1.0f / keep;
    int64_t samples = 2000, row = 2 * 2 * 3;
    sn_tensor *x = leaf4(ctx, samples, 2, 2, 3, 5);
    sn_rng rng;
    sn_rng_seed(&rng, 9);
    sn_tensor *y = sn_drop_path(ctx, x, keep, &rng);
    CHECK(y != NULL, "drop_path: %s", sn_ctx_error(ctx));
    if (!y) return;
    int64_t kept = 0;
    bool whole = true;
    for (int64_t s = 0; s < samples; s++) {
        bool k = y->data[s * row] != 0;
        kept += k;
        for (int64_t j = 0; j < row; j++)
            whole &= y->data[s * row + j] == (k ? x->data[s * row + j] * scale : 0.0f);
    }
    /* Binomial(2000, 0.8): standard deviation of the fraction 0.009. */
    double frac = (double)kept / samples;
    CHECK(fabs(frac - keep) < 0.04, "fraction of samples kept %g, want %g", frac, (double)keep);
    CHECK(whole, "whole samples kept (scaled by 1/keep_prob) or zeroed");
    float *r = random_floats(x->numel, 6);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "drop_path backward");
    bool exact = true;
    for (int64_t i = 0; i < x->numel; i++)
        exact &= x->grad[i] == (y->data[i - i % row] != 0 ? r[i] * scale : 0.0f);
    CHECK(exact, "drop_path gradient is mask * scale * dy exactly");
    free(r);
    sn_step_end(ctx);

    /* Same seed, same samples dropped. */
    sn_rng a, b;
    sn_rng_seed(&a, 11);
    sn_rng_seed(&b, 11);
    x = leaf4(ctx, 64, 1, 1, 2, 5);
    sn_tensor *ya = sn_drop_path(ctx, x, 0.5f, &a), *yb = sn_drop_path(ctx, x, 0.5f, &b);
    CHECK(memcmp(ya->data, yb->data, (size_t)x->numel * sizeof(float)) == 0, "drop_path deterministic");
    sn_step_end(ctx);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_dropout_statistics(ctx);
    test_dropout_determinism(ctx);
    test_dropout_edges(ctx);
    test_drop_path(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("dropout");
}
