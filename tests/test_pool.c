/* sn_pool2d, sn_pool3x3_same, sn_global_avg_pool: forward against the
 * double reference (ref_pool2d, ref_global_avg_pool), gradients against
 * float64 central differences (max pooling on distinct inputs so the argmax
 * is stable), TF 'SAME' paddings, gradient accumulation, no-grad mode,
 * ties in max pooling against a hand-computed gradient, error paths, and
 * the oneDNN implementations chosen for a search-size activation (none may
 * be `ref`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "support/check.h"

/* Distinct values 0.01 apart in random order: finite differences with
 * h = 1e-3 never change which element of a window is the maximum. */
static sn_tensor *distinct_leaf(sn_ctx *ctx, int64_t n, int64_t h, int64_t w, int64_t c, uint64_t seed)
{
    sn_tensor *t = leaf4(ctx, n, h, w, c, seed);
    sn_rng r;
    sn_rng_seed(&r, seed);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = 0.01f * (float)(i - t->numel / 2);
    for (int64_t i = t->numel - 1; i > 0; i--) {
        int64_t j = (int64_t)sn_rng_below(&r, (uint64_t)i + 1);
        float tmp = t->data[i];
        t->data[i] = t->data[j];
        t->data[j] = tmp;
    }
    return t;
}

static void pool_fn(void *u, const double *const *in, double *out) { ref_pool2d(u, in[0], out); }

typedef struct pool_case {
    const char *name;
    int64_t n, h, w, c;
    bool max, same; /* same: sn_pool3x3_same with `stride`, pads computed here */
    int k, stride, pad_t, pad_l, pad_b, pad_r;
} pool_case;

static sn_tensor *run_case(sn_ctx *ctx, const pool_case *pc, sn_tensor *x)
{
    sn_pool_kind kind = pc->max ? SN_POOL_MAX : SN_POOL_AVG;
    if (pc->same) return sn_pool3x3_same(ctx, x, kind, pc->stride);
    return sn_pool2d(ctx, x, kind, pc->k, pc->stride, pc->pad_t, pc->pad_l, pc->pad_b, pc->pad_r);
}

static void check_case(sn_ctx *ctx, const pool_case *pc)
{
    sn_tensor *x = distinct_leaf(ctx, pc->n, pc->h, pc->w, pc->c, 31);
    sn_tensor *y = run_case(ctx, pc, x);
    CHECK(y != NULL, "%s: %s", pc->name, sn_ctx_error(ctx));
    if (!y) {
        sn_ctx_clear_error(ctx);
        sn_step_end(ctx);
        return;
    }
    ref_pool_shape s = {pc->n, pc->h, pc->w, pc->c, pc->k, pc->stride, pc->pad_t, pc->pad_l,
                        pc->pad_b, pc->pad_r, pc->max};
    int64_t oh = ref_pool_out_h(&s), ow = ref_pool_out_w(&s), ny = pc->n * oh * ow * pc->c;
    CHECK(y->shape[1] == oh && y->shape[2] == ow && y->shape[3] == pc->c, "%s: output %lldx%lld, want %lldx%lld",
          pc->name, (long long)y->shape[1], (long long)y->shape[2], (long long)oh, (long long)ow);
    double *xd = to_f64(x->data, x->numel), *want = malloc((size_t)ny * sizeof *want);
    ref_pool2d(&s, xd, want);
    double fe = rel_err_f32_f64(y->data, want, ny, 1e-6);
    CHECK(fe < 1e-5, "%s forward rel err %g", pc->name, fe);
    float *r = random_floats(ny, 5);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s backward: %s", pc->name, sn_ctx_error(ctx));
    const float *inputs[1] = {x->data}, *grads[1] = {x->grad};
    double ge = gradcheck(pool_fn, &s, 1, inputs, &x->numel, grads, r, ny, 1e-3);
    CHECK(ge < 1e-3, "%s gradient rel err %g", pc->name, ge);
    free(xd), free(want), free(r);
    sn_step_end(ctx);
}

