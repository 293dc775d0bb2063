/* Our NHWC depthwise kernels (ops/depthwise.c), called directly: forward
 * against ref_conv2d with groups = C, both backwards against float64 central
 * differences of ref_conv2d. The backwards accumulate, so dx, dw and db start
 * from nonzero values and the increment is what is checked. Cases cover
 * dilation, stride 2 and 3, asymmetric SAME padding, rows and columns that
 * see only padding, stride phases without taps, and channel counts that
 * exercise the 16/8/1-lane blocks (1, 7, 17, 40). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/depthwise.h"
#include "ref/ref.h"
#include "support/check.h"

typedef struct dw_case {
    const char *name;
    int64_t n, h, w, c;
    int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
} dw_case;

/* f(x, w, b) = ref_conv2d, the function the gradients are checked against. */
static void conv_fn(void *u, const double *const *in, double *out)
{
    ref_conv2d(u, in[0], in[1], in[2], out);
}

static float *copy_floats(const float *x, int64_t n)
{
    float *y = malloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    return y;
}

/* after - before, in place in `after`. */
static void increment(float *after, const float *before, int64_t n)
{
    for (int64_t i = 0; i < n; i++) after[i] -= before[i];
}

static void check_forward(const dw_case *k, const sn_dw_shape *s, const ref_conv_shape *rs, const float *x,
                          const float *w, const float *b, int64_t ny)
{
    int64_t nx = k->n * k->h * k->w * k->c, nw = (int64_t)k->kh * k->kw * k->c;
    float *y = malloc((size_t)ny * sizeof *y), *y0 = malloc((size_t)ny * sizeof *y0);
    double *xd = to_f64(x, nx), *wd = to_f64(w, nw), *bd = to_f64(b, k->c);
    double *want = malloc((size_t)ny * sizeof *want);
    sn_dw_forward(s, x, w, b, y);
    ref_conv2d(rs, xd, wd, bd, want);
    double e = rel_err_f32_f64(y, want, ny, 1e-6);
    CHECK(e < 1e-5, "%s forward rel err %g", k->name, e);
    /* Without bias: y0 + b must equal y. */
    sn_dw_forward(s, x, w, NULL, y0);
    for (int64_t i = 0; i < ny; i++) y0[i] += b[i % k->c];
    e = rel_err_f32(y0, y, ny, 1e-6);
    CHECK(e < 1e-5, "%s forward without bias rel err %g", k->name, e);
    free(y), free(y0), free(xd), free(wd), free(bd), free(want);
}

static void check_backward(const dw_case *k, const sn_dw_shape *s, ref_conv_shape *rs, const float *x,
                           const float *w, const float *b, int64_t ny)
{
    int64_t nx = k->n * k->h * k->w * k->c, nw = (int64_t)k->kh * k->kw * k->c;
    float *r = random_floats(ny, 7);
    float *dx0 = random_floats(nx, 8), *dw0 = random_floats(nw, 9), *db0 = random_floats(k->c, 10);
    float *dx = copy_floats(dx0, nx), *dw = copy_floats(dw0, nw), *db = copy_floats(db0, k->c);
    sn_dw_backward_data(s, r, w, dx, true);
    sn_dw_backward_weights(s, x, r, dw, db);
    increment(dx, dx0, nx), increment(dw, dw0, nw), increment(db, db0, k->c);

    const float *inputs[3] = {x, w, b};
    int64_t sizes[3] = {nx, nw, k->c};
    const char *names[3] = {"dx", "dw", "db"};
    const float *incs[3] = {dx, dw, db};
    for (int i = 0; i < 3; i++) {
        const float *grads[3] = {NULL, NULL, NULL};
        grads[i] = incs[i];
        double e = gradcheck(conv_fn, rs, 3, inputs, sizes, grads, r, ny, 1e-3);
        CHECK(e < 1e-3, "%s %s rel err %g", k->name, names[i], e);
    }

    /* Overwrite mode: whatever dx held (here NaN) is replaced by the increment. */
    float *dx_new = malloc((size_t)nx * sizeof *dx_new);
    for (int64_t i = 0; i < nx; i++) dx_new[i] = NAN;
    sn_dw_backward_data(s, r, w, dx_new, false);
    double e_new = rel_err_f32(dx_new, dx, nx, 1e-6);
    CHECK(e_new < 1e-5, "%s dx overwrite rel err %g", k->name, e_new);
    free(dx_new);

    /* db == NULL: same dw increment, nothing else touched. */
    float *dw2 = copy_floats(dw0, nw);
    sn_dw_backward_weights(s, x, r, dw2, NULL);
    increment(dw2, dw0, nw);
    double e = rel_err_f32(dw2, dw, nw, 1e-6);
    CHECK(e < 1e-5, "%s dw without db rel err %g", k->name, e);
    free(r), free(dx0), free(dw0), free(db0), free(dx), free(dw), free(db), free(dw2);
}

