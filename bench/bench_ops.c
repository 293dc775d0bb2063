/* Op benchmark of DESIGN.md's layers a-e and the framework-overhead bar.
 *
 * Layers (batch 2, NHWC, TF 'SAME' padding, no bias), each forward +
 * backward-data + backward-weights through the real engine path: the input
 * is a step tensor that requires grad, the weights are parameters;
 * sn_conv2d..., sn_backward_from with a fixed output gradient, sn_step_end.
 * Median of --reps repetitions after --warmup ones, in ms, and GFLOP/s
 * (3 x 2*MACs: forward, backward data, backward weights). The oneDNN
 * implementations used are printed per layer; a "ref" one fails the run
 * (exit 1): DESIGN.md, a ref implementation on a hot path is a bug.
 *
 * The seeding cost of sn_backward_from (the call and an empty tape walk; the
 * output gradient is borrowed, not copied, as PyTorch's y.backward(dy) does)
 * is inside the timed step, as in any real use of the API; it is also timed
 * alone ("seed") so it can be told apart from the kernels.
 *
 * --breakdown times each convolution of a layer alone: forward (the
 * sn_conv2d call), backward data only (weights not requiring grad) and
 * backward weights only (input not requiring grad); the backward times have
 * the seed subtracted.
 *
 * Overhead bar (<= 5 us per op above the kernels' own time): see
 * run_overhead() for the method.
 *
 * Usage: bench_ops [--threads N] [--reps N] [--warmup N] [--layers abcde]
 *                  [--breakdown] [--json] [--no-overhead] [--chain-reps N] [--probe-only]
 * --json prints one JSON object per line instead of the table; --probe-only
 * runs only the machine probe (see print_probe). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/bn_narrow.h"
#include "ops/conv_gemm.h"
#include "segnas/ops.h"

/* ---- timing and statistics ---------------------------------------------------- */
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

/* Sorts v. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct options {
    int threads, reps, warmup, chain_reps;
    const char *layers;
    bool json, breakdown, overhead, probe_only;
} options;

static void die_ctx(sn_ctx *ctx, const char *what)
{
    fprintf(stderr, "bench_ops: %s: %s\n", what, sn_ctx_error(ctx));
    exit(1);
}

static float *random_buffer(sn_rng *rng, int64_t n, float std)
{
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_ops: out of memory\n");
        exit(1);
    }
    sn_rng_fill_normal(rng, p, n, 0.0f, std);
    return p;
}

static sn_ctx *new_ctx(int threads)
{
    sn_ctx_options o = {.threads = threads, .step_arena_bytes = (size_t)256 << 20,
                        .param_arena_bytes = (size_t)64 << 20};
    sn_ctx *ctx = sn_ctx_create(&o);
    if (!ctx) {
        fprintf(stderr, "bench_ops: cannot create a context\n");
        exit(1);
    }
    return ctx;
}

/* ---- the layers of DESIGN.md ---------------------------------------------------- */
typedef struct conv_spec {
    int k, stride, dilation;
    int64_t ci, co;
    bool depthwise;
} conv_spec;

typedef struct layer_spec {
    const char *id, *what;
    int64_t n, h, w;
    int n_conv;
    conv_spec conv[2];
} layer_spec;

static const layer_spec LAYERS[] = {
    {"a", "conv 3x3 40->40 @80x80", 2, 80, 80, 1, {{3, 1, 1, 40, 40, false}}},
    {"b", "dw 3x3 + pw 1x1, 40 ch @80x80", 2, 80, 80, 2, {{3, 1, 1, 40, 40, true}, {1, 1, 1, 40, 40, false}}},
    {"c", "dw 5x5 dilation 2, 80 ch @40x40", 2, 40, 40, 1, {{5, 1, 2, 80, 80, true}}},
    {"d", "conv 1x1 160->160 @20x20", 2, 20, 20, 1, {{1, 1, 1, 160, 160, false}}},
    {"e", "conv 3x3 s2 40->80 from 80x80", 2, 80, 80, 1, {{3, 2, 1, 40, 80, false}}},
};
#define N_LAYERS ((int)(sizeof LAYERS / sizeof LAYERS[0]))

/* A chain of convolutions run as one timed step. */
typedef struct chain {
    sn_ctx *ctx;
    int n_conv;
    const conv_spec *conv;
    sn_tensor *w[2];
    int64_t in_shape[4], out_shape[4];
    float *x_src, *dy;
    double flops; /* forward + backward data + backward weights */
} chain;

static sn_conv_params conv_params(const conv_spec *c, int64_t h, int64_t w)
{
    return sn_conv_same(c->k, c->stride, c->dilation, c->depthwise ? (int)c->ci : 1, h, w);
}

