/* The Auto-DeepLab supernet against PyTorch (issue 4: "Parity", "Speed and
 * memory"). The peer is bench/supernet_torch.py, an independent PyTorch
 * implementation of the same construction; bench/run_supernet.sh runs both.
 *
 *   bench_supernet dump FILE [options]
 *     builds a searcher (sn_searcher_init, so parameters are those of a real
 *     search), makes a deterministic batch, runs ONE forward + backward in
 *     training mode with every parameter requiring a gradient, and writes one
 *     safetensors file: every weight, BN buffer (as before the forward),
 *     alpha, beta, "input.images" {N,H,W,3}, "input.labels" {N,H,W} (as
 *     floats), "out.loss", "grad.<name>" of every weight/alpha/beta and
 *     "after.<buffer>" (the running statistics the forward updated), with the
 *     configuration as metadata.
 *   bench_supernet time [options]
 *     median seconds of sn_search_weight_step and sn_search_arch_step (after
 *     one warm-up) and peak RSS, as one JSON line (the approach of
 *     `segnas bench search-step`).
 * Options: --layers L --levels n --blocks B -F F --classes K --stem C
 *   --crop S | --height H --width W, --batch N --seed s --threads T --reps R
 *   --ignore p (fraction of ignored labels, dump), --recompute on|off|auto
 *   (cells recomputed in backward; auto = on over 160 px or with 2+ threads). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "segnas/search.h"
#include "segnas/train.h"

typedef struct options {
    sn_supernet_config cfg;
    int height, width, batch, threads, reps;
    uint64_t seed;
    double ignore;
    const char *recompute; /* on, off, auto (sn_supernet_auto_recompute, as `segnas bench search-step`) */
} options;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_supernet dump FILE [options] | bench_supernet time [options]\n"
                    "options: --layers L --levels n --blocks B -F F --classes K --stem C --crop S\n"
                    "         --height H --width W --batch N --seed s --threads T --reps R --ignore p\n"
                    "         --recompute on|off|auto\n");
    return 2;
}

static int parse(int argc, char **argv, options *o)
{
    sn_supernet_config_default(&o->cfg);
    o->height = o->width = 64, o->batch = 2, o->threads = 2, o->reps = 5, o->seed = 1, o->ignore = 0.1;
    o->recompute = "auto";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage();
        const char *v = argv[++i];
        long x = strtol(v, NULL, 10);
        if (!strcmp(a, "--layers")) o->cfg.n_layers = (int)x;
        else if (!strcmp(a, "--levels")) o->cfg.n_levels = (int)x;
        else if (!strcmp(a, "--blocks")) o->cfg.n_blocks = (int)x;
        else if (!strcmp(a, "-F")) o->cfg.filter_multiplier = (int)x;
        else if (!strcmp(a, "--classes")) o->cfg.n_classes = (int)x;
        else if (!strcmp(a, "--stem")) o->cfg.stem_channels = (int)x;
        else if (!strcmp(a, "--crop")) o->height = o->width = (int)x;
        else if (!strcmp(a, "--height")) o->height = (int)x;
        else if (!strcmp(a, "--width")) o->width = (int)x;
        else if (!strcmp(a, "--batch")) o->batch = (int)x;
        else if (!strcmp(a, "--seed")) o->seed = (uint64_t)x;
        else if (!strcmp(a, "--threads")) o->threads = (int)x;
        else if (!strcmp(a, "--reps")) o->reps = (int)x;
        else if (!strcmp(a, "--ignore")) o->ignore = strtod(v, NULL);
        else if (!strcmp(a, "--recompute")) o->recompute = v;
        else return usage();
    }
    if (o->height < 8 || o->width < 8 || o->batch < 1 || o->threads < 1 || o->reps < 1 || o->reps > 1000) {
        fprintf(stderr, "bench_supernet: need --height/--width >= 8, --batch >= 1, --threads >= 1, --reps 1..1000\n");
        return 2;
    }
    o->cfg.recompute = !strcmp(o->recompute, "on") ||
                       (strcmp(o->recompute, "off") && sn_supernet_auto_recompute(o->height, o->width, o->threads));
    return 0;
}

static int make_searcher(sn_searcher *s, sn_ctx **ctx, const options *o)
{
    sn_ctx_options co = {.threads = o->threads};
    *ctx = sn_ctx_create(&co);
    if (!*ctx) {
        fprintf(stderr, "bench_supernet: cannot start the engine\n");
        return 1;
    }
    sn_search_options opt;
    sn_search_options_default(&opt);
    opt.steps_per_epoch = 1000;
    if (sn_searcher_init(s, *ctx, &o->cfg, &opt, o->seed)) {
        fprintf(stderr, "bench_supernet: %s\n", sn_ctx_error(*ctx));
        sn_ctx_destroy(*ctx);
        return 1;
    }
    return 0;
}

