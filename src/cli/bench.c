/* segnas bench: re-measure the numbers the issues ask for.
 *   segnas bench search-step --crop C --layers L -F F --batch N
 * prints the median seconds per supernet weight step and arch step and the
 * peak resident memory, on random data (the data pipeline is measured by
 * bench/bench_loader).
 *   segnas bench infer --arch A -F F --size HxW [--save DIR]
 * prints the median inference time of a discrete network (evaluation mode,
 * no tape) and images/s; --save writes what bench/discrete_torch.py needs to
 * rebuild the same network in PyTorch and check the logits (issue 5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_run.h"
#include "segnas/train.h"

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

static int search_step(int argc, char **argv)
{
    int crop = 64, layers = 12, F = 8, blocks = 5, batch = 2, threads = 2, reps = 5, classes = 19;
    const char *recompute = "auto";
    const arg_spec specs[] = {
        {"crop", ARG_INT, &crop, "square input size"},
        {"layers", ARG_INT, &layers, "L"},
        {"F", ARG_INT, &F, "filter multiplier (also --filter-multiplier)"},
        {"filter-multiplier", ARG_INT, &F, "filter multiplier"},
        {"blocks", ARG_INT, &blocks, "B"},
        {"batch", ARG_INT, &batch, "images per step"},
        {"classes", ARG_INT, &classes, "output classes"},
        {"threads", ARG_INT, &threads, "compute threads"},
        {"reps", ARG_INT, &reps, "timed steps of each kind (after one warm-up)"},
        {"recompute", ARG_STRING, &recompute, "recompute cells in backward: on, off, auto (on over 160 px or with 2+ threads)"},
    };
    int rc = args_parse("segnas bench search-step [options]", specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (crop < 16 || batch < 1 || reps < 1 || reps > 1000 || threads < 1) {
        fprintf(stderr, "segnas: bench search-step: --crop >= 16, --batch >= 1, --reps 1..1000, --threads >= 1\n");
        return 2;
    }
    sn_ctx_options co = {.threads = threads};
    sn_ctx *ctx = sn_ctx_create(&co);
    sn_supernet_config cfg;
    sn_supernet_config_default(&cfg);
    cfg.n_layers = layers, cfg.filter_multiplier = F, cfg.n_blocks = blocks, cfg.n_classes = classes;
    cfg.recompute = !strcmp(recompute, "on") || (strcmp(recompute, "off") && sn_supernet_auto_recompute(crop, crop, threads));
    sn_search_options opt;
    sn_search_options_default(&opt);
    opt.steps_per_epoch = 1000;
    sn_searcher s;
    if (!ctx || sn_searcher_init(&s, ctx, &cfg, &opt, 1)) {
        fprintf(stderr, "segnas: %s\n", ctx ? sn_ctx_error(ctx) : "cannot start the engine");
        if (ctx) sn_ctx_destroy(ctx);
        return 1;
    }
    int64_t pixels = (int64_t)batch * crop * crop;
    float *images = malloc(sizeof(float) * (size_t)pixels * 3);
    uint8_t *labels = malloc((size_t)pixels);
    double *tw = malloc(sizeof(double) * (size_t)(reps + 1)), *ta = malloc(sizeof(double) * (size_t)(reps + 1));
    sn_rng rng;
    sn_rng_seed(&rng, 3);
    sn_rng_fill_normal(&rng, images, pixels * 3, 0, 1);
    for (int64_t i = 0; i < pixels; i++) labels[i] = (uint8_t)sn_rng_below(&rng, (uint64_t)classes);
    rc = 0;
    for (int r = 0; r <= reps && !rc; r++) {
        double t0 = cli_now(), loss;
        rc = sn_search_weight_step(&s, images, labels, batch, crop, crop, &loss);
        double t1 = cli_now();
        rc = rc || sn_search_arch_step(&s, images, labels, batch, crop, crop, &loss);
        tw[r] = t1 - t0, ta[r] = cli_now() - t1;
    }
    if (rc) fprintf(stderr, "segnas: %s\n", sn_ctx_error(ctx));
    else
        printf("search step: crop %d, L=%d, F=%d, B=%d, batch %d, %d threads: weight step %.3f s, arch step %.3f s "
               "(median of %d), peak RSS %.0f MiB, %lld weights%s\n",
               crop, layers, F, blocks, batch, threads, median(tw + 1, reps), median(ta + 1, reps), reps,
               peak_rss_mib(), (long long)sn_param_set_numel(&s.net.weights), cfg.recompute ? ", cells recomputed" : "");
    free(images), free(labels), free(tw), free(ta);
    sn_searcher_free(&s);
    sn_ctx_destroy(ctx);
    return rc ? 1 : 0;
}

/* ---- bench infer ------------------------------------------------------------ */
typedef struct infer_flags {
    const char *arch, *variant, *head, *size, *save;
    int filters, batch, reps, threads, classes;
    int64_t seed;
    bool no_decoder, json;
} infer_flags;