static void chain_init(chain *c, sn_ctx *ctx, int n_conv, const conv_spec *conv, int64_t n, int64_t h,
                       int64_t w, sn_rng *rng)
{
    memset(c, 0, sizeof *c);
    c->ctx = ctx, c->n_conv = n_conv, c->conv = conv;
    int64_t shape[4] = {n, h, w, conv[0].ci};
    memcpy(c->in_shape, shape, sizeof shape);
    for (int i = 0; i < n_conv; i++) {
        const conv_spec *s = &conv[i];
        int64_t cig = s->depthwise ? 1 : s->ci, wshape[4] = {s->k, s->k, cig, s->co};
        c->w[i] = sn_param_new(ctx, "w", 4, wshape);
        if (!c->w[i]) die_ctx(ctx, "allocating weights");
        sn_rng_fill_normal(rng, c->w[i]->data, c->w[i]->numel, 0.0f, sqrtf(2.0f / (float)(s->k * s->k * cig)));
        shape[1] = (shape[1] + s->stride - 1) / s->stride; /* 'SAME': ceil(in / stride) */
        shape[2] = (shape[2] + s->stride - 1) / s->stride;
        shape[3] = s->co;
        c->flops += 3.0 * 2.0 * (double)(shape[0] * shape[1] * shape[2] * s->co * cig * s->k * s->k);
    }
    memcpy(c->out_shape, shape, sizeof shape);
    c->x_src = random_buffer(rng, c->in_shape[0] * c->in_shape[1] * c->in_shape[2] * c->in_shape[3], 1.0f);
    c->dy = random_buffer(rng, shape[0] * shape[1] * shape[2] * shape[3], 0.1f);
}

static void chain_free(chain *c)
{
    free(c->x_src);
    free(c->dy);
}

typedef struct step_times {
    double fwd, bwd;
} step_times;

/* One training step of the chain; which gradients are wanted is chosen with
 * x_grad / w_grad. The weight gradients are zeroed afterwards, untimed. */
static step_times chain_step(chain *c, bool x_grad, bool w_grad)
{
    sn_ctx *ctx = c->ctx;
    for (int i = 0; i < c->n_conv; i++) c->w[i]->requires_grad = w_grad;
    sn_tensor *x = sn_tensor_new(ctx, 4, c->in_shape);
    if (!x) die_ctx(ctx, "allocating the input");
    memcpy(x->data, c->x_src, (size_t)x->numel * sizeof(float));
    x->requires_grad = x_grad;
    double t0 = now_ms();
    sn_tensor *y = x;
    for (int i = 0; i < c->n_conv; i++) {
        sn_conv_params p = conv_params(&c->conv[i], y->shape[1], y->shape[2]);
        y = sn_conv2d(ctx, y, c->w[i], NULL, &p);
        if (!y) die_ctx(ctx, "sn_conv2d");
    }
    double t1 = now_ms();
    if (sn_backward_from(ctx, y, c->dy)) die_ctx(ctx, "sn_backward_from");
    sn_step_end(ctx);
    double t2 = now_ms();
    sn_zero_grad(c->w, c->n_conv);
    return (step_times){t1 - t0, t2 - t1};
}

/* sn_backward_from on a leaf of the output's shape with an empty tape: the
 * cost of seeding the gradient, which every chain_step pays once. */
static double seed_step(chain *c)
{
    sn_ctx *ctx = c->ctx;
    sn_tensor *y = sn_tensor_new(ctx, 4, c->out_shape);
    if (!y) die_ctx(ctx, "allocating the seed");
    y->requires_grad = true;
    double t0 = now_ms();
    if (sn_backward_from(ctx, y, c->dy)) die_ctx(ctx, "sn_backward_from");
    sn_step_end(ctx);
    return now_ms() - t0;
}

typedef struct chain_result {
    double total, fwd, bwd, seed;
} chain_result;

static chain_result chain_measure(chain *c, const options *o, bool x_grad, bool w_grad)
{
    double *tot = malloc(sizeof(double) * (size_t)o->reps * 4), *fwd = tot + o->reps, *bwd = fwd + o->reps,
           *seed = bwd + o->reps;
    if (!tot) exit(1);
    for (int r = 0; r < o->warmup; r++) chain_step(c, x_grad, w_grad), seed_step(c);
    for (int r = 0; r < o->reps; r++) {
        step_times t = chain_step(c, x_grad, w_grad);
        tot[r] = t.fwd + t.bwd, fwd[r] = t.fwd, bwd[r] = t.bwd;
        seed[r] = seed_step(c);
    }
    chain_result res = {median(tot, o->reps), median(fwd, o->reps), median(bwd, o->reps),
                        median(seed, o->reps)};
    free(tot);
    return res;
}

