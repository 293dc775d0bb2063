#include "support/check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_passed, n_failed;

void check_record(bool ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        n_passed++;
        return;
    }
    n_failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int check_summary(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, n_passed, n_failed);
    return n_failed ? 1 : (n_passed ? 0 : 1);
}

double rel_err_f32_f64(const float *got, const double *want, int64_t n, double floor)
{
    double max_diff = 0, max_ref = floor;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= max_diff)) max_diff = d; /* NaN propagates as a failure */
        if (fabs(want[i]) > max_ref) max_ref = fabs(want[i]);
    }
    return max_diff / max_ref;
}

double rel_err_f32(const float *got, const float *want, int64_t n, double floor)
{
    double *w = to_f64(want, n);
    double e = rel_err_f32_f64(got, w, n, floor);
    free(w);
    return e;
}

double *to_f64(const float *x, int64_t n)
{
    double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    if (!d) abort();
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

void fill_normal(sn_tensor *t, uint64_t seed, float std)
{
    sn_rng r;
    sn_rng_seed(&r, seed);
    sn_rng_fill_normal(&r, t->data, t->numel, 0.0f, std);
}

sn_tensor *leaf(sn_ctx *ctx, int ndim, const int64_t *shape, uint64_t seed)
{
    sn_tensor *t = sn_tensor_new(ctx, ndim, shape);
    if (!t) {
        fprintf(stderr, "leaf: %s\n", sn_ctx_error(ctx));
        abort();
    }
    fill_normal(t, seed, 1.0f);
    t->requires_grad = true;
    return t;
}

sn_tensor *leaf4(sn_ctx *ctx, int64_t n, int64_t h, int64_t w, int64_t c, uint64_t seed)
{
    int64_t shape[4] = {n, h, w, c};
    return leaf(ctx, 4, shape, seed);
}

sn_ctx *test_ctx(void)
{
    sn_ctx_options opt = {.threads = 2};
    sn_ctx *ctx = sn_ctx_create(&opt);
    if (!ctx) {
        fprintf(stderr, "cannot create a context\n");
        exit(1);
    }
    return ctx;
}

static double ref_loss(ref_fn fn, void *user, const double *const *in, const float *r,
                       int64_t out_n, double *out)
{
    fn(user, in, out);
    double l = 0;
    for (int64_t i = 0; i < out_n; i++) l += (double)r[i] * out[i];
    return l;
}

double gradcheck(ref_fn fn, void *user, int n_inputs, const float *const *inputs,
                 const int64_t *input_sizes, const float *const *grads, const float *r,
                 int64_t out_n, double h)
{
    double **in = malloc((size_t)n_inputs * sizeof *in);
    double *out = malloc((size_t)out_n * sizeof *out);
    if (!in || !out) abort();
    for (int k = 0; k < n_inputs; k++) in[k] = to_f64(inputs[k], input_sizes[k]);
    double worst = 0;
    for (int k = 0; k < n_inputs; k++) {
        if (!grads[k]) continue;
        double *fd = malloc((size_t)input_sizes[k] * sizeof *fd);
        if (!fd) abort();
        for (int64_t i = 0; i < input_sizes[k]; i++) {
            double x0 = in[k][i];
            in[k][i] = x0 + h;
            double lp = ref_loss(fn, user, (const double *const *)in, r, out_n, out);
            in[k][i] = x0 - h;
            double lm = ref_loss(fn, user, (const double *const *)in, r, out_n, out);
            in[k][i] = x0;
            fd[i] = (lp - lm) / (2 * h);
        }
        double e = rel_err_f32_f64(grads[k], fd, input_sizes[k], 1e-6);
        if (!(e <= worst)) worst = e;
        free(fd);
    }
    for (int k = 0; k < n_inputs; k++) free(in[k]);
    free(in);
    free(out);
    return worst;
}

float *random_floats(int64_t n, uint64_t seed)
{
    float *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r) abort();
    sn_rng g;
    sn_rng_seed(&g, seed);
    sn_rng_fill_normal(&g, r, n, 0, 1);
    return r;
}