static int parse_size(const char *s, int *h, int *w)
{
    char tail;
    if (sscanf(s, "%dx%d%c", h, w, &tail) == 2 && *h >= 16 && *w >= 16 && *h <= 16384 && *w <= 16384) return 0;
    if (sscanf(s, "%d%c", h, &tail) == 1 && *h >= 16 && *h <= 16384) {
        *w = *h;
        return 0;
    }
    fprintf(stderr, "segnas: bench infer: --size '%s': expected HxW (or S), each 16..16384\n", s);
    return 2;
}

/* Random BN statistics and affine parameters around identity (and a small
 * classifier bias): a freshly built network has mean 0, var 1, gamma 1,
 * beta 0 everywhere, with which a parity check could not tell one BN from
 * another. (Activations still grow through the cells, as they do with the
 * identity BNs: the logits reach 1e5..1e7, harmless for timing and for
 * relative errors.) */
static void perturb_identity_params(sn_model *m, uint64_t seed)
{
    sn_rng rng;
    sn_rng_seed(&rng, seed ^ 0x9e3779b97f4a7c15ull);
    const sn_param_set *sets[2] = {&m->weights, &m->buffers};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sets[s]->n; i++) {
            sn_tensor *t = sets[s]->items[i];
            const char *leaf = strrchr(t->name, '.');
            leaf = leaf ? leaf + 1 : t->name;
            if (!strcmp(leaf, "gamma") || !strcmp(leaf, "running_var"))
                sn_rng_fill_uniform(&rng, t->data, t->numel, 0.8f, 1.2f);
            else if (!strcmp(leaf, "beta") || !strcmp(leaf, "running_mean") || !strcmp(leaf, "bias"))
                sn_rng_fill_normal(&rng, t->data, t->numel, 0.0f, 0.1f);
        }
}

/* CPU seconds of the whole process (all threads), printed beside the wall
 * time for diagnosis: well below threads x wall means the threads waited
 * (for a core, or for each other). */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A tensor header over caller memory, for sn_checkpoint_save only. */
static sn_tensor named_view(const char *name, float *data, int ndim, const int64_t *shape)
{
    sn_tensor t = {.ndim = ndim, .data = data, .name = name, .numel = 1};
    for (int d = 0; d < ndim; d++) t.shape[d] = shape[d], t.numel *= shape[d];
    return t;
}

static int save_tensor(const char *dir, const char *file, sn_tensor t)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    sn_tensor *list[1] = {&t};
    if (sn_checkpoint_save(path, list, 1, NULL, err, sizeof err)) {
        fprintf(stderr, "segnas: %s\n", err);
        return 1;
    }
    return 0;
}

/* DIR/weights.safetensors (weights then BN buffers, named as in a training
 * checkpoint), DIR/input.safetensors ("input" {N,H,W,3}), DIR/config.json. */
