/* Our NHWC depthwise kernels (ops/depthwise.c) on the depthwise layers of
 * DESIGN.md: median milliseconds and GFLOP/s of forward, backward data and
 * backward weights (+ bias). Target on layer c (dw 5x5 dilation 2, 80 ch at
 * 40x40, batch 2): ~0.34 ms for all three on 2 threads (114 GFLOP/s), vs
 * 1.42 ms for oneDNN 2.6's best. Usage: bench_depthwise [threads] [reps] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ops/depthwise.h"
#include "segnas/tensor.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
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

/* 64-byte aligned like the step arena's tensors (misaligned 64-byte
 * vectors would split cache lines and halve the load rate). */
static float *filled(int64_t n, sn_rng *rng)
{
    float *p = aligned_alloc(64, ((size_t)n * sizeof *p + 63) / 64 * 64);
    if (!p) exit(1);
    sn_rng_fill_normal(rng, p, n, 0, 1);
    return p;
}

static void run(const char *name, int64_t n, int64_t hw, int64_t c, int k, int dil, int reps)
{
    int pad = dil * (k - 1) / 2; /* SAME, stride 1 */
    sn_dw_shape s = {n, hw, hw, c, hw, hw, k, k, {1, 1, pad, pad, pad, pad, dil, dil, (int)c}};
    int64_t nx = n * hw * hw * c, nw = (int64_t)k * k * c;
    sn_rng rng;
    sn_rng_seed(&rng, 1);
    float *x = filled(nx, &rng), *w = filled(nw, &rng), *b = filled(c, &rng), *y = filled(nx, &rng);
    float *dy = filled(nx, &rng), *dx = filled(nx, &rng), *dw = filled(nw, &rng), *db = filled(c, &rng);
    double *tf = malloc((size_t)reps * sizeof *tf), *td = malloc((size_t)reps * sizeof *td);
    double *tw = malloc((size_t)reps * sizeof *tw), *tt = malloc((size_t)reps * sizeof *tt);
    for (int r = -3; r < reps; r++) { /* 3 warm-up runs */
        double t0 = now_ms();
        sn_dw_forward(&s, x, w, b, y);
        double t1 = now_ms();
        sn_dw_backward_data(&s, dy, w, dx, true);
        double t2 = now_ms();
        sn_dw_backward_weights(&s, x, dy, dw, db);
        double t3 = now_ms();
        if (r >= 0) tf[r] = t1 - t0, td[r] = t2 - t1, tw[r] = t3 - t2, tt[r] = t3 - t0;
    }
    double gflop = 2.0 * n * hw * hw * c * k * k * 1e-9; /* one direction */
    double mf = median(tf, reps), md = median(td, reps), mw = median(tw, reps), mt = median(tt, reps);
    printf("%-28s fwd %6.3f ms %5.0f GF/s | bwd_data %6.3f ms %5.0f GF/s | bwd_weights %6.3f ms %5.0f GF/s "
           "| all %6.3f ms %5.0f GF/s\n",
           name, mf, gflop / mf * 1e3, md, gflop / md * 1e3, mw, gflop / mw * 1e3, mt, 3 * gflop / mt * 1e3);
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db);
    free(tf), free(td), free(tw), free(tt);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 51;
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_depthwise [threads >= 1] [reps >= 1]\n");
        return 2;
    }
    sn_set_num_threads(threads);
    printf("depthwise NHWC kernels, batch 2, SAME padding, %d threads, median of %d\n", sn_get_num_threads(), reps);
    run("c: dw5x5 dil2 80ch @40x40", 2, 40, 80, 5, 2, reps);
    run("dw3x3 40ch @80x80", 2, 80, 40, 3, 1, reps);
    run("dw5x5 80ch @40x40", 2, 40, 80, 5, 1, reps);
    printf("target (DESIGN.md, layer c): all three in ~0.34 ms (114 GFLOP/s)\n");
    return 0;
}