/* ---- implementation names -------------------------------------------------------- */
static const char *const IMPL_OPS[] = {"conv_fwd",      "conv_bwd_data",      "conv_bwd_weights",
                                       "dwconv_fwd",    "dwconv_bwd_data",    "dwconv_bwd_weights",
                                       "conv_gemm_fwd", "conv_gemm_bwd_data", "conv_gemm_bwd_weights"};
#define N_IMPL_OPS 9

/* The name behind op i for this layer: oneDNN's (a convolution, or the
 * matmul of a convolution run as products, ops/conv_gemm.h), "segnas:nhwc_dw"
 * for our own depthwise kernels (ops/conv.c records no oneDNN name for
 * them; a fresh context per layer means an empty name is not a stale one),
 * or NULL when the layer has no such op. */
static const char *impl_of(sn_ctx *ctx, const layer_spec *L, int i)
{
    bool dw_op = i >= 3 && i < 6, gemm_op = i >= 6, used = false;
    for (int k = 0; k < L->n_conv; k++) used |= L->conv[k].depthwise == dw_op;
    if (!used) return NULL;
    const char *name = sn_impl_name(ctx, IMPL_OPS[i]);
    if (*name) return name;
    if (gemm_op) return NULL;
    if (dw_op) return "segnas:nhwc_dw";
    return *sn_impl_name(ctx, IMPL_OPS[i + 6]) ? NULL : "(none recorded)";
}

/* Returns the number of "ref" implementations (each one a failure). */
static int print_impls(sn_ctx *ctx, const layer_spec *L, const options *o, char *json, size_t json_len)
{
    int bad = 0;
    size_t off = 0;
    json[0] = '\0';
    for (int i = 0; i < N_IMPL_OPS; i++) {
        const char *name = impl_of(ctx, L, i);
        if (!name) continue;
        if (strncmp(name, "ref", 3) == 0) {
            fprintf(stderr, "FAIL: layer %s uses the reference implementation %s for %s\n", L->id, name,
                    IMPL_OPS[i]);
            bad++;
        } else if (strstr(name, "gemm") && i < 6) { /* oneDNN's gemm convolution: slow */
            fprintf(stderr, "warning: layer %s uses a gemm implementation %s for %s\n", L->id, name, IMPL_OPS[i]);
        }
        if (!o->json) printf("      %-19s %s\n", IMPL_OPS[i], name);
        off += (size_t)snprintf(json + off, json_len - off, "%s\"%s\":\"%s\"", off ? "," : "", IMPL_OPS[i], name);
        if (off >= json_len) off = json_len - 1;
    }
    return bad;
}

/* ---- one layer --------------------------------------------------------------------- */
static void breakdown(sn_ctx *ctx, const layer_spec *L, const options *o, sn_rng *rng)
{
    int64_t h = L->h, w = L->w;
    for (int k = 0; k < L->n_conv; k++) {
        const conv_spec *s = &L->conv[k];
        chain c;
        chain_init(&c, ctx, 1, s, L->n, h, w, rng);
        chain_result both = chain_measure(&c, o, true, true);
        chain_result data = chain_measure(&c, o, true, false);
        chain_result wts = chain_measure(&c, o, false, true);
        double bd = data.bwd - data.seed, bw = wts.bwd - wts.seed;
        const char *kind = s->depthwise ? "dw" : "conv";
        if (o->json)
            printf("{\"bench\":\"breakdown\",\"impl\":\"segnas\",\"layer\":\"%s\",\"conv\":%d,\"kind\":\"%s\","
                   "\"k\":%d,\"threads\":%d,\"fwd_ms\":%.4f,\"bwd_data_ms\":%.4f,\"bwd_weights_ms\":%.4f,"
                   "\"seed_ms\":%.4f,\"total_ms\":%.4f}\n",
                   L->id, k, kind, s->k, o->threads, both.fwd, bd, bw, both.seed, both.total);
        else
            printf("      breakdown %s %dx%d: fwd %.3f  bwd data %.3f  bwd weights %.3f  (seed %.3f; "
                   "fwd+bwd both %.3f ms)\n",
                   kind, s->k, s->k, both.fwd, bd, bw, both.seed, both.total);
        h = c.out_shape[1], w = c.out_shape[2];
        chain_free(&c);
    }
}

typedef struct layer_result {
    double ms;
    int bad;
} layer_result;