static int save_model(const char *dir, const sn_model *m, const infer_flags *f, int h, int w, float *images)
{
    if (cli_mkdir_p(dir)) return 1;
    int n = m->weights.n + m->buffers.n, k = 0;
    sn_tensor **all = malloc(sizeof *all * (size_t)n);
    if (!all) return 1;
    for (int i = 0; i < m->weights.n; i++) all[k++] = m->weights.items[i];
    for (int i = 0; i < m->buffers.n; i++) all[k++] = m->buffers.items[i];
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    int rc = sn_checkpoint_save(path, all, n, NULL, err, sizeof err);
    free(all);
    if (rc) {
        fprintf(stderr, "segnas: %s\n", err);
        return 1;
    }
    const int64_t in_shape[4] = {f->batch, h, w, 3};
    if (save_tensor(dir, "input.safetensors", named_view("input", images, 4, in_shape))) return 1;
    const sn_model_config *c = &m->cfg;
    char *geno = sn_genotype_to_json(&c->genotype);
    char *text = malloc(strlen(geno ? geno : "") + 1024);
    if (!geno || !text) {
        free(geno), free(text);
        return 1;
    }
    sprintf(text,
            "{\"format\": \"segnas-bench-infer\", \"genotype\": %s, \"F\": %d, \"classes\": %d, \"head\": \"%s\",\n"
            " \"stem_channels\": %d, \"aspp_channels\": %d, \"decoder_low_channels\": %d, \"decoder_channels\": %d,\n"
            " \"decoder\": %s, \"batch\": %d, \"height\": %d, \"width\": %d, \"seed\": %lld, \"threads\": %d}\n",
            geno, c->genotype.filter_multiplier, c->n_classes, sn_head_name(c->head), c->stem_channels,
            c->aspp_channels, c->decoder_low_channels, c->decoder_channels, c->decoder ? "true" : "false", f->batch, h,
            w, (long long)f->seed, f->threads);
    free(geno);
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = sn_write_file_atomic(path, text, strlen(text), err, sizeof err);
    free(text);
    if (rc) fprintf(stderr, "segnas: %s\n", err);
    return rc ? 1 : 0;
}

