/* sn_linear_combination against the double reference and finite differences,
 * with coefficients taken from elements of two different tensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "support/check.h"

enum { NUMEL = 2 * 4 * 5 * 3 };

/* inputs: x0, x1, x2, c_a (2 elements), c_b (3 elements); term i uses
 * c_a[1], c_b[0], c_b[2]. */
static void fn(void *u, const double *const *in, double *out)
{
    (void)u;
    const double coef[3] = {in[3][1], in[4][0], in[4][2]};
    ref_linear_combination(3, in, coef, out, NUMEL);
}

static void test_values_and_gradients(sn_ctx *ctx)
{
    sn_tensor *x[3];
    for (int i = 0; i < 3; i++) x[i] = leaf4(ctx, 2, 4, 5, 3, 10 + i);
    int64_t na = 2, nb = 3;
    sn_tensor *ca = leaf(ctx, 1, &na, 20), *cb = leaf(ctx, 1, &nb, 21);
    sn_tensor *coef[3] = {ca, cb, cb};
    int index[3] = {1, 0, 2};
    sn_tensor *y = sn_linear_combination(ctx, 3, x, coef, index);
    CHECK(y != NULL, "linear_combination: %s", sn_ctx_error(ctx));
    if (!y) return;
    const float *inputs[5] = {x[0]->data, x[1]->data, x[2]->data, ca->data, cb->data};
    int64_t sizes[5] = {NUMEL, NUMEL, NUMEL, 2, 3};
    double *d[5], want[NUMEL];
    for (int i = 0; i < 5; i++) d[i] = to_f64(inputs[i], sizes[i]);
    fn(NULL, (const double *const *)d, want);
    CHECK(rel_err_f32_f64(y->data, want, NUMEL, 1e-6) < 1e-6, "forward");
    float *r = random_floats(NUMEL, 3);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "backward: %s", sn_ctx_error(ctx));
    const float *grads[5] = {x[0]->grad, x[1]->grad, x[2]->grad, ca->grad, cb->grad};
    double e = gradcheck(fn, NULL, 5, inputs, sizes, grads, r, NUMEL, 1e-3);
    CHECK(e < 1e-3, "gradients rel err %g", e);
    CHECK(ca->grad[0] == 0.0f, "unused coefficient gets no gradient");
    for (int i = 0; i < 5; i++) free(d[i]);
    free(r);
    sn_step_end(ctx);
}

static void test_errors(sn_ctx *ctx)
{
    sn_tensor *a = leaf4(ctx, 1, 2, 2, 3, 1), *b = leaf4(ctx, 1, 2, 3, 3, 2);
    int64_t n1 = 1;
    sn_tensor *c = leaf(ctx, 1, &n1, 3);
    sn_tensor *xs[2] = {a, b}, *cs[2] = {c, c};
    int index[2] = {0, 0};
    CHECK(!sn_linear_combination(ctx, 2, xs, cs, index) && sn_ctx_status(ctx) == SN_ERR_SHAPE &&
              strstr(sn_ctx_error(ctx), "1x2x3x3"),
          "shape mismatch named: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    xs[1] = a;
    index[1] = 4;
    CHECK(!sn_linear_combination(ctx, 2, xs, cs, index) && sn_ctx_status(ctx) == SN_ERR_ARG &&
              strstr(sn_ctx_error(ctx), "index 4"),
          "bad index named: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_values_and_gradients(ctx);
    test_errors(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("linear_combination");
}
