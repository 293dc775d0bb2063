/* relu, add, mul, scale, sum: forward against the double reference,
 * gradients against float64 central differences, errors named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "support/check.h"

static int64_t N = 2 * 5 * 7 * 3;

static void relu_fn(void *u, const double *const *in, double *out) { (void)u; ref_relu(in[0], out, N); }
static void add_fn(void *u, const double *const *in, double *out) { (void)u; ref_add(in[0], in[1], out, N); }
static void mul_fn(void *u, const double *const *in, double *out) { (void)u; ref_mul(in[0], in[1], out, N); }
static void scale_fn(void *u, const double *const *in, double *out)
{
    (void)u;
    for (int64_t i = 0; i < N; i++) out[i] = in[0][i] * in[1][0];
}

/* Runs a unary/binary op, compares forward with ref and gradients with FD. */
static void check_binary(sn_ctx *ctx, const char *name, sn_tensor *(*op)(sn_ctx *, sn_tensor *, sn_tensor *),
                         ref_fn ref, int64_t nb)
{
    sn_tensor *a = leaf4(ctx, 2, 5, 7, 3, 11);
    int64_t shb[1] = {nb};
    sn_tensor *b = nb == 1 ? leaf(ctx, 1, shb, 12) : leaf4(ctx, 2, 5, 7, 3, 12);
    sn_tensor *y = op(ctx, a, b);
    CHECK(y != NULL, "%s: %s", name, sn_ctx_error(ctx));
    if (!y) return;
    double *want = malloc((size_t)N * sizeof *want);
    double *ad = to_f64(a->data, N), *bd = to_f64(b->data, b->numel);
    const double *ins[2] = {ad, bd};
    ref(NULL, ins, want);
    CHECK(rel_err_f32_f64(y->data, want, N, 1e-6) < 1e-6, "%s forward", name);
    float *r = random_floats(N, 13);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s backward: %s", name, sn_ctx_error(ctx));
    const float *inputs[2] = {a->data, b->data};
    const float *grads[2] = {a->grad, b->grad};
    int64_t sizes[2] = {N, b->numel};
    double e = gradcheck(ref, NULL, 2, inputs, sizes, grads, r, N, 1e-3);
    CHECK(e < 1e-3, "%s gradient rel err %g", name, e);
    free(want), free(ad), free(bd), free(r);
    sn_step_end(ctx);
}

static void test_relu(sn_ctx *ctx)
{
    sn_tensor *x = leaf4(ctx, 2, 5, 7, 3, 1);
    /* Keep inputs away from the kink so differences are well defined. */
    for (int64_t i = 0; i < N; i++)
        if (fabsf(x->data[i]) < 0.05f) x->data[i] = 0.1f;
    sn_tensor *y = sn_relu(ctx, x);
    double *xd = to_f64(x->data, N), want[210];
    ref_relu(xd, want, N);
    CHECK(rel_err_f32_f64(y->data, want, N, 1e-6) == 0, "relu forward exact");
    float *r = random_floats(N, 2);
    sn_backward_from(ctx, y, r);
    const float *in[1] = {x->data}, *g[1] = {x->grad};
    double e = gradcheck(relu_fn, NULL, 1, in, &N, g, r, N, 1e-3);
    CHECK(e < 1e-3, "relu gradient rel err %g", e);
    free(xd), free(r);
    sn_step_end(ctx);
}

static void test_sum_and_accumulation(sn_ctx *ctx)
{
    /* y = sum(x + x): the gradient of x must accumulate to 2 everywhere. */
    sn_tensor *x = leaf4(ctx, 1, 2, 2, 3, 5);
    sn_tensor *s = sn_sum(ctx, sn_add(ctx, x, x));
    double want = 0;
    for (int i = 0; i < 12; i++) want += 2.0 * x->data[i];
    CHECK_NEAR(s->data[0], want, 1e-6, "sum forward");
    CHECK(sn_backward(ctx, s) == SN_OK, "sum backward");
    int ok = 1;
    for (int i = 0; i < 12; i++) ok &= x->grad[i] == 2.0f;
    CHECK(ok, "gradients accumulate over both uses of x");
    sn_step_end(ctx);
}

static void test_errors(sn_ctx *ctx)
{
    sn_tensor *a = leaf4(ctx, 1, 2, 2, 3, 1), *b = leaf4(ctx, 1, 2, 3, 3, 2);
    CHECK(sn_add(ctx, a, b) == NULL, "add of different shapes fails");
    CHECK(sn_ctx_status(ctx) == SN_ERR_SHAPE, "status is SN_ERR_SHAPE");
    CHECK(strstr(sn_ctx_error(ctx), "1x2x2x3") && strstr(sn_ctx_error(ctx), "1x2x3x3"),
          "message names both shapes: %s", sn_ctx_error(ctx));
    CHECK(sn_relu(ctx, a) == NULL, "errors are sticky");
    sn_ctx_clear_error(ctx);
    CHECK(sn_relu(ctx, NULL) == NULL, "NULL input propagates");
    sn_ctx_clear_error(ctx);
    sn_tensor *s = sn_sum(ctx, a);
    s->data[0] = NAN;
    CHECK(sn_backward(ctx, s) == SN_ERR_NUMERIC, "NaN loss is reported");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

static void test_no_grad(sn_ctx *ctx)
{
    sn_tensor *a = leaf4(ctx, 1, 2, 2, 3, 1);
    bool old = sn_set_grad_enabled(ctx, false);
    sn_tensor *y = sn_relu(ctx, a);
    CHECK(sn_tape_size(ctx) == 0 && !y->requires_grad, "no tape in no_grad mode");
    sn_set_grad_enabled(ctx, old);
    y = sn_relu(ctx, a);
    CHECK(sn_tape_size(ctx) == 1 && y->requires_grad, "tape records with grad enabled");
    sn_step_end(ctx);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_relu(ctx);
    check_binary(ctx, "add", sn_add, add_fn, N);
    check_binary(ctx, "mul", sn_mul, mul_fn, N);
    check_binary(ctx, "scale", sn_scale, scale_fn, 1);
    test_sum_and_accumulation(ctx);
    test_errors(ctx);
    test_no_grad(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("elementwise");
}