/* Deterministic batch: N(0,1) images; labels uniform over the classes with
 * a fraction `ignore` of 255 (to exercise the ignored-pixel mean). */
static void make_batch(const options *o, uint64_t seed, float *images, uint8_t *labels)
{
    int64_t pixels = (int64_t)o->batch * o->height * o->width;
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    sn_rng_fill_normal(&rng, images, pixels * 3, 0, 1);
    for (int64_t i = 0; i < pixels; i++)
        labels[i] = sn_rng_uniform(&rng) < o->ignore ? 255 : (uint8_t)sn_rng_below(&rng, (uint64_t)o->cfg.n_classes);
}

/* A persistent copy of `src` (or zeros) named prefix + name. */
static sn_tensor *copy_named(sn_ctx *ctx, const char *prefix, const char *name, const sn_tensor *shape_of,
                             const float *src)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    sn_tensor *t = sn_buffer_new(ctx, full, shape_of->ndim, shape_of->shape);
    if (!t) return NULL;
    if (src) memcpy(t->data, src, sizeof(float) * (size_t)t->numel);
    else memset(t->data, 0, sizeof(float) * (size_t)t->numel);
    return t;
}

static int push(sn_tensor ***list, int *n, int *cap, sn_tensor *t)
{
    if (!t) return 1;
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        sn_tensor **grown = realloc(*list, sizeof **list * (size_t)*cap);
        if (!grown) return 1;
        *list = grown;
    }
    (*list)[(*n)++] = t;
    return 0;
}

static int dump(const char *path, const options *o)
{
    sn_ctx *ctx;
    sn_searcher s;
    if (make_searcher(&s, &ctx, o)) return 1;
    sn_supernet *net = &s.net;
    const sn_param_set *learn[2] = {&net->weights, &net->arch};
    sn_tensor **out = NULL;
    int n = 0, cap = 0, bad = 0;
    /* Parameters do not change (no optimiser step): save them as they are;
     * BN buffers are copied now, before the forward updates them. */
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < learn[g]->n; i++) bad |= push(&out, &n, &cap, learn[g]->items[i]);
    for (int i = 0; i < net->buffers.n; i++) {
        sn_tensor *b = net->buffers.items[i];
        bad |= push(&out, &n, &cap, copy_named(ctx, "", b->name, b, b->data));
    }
    int64_t pixels = (int64_t)o->batch * o->height * o->width;
    sn_tensor *x = sn_buffer_new(ctx, "input.images", 4, (int64_t[]){o->batch, o->height, o->width, 3});
    sn_tensor *lab = sn_buffer_new(ctx, "input.labels", 3, (int64_t[]){o->batch, o->height, o->width});
    uint8_t *labels = malloc((size_t)pixels);
    if (bad || !x || !lab || !labels) {
        fprintf(stderr, "bench_supernet: out of memory\n");
        return 1;
    }
    make_batch(o, o->seed + 1000, x->data, labels);
    for (int64_t i = 0; i < pixels; i++) lab->data[i] = labels[i];
    push(&out, &n, &cap, x);
    push(&out, &n, &cap, lab);

    /* One forward + backward in training mode; every parameter learns. */
    sn_tensor *images = sn_tensor_new4(ctx, o->batch, o->height, o->width, 3);
    if (images) memcpy(images->data, x->data, sizeof(float) * (size_t)images->numel);
    sn_tensor *logits = sn_supernet_forward(ctx, net, images, true);
    sn_tensor *loss = sn_softmax_cross_entropy(ctx, logits, labels, 255, NULL);
    if (!loss || sn_backward(ctx, loss)) {
        fprintf(stderr, "bench_supernet: %s\n", sn_ctx_error(ctx));
        return 1;
    }
    sn_tensor *l = sn_buffer_new(ctx, "out.loss", 1, (int64_t[]){1});
    if (l) l->data[0] = loss->data[0];
    bad |= push(&out, &n, &cap, l);
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < learn[g]->n; i++) {
            sn_tensor *p = learn[g]->items[i];
            bad |= push(&out, &n, &cap, copy_named(ctx, "grad.", p->name, p, p->grad));
        }
    for (int i = 0; i < net->buffers.n; i++) {
        sn_tensor *b = net->buffers.items[i];
        bad |= push(&out, &n, &cap, copy_named(ctx, "after.", b->name, b, b->data));
    }
    sn_step_end(ctx);
    const sn_supernet_config *c = &net->cfg;
    char meta[512];
    snprintf(meta, sizeof meta,
             "{\"layers\":%d,\"levels\":%d,\"blocks\":%d,\"F\":%d,\"classes\":%d,\"stem\":%d,\"aspp\":%d,"
             "\"affine\":%d,\"recompute\":%d,\"batch\":%d,\"height\":%d,\"width\":%d,\"seed\":%llu}",
             c->n_layers, c->n_levels, c->n_blocks, c->filter_multiplier, c->n_classes, c->stem_channels,
             c->aspp_channels, c->affine ? 1 : 0, c->recompute ? 1 : 0, o->batch, o->height, o->width, (unsigned long long)o->seed);
    char err[512];
    int rc = bad ? 1 : sn_checkpoint_save(path, out, n, meta, err, sizeof err);
    if (bad) fprintf(stderr, "bench_supernet: out of memory\n");
    else if (rc) fprintf(stderr, "bench_supernet: %s\n", err);
    else
        printf("{\"file\":\"%s\",\"tensors\":%d,\"weights\":%lld,\"loss\":%.9g}\n", path, n,
               (long long)sn_param_set_numel(&net->weights), (double)l->data[0]);
    free(out), free(labels);
    sn_searcher_free(&s);
    sn_ctx_destroy(ctx);
    return rc ? 1 : 0;
}

