/* segnas bench: re-measure the numbers the issues ask for.
 *   segnas bench search-step --crop C --layers L -F F --batch N
 * prints the median seconds per supernet weight step and arch step and the
 * peak resident memory, on random data (the data pipeline is measured by
 * bench/bench_loader). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
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
        {"recompute", ARG_STRING, &recompute, "recompute cells in backward: on, off, auto (on over 160 px)"},
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
    cfg.recompute = !strcmp(recompute, "on") || (strcmp(recompute, "off") && crop > 160);
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

int cmd_bench(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "search-step")) return search_step(argc - 1, argv + 1);
    fprintf(stderr, "usage: segnas bench search-step [options]   (segnas bench search-step --help)\n");
    return argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) ? 0 : 2;
}
