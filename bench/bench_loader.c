/* Loader throughput: synth scenes at a realistic source size (default
 * 512x1024, a Cityscapes-like aspect), DeepLab augmentation (scale 0.5-2,
 * flip, 321x321 crops), batch 2, with 1 and 2 loader threads. Prints the
 * cost of the two parts (generation, augmentation) on one thread as the
 * peer numbers against which the loader's rate is read.
 *
 * Then the engine's side: real training steps of Auto-DeepLab (F = 8, the
 * search's filter multiplier; 19 classes) on 321x321 batches pulled from a
 * 1-thread loader, with the time spent waiting in sn_loader_next measured.
 * The discrete network's step is lighter than the supernet's (several
 * times), so a loader that keeps up with it keeps up with the search.
 * usage: bench_loader [H W [images [train_steps]]] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "segnas/data.h"
#include "segnas/train.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double loader_rate(const sn_dataset *ds, const int64_t *idx, int64_t n_idx, int threads, int images)
{
    sn_loader_config c;
    sn_loader_config_default(&c);
    c.batch = 2, c.n_threads = threads, c.seed = 1;
    sn_loader *l = NULL;
    char err[320];
    if (sn_loader_create(&l, ds, idx, n_idx, &c, err, sizeof err)) {
        fprintf(stderr, "bench_loader: %s\n", err);
        exit(1);
    }
    sn_batch b;
    for (int i = 0; i < 2; i++) sn_loader_next(l, &b, err, sizeof err); /* warm-up: fill the pipeline */
    double t0 = now();
    int done = 0;
    while (done < images) {
        if (sn_loader_next(l, &b, err, sizeof err)) {
            fprintf(stderr, "bench_loader: %s\n", err);
            exit(1);
        }
        done += b.n;
    }
    double dt = now() - t0;
    sn_loader_destroy(l);
    return done / dt;
}

/* Training steps fed by a loader thread: mean step time and mean wait. */
static void train_with_loader(const sn_dataset *ds, const int64_t *idx, int64_t n_idx, int steps)
{
    sn_ctx_options co = {.threads = 2};
    sn_ctx *ctx = sn_ctx_create(&co);
    sn_genotype g;
    sn_genotype_autodeeplab(&g);
    g.filter_multiplier = 8;
    sn_model_config mc;
    sn_model_config_default(&mc, &g);
    sn_train_options o;
    sn_train_options_default(&o);
    o.total_steps = steps + 1;
    mc.total_steps = o.total_steps;
    sn_trainer t;
    if (!ctx || sn_trainer_init(&t, ctx, &mc, &o, 1)) {
        fprintf(stderr, "bench_loader: trainer: %s\n", ctx ? sn_ctx_error(ctx) : "no context");
        exit(1);
    }
    sn_loader_config c;
    sn_loader_config_default(&c);
    c.batch = 2, c.n_threads = 1, c.seed = 2;
    sn_loader *l = NULL;
    char err[320];
    if (sn_loader_create(&l, ds, idx, n_idx, &c, err, sizeof err)) {
        fprintf(stderr, "bench_loader: %s\n", err);
        exit(1);
    }
    double wait = 0, step = 0, loss;
    for (int i = 0; i <= steps; i++) { /* step 0 warms up (primitive creation) */
        sn_batch b;
        double t0 = now();
        if (sn_loader_next(l, &b, err, sizeof err)) {
            fprintf(stderr, "bench_loader: %s\n", err);
            exit(1);
        }
        double t1 = now();
        if (sn_train_step(&t, b.images, b.labels, b.n, b.h, b.w, &loss)) {
            fprintf(stderr, "bench_loader: train step: %s\n", sn_ctx_error(ctx));
            exit(1);
        }
        if (i) wait += t1 - t0, step += now() - t1;
    }
    printf("train step, Auto-DeepLab F=8, 2x321x321, 2 threads: %8.1f ms (mean of %d)\n", 1e3 * step / steps, steps);
    printf("  needs %.1f images/s; waited for the loader %.2f ms per step (%.2f%% of the step)\n", 2 / (step / steps),
           1e3 * wait / steps, 100 * wait / step);
    sn_loader_destroy(l);
    sn_trainer_free(&t);
    sn_ctx_destroy(ctx);
}

int main(int argc, char **argv)
{
    sn_synth_config sc;
    sn_synth_config_default(&sc);
    sc.height = argc > 2 ? atoi(argv[1]) : 512;
    sc.width = argc > 2 ? atoi(argv[2]) : 1024;
    int images = argc > 3 ? atoi(argv[3]) : 40;
    sc.train_count = 100000;
    sn_dataset *ds = NULL;
    char err[320];
    if (sn_synth_dataset_open(&ds, &sc, "train", err, sizeof err)) {
        fprintf(stderr, "bench_loader: %s\n", err);
        return 1;
    }
    /* The parts, on this thread. */
    sn_image img = {0}, lab = {0};
    sn_augment_config ac;
    sn_augment_config_default(&ac);
    float *out = malloc((size_t)ac.crop_h * ac.crop_w * 3 * sizeof *out);
    uint8_t *out_l = malloc((size_t)ac.crop_h * ac.crop_w);
    int reps = 8;
    double t0 = now();
    for (int i = 0; i < reps; i++) ds->load(ds, i, &img, &lab, err, sizeof err);
    double gen_ms = 1e3 * (now() - t0) / reps;
    t0 = now();
    for (int i = 0; i < 4 * reps; i++) sn_augment_sample(&ac, 1, 0, i, &img, &lab, out, out_l, err, sizeof err);
    double aug_ms = 1e3 * (now() - t0) / (4 * reps);
    printf("synth %dx%d -> crop %dx%d, scale %.1f-%.1f, flip, batch 2\n", sc.height, sc.width, ac.crop_h, ac.crop_w,
           (double)ac.scale_min, (double)ac.scale_max);
    printf("generate one scene:   %8.2f ms\n", gen_ms);
    printf("augment one sample:   %8.2f ms\n", aug_ms);
    printf("expected, 1 thread:   %8.1f images/s (1000 / (generate + augment))\n", 1e3 / (gen_ms + aug_ms));

    int64_t *idx = malloc(4096 * sizeof *idx);
    for (int64_t i = 0; i < 4096; i++) idx[i] = i;
    double r1 = loader_rate(ds, idx, 4096, 1, images);
    double r2 = loader_rate(ds, idx, 4096, 2, images);
    printf("loader, 1 thread:     %8.1f images/s\n", r1);
    printf("loader, 2 threads:    %8.1f images/s (x%.2f)\n", r2, r2 / r1);
    int train_steps = argc > 4 ? atoi(argv[4]) : 3;
    if (train_steps > 0) train_with_loader(ds, idx, 4096, train_steps);
    free(idx), free(out), free(out_l);
    sn_image_free(&img), sn_image_free(&lab);
    ds->destroy(ds);
    return 0;
}