static int infer_parse(infer_flags *f, int argc, char **argv)
{
    *f = (infer_flags){.arch = "autodeeplab", .head = "aspp", .size = "513x513", .batch = 1, .reps = 5, .threads = 2,
                       .classes = 19, .seed = 1};
    const arg_spec specs[] = {
        {"arch", ARG_STRING, &f->arch, "'autodeeplab' (the paper's network) or a genotype JSON"},
        {"F", ARG_INT, &f->filters, "filter multiplier F (0 = the genotype's: 20 for autodeeplab)"},
        {"variant", ARG_STRING, &f->variant, "S, M or L: F = 20, 32 or 48"},
        {"head", ARG_STRING, &f->head, "context module: aspp, ppm, glore, a2, gcu, sgr, nonlocal"},
        {"no-decoder", ARG_BOOL, &f->no_decoder, "logits from the head directly (no DeepLabv3+ decoder)"},
        {"size", ARG_STRING, &f->size, "input HxW (or S for SxS)"},
        {"batch", ARG_INT, &f->batch, "images per forward pass"},
        {"classes", ARG_INT, &f->classes, "output classes"},
        {"threads", ARG_INT, &f->threads, "compute threads"},
        {"reps", ARG_INT, &f->reps, "timed passes (after two warm-up passes)"},
        {"seed", ARG_INT64, &f->seed, "weights and input"},
        {"save", ARG_STRING, &f->save, "write DIR/{weights,input,output}.safetensors and config.json"},
        {"json", ARG_BOOL, &f->json, "print the result as one JSON line"},
    };
    int rc = args_parse("segnas bench infer [--arch autodeeplab|GENOTYPE.json] [-F N] [--head H] [--size HxW] "
                        "[options]", specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc == ARGS_HELP ? -1 : 2;
    if (f->batch < 1 || f->batch > 1024 || f->reps < 1 || f->reps > 1000 || f->threads < 1) {
        fprintf(stderr, "segnas: bench infer: --batch 1..1024, --reps 1..1000, --threads >= 1\n");
        return 2;
    }
    if (sn_head_parse(f->head) < 0) {
        fprintf(stderr, "segnas: bench infer: --head %s: expected aspp, ppm, glore, a2, gcu, sgr or nonlocal\n", f->head);
        return 2;
    }
    return cli_resolve_filters(f->variant, &f->filters);
}

/* Two warm-up passes, then the timed ones: the first pass grows the step
 * arena block by block, the reset merges the blocks into one fresh block
 * that the second pass touches for the first time (page faults cost 10-13 us
 * per page here, DESIGN.md: seconds at 1024x2048); from then on every pass
 * reuses it. With `save`, writes the logits of the first pass. */
#define INFER_WARMUP 2
static int infer_time(sn_ctx *ctx, const sn_model *m, const infer_flags *f, int h, int w, const float *images,
                      double *times, double *cpu)
{
    const int64_t numel = (int64_t)f->batch * h * w * 3;
    sn_model_run run = {.training = false};
    for (int r = 1 - INFER_WARMUP; r <= f->reps; r++) {
        sn_tensor *in = sn_tensor_new4(ctx, f->batch, h, w, 3);
        if (!in) return 1;
        memcpy(in->data, images, sizeof(float) * (size_t)numel);
        double t0 = cli_now(), c0 = cpu_seconds();
        sn_tensor *logits = sn_model_forward(ctx, m, in, &run);
        double t1 = cli_now(), c1 = cpu_seconds();
        if (!logits) return 1;
        if (r > 0) times[r - 1] = t1 - t0, cpu[r - 1] = c1 - c0;
        if (r == 1 - INFER_WARMUP && f->save && save_tensor(f->save, "output.safetensors",
                                             named_view("logits", logits->data, logits->ndim, logits->shape)))
            return 2;
        sn_step_end(ctx);
    }
    return 0;
}

static int infer(int argc, char **argv)
{
    infer_flags f;
    int h = 0, w = 0, rc = infer_parse(&f, argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    if (parse_size(f.size, &h, &w)) return 2;
    sn_genotype g;
    if (cli_load_genotype(f.arch, &g)) return 1;
    if (f.filters) g.filter_multiplier = f.filters;
    sn_model_config cfg;
    sn_model_config_default(&cfg, &g);
    cfg.n_classes = f.classes, cfg.head = sn_head_parse(f.head), cfg.decoder = !f.no_decoder;
    sn_ctx_options co = {.threads = f.threads};
    sn_ctx *ctx = sn_ctx_create(&co);
    sn_model m;
    if (!ctx || sn_model_init(ctx, &m, &cfg, (uint64_t)f.seed)) {
        fprintf(stderr, "segnas: %s\n", ctx ? sn_ctx_error(ctx) : "cannot start the engine");
        if (ctx) sn_model_free(&m), sn_ctx_destroy(ctx);
        return 1;
    }
    perturb_identity_params(&m, (uint64_t)f.seed);
    sn_set_grad_enabled(ctx, false);
    int64_t numel = (int64_t)f.batch * h * w * 3;
    float *images = malloc(sizeof(float) * (size_t)numel);
    double *times = malloc(sizeof(double) * 2 * (size_t)f.reps), *cpu = times ? times + f.reps : NULL;
    rc = images && times ? 0 : 1;
    if (!rc) {
        sn_rng rng;
        sn_rng_seed(&rng, (uint64_t)f.seed + 1);
        sn_rng_fill_normal(&rng, images, numel, 0.0f, 1.0f);
        if (f.save) rc = save_model(f.save, &m, &f, h, w, images);
    }
    if (!rc) rc = infer_time(ctx, &m, &f, h, w, images, times, cpu);
    if (rc == 1) fprintf(stderr, "segnas: %s\n", images && times ? sn_ctx_error(ctx) : "out of memory");
    if (!rc) {
        double ms = 1e3 * median(times, f.reps) / f.batch, cpu_ms = 1e3 * median(cpu, f.reps) / f.batch;
        if (f.json)
            printf("{\"impl\": \"segnas\", \"height\": %d, \"width\": %d, \"batch\": %d, \"threads\": %d, \"F\": %d, "
                   "\"head\": \"%s\", \"reps\": %d, \"ms_per_image\": %.2f, \"images_per_s\": %.4f, "
                   "\"cpu_ms_per_image\": %.2f, \"peak_rss_mib\": %.1f, \"weights\": %lld}\n",
                   h, w, f.batch, f.threads, g.filter_multiplier, f.head, f.reps, ms, 1e3 / ms, cpu_ms, peak_rss_mib(),
                   (long long)sn_param_set_numel(&m.weights));
        else
            printf("infer: %s F=%d, head %s%s, %dx%d, batch %d, %d threads: %.1f ms per image (median of %d; CPU "
                   "%.1f ms), %.3f images/s, peak RSS %.0f MiB, %lld weights\n",
                   f.arch, g.filter_multiplier, f.head, f.no_decoder ? " (no decoder)" : "", h, w, f.batch, f.threads,
                   ms, f.reps, cpu_ms, 1e3 / ms, peak_rss_mib(), (long long)sn_param_set_numel(&m.weights));
    }
    free(images), free(times);
    sn_model_free(&m);
    sn_ctx_destroy(ctx);
    return rc ? 1 : 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "search-step")) return search_step(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "infer")) return infer(argc - 1, argv + 1);
    fprintf(stderr, "usage: segnas bench search-step|infer [options]   (segnas bench <sub-command> --help)\n");
    return argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) ? 0 : 2;
}