static layer_result run_layer(const layer_spec *L, const options *o)
{
    sn_ctx *ctx = new_ctx(o->threads); /* fresh: implementation names belong to this layer */
    sn_rng rng;
    sn_rng_seed(&rng, 42);
    chain c;
    chain_init(&c, ctx, L->n_conv, L->conv, L->n, L->h, L->w, &rng);
    chain_result r = chain_measure(&c, o, true, true);
    double gflops = c.flops / (r.total * 1e-3) * 1e-9;
    char impls[1024];
    if (!o->json)
        printf("%s  %-32s %8.3f ms %7.1f GFLOP/s   (fwd %.3f, bwd %.3f incl. seed %.3f)\n", L->id, L->what,
               r.total, gflops, r.fwd, r.bwd, r.seed);
    int bad = print_impls(ctx, L, o, impls, sizeof impls);
    if (o->json)
        printf("{\"bench\":\"layer\",\"impl\":\"segnas\",\"layer\":\"%s\",\"what\":\"%s\",\"threads\":%d,"
               "\"reps\":%d,\"ms\":%.4f,\"gflops\":%.1f,\"fwd_ms\":%.4f,\"bwd_ms\":%.4f,\"seed_ms\":%.4f,"
               "\"impls\":{%s}}\n",
               L->id, L->what, o->threads, o->reps, r.total, gflops, r.fwd, r.bwd, r.seed, impls);
    if (o->breakdown) breakdown(ctx, L, o, &rng);
    fflush(stdout);
    chain_free(&c);
    sn_ctx_destroy(ctx);
    return (layer_result){r.total, bad};
}

/* ---- framework overhead -----------------------------------------------------------
 * A chain of CHAIN_OPS tiny ops: 8-channel 1x1 conv (weights requiring grad)
 * at 10x10, batch 1; batch norm (training, affine); ReLU; repeated. Each op
 * counts as one. One step = forward + sn_backward_from + sn_step_end.
 *
 * The kernels' own time is measured by running the SAME computation through
 * the kernels directly, in a tight loop over the same 1,000 ops, on buffers
 * allocated once: the convolutions through the internal entry points that
 * sn_conv2d itself calls (here the matmul of ops/conv_gemm.h: cached oneDNN
 * primitives, so this includes their cache lookup and handle setting, which
 * makes the overhead estimate a LOWER bound by that much), batch norm
 * likewise through the kernels sn_batch_norm calls (ops/bn_narrow.h at 8
 * channels) plus the running-statistics update the builder does, ReLU as
 * the same loop elementwise.c runs (fresh gradients written, not added). What
 * remains, (engine step - kernels) / ops, is the framework's cost per op
 * (the median of paired engine/kernel step differences):
 * shape checks, tensor and gradient allocation (incl. zero-filling
 * gradients), tape recording and walking, dispatch. Measured, it is smaller
 * than the jitter of oneDNN's 2-thread fork/join on these tiny primitives
 * (it comes out at -0.3..+0.3 us), hence the ReLU cross-check below. */
#define CHAIN_OPS 1000
#define CH 8
#define HW 100 /* 10 x 10, batch 1 */

typedef struct tiny {
    sn_ctx *ctx;
    sn_tensor *w[CHAIN_OPS], *gamma[CHAIN_OPS], *beta[CHAIN_OPS], *rmean[CHAIN_OPS], *rvar[CHAIN_OPS];
    sn_tensor *params[3 * CHAIN_OPS];
    int n_params;
    float *x_src, *dy;
    /* the kernel-only baseline: activations, their gradients, saved stats */
    float *act, *gact, *mean, *var, *gw, *ggamma, *gbeta;
} tiny;

static int op_kind(int i) { return i % 3; } /* 0 conv, 1 batch norm, 2 relu */

static sn_tensor *param(tiny *t, int64_t a, int64_t b, float v0, float std, sn_rng *rng)
{
    int64_t shape[4] = {1, 1, a, b};
    sn_tensor *p = b ? sn_param_new(t->ctx, "p", 4, shape) : sn_param_new(t->ctx, "p", 1, &a);
    if (!p) die_ctx(t->ctx, "allocating a parameter");
    sn_rng_fill_normal(rng, p->data, p->numel, v0, std);
    t->params[t->n_params++] = p;
    return p;
}

