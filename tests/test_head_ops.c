/* Ops of the context and graph heads: adaptive average pooling, Gaussian
 * soft-assignment logits and the normalised mean residual. Forward against
 * the double references, gradients against float64 central differences,
 * errors named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "support/check.h"

/* ---- adaptive average pooling ----------------------------------------------- */
typedef struct apool_case {
    int64_t n, h, w, c, oh, ow;
} apool_case;

static void apool_fn(void *u, const double *const *in, double *out)
{
    const apool_case *s = u;
    ref_adaptive_avg_pool2d(in[0], out, s->n, s->h, s->w, s->c, s->oh, s->ow);
}

static void test_adaptive_pool(sn_ctx *ctx, apool_case s)
{
    sn_tensor *x = leaf4(ctx, s.n, s.h, s.w, s.c, 21);
    sn_tensor *y = sn_adaptive_avg_pool2d(ctx, x, s.oh, s.ow);
    CHECK(y && y->shape[1] == s.oh && y->shape[2] == s.ow && y->shape[3] == s.c, "adaptive pool %lldx%lld shape: %s",
          (long long)s.oh, (long long)s.ow, sn_ctx_error(ctx));
    if (!y) return;
    double *xd = to_f64(x->data, x->numel), *want = malloc((size_t)y->numel * sizeof *want);
    const double *ins[1] = {xd};
    apool_fn(&s, ins, want);
    CHECK(rel_err_f32_f64(y->data, want, y->numel, 1e-6) < 1e-6, "adaptive pool %lldx%lld forward",
          (long long)s.oh, (long long)s.ow);
    float *r = random_floats(y->numel, 22);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "adaptive pool backward: %s", sn_ctx_error(ctx));
    const float *inputs[1] = {x->data}, *grads[1] = {x->grad};
    double e = gradcheck(apool_fn, &s, 1, inputs, &x->numel, grads, r, y->numel, 1e-3);
    CHECK(e < 1e-4, "adaptive pool %lldx%lld gradient rel err %g", (long long)s.oh, (long long)s.ow, e);
    free(xd), free(want), free(r);
    sn_step_end(ctx);
}

/* ---- Gaussian logits --------------------------------------------------------- */
enum { GR = 2 * 5, GK = 4, GC = 3 };

static void glogits_fn(void *u, const double *const *in, double *out)
{
    (void)u;
    ref_gaussian_logits(in[0], in[1], in[2], out, GR, GK, GC);
}

/* Scales in [0.7, 1.5]: positive and away from 0, as a learned sigma. */
static sn_tensor *scales(sn_ctx *ctx, int64_t k, int64_t c, uint64_t seed)
{
    int64_t shape[2] = {k, c};
    sn_tensor *s = leaf(ctx, 2, shape, seed);
    for (int64_t i = 0; i < s->numel; i++) s->data[i] = 1.1f + 0.4f * tanhf(s->data[i]);
    return s;
}

static void test_gaussian_logits(sn_ctx *ctx)
{
    int64_t xs[3] = {2, 5, GC}, ws[2] = {GK, GC};
    sn_tensor *x = leaf(ctx, 3, xs, 31), *w = leaf(ctx, 2, ws, 32), *s = scales(ctx, GK, GC, 33);
    sn_tensor *y = sn_gaussian_logits(ctx, x, w, s);
    CHECK(y && y->ndim == 3 && y->shape[2] == GK, "gaussian logits shape {2,5,K}: %s", sn_ctx_error(ctx));
    if (!y) return;
    double *xd = to_f64(x->data, x->numel), *wd = to_f64(w->data, w->numel), *sd = to_f64(s->data, s->numel);
    double want[GR * GK];
    const double *ins[3] = {xd, wd, sd};
    glogits_fn(NULL, ins, want);
    CHECK(rel_err_f32_f64(y->data, want, GR * GK, 1e-6) < 1e-5, "gaussian logits forward");
    float *r = random_floats(y->numel, 34);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "gaussian logits backward: %s", sn_ctx_error(ctx));
    const float *inputs[3] = {x->data, w->data, s->data}, *grads[3] = {x->grad, w->grad, s->grad};
    int64_t sizes[3] = {x->numel, w->numel, s->numel};
    double e = gradcheck(glogits_fn, NULL, 3, inputs, sizes, grads, r, y->numel, 1e-3);
    CHECK(e < 1e-3, "gaussian logits gradients (x, centres, sigma) rel err %g", e);
    free(xd), free(wd), free(sd), free(r);
    sn_step_end(ctx);
}