static void test_windows(sn_ctx *ctx)
{
    /* 'SAME' pads by hand, pad total = max((ceil(in/s) - 1) * s + 3 - in, 0):
     * 7x9 s2 -> out 4x5, totals 2 and 2 -> (1,1),(1,1);
     * 8x8 s2 -> out 4x4, totals 1 and 1 -> (0,1),(0,1);
     * 6x5 s1 -> totals 2 and 2 -> (1,1),(1,1). */
    const pool_case cases[] = {
        {"max 3x3 same s2 7x9", 2, 7, 9, 3, true, true, 3, 2, 1, 1, 1, 1},
        {"avg 3x3 same s2 7x9", 2, 7, 9, 3, false, true, 3, 2, 1, 1, 1, 1},
        {"max 3x3 same s2 8x8", 1, 8, 8, 5, true, true, 3, 2, 0, 0, 1, 1},
        {"avg 3x3 same s2 8x8", 1, 8, 8, 5, false, true, 3, 2, 0, 0, 1, 1},
        {"max 3x3 same s1 6x5", 2, 6, 5, 4, true, true, 3, 1, 1, 1, 1, 1},
        {"avg 3x3 same s1 6x5", 2, 6, 5, 4, false, true, 3, 1, 1, 1, 1, 1},
        {"max 2x2 s2 no pad", 2, 6, 8, 3, true, false, 2, 2, 0, 0, 0, 0},
        {"avg 2x2 s2 no pad", 2, 6, 8, 3, false, false, 2, 2, 0, 0, 0, 0},
        {"avg 3x3 s1 asymmetric pad", 1, 5, 6, 17, false, false, 3, 1, 2, 0, 1, 2},
        {"max 3x3 s2 asymmetric pad", 1, 5, 6, 17, true, false, 3, 2, 0, 2, 2, 1},
        /* oneDNN's backward (16 channels); ours with two vector blocks and
         * a tail (36 = 16 + 16 + 4 floats a pixel) and the parallel path */
        {"max 3x3 same s1 6x5 16ch", 2, 6, 5, 16, true, true, 3, 1, 1, 1, 1, 1},
        {"avg 3x3 same s2 7x9 16ch", 2, 7, 9, 16, false, true, 3, 2, 1, 1, 1, 1},
        {"max 3x3 same s1 10x10 36ch", 2, 10, 10, 36, true, true, 3, 1, 1, 1, 1, 1},
        {"avg 3x3 same s1 10x10 36ch", 2, 10, 10, 36, false, true, 3, 1, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(ctx, &cases[i]);
}

/* Average of a 3x3 'SAME' corner window counts the 4 real cells only. */
static void test_exclude_padding_by_hand(sn_ctx *ctx)
{
    sn_tensor *x = leaf4(ctx, 1, 3, 3, 1, 1);
    for (int i = 0; i < 9; i++) x->data[i] = (float)(i + 1);
    sn_tensor *y = sn_pool3x3_same(ctx, x, SN_POOL_AVG, 1);
    CHECK(y && fabsf(y->data[0] - 3.0f) < 1e-6f, "corner average (1+2+4+5)/4 = 3, got %g",
          y ? (double)y->data[0] : -1.0);
    CHECK(y && fabsf(y->data[4] - 5.0f) < 1e-6f, "centre average 45/9 = 5, got %g", y ? (double)y->data[4] : -1.0);
    sn_step_end(ctx);
}

/* Equal values in a window (a ReLU's zeros): each output's gradient goes to
 * the first maximal tap in row-major order, once, on both backward paths
 * (ours below 16 channels, oneDNN's at 16). 3x3 'SAME' s1 on a constant 3x3
 * map, dy = 1 + channel: the first taps are (0,0) for outputs (0,0) (0,1)
 * (1,0) (1,1), (0,1) for (0,2) (1,2), (1,0) for (2,0) (2,1) and (1,1) for
 * (2,2). */
static void test_max_ties_by_hand(sn_ctx *ctx)
{
    const float want[9] = {4, 2, 0, 2, 1, 0, 0, 0, 0};
    for (int64_t c = 2; c <= 16; c += 14) {
        sn_tensor *x = leaf4(ctx, 1, 3, 3, c, 1);
        sn_tensor_fill(x, 0.0f);
        sn_tensor *y = sn_pool3x3_same(ctx, x, SN_POOL_MAX, 1);
        float dy[9 * 16];
        for (int64_t i = 0; i < 9 * c; i++) dy[i] = (float)(1 + i % c);
        CHECK(y && sn_backward_from(ctx, y, dy) == SN_OK, "max pooling ties: %s", sn_ctx_error(ctx));
        for (int64_t i = 0; y && i < 9 * c; i++) {
            float expect = want[i / c] * (float)(1 + i % c);
            CHECK(x->grad[i] == expect, "%lld channels: tie gradient at cell %lld channel %lld: %g, want %g",
                  (long long)c, (long long)(i / c), (long long)(i % c), (double)x->grad[i], (double)expect);
        }
        sn_step_end(ctx);
    }
}

static void gap_fn(void *u, const double *const *in, double *out)
{
    const int64_t *d = u;
    ref_global_avg_pool(in[0], out, d[0], d[1], d[2], d[3]);
}

static void test_global_avg_pool(sn_ctx *ctx)
{
    int64_t d[4] = {2, 5, 7, 67}; /* 67 channels: a full block of 64 and a tail */
    sn_tensor *x = leaf4(ctx, d[0], d[1], d[2], d[3], 3);
    sn_tensor *y = sn_global_avg_pool(ctx, x);
    CHECK(y && y->shape[0] == 2 && y->shape[1] == 1 && y->shape[2] == 1 && y->shape[3] == 67,
          "global_avg_pool shape: %s", sn_ctx_error(ctx));
    if (!y) return;
    double *xd = to_f64(x->data, x->numel), want[2 * 67];
    ref_global_avg_pool(xd, want, d[0], d[1], d[2], d[3]);
    double fe = rel_err_f32_f64(y->data, want, 2 * 67, 1e-6);
    CHECK(fe < 1e-5, "global_avg_pool forward rel err %g", fe);
    float *r = random_floats(2 * 67, 9);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "global_avg_pool backward: %s", sn_ctx_error(ctx));
    const float *inputs[1] = {x->data}, *grads[1] = {x->grad};
    double ge = gradcheck(gap_fn, d, 1, inputs, &x->numel, grads, r, 2 * 67, 1e-3);
    CHECK(ge < 1e-3, "global_avg_pool gradient rel err %g", ge);
    free(xd), free(r);
    sn_step_end(ctx);
}

/* kind 0: max 3x3 'SAME' s2, 1: the average one, 2: global average. */
static sn_tensor *pool_of(sn_ctx *ctx, sn_tensor *x, int kind)
{
    if (kind == 2) return sn_global_avg_pool(ctx, x);
    return sn_pool3x3_same(ctx, x, kind ? SN_POOL_AVG : SN_POOL_MAX, 2);
}

/* y = pool(x) + pool(x): the second backward must add to the first
 * (the backward writes a fresh gradient first, then accumulates). */
static void test_accumulation(sn_ctx *ctx)
{
    for (int kind = 0; kind < 3; kind++) {
        sn_tensor *x = distinct_leaf(ctx, 2, 6, 6, 8, 77);
        sn_tensor *a = pool_of(ctx, x, kind), *b = pool_of(ctx, x, kind);
        sn_tensor *s = sn_sum(ctx, sn_add(ctx, a, b));
        CHECK(s && sn_backward(ctx, s) == SN_OK, "accumulation %d: %s", kind, sn_ctx_error(ctx));
        float *twice = malloc((size_t)x->numel * sizeof *twice);
        memcpy(twice, x->grad, (size_t)x->numel * sizeof *twice);
        sn_step_end(ctx);
        x = distinct_leaf(ctx, 2, 6, 6, 8, 77);
        a = pool_of(ctx, x, kind);
        CHECK(sn_backward(ctx, sn_sum(ctx, a)) == SN_OK, "single %d", kind);
        double worst = 0;
        for (int64_t i = 0; i < x->numel; i++) worst = fmax(worst, fabs(twice[i] - 2.0 * x->grad[i]));
        CHECK(worst < 1e-6, "pool kind %d: gradient of two uses is twice one use (diff %g)", kind, worst);
        free(twice);
        sn_step_end(ctx);
    }
}

/* Without gradients max pooling runs the inference primitive (no
 * workspace) and records nothing. */
static void test_no_grad(sn_ctx *ctx)
{
    sn_tensor *x = distinct_leaf(ctx, 1, 7, 7, 3, 5);
    sn_tensor *with = sn_pool3x3_same(ctx, x, SN_POOL_MAX, 2);
    bool old = sn_set_grad_enabled(ctx, false);
    int tape = sn_tape_size(ctx);
    sn_tensor *without = sn_pool3x3_same(ctx, x, SN_POOL_MAX, 2);
    CHECK(without && sn_tape_size(ctx) == tape && !without->requires_grad, "no tape in no-grad mode");
    CHECK(with && without && rel_err_f32(without->data, with->data, with->numel, 1e-6) == 0,
          "inference and training max pooling agree");
    sn_set_grad_enabled(ctx, old);
    sn_step_end(ctx);
}

static void expect_error(sn_ctx *ctx, sn_tensor *y, int status, const char *needle, const char *what)
{
    CHECK(y == NULL && sn_ctx_status(ctx) == status, "%s fails with %s (got %s)", what, sn_status_name(status),
          sn_status_name(sn_ctx_status(ctx)));
    CHECK(strstr(sn_ctx_error(ctx), needle) != NULL, "%s: message names %s: %s", what, needle, sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
}

static void test_errors(sn_ctx *ctx)
{
    int64_t sh3[3] = {4, 4, 3};
    sn_tensor *x3 = leaf(ctx, 3, sh3, 1), *x = leaf4(ctx, 1, 2, 3, 4, 2);
    expect_error(ctx, sn_pool2d(ctx, x3, SN_POOL_MAX, 2, 2, 0, 0, 0, 0), SN_ERR_SHAPE, "4x4x3", "3-D input");
    expect_error(ctx, sn_pool3x3_same(ctx, x3, SN_POOL_AVG, 1), SN_ERR_SHAPE, "4x4x3", "3-D input (same)");
    expect_error(ctx, sn_global_avg_pool(ctx, x3), SN_ERR_SHAPE, "4x4x3", "3-D input (global)");
    expect_error(ctx, sn_pool2d(ctx, x, SN_POOL_MAX, 5, 1, 0, 0, 0, 0), SN_ERR_SHAPE, "1x2x3x4",
                 "window larger than the input");
    expect_error(ctx, sn_pool2d(ctx, x, SN_POOL_AVG, 3, 1, 3, 0, 0, 0), SN_ERR_ARG, "top 3", "padding >= kernel");
    expect_error(ctx, sn_pool2d(ctx, x, SN_POOL_AVG, 3, 1, 0, -1, 0, 0), SN_ERR_ARG, "left -1", "negative padding");
    expect_error(ctx, sn_pool2d(ctx, x, SN_POOL_MAX, 0, 1, 0, 0, 0, 0), SN_ERR_ARG, "kernel 0", "kernel 0");
    expect_error(ctx, sn_pool3x3_same(ctx, x, SN_POOL_MAX, 0), SN_ERR_ARG, "stride 0", "stride 0");
    expect_error(ctx, sn_pool2d(ctx, x, (sn_pool_kind)7, 2, 1, 0, 0, 0, 0), SN_ERR_ARG, "kind 7", "bad kind");
    CHECK(sn_pool2d(ctx, NULL, SN_POOL_MAX, 2, 2, 0, 0, 0, 0) == NULL && sn_global_avg_pool(ctx, NULL) == NULL,
          "NULL input propagates");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* The search's pooling operators on a 2x80x80x48 activation must not fall
 * to oneDNN's reference implementations (DESIGN.md). */
static void test_impls(sn_ctx *ctx)
{
    for (int kind = 0; kind < 2; kind++) {
        sn_tensor *x = leaf4(ctx, 2, 80, 80, 48, 8);
        for (int stride = 1; stride <= 2; stride++) {
            sn_tensor *y = sn_pool3x3_same(ctx, x, kind ? SN_POOL_AVG : SN_POOL_MAX, stride);
            CHECK(y && sn_backward(ctx, sn_sum(ctx, y)) == SN_OK, "80x80 pooling: %s", sn_ctx_error(ctx));
            const char *f = sn_impl_name(ctx, "pool_fwd"), *b = sn_impl_name(ctx, "pool_bwd");
            printf("%s pool 3x3 s%d 2x80x80x48: fwd %s, bwd %s\n", kind ? "avg" : "max", stride, f, b);
            CHECK(*f && strncmp(f, "ref", 3) != 0, "pool_fwd implementation %s", f);
            CHECK(*b && strncmp(b, "ref", 3) != 0, "pool_bwd implementation %s", b);
            x->grad = NULL;
        }
        sn_step_end(ctx);
    }
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_windows(ctx);
    test_exclude_padding_by_hand(ctx);
    test_max_ties_by_hand(ctx);
    test_global_avg_pool(ctx);
    test_accumulation(ctx);
    test_no_grad(ctx);
    test_errors(ctx);
    test_impls(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("pool");
}
