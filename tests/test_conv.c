/* sn_conv2d and sn_conv_same: forward against the double reference
 * (ref_conv2d), gradients of x, w and b against float64 central differences,
 * every dispatch path (oneDNN dense/1x1/strided/dilated/grouped, oneDNN
 * jit_dw, our depthwise kernels), gradient accumulation, inputs that do not
 * require gradients, TF 'SAME' paddings, error paths, and the oneDNN
 * implementations chosen for the layers of DESIGN.md (none may be `ref`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/blocked_layout.h"
#include "ops/onednn/conv_wino.h"
#include "ref/ref.h"
#include "support/check.h"

typedef struct conv_case {
    const char *name;
    int64_t n, h, w, ci, co;
    int k;
    sn_conv_params p;
    bool bias;
} conv_case;

static ref_conv_shape ref_shape(const conv_case *c)
{
    return (ref_conv_shape){c->n, c->h, c->w, c->ci, c->co, c->k, c->k, c->p.stride_h, c->p.stride_w,
                            c->p.pad_top, c->p.pad_left, c->p.pad_bottom, c->p.pad_right,
                            c->p.dilation_h, c->p.dilation_w, c->p.groups};
}

typedef struct ref_user {
    ref_conv_shape s;
    bool bias;
} ref_user;

static void conv_fn(void *u, const double *const *in, double *out)
{
    ref_user *r = u;
    ref_conv2d(&r->s, in[0], in[1], r->bias ? in[2] : NULL, out);
}

typedef struct conv_inputs {
    sn_tensor *x, *w, *b;
} conv_inputs;

static conv_inputs make_inputs(sn_ctx *ctx, const conv_case *c, uint64_t seed)
{
    int64_t wshape[4] = {c->k, c->k, c->ci / c->p.groups, c->co}, bshape[1] = {c->co};
    conv_inputs in = {leaf4(ctx, c->n, c->h, c->w, c->ci, seed), leaf(ctx, 4, wshape, seed + 1),
                      c->bias ? leaf(ctx, 1, bshape, seed + 2) : NULL};
    return in;
}

/* False (the failure reported, the error cleared, the step ended) when the
 * convolution under test gave no output. */
static bool ran(sn_ctx *ctx, const sn_tensor *y, const char *name, const char *what)
{
    CHECK(y != NULL, "%s%s: %s", name, what, sn_ctx_error(ctx));
    if (y) return true;
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
    return false;
}

/* Forward vs reference, then gradients of every input that requires one
 * against finite differences of the reference. */
static void check_case(sn_ctx *ctx, const conv_case *c)
{
    conv_inputs in = make_inputs(ctx, c, 100);
    sn_tensor *y = sn_conv2d(ctx, in.x, in.w, in.b, &c->p);
    if (!ran(ctx, y, c->name, "")) return;
    ref_user u = {ref_shape(c), c->bias};
    int64_t oh = ref_conv_out_h(&u.s), ow = ref_conv_out_w(&u.s), ny = c->n * oh * ow * c->co;
    CHECK(y->shape[0] == c->n && y->shape[1] == oh && y->shape[2] == ow && y->shape[3] == c->co,
          "%s: output shape %lldx%lldx%lldx%lld", c->name, (long long)y->shape[0], (long long)y->shape[1],
          (long long)y->shape[2], (long long)y->shape[3]);
    double *xd = to_f64(in.x->data, in.x->numel), *wd = to_f64(in.w->data, in.w->numel);
    double *bd = in.b ? to_f64(in.b->data, in.b->numel) : NULL, *want = malloc((size_t)ny * sizeof *want);
    ref_conv2d(&u.s, xd, wd, bd, want);
    double fe = rel_err_f32_f64(y->data, want, ny, 1e-6);
    CHECK(fe < 1e-4, "%s forward rel err %g", c->name, fe);

    float *r = random_floats(ny, 7);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s backward: %s", c->name, sn_ctx_error(ctx));
    const float *inputs[3] = {in.x->data, in.w->data, in.b ? in.b->data : NULL};
    const float *grads[3] = {in.x->grad, in.w->grad, in.b ? in.b->grad : NULL};
    int64_t sizes[3] = {in.x->numel, in.w->numel, in.b ? in.b->numel : 0};
    CHECK(grads[0] && grads[1] && (!in.b || grads[2]), "%s: every input received a gradient", c->name);
    double ge = gradcheck(conv_fn, &u, in.b ? 3 : 2, inputs, sizes, grads, r, ny, 1e-3);
    CHECK(ge < 1e-3, "%s gradient rel err %g", c->name, ge);
    printf("  %-28s forward %.2e  gradient %.2e\n", c->name, fe, ge);
    free(xd), free(wd), free(bd), free(want), free(r);
    sn_step_end(ctx);
}

