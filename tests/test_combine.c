/* weighted sum (the mixed op), concat, softmax, matmul: forward against the
 * double references, gradients against float64 central differences, and the
 * error paths naming shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "support/check.h"

/* ---- weighted sum ------------------------------------------------------------- */
typedef struct ws_case {
    int n;
    const bool *present; /* which entries are not the zero op */
    int64_t numel;
} ws_case;

/* Inputs: the present x's in order, then the logits. */
static void ws_fn(void *u, const double *const *in, double *out)
{
    const ws_case *c = u;
    const double *xs[8];
    int j = 0;
    for (int i = 0; i < c->n; i++) xs[i] = c->present[i] ? in[j++] : NULL;
    ref_weighted_sum(c->n, xs, in[j], out, c->numel);
}

/* d = <dy, x_i>; dlogit_j = w_j (d_j - sum_k w_k d_k); dx_i = w_i dy, in double. */
static void ws_grad_ref(const ws_case *c, sn_tensor *const *xs, const float *logits, const float *dy,
                        double *dlogit, double *w)
{
    double ld[8], d[8] = {0}, s = 0;
    for (int i = 0; i < c->n; i++) ld[i] = logits[i];
    ref_softmax(ld, w, 1, c->n);
    for (int i = 0; i < c->n; i++)
        if (xs[i])
            for (int64_t j = 0; j < c->numel; j++) d[i] += (double)dy[j] * xs[i]->data[j];
    for (int i = 0; i < c->n; i++) s += w[i] * d[i];
    for (int i = 0; i < c->n; i++) dlogit[i] = w[i] * (d[i] - s);
}

static void check_weighted_sum(sn_ctx *ctx, const char *name, int n, const bool *present, int64_t nb, int64_t h,
                               int64_t w, int64_t ch, bool fd)
{
    ws_case c = {n, present, nb * h * w * ch};
    sn_tensor *xs[8];
    const float *inputs[9], *grads[9];
    int64_t sizes[9];
    int m = 0;
    for (int i = 0; i < n; i++) {
        xs[i] = present[i] ? leaf4(ctx, nb, h, w, ch, 100 + (uint64_t)i) : NULL;
        if (xs[i]) inputs[m] = xs[i]->data, sizes[m++] = c.numel;
    }
    int64_t ln = n;
    sn_tensor *logits = leaf(ctx, 1, &ln, 7);
    inputs[m] = logits->data, sizes[m] = n;
    sn_tensor *y = sn_weighted_sum(ctx, n, xs, logits);
    CHECK(y != NULL, "%s: %s", name, sn_ctx_error(ctx));
    if (!y) return;
    double *want = malloc((size_t)c.numel * sizeof *want);
    double *in64[9];
    for (int i = 0; i <= m; i++) in64[i] = to_f64(inputs[i], sizes[i]);
    ws_fn(&c, (const double *const *)in64, want);
    double e = rel_err_f32_f64(y->data, want, c.numel, 1e-6);
    CHECK(e < 1e-5, "%s forward rel err %g", name, e);
    float *r = random_floats(c.numel, 9);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s backward: %s", name, sn_ctx_error(ctx));
    m = 0;
    for (int i = 0; i < n; i++)
        if (xs[i]) grads[m++] = xs[i]->grad;
    grads[m] = logits->grad;
    if (fd) {
        e = gradcheck(ws_fn, &c, m + 1, inputs, sizes, grads, r, c.numel, 1e-3);
        CHECK(e < 1e-3, "%s gradient rel err %g", name, e);
    } else { /* too large for differences: the analytic formulas in double */
        double dl[8], wd[8];
        ws_grad_ref(&c, xs, logits->data, r, dl, wd);
        e = rel_err_f32_f64(logits->grad, dl, n, 1e-6);
        CHECK(e < 1e-4, "%s logits gradient rel err %g", name, e);
        double worst = 0;
        for (int i = 0; i < n; i++)
            if (xs[i])
                for (int64_t j = 0; j < c.numel; j++) {
                    double d = fabs(xs[i]->grad[j] - wd[i] * r[j]);
                    worst = d > worst ? d : worst;
                }
        CHECK(worst < 1e-5, "%s input gradients max err %g", name, worst);
    }
    for (int i = 0; i <= m; i++) free(in64[i]);
    free(want), free(r);
    sn_step_end(ctx);
}