static void tiny_init(tiny *t, int threads)
{
    memset(t, 0, sizeof *t);
    t->ctx = new_ctx(threads);
    sn_rng rng;
    sn_rng_seed(&rng, 7);
    for (int i = 0; i < CHAIN_OPS; i++) {
        if (op_kind(i) == 0) t->w[i] = param(t, CH, CH, 0.0f, 0.5f, &rng);
        if (op_kind(i) != 1) continue;
        t->gamma[i] = param(t, CH, 0, 1.0f, 0.0f, &rng);
        t->beta[i] = param(t, CH, 0, 0.0f, 0.0f, &rng);
        int64_t c = CH;
        t->rmean[i] = sn_buffer_new(t->ctx, "rm", 1, &c);
        t->rvar[i] = sn_buffer_new(t->ctx, "rv", 1, &c);
        if (!t->rmean[i] || !t->rvar[i]) die_ctx(t->ctx, "allocating running statistics");
        sn_tensor_fill(t->rmean[i], 0.0f);
        sn_tensor_fill(t->rvar[i], 1.0f);
    }
    t->x_src = random_buffer(&rng, HW * CH, 1.0f);
    t->dy = random_buffer(&rng, HW * CH, 0.1f);
    size_t act = (size_t)(CHAIN_OPS + 1) * HW * CH * sizeof(float);
    t->act = malloc(act), t->gact = malloc(act);
    t->mean = malloc(CHAIN_OPS * CH * sizeof(float)), t->var = malloc(CHAIN_OPS * CH * sizeof(float));
    t->gw = calloc(CH * CH, sizeof(float)), t->ggamma = calloc(CH, sizeof(float));
    t->gbeta = calloc(CH, sizeof(float));
    if (!t->act || !t->gact || !t->mean || !t->var || !t->gw || !t->ggamma || !t->gbeta) exit(1);
    memcpy(t->act, t->x_src, HW * CH * sizeof(float));
}

static double tiny_engine_step(tiny *t)
{
    sn_ctx *ctx = t->ctx;
    sn_tensor *x = sn_tensor_new4(ctx, 1, 10, 10, CH);
    if (!x) die_ctx(ctx, "allocating the input");
    memcpy(x->data, t->x_src, sizeof(float) * HW * CH);
    sn_conv_params p = sn_conv_same(1, 1, 1, 1, 10, 10);
    double t0 = now_ms();
    sn_tensor *h = x;
    for (int i = 0; i < CHAIN_OPS; i++) {
        if (op_kind(i) == 0) h = sn_conv2d(ctx, h, t->w[i], NULL, &p);
        else if (op_kind(i) == 1)
            h = sn_batch_norm(ctx, h, t->gamma[i], t->beta[i], t->rmean[i], t->rvar[i], true, 0.1f, 1e-5f);
        else h = sn_relu(ctx, h);
    }
    if (!h || sn_backward_from(ctx, h, t->dy)) die_ctx(ctx, "tiny chain");
    sn_step_end(ctx);
    double ms = now_ms() - t0;
    sn_zero_grad(t->params, t->n_params);
    return ms;
}

static sn_conv_shape tiny_conv_shape(void)
{
    return (sn_conv_shape){.n = 1, .h = 10, .w = 10, .ci = CH, .co = CH, .oh = 10, .ow = 10, .kh = 1, .kw = 1,
                           .p = sn_conv_same(1, 1, 1, 1, 10, 10), .has_bias = false};
}

static sn_bn_shape tiny_bn_shape(void)
{
    return (sn_bn_shape){.n = 1, .h = 10, .w = 10, .c = CH, .eps = 1e-5f, .scale = true, .shift = true};
}

/* The running-statistics update that sn_batch_norm does around the kernel
 * (unbiased variance, momentum 0.1). */
static void update_running(float *rm, float *rv, const float *mean, const float *var)
{
    for (int c = 0; c < CH; c++) {
        rm[c] = 0.9f * rm[c] + 0.1f * mean[c];
        rv[c] = 0.9f * rv[c] + 0.1f * var[c] * (float)HW / (HW - 1);
    }
}

/* The kernels sn_conv2d dispatches a convolution to (ops/conv.c): the 8x10x10
 * 1x1 convolution runs as one matmul (ops/conv_gemm.h). */
static int conv_fwd_kernel(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *w, float *y)
{
    return sn_conv_gemm_suits(s) ? sn_conv_gemm_forward(ctx, s, x, w, NULL, y)
                                 : sn_dnnl_conv_forward(ctx, s, x, w, NULL, y);
}

static int conv_bwd_data_kernel(sn_ctx *ctx, const sn_conv_shape *s, const float *dy, const float *w, float *dx)
{
    return sn_conv_gemm_suits(s) ? sn_conv_gemm_backward_data(ctx, s, dy, w, dx, false)
                                 : sn_dnnl_conv_backward_data(ctx, s, dy, w, dx, false);
}

static int conv_bwd_weights_kernel(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *dy, float *dw)
{
    return sn_conv_gemm_suits(s) ? sn_conv_gemm_backward_weights(ctx, s, x, dy, dw)
                                 : sn_dnnl_conv_backward_weights(ctx, s, x, dy, dw, NULL);
}

