/* The mixed op (sn_weighted_sum), forward and forward+backward, against an
 * unfused composition of the same math in plain loops (one pass per input
 * and per product, as a framework composing mul/add/sum does), at the sizes
 * of Auto-DeepLab edges. Prints median microseconds, effective GB/s and the
 * speed-up of the fused op. Usage: bench_weighted_sum [threads] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segnas/ops.h"

#define N_OPS 8
#define REPS 82 /* half on each gradient path */

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* Unfused: y = sum w_i x_i one input per pass; backward dx_i = w_i dy (a
 * fresh gradient, as a framework's mul backward makes) and d_i = <dy, x_i>
 * as separate passes. */
static void unfused(float *y, float *const *x, float *const *gx, const float *dy, const float *w, double *d,
                    int64_t n, bool backward)
{
    memset(y, 0, (size_t)n * sizeof *y);
    for (int i = 1; i < N_OPS; i++)
#pragma omp parallel for simd if (parallel : n > 32768)
        for (int64_t j = 0; j < n; j++) y[j] += w[i] * x[i][j];
    if (!backward) return;
    for (int i = 1; i < N_OPS; i++) {
#pragma omp parallel for simd if (parallel : n > 32768)
        for (int64_t j = 0; j < n; j++) gx[i][j] = w[i] * dy[j];
        double acc = 0;
#pragma omp parallel for simd reduction(+ : acc) if (parallel : n > 32768)
        for (int64_t j = 0; j < n; j++) acc += (double)dy[j] * x[i][j];
        d[i] = acc;
    }
}

static void run(sn_ctx *ctx, int64_t nb, int64_t h, int64_t w, int64_t c)
{
    int64_t shape[4] = {nb, h, w, c}, nl = N_OPS, n = nb * h * w * c;
    sn_tensor *xs[N_OPS], *logits = sn_param_new(ctx, "alpha", 1, &nl);
    float *xraw[N_OPS], *graw[N_OPS];
    sn_rng rng;
    sn_rng_seed(&rng, 1);
    sn_rng_fill_normal(&rng, logits->data, N_OPS, 0, 1e-3f);
    for (int i = 0; i < N_OPS; i++) {
        /* Entry 0 is 'none', as in the Auto-DeepLab operator list. */
        xs[i] = i == 0 ? NULL : sn_param_new(ctx, "x", 4, shape);
        if (xs[i]) sn_rng_fill_normal(&rng, xs[i]->data, n, 0, 1);
        xraw[i] = xs[i] ? xs[i]->data : NULL;
        graw[i] = xs[i] ? xs[i]->grad : NULL;
    }
    float *dy = malloc((size_t)n * sizeof *dy), *y = malloc((size_t)n * sizeof *y), wts[N_OPS];
    sn_rng_fill_normal(&rng, dy, n, 0, 1);
    for (int i = 0; i < N_OPS; i++) wts[i] = 1.0f / N_OPS;
    double d[N_OPS], tf[REPS], tb[REPS], ta[REPS], uf[REPS], ub[REPS];
    for (int r = 0; r < REPS; r++) {
        /* The op outputs are step tensors whose gradients start absent, as
         * in a supernet (data copied in, untimed). */
        sn_tensor *step_xs[N_OPS];
        for (int i = 0; i < N_OPS; i++) {
            step_xs[i] = xs[i] ? sn_tensor_new(ctx, 4, shape) : NULL;
            if (!step_xs[i]) continue;
            memcpy(step_xs[i]->data, xs[i]->data, (size_t)n * sizeof(float));
            step_xs[i]->requires_grad = true;
        }
        double t0 = now_us();
        sn_tensor *out = sn_weighted_sum(ctx, N_OPS, step_xs, logits);
        double t1 = now_us();
        /* Odd repetitions zero the gradients first (timed), as if another
         * consumer had made them: the accumulating path. */
        if (r % 2)
            for (int i = 0; i < N_OPS; i++)
                if (step_xs[i]) sn_grad_of(ctx, step_xs[i]);
        sn_backward_from(ctx, out, dy);
        double t2 = now_us();
        sn_step_end(ctx);
        tf[r / 2] = t1 - t0;
        if (r % 2) ta[r / 2] = t2 - t0;
        else tb[r / 2] = t2 - t0;
        t0 = now_us();
        unfused(y, xraw, graw, dy, wts, d, n, false);
        t1 = now_us();
        unfused(y, xraw, graw, dy, wts, d, n, true);
        t2 = now_us();
        uf[r / 2] = t1 - t0, ub[r / 2] = t2 - t1;
    }
    if (sn_ctx_status(ctx)) {
        fprintf(stderr, "bench_weighted_sum: %s\n", sn_ctx_error(ctx));
        exit(1);
    }
    int h2 = REPS / 2;
    double mf = median(tf, h2), mb = median(tb, h2), ma = median(ta, h2), mu = median(uf, h2), mub = median(ub, h2);
    /* Bytes that must move: fwd reads 7 inputs, writes y; bwd reads dy and
     * 7 inputs, writes 7 gradients (plus the forward). */
    double fwd_bytes = 8.0 * n * 4, bwd_bytes = fwd_bytes + (1 + 7 * 2) * 4.0 * n;
    printf("%4lldx%3lldx%3lldx%3lld %8lld  fwd %8.1f us %6.1f GB/s (unfused %8.1f, x%.2f)   "
           "fwd+bwd %8.1f us %6.1f GB/s (unfused %8.1f, x%.2f; into zeroed grads %8.1f)\n",
           (long long)nb, (long long)h, (long long)w, (long long)c, (long long)n, mf, fwd_bytes / mf * 1e-3, mu,
           mu / mf, mb, bwd_bytes / mb * 1e-3, mub, mub / mb, ma);
    free(dy), free(y);
}

int main(int argc, char **argv)
{
    sn_ctx_options opt = {.threads = argc > 1 ? atoi(argv[1]) : 2, .param_arena_bytes = (size_t)1 << 30,
                         .step_arena_bytes = (size_t)1 << 30};
    sn_ctx *ctx = sn_ctx_create(&opt);
    if (!ctx) return 1;
    printf("sn_weighted_sum, %d ops (1 'none'), %d threads, median of %d\n", N_OPS, sn_get_num_threads(), REPS / 2);
    run(ctx, 2, 16, 16, 8);   /* 64x64 crop, level /4, F=8 */
    run(ctx, 2, 41, 41, 16);  /* 321x321 crop, level /8 */
    run(ctx, 2, 81, 81, 8);   /* 321x321 crop, level /4 */
    run(ctx, 2, 81, 81, 40);  /* a whole /4 cell width */
    run(ctx, 2, 161, 161, 40); /* large: memory bound */
    sn_ctx_destroy(ctx);
    return 0;
}