static sn_conv_params explicit_pad(int stride, int pad, int dilation, int groups)
{
    return (sn_conv_params){stride, stride, pad, pad, pad, pad, dilation, dilation, groups};
}

/* Dense, 1x1, strided, dilated dense and grouped convolutions: outputs of
 * up to SN_CONV_GEMM_MAX_PIXELS (128) pixels (1024 for 1x1 stride 1) run as
 * matrix products over the live taps (ops/conv_gemm.c), larger ones and
 * grouped ones on oneDNN. */
static void test_dense_paths(sn_ctx *ctx)
{
    const conv_case cases[] = {
        {"3x3 s1 same, bias", 2, 7, 6, 5, 6, 3, sn_conv_same(3, 1, 1, 1, 7, 6), true},
        {"3x3 s2 pad 1", 2, 9, 8, 4, 6, 3, explicit_pad(2, 1, 1, 1), false},
        {"5x5 dilation 2 same, bias", 2, 9, 9, 3, 4, 5, sn_conv_same(5, 1, 2, 1, 9, 9), true},
        {"1x1, bias", 2, 6, 7, 6, 5, 1, explicit_pad(1, 0, 1, 1), true},
        {"1x1 no bias", 2, 6, 6, 4, 4, 1, explicit_pad(1, 0, 1, 1), false},
        {"grouped g=2 3x3 same, bias", 2, 6, 7, 4, 6, 3, sn_conv_same(3, 1, 1, 2, 6, 7), true},
        {"grouped g=2 no bias", 2, 6, 6, 6, 4, 3, sn_conv_same(3, 1, 1, 2, 6, 6), false},
        {"asym SAME 3x3 s2 even input", 2, 8, 8, 3, 5, 3, sn_conv_same(3, 2, 1, 1, 8, 8), false},
        {"asym SAME 5x5 s2 even, bias", 2, 8, 6, 3, 4, 5, sn_conv_same(5, 2, 1, 1, 8, 6), true},
        /* 5x5 rate 2 on 3x3: taps 0 and 4 of each axis only see padding */
        {"5x5 d2 on 3x3 (dead taps), bias", 2, 3, 3, 4, 5, 5, sn_conv_same(5, 1, 2, 1, 3, 3), true},
        {"1x1 s2 (products), bias", 2, 6, 6, 5, 4, 1, explicit_pad(2, 0, 1, 1), true},
        {"3x3 same 2x10x10 (oneDNN)", 2, 10, 10, 3, 4, 3, sn_conv_same(3, 1, 1, 1, 10, 10), true},
        {"1x1 2x24x24 (oneDNN)", 2, 24, 24, 3, 4, 1, explicit_pad(1, 0, 1, 1), false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(ctx, &cases[i]);
}

/* NHWC <-> nChw16c copies against the layout's index formula: element
 * (n, p, ch) at ((n * blocks + ch / 16) * hw + p) * 16 + ch % 16, the
 * channels past c zero. */
static void test_blocked_layout(void)
{
    const int64_t n = 2, hw = 5, c = 20, blocks = 2, nb = n * blocks * hw * 16;
    float *x = random_floats(n * hw * c, 21), *blk = malloc((size_t)nb * sizeof *blk);
    float *y = random_floats(n * hw * c, 22), *y0 = malloc((size_t)(n * hw * c) * sizeof *y0);
    for (int64_t i = 0; i < nb; i++) blk[i] = NAN;
    sn_nhwc_to_blocked(x, blk, n, hw, c);
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t p = 0; p < hw; p++)
            for (int64_t ch = 0; ch < blocks * 16; ch++) {
                float got = blk[((i * blocks + ch / 16) * hw + p) * 16 + ch % 16];
                bad += ch < c ? got != x[(i * hw + p) * c + ch] : got != 0.0f;
            }
    CHECK(bad == 0, "NHWC -> nChw16c: %d elements misplaced or pads not zero", bad);
    memcpy(y0, y, (size_t)(n * hw * c) * sizeof *y0);
    sn_blocked_to_nhwc(blk, y, n, hw, c, true);
    bad = 0;
    for (int64_t i = 0; i < n * hw * c; i++) bad += y[i] != y0[i] + x[i];
    CHECK(bad == 0, "nChw16c -> NHWC accumulating: %d elements wrong", bad);
    sn_blocked_to_nhwc(blk, y, n, hw, c, false);
    CHECK(memcmp(y, x, (size_t)(n * hw * c) * sizeof *y) == 0, "nChw16c -> NHWC round trip");
    free(x), free(blk), free(y), free(y0);
}

/* The float64 backward used as the oracle for large shapes agrees with
 * finite differences of the reference forward. */
static void test_ref_backward(void)
{
    const conv_case c = {"ref backward", 2, 7, 6, 4, 6, 3, {2, 1, 1, 1, 0, 1, 2, 1, 2}, true};
    ref_user u = {ref_shape(&c), true};
    int64_t nx = c.n * c.h * c.w * c.ci, nw = 9 * (c.ci / 2) * c.co;
    int64_t ny = c.n * ref_conv_out_h(&u.s) * ref_conv_out_w(&u.s) * c.co;
    float *x = random_floats(nx, 1), *w = random_floats(nw, 2), *b = random_floats(c.co, 3), *r = random_floats(ny, 4);
    double *xd = to_f64(x, nx), *wd = to_f64(w, nw), *rd = to_f64(r, ny);
    double *dx = malloc((size_t)nx * sizeof *dx), *dw = malloc((size_t)nw * sizeof *dw), *db = malloc(6 * sizeof *db);
    ref_conv2d_backward(&u.s, xd, wd, rd, dx, dw, db);
    float *g[3] = {malloc((size_t)nx * sizeof(float)), malloc((size_t)nw * sizeof(float)), malloc(6 * sizeof(float))};
    for (int64_t i = 0; i < nx; i++) g[0][i] = (float)dx[i];
    for (int64_t i = 0; i < nw; i++) g[1][i] = (float)dw[i];
    for (int64_t i = 0; i < 6; i++) g[2][i] = (float)db[i];
    const float *inputs[3] = {x, w, b}, *grads[3] = {g[0], g[1], g[2]};
    int64_t sizes[3] = {nx, nw, c.co};
    double e = gradcheck(conv_fn, &u, 3, inputs, sizes, grads, r, ny, 1e-3);
    CHECK(e < 1e-5, "ref_conv2d_backward vs finite differences: rel err %g", e);
    free(x), free(w), free(b), free(r), free(xd), free(wd), free(rd), free(dx), free(dw), free(db);
    free(g[0]), free(g[1]), free(g[2]);
}

/* A convolution too large for finite differences, on the path that `op`
 * names `impl...`: forward against the float64 reference, the gradients of
 * x, w and b against ref_conv2d_backward; `twice` sums two uses of the same
 * x and w (accumulating gradients), x_grad / w_grad ask for partial ones. */
typedef struct path_check {
    const char *op, *impl; /* sn_impl_name(op) must start with impl (AVX-512 only) */
} path_check;

static void check_large(sn_ctx *ctx, const conv_case *c, path_check path, bool x_grad, bool w_grad, bool twice)
{
    conv_inputs in = make_inputs(ctx, c, 700);
    in.x->requires_grad = x_grad, in.w->requires_grad = w_grad;
    sn_tensor *y = sn_conv2d(ctx, in.x, in.w, in.b, &c->p);
    if (y && twice) y = sn_add(ctx, y, sn_conv2d(ctx, in.x, in.w, in.b, &c->p));
    if (!ran(ctx, y, c->name, "")) return;
    ref_user u = {ref_shape(c), c->bias};
    int64_t ny = y->numel, nx = in.x->numel, nw = in.w->numel;
    double *xd = to_f64(in.x->data, nx), *wd = to_f64(in.w->data, nw);
    double *bd = c->bias ? to_f64(in.b->data, c->co) : NULL;
    double *want = malloc((size_t)ny * sizeof *want);
    ref_conv2d(&u.s, xd, wd, bd, want);
    double k = twice ? 2 : 1;
    for (int64_t i = 0; i < ny; i++) want[i] *= k;
    double fe = rel_err_f32_f64(y->data, want, ny, 1e-6);
    CHECK(fe < 1e-4, "%s forward rel err %g", c->name, fe);

    float *r = random_floats(ny, 11);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s backward: %s", c->name, sn_ctx_error(ctx));
    double *rd = to_f64(r, ny), *dx = malloc((size_t)nx * sizeof *dx), *dw = malloc((size_t)nw * sizeof *dw);
    double *db = malloc((size_t)c->co * sizeof *db);
    ref_conv2d_backward(&u.s, xd, wd, rd, dx, dw, db);
    for (int64_t i = 0; i < nx; i++) dx[i] *= k;
    for (int64_t i = 0; i < nw; i++) dw[i] *= k;
    for (int64_t i = 0; i < c->co; i++) db[i] *= k;
    CHECK(x_grad == (in.x->grad != NULL) && w_grad == (in.w->grad != NULL) && (!c->bias || in.b->grad),
          "%s: gradients exactly where required", c->name);
    double ex = in.x->grad ? rel_err_f32_f64(in.x->grad, dx, nx, 1e-6) : 0;
    double ew = in.w->grad ? rel_err_f32_f64(in.w->grad, dw, nw, 1e-6) : 0;
    double eb = c->bias ? rel_err_f32_f64(in.b->grad, db, c->co, 1e-6) : 0;
    CHECK(ex < 1e-3 && ew < 1e-3 && eb < 1e-4, "%s gradient rel err x %g w %g b %g", c->name, ex, ew, eb);
    const char *impl = sn_impl_name(ctx, path.op);
    if (__builtin_cpu_supports("avx512f"))
        CHECK(strncmp(impl, path.impl, strlen(path.impl)) == 0, "%s: %s runs %s (got '%s')", c->name, path.op,
              path.impl, impl);
    printf("  %-34s %s: forward %.2e  dx %.2e  dw %.2e  db %.2e\n", c->name, impl, fe, ex, ew, eb);
    free(xd), free(wd), free(bd), free(want), free(r), free(rd), free(dx), free(dw), free(db);
    sn_step_end(ctx);
}

static void test_winograd(sn_ctx *ctx)
{
    const conv_case even = {"wino 2x32x32 48->64", 2, 32, 32, 48, 64, 3, sn_conv_same(3, 1, 1, 1, 32, 32), true};
    const conv_case odd = {"wino 2x39x31 44->56", 2, 39, 31, 44, 56, 3, sn_conv_same(3, 1, 1, 1, 39, 31), true};
    const path_check wino = {"conv_fwd", "jit_wino"};
    check_large(ctx, &even, wino, true, true, false);
    check_large(ctx, &odd, wino, true, true, false);
    check_large(ctx, &odd, wino, true, true, true);
    check_large(ctx, &odd, wino, false, true, false);
    check_large(ctx, &odd, wino, true, false, false);
    /* Narrow or narrow-and-large ones stay direct (where Winograd measured slower). */
    const struct {
        const char *name;
        int64_t n, hw, c;
    } direct[] = {{"16 ch, 151 MFLOP", 2, 64, 16}, {"40 ch, 2x136x136", 2, 136, 40}};
    for (int i = 0; i < 2; i++) {
        sn_tensor *x = leaf4(ctx, direct[i].n, direct[i].hw, direct[i].hw, direct[i].c, 1);
        int64_t ws[4] = {3, 3, direct[i].c, direct[i].c};
        sn_conv_params p = sn_conv_same(3, 1, 1, 1, direct[i].hw, direct[i].hw);
        sn_tensor *y = sn_conv2d(ctx, x, leaf(ctx, 4, ws, 2), NULL, &p);
        const char *impl = sn_impl_name(ctx, "conv_fwd");
        CHECK(y && strncmp(impl, "jit_wino", 8) != 0, "%s: direct (got '%s')", direct[i].name, impl);
        sn_step_end(ctx);
    }
}

/* 3x3 stride-2 backward passes (ops/conv_stride2.c): column pairs for dx,
 * register tiles for dw. Even and odd sizes (an odd last column runs alone),
 * both top/left paddings (TF 'SAME' on even input pads 0 before, on odd
 * input 1; PyTorch's padding=1 pads 1), channel counts that split the
 * vectors unevenly (Cin 24 and 40: the near part ends inside a vector;
 * Cin 64 and Cout 96: chunks of 4 + 4 and 3 + 3 vectors), input rows and
 * columns that no output reads, accumulation and partial gradients; outside
 * the measured channel range oneDNN keeps the backward. */
static void test_stride2(sn_ctx *ctx)
{
    const path_check bd = {"conv_bwd_data", "segnas:s2_pairs"}, bw = {"conv_bwd_weights", "segnas:s2_tiles"};
    const conv_case cases[] = {
        {"s2 SAME even 2x20x18 40->80", 2, 20, 18, 40, 80, 3, sn_conv_same(3, 2, 1, 1, 20, 18), true},
        {"s2 SAME odd 2x21x19 24->32", 2, 21, 19, 24, 32, 3, sn_conv_same(3, 2, 1, 1, 21, 19), true},
        {"s2 pad 1 even 2x22x16 24->16", 2, 22, 16, 24, 16, 3, explicit_pad(2, 1, 1, 1), false},
        {"s2 pad 1/0 odd 2x17x23 64->96", 2, 17, 23, 64, 96, 3, {2, 2, 1, 0, 1, 1, 1, 1, 1}, true},
        {"s2 pad 0/1 3x18x15 32->128", 3, 18, 15, 32, 128, 3, {2, 2, 0, 1, 1, 0, 1, 1, 1}, true},
        {"s2 SAME 2x18x18 128->192", 2, 18, 18, 128, 192, 3, sn_conv_same(3, 2, 1, 1, 18, 18), true},
        /* unpadded: the last input row and column reach no output */
        {"s2 VALID 2x20x20 40->48", 2, 20, 20, 40, 48, 3, explicit_pad(2, 0, 1, 1), true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_large(ctx, &cases[i], bd, true, true, false);
        check_large(ctx, &cases[i], bw, true, true, false);
    }
    check_large(ctx, &cases[1], bd, true, true, true);
    check_large(ctx, &cases[3], bw, true, true, true);
    check_large(ctx, &cases[0], bw, false, true, false);
    check_large(ctx, &cases[3], bd, true, false, false);
    /* Outside the measured channel range oneDNN keeps the backward. */
    const conv_case onednn[] = {
        {"s2 16->32 stays oneDNN", 2, 24, 24, 16, 32, 3, sn_conv_same(3, 2, 1, 1, 24, 24), false},
        {"s2 128->256 stays oneDNN", 2, 18, 18, 128, 256, 3, sn_conv_same(3, 2, 1, 1, 18, 18), false},
    };
    for (size_t i = 0; i < sizeof onednn / sizeof onednn[0]; i++)
        check_large(ctx, &onednn[i], (path_check){"conv_bwd_data", "jit"}, true, true, false);
}

/* The Winograd forward in strips of output rows (large inputs: each strip a
 * convolution of its own, padded only at the image's edges) equals the
 * reference: strips of 4, 8 and 12 rows over 37 (a partial last strip), odd
 * width, batch 2, with bias. */
static void test_winograd_strips(sn_ctx *ctx)
{
    const conv_case c = {"wino strips", 2, 37, 29, 48, 64, 3, sn_conv_same(3, 1, 1, 1, 37, 29), true};
    conv_inputs in = make_inputs(ctx, &c, 800);
    ref_user u = {ref_shape(&c), true};
    int64_t ny = c.n * 37 * 29 * c.co;
    double *xd = to_f64(in.x->data, in.x->numel), *wd = to_f64(in.w->data, in.w->numel);
    double *bd = to_f64(in.b->data, c.co), *want = malloc((size_t)ny * sizeof *want);
    ref_conv2d(&u.s, xd, wd, bd, want);
    sn_conv_shape s = {c.n, c.h, c.w, c.ci, c.co, 37, 29, 3, 3, c.p, true};
    float *y = malloc((size_t)ny * sizeof *y);
    const int64_t rows[3] = {4, 8, 12};
    for (int i = 0; i < 3; i++) {
        for (int64_t k = 0; k < ny; k++) y[k] = NAN;
        int rc = sn_dnnl_wino_forward_rows(ctx, &s, in.x->data, in.w->data, in.b->data, y, rows[i]);
        double e = rc ? 1 : rel_err_f32_f64(y, want, ny, 1e-6);
        CHECK(rc == SN_OK && e < 1e-4, "strips of %lld rows: %s, rel err %g", (long long)rows[i],
              sn_ctx_error(ctx), e);
    }
    free(xd), free(wd), free(bd), free(want), free(y);
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* Depthwise: oneDNN jit_dw (undilated forward, 3x3 backward) and our own
 * kernels (dilated in every direction, backward of kernels > 3x3). */
static void test_depthwise_paths(sn_ctx *ctx)
{
    const conv_case cases[] = {
        {"dw 3x3 same, bias", 2, 7, 6, 6, 6, 3, sn_conv_same(3, 1, 1, 6, 7, 6), true},
        {"dw 3x3 no bias", 2, 6, 6, 5, 5, 3, sn_conv_same(3, 1, 1, 5, 6, 6), false},
        {"dw 3x3 s2 same (asym)", 2, 8, 8, 6, 6, 3, sn_conv_same(3, 2, 1, 6, 8, 8), true},
        {"dw 5x5 dilation 2 same", 2, 9, 8, 5, 5, 5, sn_conv_same(5, 1, 2, 5, 9, 8), false},
        {"dw 5x5 dilation 2, bias", 2, 8, 9, 4, 4, 5, sn_conv_same(5, 1, 2, 4, 8, 9), true},
        {"dw 3x3 dilation 2 s2", 2, 9, 9, 3, 3, 3, sn_conv_same(3, 2, 2, 3, 9, 9), true},
        {"dw 5x5 same (own bwd)", 2, 7, 7, 6, 6, 5, sn_conv_same(5, 1, 1, 6, 7, 7), true},
        {"dw 5x5 s2 same (own bwd)", 2, 8, 8, 3, 3, 5, sn_conv_same(5, 2, 1, 3, 8, 8), false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(ctx, &cases[i]);
}

/* Gradients accumulate: conv(x,w,b) + conv(x,w,b) gives twice the gradients
 * of one conv (exercises the accumulate paths of every kernel). */
static void check_accumulation(sn_ctx *ctx, const conv_case *c)
{
    conv_inputs in = make_inputs(ctx, c, 300);
    sn_tensor *y = sn_conv2d(ctx, in.x, in.w, in.b, &c->p);
    if (!ran(ctx, y, c->name, " accumulation")) return;
    float *r = random_floats(y->numel, 8);
    sn_backward_from(ctx, y, r);
    float *gx = malloc((size_t)in.x->numel * sizeof *gx), *gw = malloc((size_t)in.w->numel * sizeof *gw);
    memcpy(gx, in.x->grad, (size_t)in.x->numel * sizeof *gx);
    memcpy(gw, in.w->grad, (size_t)in.w->numel * sizeof *gw);
    float gb0 = in.b ? in.b->grad[0] : 0;
    /* Forget the first run: its node is skipped once its output has no gradient. */
    y->grad = in.x->grad = in.w->grad = NULL;
    if (in.b) in.b->grad = NULL;
    sn_tensor *y2 = sn_add(ctx, sn_conv2d(ctx, in.x, in.w, in.b, &c->p), sn_conv2d(ctx, in.x, in.w, in.b, &c->p));
    CHECK(sn_backward_from(ctx, y2, r) == SN_OK, "%s accumulation backward: %s", c->name, sn_ctx_error(ctx));
    for (int64_t i = 0; i < in.x->numel; i++) gx[i] *= 2;
    for (int64_t i = 0; i < in.w->numel; i++) gw[i] *= 2;
    CHECK(rel_err_f32(in.x->grad, gx, in.x->numel, 1e-6) < 1e-5, "%s: x gradient accumulates", c->name);
    CHECK(rel_err_f32(in.w->grad, gw, in.w->numel, 1e-6) < 1e-5, "%s: w gradient accumulates", c->name);
    if (in.b) CHECK_NEAR(in.b->grad[0], 2 * gb0, 1e-5, "bias gradient accumulates");
    free(gx), free(gw), free(r);
    sn_step_end(ctx);
}

static void test_accumulation(sn_ctx *ctx)
{
    const conv_case cases[] = {
        {"dense 3x3 (products)", 2, 6, 6, 4, 5, 3, sn_conv_same(3, 1, 1, 1, 6, 6), true},
        {"1x1 (one product)", 2, 6, 6, 4, 5, 1, explicit_pad(1, 0, 1, 1), true},
        {"dense 3x3 (oneDNN)", 2, 10, 10, 4, 5, 3, sn_conv_same(3, 1, 1, 1, 10, 10), true},
        {"dw 3x3 (jit_dw)", 2, 6, 6, 4, 4, 3, sn_conv_same(3, 1, 1, 4, 6, 6), true},
        {"dw 5x5 dilation 2 (own)", 2, 7, 7, 4, 4, 5, sn_conv_same(5, 1, 2, 4, 7, 7), true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_accumulation(ctx, &cases[i]);
}

/* x that does not require a gradient gets none; w/b that do not are skipped;
 * the remaining gradients are still right. */
static void check_partial_grads(sn_ctx *ctx, const conv_case *c)
{
    for (int mode = 0; mode < 2; mode++) {
        conv_inputs in = make_inputs(ctx, c, 500 + mode);
        if (mode == 0) in.x->requires_grad = false;
        else in.w->requires_grad = false;
        sn_tensor *y = sn_conv2d(ctx, in.x, in.w, in.b, &c->p);
        if (!ran(ctx, y, c->name, " partial grads")) continue;
        float *r = random_floats(y->numel, 9);
        CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s partial backward: %s", c->name, sn_ctx_error(ctx));
        bool ok = mode == 0 ? in.x->grad == NULL && in.w->grad && in.b->grad
                            : in.w->grad == NULL && in.x->grad && in.b->grad;
        CHECK(ok, "%s: only the inputs requiring gradients get them (mode %d)", c->name, mode);
        ref_user u = {ref_shape(c), true};
        const float *inputs[3] = {in.x->data, in.w->data, in.b->data};
        const float *grads[3] = {in.x->grad, in.w->grad, in.b->grad};
        int64_t sizes[3] = {in.x->numel, in.w->numel, in.b->numel};
        double ge = ok ? gradcheck(conv_fn, &u, 3, inputs, sizes, grads, r, y->numel, 1e-3) : 1;
        CHECK(ge < 1e-3, "%s partial gradients (mode %d) rel err %g", c->name, mode, ge);
        free(r);
        sn_step_end(ctx);
    }
}

static void test_partial_grads(sn_ctx *ctx)
{
    const conv_case dense = {"dense 3x3 s2", 2, 7, 7, 3, 4, 3, sn_conv_same(3, 2, 1, 1, 7, 7), true};
    const conv_case dw = {"dw 5x5 dilation 2", 2, 7, 7, 3, 3, 5, sn_conv_same(5, 1, 2, 3, 7, 7), true};
    check_partial_grads(ctx, &dense);
    check_partial_grads(ctx, &dw);

    conv_case c = dense;
    conv_inputs in = make_inputs(ctx, &c, 600);
    in.x->requires_grad = in.w->requires_grad = in.b->requires_grad = false;
    int before = sn_tape_size(ctx);
    sn_tensor *y = sn_conv2d(ctx, in.x, in.w, in.b, &c.p);
    CHECK(y && !y->requires_grad && sn_tape_size(ctx) == before, "no input requires grad: nothing recorded");
    sn_step_end(ctx);
}

/* Hand-computed TF 'SAME' paddings: out = ceil(in/stride), total =
 * (out-1)*stride + (k-1)*dilation + 1 - in, top = total/2, rest at bottom. */
static void test_same(void)
{
    struct {
        int k, s, d;
        int64_t h, w;
        int top, bottom, left, right;
    } t[] = {
        {3, 1, 1, 7, 7, 1, 1, 1, 1},  {3, 2, 1, 8, 8, 0, 1, 0, 1},   {3, 2, 1, 9, 9, 1, 1, 1, 1},
        {5, 1, 2, 9, 9, 4, 4, 4, 4},  {1, 2, 1, 8, 8, 0, 0, 0, 0},   {5, 2, 1, 10, 7, 1, 2, 2, 2},
        {3, 2, 2, 6, 6, 1, 2, 1, 2},  {3, 1, 6, 20, 4, 6, 6, 6, 6},  {7, 4, 1, 5, 14, 3, 3, 2, 3},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        sn_conv_params p = sn_conv_same(t[i].k, t[i].s, t[i].d, 3, t[i].h, t[i].w);
        CHECK(p.pad_top == t[i].top && p.pad_bottom == t[i].bottom && p.pad_left == t[i].left &&
                  p.pad_right == t[i].right,
              "SAME k%d s%d d%d %lldx%lld: pads t%d b%d l%d r%d, want t%d b%d l%d r%d", t[i].k, t[i].s,
              t[i].d, (long long)t[i].h, (long long)t[i].w, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right,
              t[i].top, t[i].bottom, t[i].left, t[i].right);
        CHECK(p.stride_h == t[i].s && p.stride_w == t[i].s && p.dilation_h == t[i].d &&
                  p.dilation_w == t[i].d && p.groups == 3,
              "SAME k%d: stride, dilation and groups carried", t[i].k);
    }
}

static void expect_fail(sn_ctx *ctx, sn_tensor *y, int status, const char *a, const char *b, const char *what)
{
    CHECK(y == NULL, "%s: fails", what);
    CHECK(sn_ctx_status(ctx) == status, "%s: status %s (got %s)", what, sn_status_name(status),
          sn_status_name(sn_ctx_status(ctx)));
    CHECK((!a || strstr(sn_ctx_error(ctx), a)) && (!b || strstr(sn_ctx_error(ctx), b)),
          "%s: message names %s %s: %s", what, a ? a : "", b ? b : "", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
}

static void test_errors(sn_ctx *ctx)
{
    int64_t s3[3] = {2, 5, 5}, w334[4] = {3, 3, 3, 4}, w336[4] = {3, 3, 3, 6}, w335[4] = {3, 3, 2, 5};
    int64_t w226[4] = {3, 3, 2, 6}, b5[1] = {5};
    sn_tensor *x = leaf4(ctx, 2, 5, 5, 4, 1), *x6 = leaf4(ctx, 2, 5, 5, 6, 1);
    sn_conv_params p1 = explicit_pad(1, 1, 1, 1), p2 = explicit_pad(1, 1, 1, 2);
    expect_fail(ctx, sn_conv2d(ctx, leaf(ctx, 3, s3, 1), leaf(ctx, 4, w334, 2), NULL, &p1), SN_ERR_SHAPE,
                "2x5x5", NULL, "3-D input");
    expect_fail(ctx, sn_conv2d(ctx, x, leaf(ctx, 3, s3, 2), NULL, &p1), SN_ERR_SHAPE, "2x5x5", NULL,
                "3-D weights");
    expect_fail(ctx, sn_conv2d(ctx, x, leaf(ctx, 4, w334, 2), NULL, &p1), SN_ERR_SHAPE, "3x3x3x4",
                "2x5x5x4", "Cin mismatch");
    expect_fail(ctx, sn_conv2d(ctx, leaf4(ctx, 2, 5, 5, 5, 1), leaf(ctx, 4, w226, 2), NULL, &p2), SN_ERR_SHAPE,
                "2x5x5x5", "groups 2", "Cin % groups");
    expect_fail(ctx, sn_conv2d(ctx, x, leaf(ctx, 4, w335, 2), NULL, &p2), SN_ERR_SHAPE, "3x3x2x5", "groups 2",
                "Cout % groups");
    expect_fail(ctx, sn_conv2d(ctx, x6, leaf(ctx, 4, w336, 2), leaf(ctx, 1, b5, 3), &p2), SN_ERR_SHAPE,
                "bias 5", "{6}", "bias size");
    sn_conv_params p0 = explicit_pad(1, 0, 1, 1);
    expect_fail(ctx, sn_conv2d(ctx, leaf4(ctx, 1, 2, 2, 3, 1), leaf(ctx, 4, w334, 2), NULL, &p0), SN_ERR_SHAPE,
                "1x2x2x3", "3x3x3x4", "empty output");
    sn_conv_params bad = explicit_pad(0, 1, 1, 1);
    expect_fail(ctx, sn_conv2d(ctx, leaf4(ctx, 2, 5, 5, 3, 1), leaf(ctx, 4, w334, 2), NULL, &bad), SN_ERR_ARG,
                "stride 0x0", NULL, "stride 0");
    bad = explicit_pad(1, -1, 1, 1);
    expect_fail(ctx, sn_conv2d(ctx, leaf4(ctx, 2, 5, 5, 3, 1), leaf(ctx, 4, w334, 2), NULL, &bad), SN_ERR_ARG,
                "negative padding", NULL, "negative padding");
    expect_fail(ctx, sn_conv2d(ctx, leaf4(ctx, 2, 5, 5, 3, 1), leaf(ctx, 4, w334, 2), NULL, NULL), SN_ERR_ARG,
                "NULL", NULL, "NULL params");
    CHECK(sn_conv2d(ctx, NULL, leaf(ctx, 4, w334, 2), NULL, &p1) == NULL, "NULL input propagates");
    sn_tensor *x3 = leaf4(ctx, 2, 5, 5, 3, 1), *w3 = leaf(ctx, 4, w334, 2);
    sn_ctx_fail(ctx, SN_ERR_IO, "earlier failure");
    CHECK(sn_conv2d(ctx, x3, w3, NULL, &p1) == NULL, "errors are sticky");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* The layers of DESIGN.md (batch 2): run forward and backward once and
 * require that oneDNN chose no `ref` implementation for any of them. */
static void check_impls(sn_ctx *ctx, const char *layer, const char *prefix)
{
    const char *dirs[3] = {"fwd", "bwd_data", "bwd_weights"};
    for (int i = 0; i < 3; i++) {
        char op[32];
        snprintf(op, sizeof op, "%s_%s", prefix, dirs[i]);
        const char *impl = sn_impl_name(ctx, op);
        printf("  %-34s %-12s %s\n", layer, op, impl);
        CHECK(impl[0] && strncmp(impl, "ref", 3) != 0, "%s %s: implementation '%s' is not a fast one", layer,
              op, impl);
    }
}

/* prefix: the path the layer takes, "conv" / "dwconv" (oneDNN convolution)
 * or "conv_gemm" (oneDNN matmul, ops/conv_gemm.c). */
static void run_layer(sn_ctx *ctx, const char *layer, const char *prefix, int64_t hw, int64_t ci, int64_t co,
                      int k, int stride, int groups)
{
    sn_tensor *x = leaf4(ctx, 2, hw, hw, ci, 1);
    int64_t wshape[4] = {k, k, ci / groups, co}, bshape[1] = {co};
    sn_tensor *w = leaf(ctx, 4, wshape, 2), *b = leaf(ctx, 1, bshape, 3);
    sn_conv_params p = sn_conv_same(k, stride, 1, groups, hw, hw);
    sn_tensor *y = sn_conv2d(ctx, x, w, b, &p);
    CHECK(y != NULL, "%s: %s", layer, sn_ctx_error(ctx));
    if (y) {
        float *r = random_floats(y->numel, 4);
        CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s backward: %s", layer, sn_ctx_error(ctx));
        free(r);
        check_impls(ctx, layer, prefix);
    }
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

static void test_impls(sn_ctx *ctx)
{
    printf("oneDNN implementations (batch 2, %d threads):\n", sn_get_num_threads());
    run_layer(ctx, "a: conv 3x3 40->40 @80x80 (Winograd)", "conv", 80, 40, 40, 3, 1, 1);
    run_layer(ctx, "d: conv 1x1 160->160 @20x20", "conv_gemm", 20, 160, 160, 1, 1, 1);
    run_layer(ctx, "e: conv 3x3 s2 40->80 from 80x80", "conv", 80, 40, 80, 3, 2, 1);
    run_layer(ctx, "b: dw 3x3 40ch @80x80", "dwconv", 80, 40, 40, 3, 1, 40);
    run_layer(ctx, "b: pw 1x1 40->40 @80x80", "conv", 80, 40, 40, 1, 1, 1);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_same();
    test_errors(ctx);
    test_dense_paths(ctx);
    test_ref_backward();
    test_blocked_layout();
    test_winograd(ctx);
    test_winograd_strips(ctx);
    test_stride2(ctx);
    test_impls(ctx);
    test_accumulation(ctx);
    test_partial_grads(ctx);
    test_depthwise_paths(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("conv");
}