static int bn_fwd_kernel(sn_ctx *ctx, const sn_bn_shape *b, const float *x, const float *gamma, const float *beta,
                         float *mean, float *var, float *y)
{
    if (!sn_bn_narrow_suits(b)) return sn_dnnl_bn_forward(ctx, b, x, gamma, beta, mean, var, y);
    sn_bn_narrow_forward(b, x, gamma, beta, mean, var, y);
    return SN_OK;
}

static int bn_bwd_kernel(sn_ctx *ctx, const sn_bn_shape *b, const float *x, const float *dy, const float *gamma,
                         const float *beta, const float *mean, const float *var, float *dx, float *dgamma,
                         float *dbeta)
{
    if (!sn_bn_narrow_suits(b))
        return sn_dnnl_bn_backward(ctx, b, x, dy, gamma, beta, mean, var, dx, false, dgamma, dbeta);
    sn_bn_narrow_backward(b, x, dy, gamma, mean, var, dx, false, dgamma, dbeta);
    return SN_OK;
}

/* The same computation as tiny_engine_step with the kernels called directly. */
static double tiny_kernel_step(tiny *t)
{
    sn_ctx *ctx = t->ctx;
    sn_conv_shape s = tiny_conv_shape();
    sn_bn_shape b = tiny_bn_shape();
    const int64_t n = HW * CH;
    double t0 = now_ms();
    for (int i = 0; i < CHAIN_OPS; i++) {
        float *x = t->act + i * n, *y = x + n;
        if (op_kind(i) == 0) {
            if (conv_fwd_kernel(ctx, &s, x, t->w[i]->data, y)) die_ctx(ctx, "conv kernel");
        } else if (op_kind(i) == 1) {
            if (bn_fwd_kernel(ctx, &b, x, t->gamma[i]->data, t->beta[i]->data, t->mean + i * CH, t->var + i * CH,
                              y))
                die_ctx(ctx, "batch-norm kernel");
            update_running(t->rmean[i]->data, t->rvar[i]->data, t->mean + i * CH, t->var + i * CH);
        } else {
            for (int64_t j = 0; j < n; j++) y[j] = x[j] > 0 ? x[j] : 0.0f;
        }
    }
    memcpy(t->gact + CHAIN_OPS * n, t->dy, (size_t)n * sizeof(float));
    for (int i = CHAIN_OPS - 1; i >= 0; i--) {
        float *x = t->act + i * n, *y = x + n, *dx = t->gact + i * n, *dy = dx + n;
        if (op_kind(i) == 0) {
            /* The chain's input does not require grad: no data gradient for op 0. */
            if (i > 0 && conv_bwd_data_kernel(ctx, &s, dy, t->w[i]->data, dx)) die_ctx(ctx, "conv kernel");
            if (conv_bwd_weights_kernel(ctx, &s, x, dy, t->gw)) die_ctx(ctx, "conv kernel");
        } else if (op_kind(i) == 1) {
            if (bn_bwd_kernel(ctx, &b, x, dy, t->gamma[i]->data, t->beta[i]->data, t->mean + i * CH,
                              t->var + i * CH, dx, t->ggamma, t->gbeta))
                die_ctx(ctx, "batch-norm kernel");
        } else {
            for (int64_t j = 0; j < n; j++) dx[j] = y[j] > 0 ? dy[j] : 0.0f;
        }
    }
    return now_ms() - t0;
}

/* A cross-check with tiny kernels: 1,000 ReLUs on the same tensor (input
 * requiring grad), engine vs the same loops on preallocated buffers. The
 * kernels cost ~0.4 us here, so the framework's part stands out of the noise
 * that oneDNN's fork/join puts on the main chain. Returns us per op:
 * engine and loops (paired medians). */
