/* sn_resize_bilinear: PyTorch's values on a hand-worked example, forward
 * against the double reference (ref_resize_bilinear) for upsampling x2,
 * odd up/down mixes and downsampling, both align_corners modes; gradients
 * against float64 central differences; gradient accumulation; error paths;
 * oneDNN implementations for search-size activations (none may be `ref`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "support/check.h"

typedef struct resize_case {
    int64_t n, h, w, c, oh, ow;
    bool align;
} resize_case;

static void resize_fn(void *u, const double *const *in, double *out)
{
    const resize_case *r = u;
    ref_resize_bilinear(in[0], out, r->n, r->h, r->w, r->c, r->oh, r->ow, r->align);
}

/* F.interpolate(torch.arange(4.).view(1,1,2,2), size=4, mode='bilinear'):
 * align_corners=False gives source offsets {0, .25, .75, 1} per axis,
 * align_corners=True {0, 1/3, 2/3, 1}; the value is 2*row + col. */
static void test_by_hand(sn_ctx *ctx)
{
    const double off[2][4] = {{0, 0.25, 0.75, 1}, {0, 1.0 / 3, 2.0 / 3, 1}};
    for (int align = 0; align < 2; align++) {
        sn_tensor *x = leaf4(ctx, 1, 2, 2, 1, 1);
        for (int i = 0; i < 4; i++) x->data[i] = (float)i;
        sn_tensor *y = sn_resize_bilinear(ctx, x, 4, 4, align);
        CHECK(y != NULL, "by hand: %s", sn_ctx_error(ctx));
        if (!y) {
            sn_ctx_clear_error(ctx);
            sn_step_end(ctx);
            continue;
        }
        double worst = 0;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                worst = fmax(worst, fabs(y->data[i * 4 + j] - (2 * off[align][i] + off[align][j])));
        CHECK(worst < 1e-6, "2x2 -> 4x4 align_corners=%d matches PyTorch's values (err %g)", align, worst);
        sn_step_end(ctx);
    }
}

static void check_case(sn_ctx *ctx, const resize_case *rc)
{
    char name[96];
    snprintf(name, sizeof name, "%lldx%lld -> %lldx%lld (%lld ch) align_corners=%d", (long long)rc->h,
             (long long)rc->w, (long long)rc->oh, (long long)rc->ow, (long long)rc->c, rc->align);
    sn_tensor *x = leaf4(ctx, rc->n, rc->h, rc->w, rc->c, 17);
    sn_tensor *y = sn_resize_bilinear(ctx, x, rc->oh, rc->ow, rc->align);
    CHECK(y != NULL, "%s: %s", name, sn_ctx_error(ctx));
    if (!y) {
        sn_ctx_clear_error(ctx);
        sn_step_end(ctx);
        return;
    }
    int64_t ny = rc->n * rc->oh * rc->ow * rc->c;
    CHECK(y->shape[0] == rc->n && y->shape[1] == rc->oh && y->shape[2] == rc->ow && y->shape[3] == rc->c,
          "%s: output shape", name);
    double *xd = to_f64(x->data, x->numel), *want = malloc((size_t)ny * sizeof *want);
    ref_resize_bilinear(xd, want, rc->n, rc->h, rc->w, rc->c, rc->oh, rc->ow, rc->align);
    double fe = rel_err_f32_f64(y->data, want, ny, 1e-6);
    CHECK(fe < 1e-5, "%s forward rel err %g", name, fe);
    float *r = random_floats(ny, 19);
    CHECK(sn_backward_from(ctx, y, r) == SN_OK, "%s backward: %s", name, sn_ctx_error(ctx));
    const float *inputs[1] = {x->data}, *grads[1] = {x->grad};
    double ge = gradcheck(resize_fn, (void *)rc, 1, inputs, &x->numel, grads, r, ny, 1e-3);
    CHECK(ge < 1e-3, "%s gradient rel err %g", name, ge);
    free(xd), free(want), free(r);
    sn_step_end(ctx);
}

static void test_cases(sn_ctx *ctx)
{
    const resize_case shapes[] = {
        {2, 5, 6, 3, 10, 12, false}, /* upsample x2 */
        {1, 7, 9, 5, 13, 5, false},  /* up in H, down in W */
        {2, 8, 8, 4, 4, 4, false},   /* downsample /2 */
        {1, 4, 4, 19, 8, 8, false},  /* channel tail (16 + 3) */
        {2, 1, 1, 6, 4, 5, false},   /* image pooling branch: broadcast */
        {1, 6, 5, 3, 6, 5, false},   /* identity size */
        {1, 5, 7, 2, 9, 13, false},  /* (in-1)*2+1: the align_corners-friendly size */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int align = 0; align < 2; align++) {
            resize_case rc = shapes[i];
            rc.align = align;
            check_case(ctx, &rc);
        }
}

