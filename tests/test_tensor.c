/* The tensor layer: arenas, the primitive cache, the RNG, reshape, the tape. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support/check.h"
#include "tensor/cache.h"

static void test_arena(void)
{
    sn_arena *a = sn_arena_create(1024);
    char *p = sn_arena_alloc(a, 10), *q = sn_arena_alloc(a, 100);
    CHECK(((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0, "allocations are 64-byte aligned");
    CHECK(q >= p + 10, "allocations do not overlap");
    /* Overflow into a second block, then reset merges the blocks so that the
     * same step fits into one block next time. */
    void *big = sn_arena_alloc(a, 5000);
    CHECK(big != NULL, "arena grows past its first block");
    memset(big, 1, 5000);
    size_t cap = sn_arena_capacity(a);
    sn_arena_reset(a);
    CHECK(sn_arena_used(a) == 0, "reset forgets every allocation");
    CHECK(sn_arena_capacity(a) == cap, "reset keeps the memory (%zu vs %zu)", sn_arena_capacity(a), cap);
    char *r = sn_arena_alloc(a, 10);
    void *big2 = sn_arena_alloc(a, 5000);
    CHECK(r && big2 && (char *)big2 > r && sn_arena_capacity(a) == cap, "after the merge a step fits in one block");
    sn_arena_destroy(a);
}

static void test_cache(void)
{
    sn_cache c = {0};
    int vals[300];
    for (int i = 0; i < 300; i++) {
        int key[3] = {i, i * 7, -i};
        vals[i] = i;
        CHECK(sn_cache_insert(&c, key, sizeof key, &vals[i], NULL) == 0, "insert %d", i);
    }
    int bad = 0;
    for (int i = 0; i < 300; i++) {
        int key[3] = {i, i * 7, -i};
        int *v = sn_cache_find(&c, key, sizeof key);
        bad += !v || *v != i;
    }
    CHECK(bad == 0, "every key finds its value after growth (%d bad)", bad);
    int missing[3] = {1, 2, 3};
    CHECK(sn_cache_find(&c, missing, sizeof missing) == NULL, "absent key finds nothing");
    sn_cache_clear(&c);
}

static void test_rng(void)
{
    sn_rng a, b;
    sn_rng_seed(&a, 42);
    sn_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= sn_rng_next(&a) == sn_rng_next(&b);
    CHECK(same, "same seed, same stream");
    sn_rng_seed(&b, 43);
    CHECK(sn_rng_next(&a) != sn_rng_next(&b), "different seeds differ");
    /* Moments of 200k normals and uniforms. */
    double s = 0, s2 = 0, u = 0;
    int n = 200000, below = 0;
    for (int i = 0; i < n; i++) {
        double x = sn_rng_normal(&a);
        s += x, s2 += x * x;
        u += sn_rng_uniform(&a);
        below += sn_rng_below(&a, 10) < 3;
    }
    CHECK(fabs(s / n) < 0.01 && fabs(s2 / n - 1) < 0.02, "normal mean %g var %g", s / n, s2 / n);
    CHECK(fabs(u / n - 0.5) < 0.005, "uniform mean %g", u / n);
    CHECK(fabs((double)below / n - 0.3) < 0.005, "below(10) < 3 with p=0.3: %g", (double)below / n);
}

static void test_reshape_and_params(sn_ctx *ctx)
{
    int64_t wshape[2] = {3, 4};
    sn_tensor *w = sn_param_new(ctx, "w", 2, wshape);
    CHECK(w && w->grad && w->requires_grad && w->is_param && !strcmp(w->name, "w"), "parameter has a gradient");
    for (int i = 0; i < 12; i++) w->data[i] = (float)i;
    int64_t flat = 12;
    sn_tensor *v = sn_reshape(ctx, w, 1, &flat);
    CHECK(v && v->data == w->data, "reshape is a view");
    sn_tensor *s = sn_sum(ctx, sn_mul(ctx, v, v));
    CHECK(sn_backward(ctx, s) == SN_OK, "backward through reshape");
    int ok = 1;
    for (int i = 0; i < 12; i++) ok &= w->grad[i] == 2.0f * i;
    CHECK(ok, "d sum(w^2)/dw = 2w through the view");
    int64_t bad = 13;
    CHECK(sn_reshape(ctx, w, 1, &bad) == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "reshape to wrong count fails");
    CHECK(strstr(sn_ctx_error(ctx), "3x4") != NULL, "message names the shape: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
    CHECK(w->grad[5] == 10.0f, "parameter gradients survive the end of a step");
    sn_zero_grad(&w, 1);
    CHECK(w->grad[5] == 0.0f, "zero_grad");
    int64_t huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    CHECK(sn_tensor_new(ctx, 2, huge) == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "absurd shape is refused");
    sn_ctx_clear_error(ctx);
}

static void test_steps_reuse_memory(sn_ctx *ctx)
{
    /* The same step twice must not need more memory: no growth once warm. */
    size_t cap = 0;
    for (int step = 0; step < 3; step++) {
        sn_tensor *x = leaf4(ctx, 2, 32, 32, 16, 1);
        sn_tensor *y = sn_relu(ctx, sn_add(ctx, x, x));
        sn_backward(ctx, sn_sum(ctx, y));
        if (step == 1) cap = sn_arena_capacity(sn_ctx_step_arena(ctx));
        if (step == 2) CHECK(sn_arena_capacity(sn_ctx_step_arena(ctx)) == cap, "no arena growth in a warm step");
        sn_step_end(ctx);
    }
}

int main(void)
{
    test_arena();
    test_cache();
    test_rng();
    sn_ctx *ctx = test_ctx();
    test_reshape_and_params(ctx);
    test_steps_reuse_memory(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("tensor");
}