static void relu_chain(tiny *t, int reps, double *eng_op, double *loop_op)
{
    sn_ctx *ctx = t->ctx;
    const int64_t n = HW * CH;
    double *eng = malloc(sizeof(double) * (size_t)reps * 2), *lp = eng + reps;
    if (!eng) exit(1);
    for (int r = -3; r < reps; r++) {
        sn_tensor *x = sn_tensor_new4(ctx, 1, 10, 10, CH);
        if (!x) die_ctx(ctx, "allocating the input");
        memcpy(x->data, t->x_src, (size_t)n * sizeof(float));
        x->requires_grad = true;
        double t0 = now_ms();
        sn_tensor *h = x;
        for (int i = 0; i < CHAIN_OPS; i++) h = sn_relu(ctx, h);
        if (!h || sn_backward_from(ctx, h, t->dy)) die_ctx(ctx, "relu chain");
        sn_step_end(ctx);
        double t1 = now_ms();
        memcpy(t->act, t->x_src, (size_t)n * sizeof(float));
        for (int i = 0; i < CHAIN_OPS; i++) {
            const float *a = t->act + i * n;
            float *b = t->act + (i + 1) * n;
            for (int64_t j = 0; j < n; j++) b[j] = a[j] > 0 ? a[j] : 0.0f;
        }
        memcpy(t->gact + CHAIN_OPS * n, t->dy, (size_t)n * sizeof(float));
        for (int i = CHAIN_OPS - 1; i >= 0; i--) {
            const float *y = t->act + (i + 1) * n, *gy = t->gact + (i + 1) * n;
            float *gx = t->gact + i * n;
            for (int64_t j = 0; j < n; j++) gx[j] = y[j] > 0 ? gy[j] : 0.0f;
        }
        double t2 = now_ms();
        if (r >= 0) eng[r] = t1 - t0, lp[r] = t2 - t1;
    }
    *eng_op = median(eng, reps) * 1e3 / CHAIN_OPS;
    *loop_op = median(lp, reps) * 1e3 / CHAIN_OPS;
    free(eng);
}

static void run_overhead(const options *o)
{
    tiny t;
    tiny_init(&t, o->threads);
    int reps = o->chain_reps;
    double *eng = malloc(sizeof(double) * (size_t)reps * 3), *ker = eng + reps, *diff = ker + reps;
    if (!eng) exit(1);
    for (int r = 0; r < 3; r++) tiny_engine_step(&t), tiny_kernel_step(&t);
    /* Alternating engine and kernel steps; the overhead is the median of the
     * paired differences, which cancels slow drifts of the machine. */
    for (int r = 0; r < reps; r++) {
        eng[r] = tiny_engine_step(&t);
        ker[r] = tiny_kernel_step(&t);
        diff[r] = eng[r] - ker[r];
    }
    double me = median(eng, reps), mk = median(ker, reps);
    double per_op = me * 1e3 / CHAIN_OPS, ker_op = mk * 1e3 / CHAIN_OPS;
    double over = median(diff, reps) * 1e3 / CHAIN_OPS;
    double relu_eng, relu_loop;
    relu_chain(&t, reps, &relu_eng, &relu_loop);
    if (o->json) {
        printf("{\"bench\":\"overhead\",\"impl\":\"segnas\",\"ops\":%d,\"threads\":%d,\"step_ms\":%.4f,"
               "\"kernel_ms\":%.4f,\"per_op_us\":%.3f,\"kernel_per_op_us\":%.3f,\"overhead_per_op_us\":%.3f,"
               "\"relu_per_op_us\":%.3f,\"relu_loop_per_op_us\":%.3f,"
               "\"impls\":{\"conv_gemm_fwd\":\"%s\",\"conv_gemm_bwd_data\":\"%s\",\"conv_gemm_bwd_weights\":\"%s\"}}\n",
               CHAIN_OPS, o->threads, me, mk, per_op, ker_op, over, relu_eng, relu_loop,
               sn_impl_name(t.ctx, "conv_gemm_fwd"),
               sn_impl_name(t.ctx, "conv_gemm_bwd_data"), sn_impl_name(t.ctx, "conv_gemm_bwd_weights"));
    } else {
        printf("\ntiny-op chain: %d ops (1x1 conv 8->8 / batch norm / ReLU at 1x10x10x8), fwd+bwd, median of "
               "%d\n  engine step %.3f ms = %.2f us per op; kernels alone %.3f ms = %.2f us per op\n"
               "  overhead per op: %.2f us\n"
               "  cross-check, 1000 ReLUs: engine %.2f us per op, loops alone %.2f us -> %.2f us per op\n",
               CHAIN_OPS, reps, me, per_op, mk, ker_op, over, relu_eng, relu_loop, relu_eng - relu_loop);
        printf("  (1x1 conv as matmul, impls: fwd %s, bwd data %s, bwd weights %s)\n",
               sn_impl_name(t.ctx, "conv_gemm_fwd"), sn_impl_name(t.ctx, "conv_gemm_bwd_data"),
               sn_impl_name(t.ctx, "conv_gemm_bwd_weights"));
    }
    free(eng);
    free(t.x_src), free(t.dy), free(t.act), free(t.gact), free(t.mean), free(t.var);
    free(t.gw), free(t.ggamma), free(t.gbeta);
    sn_ctx_destroy(t.ctx);
}