static void test_weighted_sum(sn_ctx *ctx)
{
    const bool some_none[4] = {true, false, true, true};
    check_weighted_sum(ctx, "weighted_sum with none", 4, some_none, 2, 3, 5, 4, true);
    const bool pair[3] = {true, true, false};
    check_weighted_sum(ctx, "weighted_sum even", 3, pair, 1, 4, 3, 2, true);
    const bool one[2] = {false, true};
    check_weighted_sum(ctx, "weighted_sum single", 2, one, 1, 2, 2, 3, true);
    /* Above the parallel threshold and not a whole number of blocks. */
    const bool eight[8] = {false, true, true, true, true, true, true, true};
    check_weighted_sum(ctx, "weighted_sum large", 8, eight, 2, 33, 37, 24, false);
    const bool two[2] = {true, true};
    check_weighted_sum(ctx, "weighted_sum large even", 2, two, 2, 33, 37, 24, false);

    /* Only the logits require gradients (the architecture step). */
    sn_tensor *x = sn_tensor_new4(ctx, 1, 2, 2, 3);
    fill_normal(x, 3, 1);
    int64_t two_n = 2;
    sn_tensor *lg = leaf(ctx, 1, &two_n, 4), *xs[2] = {x, NULL};
    sn_tensor *y = sn_weighted_sum(ctx, 2, xs, lg);
    float *r = random_floats(12, 5);
    CHECK(y && sn_backward_from(ctx, y, r) == SN_OK && !x->grad && lg->grad, "logits-only gradient");
    free(r);
    sn_step_end(ctx);
}