static int time_steps(const options *o)
{
    sn_ctx *ctx;
    sn_searcher s;
    if (make_searcher(&s, &ctx, o)) return 1;
    double rss_init = peak_rss_mib(); /* parameters, gradients, optimiser state */
    int64_t pixels = (int64_t)o->batch * o->height * o->width;
    float *images = malloc(sizeof(float) * (size_t)pixels * 3);
    uint8_t *labels = malloc((size_t)pixels);
    double *tw = malloc(sizeof(double) * (size_t)(o->reps + 1)), *ta = malloc(sizeof(double) * (size_t)(o->reps + 1));
    if (!images || !labels || !tw || !ta) return 1;
    options plain = *o;
    plain.ignore = 0;
    make_batch(&plain, 3, images, labels);
    int rc = 0;
    double first = 0, loss = 0;
    /* One warm-up step, then reps timed ones; --reps 1 times a single cold
     * step (for 321x321, where a step takes tens of seconds). */
    int iters = o->reps > 1 ? o->reps + 1 : 1;
    for (int r = 0; r < iters && !rc; r++) {
        double t0 = now();
        rc = sn_search_weight_step(&s, images, labels, o->batch, o->height, o->width, &loss);
        double t1 = now();
        rc = rc || sn_search_arch_step(&s, images, labels, o->batch, o->height, o->width, &loss);
        tw[r] = t1 - t0, ta[r] = now() - t1;
        if (r == 0) first = now() - t0;
    }
    if (rc) fprintf(stderr, "bench_supernet: %s\n", sn_ctx_error(ctx));
    else {
        int from = iters > 1 ? 1 : 0, cnt = iters > 1 ? o->reps : 1;
        printf("{\"impl\":\"segnas\",\"height\":%d,\"width\":%d,\"layers\":%d,\"F\":%d,\"blocks\":%d,\"batch\":%d,"
               "\"threads\":%d,\"recompute\":%d,\"reps\":%d,\"weight_s\":%.4f,\"arch_s\":%.4f,\"first_step_s\":%.4f,"
               "\"peak_rss_mib\":%.1f,\"rss_after_init_mib\":%.1f,\"weights\":%lld,\"loss\":%.6g}\n",
               o->height, o->width, o->cfg.n_layers, o->cfg.filter_multiplier, o->cfg.n_blocks, o->batch,
               o->threads, o->cfg.recompute ? 1 : 0, cnt, median(tw + from, cnt), median(ta + from, cnt), first, peak_rss_mib(), rss_init,
               (long long)sn_param_set_numel(&s.net.weights), loss);
    }
    free(images), free(labels), free(tw), free(ta);
    sn_searcher_free(&s);
    sn_ctx_destroy(ctx);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    options o;
    if (argc >= 3 && !strcmp(argv[1], "dump")) return parse(argc - 3, argv + 3, &o) ? 2 : dump(argv[2], &o);
    if (argc >= 2 && !strcmp(argv[1], "time")) return parse(argc - 2, argv + 2, &o) ? 2 : time_steps(&o);
    return usage();
}