/* ---- machine probe ---------------------------------------------------------------
 * The same binary on this VM runs layer c in 0.41 ms or, for minutes at a
 * time, in 0.83 ms (2 threads then no faster than 1, and single-threaded
 * memory loops 2-3x slower), with no other process on the machine: the host
 * shares something (cores, caches) with a neighbour. To make such phases
 * visible in the results, the probe times a cache-resident b += a pass
 * (2 x 2 MB per thread, the size of these layers' tensors) on 1 thread and
 * on all threads and reports GB/s. Compare probes across processes: a
 * process whose probe is far below the others measured in a slow phase. */
static double probe_pass(float *a, float *b, int64_t n, int threads)
{
    double best = 1e30;
    for (int r = 0; r < 20; r++) {
        double t0 = now_ms();
#pragma omp parallel num_threads(threads)
        {
            int64_t per = n / omp_get_num_threads(), lo = per * omp_get_thread_num();
#pragma omp simd
            for (int64_t i = lo; i < lo + per; i++) b[i] += a[i];
        }
        double t = now_ms() - t0;
        if (t < best) best = t;
    }
    return 3.0 * 4.0 * (double)n / (best * 1e-3) * 1e-9; /* read a, read and write b */
}

static void print_probe(const options *o, const char *when)
{
    int64_t per_thread = 512 * 1024, n1 = per_thread, nt = per_thread * o->threads;
    float *a = calloc((size_t)nt, sizeof *a), *b = calloc((size_t)nt, sizeof *b);
    if (!a || !b) exit(1);
    probe_pass(a, b, nt, o->threads); /* wakes the OpenMP team and the other cores */
    double g1 = probe_pass(a, b, n1, 1), gt = probe_pass(a, b, nt, o->threads);
    free(a), free(b);
    if (o->json)
        printf("{\"bench\":\"probe\",\"impl\":\"segnas\",\"when\":\"%s\",\"threads\":%d,"
               "\"gbs_1\":%.1f,\"gbs_all\":%.1f}\n", when, o->threads, g1, gt);
    else
        printf("machine probe (%s): b += a, 2 x 2 MB per thread: %.0f GB/s on 1 thread, %.0f GB/s on %d\n", when,
               g1, gt, o->threads);
    fflush(stdout);
}

/* ---- main ----------------------------------------------------------------------------- */
static int parse_int(const char *flag, const char *v, int lo)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > 100000) {
        fprintf(stderr, "bench_ops: %s needs an integer >= %d, got '%s'\n", flag, lo, v ? v : "");
        exit(2);
    }
    return (int)x;
}

static options parse(int argc, char **argv)
{
    options o = {.threads = 2, .reps = 50, .warmup = 5, .chain_reps = 40, .layers = "abcde", .overhead = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads")) o.threads = parse_int(a, v, 1), i++;
        else if (!strcmp(a, "--reps")) o.reps = parse_int(a, v, 1), i++;
        else if (!strcmp(a, "--warmup")) o.warmup = parse_int(a, v, 0), i++;
        else if (!strcmp(a, "--chain-reps")) o.chain_reps = parse_int(a, v, 1), i++;
        else if (!strcmp(a, "--layers") && v) o.layers = v, i++;
        else if (!strcmp(a, "--json")) o.json = true;
        else if (!strcmp(a, "--breakdown")) o.breakdown = true;
        else if (!strcmp(a, "--no-overhead")) o.overhead = false;
        else if (!strcmp(a, "--probe-only")) o.probe_only = true;
        else {
            fprintf(stderr,
                    "usage: bench_ops [--threads N] [--reps N] [--warmup N] [--layers abcde] [--breakdown]\n"
                    "                 [--json] [--no-overhead] [--chain-reps N] [--probe-only]\n");
            exit(2);
        }
    }
    return o;
}

int main(int argc, char **argv)
{
    options o = parse(argc, argv);
    if (o.probe_only) {
        print_probe(&o, "alone");
        return 0;
    }
    if (!o.json)
        printf("segnas ops: batch 2, NHWC, SAME, no bias, fwd + bwd data + bwd weights, %d threads, median of %d "
               "(%d warm-up)\n",
               o.threads, o.reps, o.warmup);
    print_probe(&o, "start");
    int bad = 0;
    double sum = 0;
    for (int i = 0; i < N_LAYERS; i++) {
        if (!strchr(o.layers, LAYERS[i].id[0])) continue;
        layer_result r = run_layer(&LAYERS[i], &o);
        bad += r.bad;
        sum += r.ms;
    }
    if (!o.json) printf("sum %38.3f ms\n", sum);
    if (o.overhead) run_overhead(&o);
    print_probe(&o, "end");
    if (bad) {
        fprintf(stderr, "bench_ops: FAIL: %d reference (\"ref\") implementation(s) on a hot path\n", bad);
        return 1;
    }
    return 0;
}