static void test_weighted_sum_errors(sn_ctx *ctx)
{
    sn_tensor *a = leaf4(ctx, 1, 2, 2, 3, 1), *b = leaf4(ctx, 1, 2, 3, 3, 2);
    int64_t three = 3, two = 2;
    sn_tensor *l3 = leaf(ctx, 1, &three, 3), *l2 = leaf(ctx, 1, &two, 4);
    sn_tensor *ab[3] = {a, NULL, b};
    CHECK(sn_weighted_sum(ctx, 3, ab, l3) == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "mismatched inputs");
    CHECK(strstr(sn_ctx_error(ctx), "1x2x2x3") && strstr(sn_ctx_error(ctx), "1x2x3x3"), "names shapes: %s",
          sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_tensor *aa[3] = {a, NULL, a};
    CHECK(sn_weighted_sum(ctx, 3, aa, l2) == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "logits count");
    sn_ctx_clear_error(ctx);
    sn_tensor *none[2] = {NULL, NULL};
    CHECK(sn_weighted_sum(ctx, 2, none, l2) == NULL && sn_ctx_status(ctx) == SN_ERR_ARG, "all zero ops");
    sn_ctx_clear_error(ctx);
    CHECK(sn_weighted_sum(ctx, 3, aa, NULL) == NULL, "NULL logits propagate");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* ---- concat ------------------------------------------------------------------- */
static const int64_t CAT_C[3] = {2, 5, 1};
static int64_t cat_rows = 2 * 3 * 4;

static void cat_fn(void *u, const double *const *in, double *out)
{
    (void)u;
    ref_concat(3, in, CAT_C, cat_rows, out);
}

static void check_concat(sn_ctx *ctx, int64_t nb, int64_t h, int64_t w, bool fd)
{
    cat_rows = nb * h * w;
    sn_tensor *xs[3];
    const float *inputs[3], *grads[3];
    int64_t sizes[3], total = 0;
    double *in64[3];
    for (int i = 0; i < 3; i++) {
        xs[i] = leaf4(ctx, nb, h, w, CAT_C[i], 20 + (uint64_t)i);
        inputs[i] = xs[i]->data, sizes[i] = xs[i]->numel, total += xs[i]->numel;
        in64[i] = to_f64(inputs[i], sizes[i]);
    }
    xs[1]->requires_grad = false; /* a constant among the inputs */
    sn_tensor *y = sn_concat(ctx, 3, xs);
    CHECK(y && y->ndim == 4 && y->shape[3] == 8 && y->shape[0] == nb, "concat shape");
    if (!y) return;
    double *want = malloc((size_t)total * sizeof *want);
    cat_fn(NULL, (const double *const *)in64, want);
    CHECK(rel_err_f32_f64(y->data, want, total, 1e-6) == 0, "concat forward exact");
    float *r = random_floats(total, 21);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "concat backward: %s", sn_ctx_error(ctx));
    CHECK(xs[1]->grad == NULL, "no gradient for a constant input");
    for (int i = 0; i < 3; i++) grads[i] = xs[i]->grad;
    if (fd) {
        double e = gradcheck(cat_fn, NULL, 3, inputs, sizes, grads, r, total, 1e-3);
        CHECK(e < 1e-3, "concat gradient rel err %g", e);
    } else { /* the gradient is the slice of r: exact */
        bool ok = true;
        for (int64_t row = 0; row < cat_rows; row++)
            for (int64_t c = 0; c < 2; c++) ok &= xs[0]->grad[row * 2 + c] == r[row * 8 + c];
        for (int64_t row = 0; row < cat_rows; row++) ok &= xs[2]->grad[row] == r[row * 8 + 7];
        CHECK(ok, "large concat gradient is the slice of dy");
    }
    for (int i = 0; i < 3; i++) free(in64[i]);
    free(want), free(r);
    sn_step_end(ctx);
}

/* Gradients written into fresh buffers, added into existing ones, and a
 * tensor listed twice (fresh for its first entry, accumulated for the
 * second), for concat and the weighted sum. */
static void test_fresh_and_accumulate(sn_ctx *ctx)
{
    sn_tensor *a = leaf4(ctx, 1, 2, 3, 2, 61), *b = leaf4(ctx, 1, 2, 3, 2, 62);
    float *gb = sn_grad_of(ctx, b);
    for (int i = 0; i < 12; i++) gb[i] = 1.0f; /* b already has a gradient */
    sn_tensor *abab[3] = {a, b, a};
    sn_tensor *y = sn_concat(ctx, 3, abab);
    float *r = random_floats(36, 63);
    CHECK(y && sn_backward_from(ctx, y, r) == SN_OK, "concat of a, b, a");
    bool ok = true;
    for (int row = 0; row < 6; row++)
        for (int c = 0; c < 2; c++) {
            ok &= a->grad[row * 2 + c] == r[row * 6 + c] + r[row * 6 + 4 + c];
            ok &= b->grad[row * 2 + c] == 1.0f + r[row * 6 + 2 + c];
        }
    CHECK(ok, "concat: fresh, accumulated and repeated gradients");
    free(r);
    sn_step_end(ctx);

    a = leaf4(ctx, 1, 2, 3, 2, 64), b = leaf4(ctx, 1, 2, 3, 2, 65);
    gb = sn_grad_of(ctx, b);
    for (int i = 0; i < 12; i++) gb[i] = 1.0f;
    int64_t three = 3;
    sn_tensor *lg = leaf(ctx, 1, &three, 66);
    y = sn_weighted_sum(ctx, 3, abab, lg);
    r = random_floats(12, 67);
    CHECK(y && sn_backward_from(ctx, y, r) == SN_OK, "weighted sum of a, b, a");
    double l64[3] = {lg->data[0], lg->data[1], lg->data[2]}, w[3];
    ref_softmax(l64, w, 1, 3);
    double ea = 0, eb = 0;
    for (int i = 0; i < 12; i++) {
        ea = fmax(ea, fabs(a->grad[i] - (w[0] + w[2]) * r[i]));
        eb = fmax(eb, fabs(b->grad[i] - (1.0 + w[1] * r[i])));
    }
    CHECK(ea < 1e-6 && eb < 1e-6, "weighted sum: fresh+repeated err %g, accumulated err %g", ea, eb);
    free(r);
    sn_step_end(ctx);
}

static void test_concat_errors(sn_ctx *ctx)
{
    sn_tensor *a = leaf4(ctx, 1, 2, 2, 3, 1), *b = leaf4(ctx, 1, 2, 3, 3, 2);
    sn_tensor *ab[2] = {a, b};
    CHECK(sn_concat(ctx, 2, ab) == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "concat mismatched");
    CHECK(strstr(sn_ctx_error(ctx), "1x2x3x3") && strstr(sn_ctx_error(ctx), "1x2x2x3"), "names shapes: %s",
          sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    CHECK(sn_concat(ctx, 0, ab) == NULL && sn_ctx_status(ctx) == SN_ERR_ARG, "concat of nothing");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* ---- softmax ------------------------------------------------------------------ */
static int64_t sm_rows = 2 * 3 * 5, sm_k = 7;

static void sm_fn(void *u, const double *const *in, double *out)
{
    (void)u;
    ref_softmax(in[0], out, sm_rows, sm_k);
}

static void test_softmax(sn_ctx *ctx)
{
    sn_tensor *x = leaf4(ctx, 2, 3, 5, 7, 31);
    int64_t n = x->numel;
    sn_tensor *y = sn_softmax(ctx, x);
    double *xd = to_f64(x->data, n), *want = malloc((size_t)n * sizeof *want);
    sm_fn(NULL, (const double *const *)&xd, want);
    double e = rel_err_f32_f64(y->data, want, n, 1e-6);
    CHECK(e < 1e-5, "softmax forward rel err %g", e);
    float *r = random_floats(n, 32);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "softmax backward");
    const float *in[1] = {x->data}, *g[1] = {x->grad};
    e = gradcheck(sm_fn, NULL, 1, in, &n, g, r, n, 1e-3);
    CHECK(e < 1e-3, "softmax gradient rel err %g", e);
    free(xd), free(want), free(r);
    sn_step_end(ctx);

    /* Stability: logits of +-1000 must give finite probabilities. */
    int64_t shape[2] = {2, 3};
    sn_tensor *big = sn_tensor_new(ctx, 2, shape);
    const float v[6] = {1000, 999, -1000, -1000, 0, 1000};
    memcpy(big->data, v, sizeof v);
    y = sn_softmax(ctx, big);
    double b64[6], bw[6];
    for (int i = 0; i < 6; i++) b64[i] = v[i];
    ref_softmax(b64, bw, 2, 3);
    e = rel_err_f32_f64(y->data, bw, 6, 1e-6);
    CHECK(e < 1e-5, "softmax of large logits rel err %g", e);
    sn_step_end(ctx);

    /* Large: the parallel path. */
    x = leaf4(ctx, 2, 40, 40, 19, 33);
    y = sn_softmax(ctx, x);
    n = x->numel;
    xd = to_f64(x->data, n), want = malloc((size_t)n * sizeof *want);
    ref_softmax(xd, want, n / 19, 19);
    e = rel_err_f32_f64(y->data, want, n, 1e-6);
    CHECK(e < 1e-5, "large softmax forward rel err %g", e);
    free(xd), free(want);
    sn_step_end(ctx);
}

/* ---- matmul ------------------------------------------------------------------- */
static void mm_fn(void *u, const double *const *in, double *out) { ref_matmul(u, in[0], in[1], out); }

/* a is 3-D when a_batched (or both 2-D when batch == 0). */
static void check_matmul(sn_ctx *ctx, int64_t batch, int64_t m, int64_t k, int64_t n, bool ta, bool tb, bool a3,
                         bool b3)
{
    char name[96];
    snprintf(name, sizeof name, "matmul B=%lld %lldx%lldx%lld ta=%d tb=%d a%dD b%dD", (long long)batch,
             (long long)m, (long long)k, (long long)n, ta, tb, a3 ? 3 : 2, b3 ? 3 : 2);
    int64_t sa[3] = {batch, ta ? k : m, ta ? m : k}, sb[3] = {batch, tb ? n : k, tb ? k : n};
    sn_tensor *a = a3 ? leaf(ctx, 3, sa, 41) : leaf(ctx, 2, sa + 1, 41);
    sn_tensor *b = b3 ? leaf(ctx, 3, sb, 42) : leaf(ctx, 2, sb + 1, 42);
    ref_matmul_shape rs = {(a3 || b3) ? batch : 1, m, k, n, ta, tb, a3 || !b3, b3 || !a3};
    sn_tensor *c = sn_matmul(ctx, a, b, ta, tb);
    CHECK(c != NULL, "%s: %s", name, sn_ctx_error(ctx));
    if (!c) return;
    int64_t nc = rs.batch * m * n;
    CHECK(c->numel == nc && c->ndim == ((a3 || b3) ? 3 : 2), "%s output shape", name);
    double *ad = to_f64(a->data, a->numel), *bd = to_f64(b->data, b->numel);
    double *want = malloc((size_t)nc * sizeof *want);
    ref_matmul(&rs, ad, bd, want);
    double e = rel_err_f32_f64(c->data, want, nc, 1e-6);
    CHECK(e < 1e-5, "%s forward rel err %g", name, e);
    float *r = random_floats(nc, 43);
    CHECK(sn_backward_from(ctx, c, r) == SN_OK, "%s backward: %s", name, sn_ctx_error(ctx));
    const float *in[2] = {a->data, b->data}, *g[2] = {a->grad, b->grad};
    int64_t sizes[2] = {a->numel, b->numel};
    e = gradcheck(mm_fn, &rs, 2, in, sizes, g, r, nc, 1e-3);
    CHECK(e < 1e-3, "%s gradient rel err %g", name, e);
    /* A second walk accumulates: the output gradient is 2r by then, so the
     * input gradients reach 3x the first ones. */
    float *ga = malloc((size_t)a->numel * sizeof *ga);
    memcpy(ga, a->grad, (size_t)a->numel * sizeof *ga);
    float *r0 = malloc((size_t)nc * sizeof *r0);
    memcpy(r0, r, (size_t)nc * sizeof *r0);
    CHECK(sn_backward_from(ctx, c, r) == SN_OK, "%s second backward", name);
    bool ok = true;
    for (int64_t i = 0; i < a->numel; i++) ok &= fabsf(a->grad[i] - 3 * ga[i]) <= 1e-5f * (1 + fabsf(ga[i]));
    CHECK(ok, "%s gradients accumulate", name);
    /* The first call borrowed r as c's gradient; the second must not add into it. */
    CHECK(memcmp(r, r0, (size_t)nc * sizeof *r0) == 0 && c->grad != r, "%s output gradient left unchanged", name);
    free(r0);
    const char *fi = sn_impl_name(ctx, "matmul"), *bi = sn_impl_name(ctx, "matmul_bwd");
    CHECK(strncmp(fi, "ref", 3) != 0 && strncmp(bi, "ref", 3) != 0, "%s: oneDNN chose %s / %s", name, fi, bi);
    if (getenv("SEGNAS_TEST_VERBOSE")) printf("%s: fwd %s, bwd %s\n", name, fi, bi);
    free(ad), free(bd), free(want), free(r), free(ga);
    sn_step_end(ctx);
}

static void test_matmul(sn_ctx *ctx)
{
    check_matmul(ctx, 1, 3, 4, 5, false, false, false, false);
    check_matmul(ctx, 1, 3, 4, 5, true, true, false, false);
    for (int t = 0; t < 4; t++) check_matmul(ctx, 2, 3, 4, 5, t & 1, t & 2, true, true);
    check_matmul(ctx, 3, 4, 2, 3, false, false, true, false); /* folded into one product */
    check_matmul(ctx, 3, 4, 2, 3, false, true, true, false);
    check_matmul(ctx, 3, 4, 2, 3, true, false, true, false);  /* shared b: batch-reduced gradient */
    check_matmul(ctx, 2, 3, 4, 5, false, false, false, true); /* shared a */
    check_matmul(ctx, 2, 3, 4, 5, true, true, false, true);
}

static void test_matmul_errors(sn_ctx *ctx)
{
    int64_t sa[3] = {2, 3, 4}, sb[3] = {3, 5, 6}, s1[1] = {4};
    sn_tensor *a = leaf(ctx, 3, sa, 1), *b = leaf(ctx, 3, sb, 2), *v = leaf(ctx, 1, s1, 3);
    CHECK(sn_matmul(ctx, a, b, false, false) == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "inner mismatch");
    CHECK(strstr(sn_ctx_error(ctx), "2x3x4") && strstr(sn_ctx_error(ctx), "3x5x6"), "names shapes: %s",
          sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    int64_t sc[3] = {3, 4, 6};
    sn_tensor *c = leaf(ctx, 3, sc, 4);
    CHECK(sn_matmul(ctx, a, c, false, false) == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "batch mismatch");
    sn_ctx_clear_error(ctx);
    CHECK(sn_matmul(ctx, v, c, false, false) == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "1-D operand");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_weighted_sum(ctx);
    test_weighted_sum_errors(ctx);
    check_concat(ctx, 2, 3, 4, true);
    check_concat(ctx, 2, 50, 60, false);
    test_concat_errors(ctx);
    test_fresh_and_accumulate(ctx);
    test_softmax(ctx);
    test_matmul(ctx);
    test_matmul_errors(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("combine");
}