static void run_case(const dw_case *k, uint64_t seed)
{
    ref_conv_shape rs = {.n = k->n, .h = k->h, .w = k->w, .ci = k->c, .co = k->c, .kh = k->kh, .kw = k->kw,
                         .stride_h = k->sh, .stride_w = k->sw, .pad_t = k->pt, .pad_l = k->pl, .pad_b = k->pb,
                         .pad_r = k->pr, .dil_h = k->dh, .dil_w = k->dw, .groups = (int)k->c};
    int64_t oh = ref_conv_out_h(&rs), ow = ref_conv_out_w(&rs);
    sn_dw_shape s = {k->n, k->h, k->w, k->c, oh, ow, k->kh, k->kw,
                     {k->sh, k->sw, k->pt, k->pl, k->pb, k->pr, k->dh, k->dw, (int)k->c}};
    int64_t nx = k->n * k->h * k->w * k->c, nw = (int64_t)k->kh * k->kw * k->c, ny = k->n * oh * ow * k->c;
    float *x = random_floats(nx, seed), *w = random_floats(nw, seed + 1), *b = random_floats(k->c, seed + 2);
    check_forward(k, &s, &rs, x, w, b, ny);
    check_backward(k, &s, &rs, x, w, b, ny);
    free(x), free(w), free(b);
}

int main(void)
{
    static const dw_case cases[] = {
        /* name                         n  h   w   c  kh kw sh sw dh dw pt pl pb pr */
        {"3x3 s1 c7", 2, 7, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {"3x3 s1 c40 (16+16+8)", 2, 5, 11, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {"5x5 dil2 SAME c17 (16+1)", 2, 9, 11, 17, 5, 5, 1, 1, 2, 2, 4, 4, 4, 4},
        {"5x5 dil2 SAME c1", 2, 6, 5, 1, 5, 5, 1, 1, 2, 2, 4, 4, 4, 4},
        {"3x3 dil2 s2 SAME c40", 2, 10, 9, 40, 3, 3, 2, 2, 2, 2, 1, 2, 2, 2},
        {"5x5 s2 asym SAME c17", 2, 10, 8, 17, 5, 5, 2, 2, 1, 1, 1, 1, 2, 2},
        {"5x5 s2 asym SAME c1", 2, 11, 10, 1, 5, 5, 2, 2, 1, 1, 2, 1, 2, 2},
        {"3x5 s3x1 dil2x3 c7", 2, 11, 9, 7, 3, 5, 3, 1, 2, 3, 2, 6, 3, 5},
        /* stride 2, dilation 2: inputs of odd phase get no taps at all */
        {"4x4 s2 dil2 c7", 2, 9, 8, 7, 4, 4, 2, 2, 2, 2, 3, 3, 2, 2},
        /* padding wider than the kernel reach: outputs that see only padding */
        {"2x2 big pad c17", 2, 5, 6, 17, 2, 2, 1, 1, 1, 1, 3, 2, 3, 1},
        /* 130 stride phases: more width segments than one build holds */
        {"1x1 s130 c3", 1, 3, 131, 3, 1, 1, 1, 130, 1, 1, 0, 0, 0, 0},
        /* large enough to take the parallel paths (>= 2^16 multiply-adds) */
        {"5x5 dil2 SAME c40 parallel", 2, 6, 6, 40, 5, 5, 1, 1, 2, 2, 4, 4, 4, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], 100 + 10 * i);
    return check_summary("depthwise");
}