/* ---- normalised mean residual ---------------------------------------------- */
enum { RB = 2, RP = 6, RK = 3, RC = 4 };

static void srm_fn(void *u, const double *const *in, double *out)
{
    ref_soft_residual_mean(in[0], in[1], in[2], in[3], out, RB, RP, RK, RC, *(const bool *)u);
}

static void test_soft_residual_mean(sn_ctx *ctx, bool normalize)
{
    int64_t xs[3] = {RB, RP, RC}, qs[3] = {RB, RP, RK}, ws[2] = {RK, RC};
    sn_tensor *x = leaf(ctx, 3, xs, 41), *q = leaf(ctx, 3, qs, 42), *w = leaf(ctx, 2, ws, 43);
    sn_tensor *s = scales(ctx, RK, RC, 44);
    /* Positive weights, as a softmax gives. */
    for (int64_t i = 0; i < q->numel; i++) q->data[i] = 0.2f + 0.8f / (1.0f + expf(-q->data[i]));
    sn_tensor *z = sn_soft_residual_mean(ctx, x, q, w, s, normalize);
    CHECK(z && z->shape[0] == RB && z->shape[1] == RK && z->shape[2] == RC, "soft residual mean shape: %s",
          sn_ctx_error(ctx));
    if (!z) return;
    double *d[4] = {to_f64(x->data, x->numel), to_f64(q->data, q->numel), to_f64(w->data, w->numel),
                    to_f64(s->data, s->numel)};
    double want[RB * RK * RC];
    srm_fn(&normalize, (const double *const *)d, want);
    CHECK(rel_err_f32_f64(z->data, want, z->numel, 1e-6) < 1e-5, "soft residual mean forward (normalize %d)",
          normalize);
    float *r = random_floats(z->numel, 45);
    CHECK(sn_backward_from(ctx, z, r) == SN_OK, "soft residual mean backward: %s", sn_ctx_error(ctx));
    const float *inputs[4] = {x->data, q->data, w->data, s->data};
    const float *grads[4] = {x->grad, q->grad, w->grad, s->grad};
    int64_t sizes[4] = {x->numel, q->numel, w->numel, s->numel};
    double e = gradcheck(srm_fn, &normalize, 4, inputs, sizes, grads, r, z->numel, 1e-3);
    CHECK(e < 1e-3, "soft residual mean gradients (x, q, centres, sigma; normalize %d) rel err %g", normalize, e);
    for (int i = 0; i < 4; i++) free(d[i]);
    free(r);
    sn_step_end(ctx);
}

static void test_errors(sn_ctx *ctx)
{
    sn_tensor *x = leaf4(ctx, 1, 4, 4, 2, 1);
    CHECK(!sn_adaptive_avg_pool2d(ctx, x, 5, 2) && sn_ctx_status(ctx) == SN_ERR_SHAPE &&
              strstr(sn_ctx_error(ctx), "1x4x4x2") && strstr(sn_ctx_error(ctx), "5x2"),
          "more bins than cells fails naming both: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    int64_t ws[2] = {3, 5};
    sn_tensor *w = leaf(ctx, 2, ws, 2), *s = leaf(ctx, 2, ws, 3);
    CHECK(!sn_gaussian_logits(ctx, x, w, s) && sn_ctx_status(ctx) == SN_ERR_SHAPE &&
              strstr(sn_ctx_error(ctx), "1x4x4x2") && strstr(sn_ctx_error(ctx), "3x5"),
          "channel mismatch fails naming the shapes: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    int64_t xs[3] = {2, 6, 5}, qs[3] = {2, 7, 3};
    sn_tensor *x3 = leaf(ctx, 3, xs, 4), *q = leaf(ctx, 3, qs, 5);
    CHECK(!sn_soft_residual_mean(ctx, x3, q, w, s, true) && sn_ctx_status(ctx) == SN_ERR_SHAPE &&
              strstr(sn_ctx_error(ctx), "2x7x3"),
          "assignment of the wrong length fails naming it: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_adaptive_pool(ctx, (apool_case){2, 8, 8, 3, 1, 1});
    test_adaptive_pool(ctx, (apool_case){2, 8, 8, 3, 3, 3});
    test_adaptive_pool(ctx, (apool_case){2, 7, 9, 2, 6, 4});
    test_adaptive_pool(ctx, (apool_case){1, 5, 5, 2, 5, 5});
    test_gaussian_logits(ctx);
    test_soft_residual_mean(ctx, true);
    test_soft_residual_mean(ctx, false);
    test_errors(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("head_ops");
}