/* y = resize(x) + resize(x): the second backward adds to the first. */
static void test_accumulation(sn_ctx *ctx)
{
    for (int align = 0; align < 2; align++) {
        float *once = NULL;
        for (int uses = 1; uses <= 2; uses++) {
            sn_tensor *x = leaf4(ctx, 2, 5, 7, 20, 23);
            sn_tensor *y = sn_resize_bilinear(ctx, x, 9, 4, align);
            if (uses == 2) y = sn_add(ctx, y, sn_resize_bilinear(ctx, x, 9, 4, align));
            float *r = random_floats(y ? y->numel : 1, 29);
            CHECK(y && sn_backward_from(ctx, y, r) == SN_OK, "accumulation: %s", sn_ctx_error(ctx));
            free(r);
            if (uses == 1) {
                once = malloc((size_t)x->numel * sizeof *once);
                memcpy(once, x->grad, (size_t)x->numel * sizeof *once);
            } else {
                double worst = 0;
                for (int64_t i = 0; i < x->numel; i++) worst = fmax(worst, fabs(x->grad[i] - 2.0 * once[i]));
                CHECK(worst < 1e-5, "align_corners=%d: gradient of two uses is twice one use (diff %g)", align,
                      worst);
            }
            sn_step_end(ctx);
        }
        free(once);
    }
}

static void expect_error(sn_ctx *ctx, sn_tensor *y, const char *needle, const char *what)
{
    CHECK(y == NULL && sn_ctx_status(ctx) == SN_ERR_SHAPE, "%s fails with SN_ERR_SHAPE (got %s)", what,
          sn_status_name(sn_ctx_status(ctx)));
    CHECK(strstr(sn_ctx_error(ctx), needle) != NULL, "%s: message names %s: %s", what, needle, sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
}

static void test_errors(sn_ctx *ctx)
{
    int64_t sh3[3] = {4, 4, 3};
    sn_tensor *x3 = leaf(ctx, 3, sh3, 1), *x = leaf4(ctx, 1, 2, 3, 4, 2);
    expect_error(ctx, sn_resize_bilinear(ctx, x3, 8, 8, false), "4x4x3", "3-D input");
    expect_error(ctx, sn_resize_bilinear(ctx, x, 0, 8, false), "0x8", "zero output height");
    expect_error(ctx, sn_resize_bilinear(ctx, x, 4, -2, true), "1x2x3x4", "negative output width");
    CHECK(sn_resize_bilinear(ctx, NULL, 4, 4, false) == NULL, "NULL input propagates");
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
}

/* The search's resizes (x2 up and /2 down of a 2x80x80x40-class activation)
 * must not run on oneDNN's reference implementations (DESIGN.md). */
static void test_impls(sn_ctx *ctx)
{
    const int64_t sizes[2][2] = {{40, 80}, {80, 40}};
    for (int i = 0; i < 2; i++) {
        sn_tensor *x = leaf4(ctx, 2, sizes[i][0], sizes[i][0], 40, 31);
        sn_tensor *y = sn_resize_bilinear(ctx, x, sizes[i][1], sizes[i][1], false);
        CHECK(y && sn_backward(ctx, sn_sum(ctx, y)) == SN_OK, "80x80 resize: %s", sn_ctx_error(ctx));
        const char *f = sn_impl_name(ctx, "resample_fwd"), *b = sn_impl_name(ctx, "resample_bwd");
        printf("resize 2x%lldx%lldx40 -> %lldx%lld: fwd %s, bwd %s\n", (long long)sizes[i][0],
               (long long)sizes[i][0], (long long)sizes[i][1], (long long)sizes[i][1], f, b);
        CHECK(*f && strncmp(f, "ref", 3) != 0, "resample_fwd implementation %s", f);
        CHECK(*b && strncmp(b, "ref", 3) != 0, "resample_bwd implementation %s", b);
        sn_step_end(ctx);
    }
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_by_hand(ctx);
    test_cases(ctx);
    test_accumulation(ctx);
    test_errors(ctx);
    test_impls(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("resize");
}
