/* segnas train: trains a discrete network (Auto-DeepLab or any genotype,
 * with ASPP or another context head) with DeepLab's recipe.
 *
 * Writes into --run DIR: train.safetensors (+ .json sidecar: model
 * configuration with the genotype, head, F, classes; options; step;
 * data format, class names, palette) every --checkpoint-every steps, on
 * Ctrl-C and at the end; log.jsonl (one JSON object per step and per
 * validation). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_run.h"
#include "segnas/eval.h"
#include "segnas/train.h"

typedef struct train_flags {
    cli_data_flags data;
    const char *arch, *variant, *head, *run_dir, *cooccurrence;
    int filters, batch, crop, threads, loader_threads, epochs;
    int64_t steps, val_samples, val_every, checkpoint_every, seed, stop_after;
    double lr, power, momentum, wd, scale_min, scale_max, drop_path_keep, dropout;
    bool resume, class_weights, no_decoder;
} train_flags;

static void flags_default(train_flags *f)
{
    sn_train_options o;
    sn_train_options_default(&o);
    memset(f, 0, sizeof *f);
    cli_data_flags_default(&f->data);
    f->arch = "autodeeplab", f->head = "aspp", f->run_dir = "run/train";
    f->batch = 4, f->threads = 2, f->loader_threads = 1;
    f->steps = 2000, f->val_samples = 100, f->val_every = 500, f->checkpoint_every = 500;
    f->lr = o.lr, f->power = o.power, f->momentum = o.momentum, f->wd = -1; /* resolve_weight_decay */
    f->drop_path_keep = 1.0, f->dropout = 0.1;
}

static int check_ranges(const train_flags *f)
{
    struct { const char *name; int64_t v, lo, hi; } r[] = {
        {"batch", f->batch, 1, 4096}, {"crop", f->crop, 0, 8192}, {"threads", f->threads, 1, 1024},
        {"loader-threads", f->loader_threads, 1, 256}, {"epochs", f->epochs, 0, 1000000},
        {"steps", f->steps, 1, INT64_MAX}, {"val-samples", f->val_samples, 0, INT64_MAX},
        {"val-every", f->val_every, 0, INT64_MAX}, {"checkpoint-every", f->checkpoint_every, 1, INT64_MAX},
        {"stop-after", f->stop_after, 0, INT64_MAX}, {"synth-size", f->data.synth_size, 16, 4096},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].v < r[i].lo || r[i].v > r[i].hi) {
            fprintf(stderr, "segnas: --%s %lld: must be in %lld..%lld\n", r[i].name, (long long)r[i].v,
                    (long long)r[i].lo, (long long)r[i].hi);
            return ARGS_BAD;
        }
    if (!(f->lr > 0) || !(f->power > 0) || f->momentum < 0 || f->momentum >= 1 || !(f->wd >= 0 || f->wd == -1)) {
        fprintf(stderr, "segnas: --lr and --power must be positive, --momentum in [0,1), --weight-decay >= 0 (or -1)\n");
        return ARGS_BAD;
    }
    if (!(f->drop_path_keep > 0 && f->drop_path_keep <= 1) || !(f->dropout >= 0 && f->dropout < 1)) {
        fprintf(stderr, "segnas: --drop-path-keep %g must be in (0,1], --dropout %g in [0,1)\n", f->drop_path_keep,
                f->dropout);
        return ARGS_BAD;
    }
    if (f->scale_min < 0 || f->scale_max < f->scale_min || f->scale_max > 8) {
        fprintf(stderr, "segnas: --scale-min %g --scale-max %g: need 0 <= min <= max <= 8\n", f->scale_min,
                f->scale_max);
        return ARGS_BAD;
    }
    if (sn_head_parse(f->head) < 0) {
        fprintf(stderr, "segnas: --head %s: expected aspp, ppm, glore, a2, gcu, sgr or nonlocal\n", f->head);
        return ARGS_BAD;
    }
    return ARGS_OK;
}

static int parse_flags(train_flags *f, int argc, char **argv)
{
    const arg_spec specs[] = {
        {"arch", ARG_STRING, &f->arch, "'autodeeplab' (the paper's network) or a genotype JSON"},
        {"F", ARG_INT, &f->filters, "filter multiplier F (0 = the genotype's)"},
        {"variant", ARG_STRING, &f->variant, "S, M or L: F = 20, 32 or 48"},
        {"head", ARG_STRING, &f->head, "context module: aspp, ppm, glore, a2, gcu, sgr, nonlocal"},
        {"cooccurrence", ARG_STRING, &f->cooccurrence,
         "sgr: prior adjacency from segnas data inspect --cooccurrence (default identity)"},
        {"no-decoder", ARG_BOOL, &f->no_decoder, "logits from the head directly (no DeepLabv3+ decoder)"},
        {"data", ARG_STRING, &f->data.root, "data set folder (default: the embedded synthetic set)"},
        {"data-format", ARG_STRING, &f->data.format, "cityscapes, voc, ade20k or folder"},
        {"synth-size", ARG_INT, &f->data.synth_size, "synthetic images: side in pixels"},
        {"synth-train", ARG_INT64, &f->data.synth_train, "synthetic images: training samples"},
        {"synth-val", ARG_INT64, &f->data.synth_val, "synthetic images: validation samples"},
        {"run", ARG_STRING, &f->run_dir, "output folder (checkpoint, log)"},
        {"steps", ARG_INT64, &f->steps, "training steps (iterations)"},
        {"epochs", ARG_INT, &f->epochs, "if > 0: steps = epochs x batches per epoch"},
        {"batch", ARG_INT, &f->batch, "images per step"},
        {"crop", ARG_INT, &f->crop, "square training crop (0 = 321, or the synthetic image size)"},
        {"scale-min", ARG_DOUBLE, &f->scale_min, "random scale augmentation, lower bound (0 = 0.5; 1 on synth)"},
        {"scale-max", ARG_DOUBLE, &f->scale_max, "random scale augmentation, upper bound (0 = 2.0; 1 on synth)"},
        {"lr", ARG_DOUBLE, &f->lr, "initial learning rate (poly schedule)"},
        {"power", ARG_DOUBLE, &f->power, "poly schedule power"},
        {"momentum", ARG_DOUBLE, &f->momentum, "SGD momentum"},
        {"weight-decay", ARG_DOUBLE, &f->wd,
         "L2 on kernels and weight matrices (not biases, BN); -1 = DeepLab's 1e-4 with --data, 5e-3 on the "
         "synthetic set (short schedules, README)"},
        {"drop-path-keep", ARG_DOUBLE, &f->drop_path_keep, "scheduled drop path: final keep probability of the last cell"},
        {"dropout", ARG_DOUBLE, &f->dropout, "dropout after the context head"},
        {"class-weights", ARG_BOOL, &f->class_weights, "median-frequency class-balanced loss (one pass over the labels)"},
        {"val-samples", ARG_INT64, &f->val_samples, "validation images per evaluation (0 = all)"},
        {"val-every", ARG_INT64, &f->val_every, "steps between validations (0 = only at the end)"},
        {"checkpoint-every", ARG_INT64, &f->checkpoint_every, "steps between checkpoints"},
        {"seed", ARG_INT64, &f->seed, "random seed (weights, augmentation, dropout)"},
        {"threads", ARG_INT, &f->threads, "compute threads (OpenMP and oneDNN)"},
        {"loader-threads", ARG_INT, &f->loader_threads, "data loading threads"},
        {"resume", ARG_BOOL, &f->resume, "continue from the checkpoint in --run"},
        {"stop-after", ARG_INT64, &f->stop_after, "stop with a checkpoint after this many steps in total (0 = run to the end)"},
    };
    int rc = args_parse("segnas train --arch autodeeplab|GENOTYPE.json [-F N|--variant S|M|L] [--head H] [--data DIR] "
                        "[options]", specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    return rc ? rc : check_ranges(f);
}

typedef struct train_run {
    train_flags flags;
    sn_ctx *ctx;
    sn_dataset *train, *val;
    sn_loader *loader;
    sn_trainer trainer;
    FILE *log;
    char path[4096];
    int crop;
    double scale_min, scale_max;
} train_run;

/* ---- validation ---------------------------------------------------------- */
static double validate(train_run *r, double *pixel_acc)
{
    const sn_dataset *val = r->val;
    int k = r->trainer.model.cfg.n_classes;
    sn_confusion conf;
    *pixel_acc = NAN;
    if (sn_confusion_init(&conf, k, 255)) return NAN;
    int64_t n = r->flags.val_samples && r->flags.val_samples < val->count ? r->flags.val_samples : val->count;
    sn_infer_config ic;
    sn_infer_config_default(&ic);
    sn_image img = {0}, label = {0};
    float *probs = NULL;
    uint8_t *pred = NULL;
    int failed = 0;
    for (int64_t i = 0; i < n && !failed; i++) {
        char err[512];
        if (val->load(val, i, &img, &label, err, sizeof err)) {
            fprintf(stderr, "segnas: validation: %s\n", err);
            failed = 1;
            break;
        }
        free(probs), free(pred);
        probs = malloc(sizeof(float) * (size_t)img.w * img.h * k);
        pred = malloc((size_t)img.w * img.h);
        if (!probs || !pred) {
            failed = 1;
            break;
        }
        failed = sn_infer_probs(r->ctx, &r->trainer.model, &img, &ic, probs);
        if (!failed) sn_probs_argmax(probs, (int64_t)img.w * img.h, k, pred);
        failed = failed || sn_confusion_add(&conf, pred, label.data, (int64_t)img.w * img.h, NULL);
        if (failed) fprintf(stderr, "segnas: validation of sample %lld failed: %s\n", (long long)i, sn_ctx_error(r->ctx));
    }
    double miou = failed ? NAN : sn_confusion_miou(&conf);
    *pixel_acc = failed ? NAN : sn_confusion_pixel_accuracy(&conf);
    sn_image_free(&img), sn_image_free(&label);
    free(probs), free(pred);
    sn_confusion_free(&conf);
    return miou;
}

/* ---- class weights: one pass over the training labels ------------------------ */
static int class_weights(train_run *r, sn_train_options *o)
{
    int k = r->train->n_classes;
    int64_t cls[256] = {0}, img_px[256] = {0};
    sn_image img = {0}, label = {0};
    int rc = 0;
    for (int64_t i = 0; i < r->train->count && !rc; i++) {
        char err[512];
        if ((rc = r->train->load(r->train, i, &img, &label, err, sizeof err))) {
            fprintf(stderr, "segnas: --class-weights: %s\n", err);
            break;
        }
        int64_t here[256] = {0}, n = (int64_t)label.w * label.h;
        for (int64_t p = 0; p < n; p++) here[label.data[p]]++;
        for (int c = 0; c < k; c++)
            if (here[c]) cls[c] += here[c], img_px[c] += n - here[255];
    }
    sn_image_free(&img), sn_image_free(&label);
    if (rc) return 1;
    sn_median_frequency_weights(cls, img_px, k, o->class_weights);
    o->class_weighted = true;
    fprintf(stderr, "class weights (median frequency):");
    for (int c = 0; c < k; c++) fprintf(stderr, " %s %.3f", r->train->class_names[c], o->class_weights[c]);
    fprintf(stderr, "\n");
    return 0;
}

/* ---- checkpoints ------------------------------------------------------------------ */
static void checkpoint_path(train_run *r)
{
    snprintf(r->path, sizeof r->path, "%s/train.safetensors", r->flags.run_dir);
}

static int save_checkpoint(train_run *r)
{
    char more[1024], err[512];
    const train_flags *f = &r->flags;
    snprintf(more, sizeof more,
             "\"seed\":%lld,\"batch\":%d,\"crop\":%d,\"scale_min\":%.9g,\"scale_max\":%.9g,\"data\":\"%s\","
             "\"arch\":\"%s\"", (long long)f->seed, f->batch, r->crop, r->scale_min, r->scale_max,
             f->data.root ? "folder" : "synth", f->resume ? "resumed" : f->arch);
    char *extra = cli_data_extra_json(r->train, more);
    checkpoint_path(r);
    int rc = sn_trainer_save(&r->trainer, r->path, extra, err, sizeof err);
    free(extra);
    if (rc) fprintf(stderr, "segnas: checkpoint: %s\n", err);
    return rc;
}

/* --resume: model, options and data stream come from the checkpoint. */
static int read_resume_config(train_run *r, sn_model_config *cfg, sn_train_options *o)
{
    char err[1024], *extra = NULL;
    checkpoint_path(r);
    if (sn_train_read_config(r->path, cfg, o, &extra, err, sizeof err)) {
        fprintf(stderr, "segnas: --resume: %s\n", err);
        return 1;
    }
    cJSON *x = extra ? cJSON_Parse(extra) : NULL;
    const cJSON *v;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(x, "seed"))) r->flags.seed = (int64_t)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(x, "batch")) && v->valuedouble >= 1)
        r->flags.batch = (int)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(x, "crop")) && v->valuedouble >= 1)
        r->flags.crop = (int)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(x, "scale_min"))) r->flags.scale_min = v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(x, "scale_max"))) r->flags.scale_max = v->valuedouble;
    cJSON_Delete(x);
    free(extra);
    return 0;
}

static int open_loader(train_run *r)
{
    const train_flags *f = &r->flags;
    int64_t n = r->train->count, *all = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!all) return 1;
    for (int64_t i = 0; i < n; i++) all[i] = i;
    sn_loader_config lc;
    sn_loader_config_default(&lc);
    lc.batch = f->batch, lc.n_threads = f->loader_threads, lc.seed = (uint64_t)f->seed;
    r->crop = f->crop ? f->crop : (f->data.root ? 321 : f->data.synth_size);
    lc.aug.crop_h = lc.aug.crop_w = r->crop;
    /* As search.c: the synthetic classes differ by texture frequency, which
     * scaling would blur together, so no scale augmentation there. */
    bool synth = !f->data.root;
    r->scale_min = f->scale_min > 0 ? f->scale_min : synth ? 1.0 : 0.5;
    r->scale_max = f->scale_max > 0 ? f->scale_max : synth ? 1.0 : 2.0;
    lc.aug.scale_min = (float)r->scale_min, lc.aug.scale_max = (float)r->scale_max;
    char err[512];
    int rc = sn_loader_create(&r->loader, r->train, all, n, &lc, err, sizeof err);
    if (rc) fprintf(stderr, "segnas: %s\n", err);
    free(all);
    return rc ? 1 : 0;
}

/* The default weight decay. Every kernel followed by batch norm is scale
 * invariant, so its effective learning rate is lr / |w|^2, and only weight
 * decay brings |w| down after the large first updates of a deep network
 * (its gradients explode at initialisation: ~100x the weight norm in the
 * stem of the 12-cell Auto-DeepLab, in PyTorch too). Decay 1e-4 reaches
 * that equilibrium in ~1 / (lr * wd) = 200k steps, fine for DeepLab's
 * real-data schedules; on the synthetic set's thousands of steps 5e-3 was
 * the best of 1e-4 .. 1e-2 (README, "Training the paper's network"). */
static double resolve_weight_decay(const train_flags *f)
{
    if (f->wd >= 0) return f->wd;
    return f->data.root ? 1e-4 : 5e-3;
}

static int build(train_run *r)
{
    const train_flags *f = &r->flags;
    sn_model_config cfg;
    sn_train_options o;
    float *adjacency = NULL;
    if (f->resume) {
        if (read_resume_config(r, &cfg, &o)) return 1;
    } else {
        sn_genotype g;
        int filters = f->filters;
        int rc = cli_resolve_filters(f->variant, &filters);
        if (rc) return rc;
        if (cli_load_genotype(f->arch, &g)) return 1;
        if (filters) g.filter_multiplier = filters;
        sn_model_config_default(&cfg, &g);
        cfg.n_classes = r->train->n_classes;
        cfg.head = sn_head_parse(f->head);
        cfg.decoder = !f->no_decoder;
        cfg.aspp_dropout = (float)f->dropout;
        cfg.drop_path_keep_prob = (float)f->drop_path_keep;
        sn_train_options_default(&o);
        o.lr = f->lr, o.power = f->power, o.momentum = f->momentum, o.weight_decay = resolve_weight_decay(f);
        o.total_steps = f->epochs > 0 ? (int64_t)f->epochs * sn_loader_batches_per_epoch(r->loader) : f->steps;
        cfg.total_steps = o.total_steps;
        if (f->class_weights && class_weights(r, &o)) return 1;
        if (f->cooccurrence) {
            if (cfg.head != SN_HEAD_SGR) fprintf(stderr, "segnas: note: --cooccurrence is used by --head sgr only\n");
            else if (cli_read_cooccurrence(f->cooccurrence, cfg.n_classes, &adjacency)) return 1;
        }
        cfg.sgr_adjacency = adjacency;
    }
    if (cfg.n_classes != r->train->n_classes) {
        fprintf(stderr, "segnas: the checkpoint has %d classes, the data %d\n", cfg.n_classes, r->train->n_classes);
        return 1;
    }
    int rc = sn_trainer_init(&r->trainer, r->ctx, &cfg, &o, (uint64_t)f->seed);
    free(adjacency);
    if (rc) {
        fprintf(stderr, "segnas: %s\n", sn_ctx_error(r->ctx));
        return 1;
    }
    if (!f->resume) return 0;
    char err[1024];
    checkpoint_path(r);
    if (sn_trainer_load(&r->trainer, r->path, err, sizeof err)) {
        fprintf(stderr, "segnas: --resume: %s\n", err);
        return 1;
    }
    /* The loader stream is a pure function of the seed: skip the batches
     * the interrupted run consumed. */
    sn_batch b;
    for (int64_t i = 0; i < r->trainer.step; i++)
        if (cli_next_batch(r->loader, &b)) return 1;
    fprintf(stderr, "resumed at step %lld\n", (long long)r->trainer.step);
    return 0;
}

static void log_validation(train_run *r, double miou, double acc)
{
    char line[256];
    snprintf(line, sizeof line, "{\"event\":\"val\",\"step\":%lld,\"val_miou\":%.6g,\"val_pixel_accuracy\":%.6g}",
             (long long)r->trainer.step, miou, acc);
    cli_log_line(r->log, line);
}

static int train_loop(train_run *r)
{
    sn_trainer *t = &r->trainer;
    int64_t total = t->opt.total_steps, first = t->step;
    cli_progress bar;
    cli_progress_start(&bar, "train", total - first);
    double last_miou = NAN, ema = NAN;
    int rc = SN_OK;
    while (t->step < total) {
        if (cli_interrupted() || (r->flags.stop_after && t->step >= r->flags.stop_after)) {
            rc = SN_ERR_INTERRUPTED;
            break;
        }
        sn_batch b;
        double loss = NAN, lr = sn_trainer_lr(t);
        if (cli_next_batch(r->loader, &b)) {
            cli_progress_end(&bar);
            return 1;
        }
        if ((rc = sn_train_step(t, b.images, b.labels, b.n, b.h, b.w, &loss))) break;
        ema = isnan(ema) ? loss : 0.95 * ema + 0.05 * loss;
        char line[256], extra[96];
        snprintf(line, sizeof line, "{\"event\":\"step\",\"step\":%lld,\"loss\":%.6g,\"lr\":%.6g}", (long long)t->step,
                 loss, lr);
        cli_log_line(r->log, line);
        bool val = r->flags.val_every && t->step % r->flags.val_every == 0 && t->step < total;
        if (val) {
            double acc;
            last_miou = validate(r, &acc);
            log_validation(r, last_miou, acc);
            if (!bar.tty) fprintf(stderr, "step %lld: loss %.4f, val mIoU %.2f%%, pixel accuracy %.2f%%\n",
                                  (long long)t->step, ema, 100 * last_miou, 100 * acc);
        }
        snprintf(extra, sizeof extra, "loss %.3f mIoU %s%.1f%%", ema, isnan(last_miou) ? "-" : "",
                 isnan(last_miou) ? 0.0 : 100 * last_miou);
        cli_progress_update(&bar, t->step - first, extra);
        if (t->step % r->flags.checkpoint_every == 0 && save_checkpoint(r)) {
            cli_progress_end(&bar);
            return 1;
        }
    }
    cli_progress_end(&bar);
    if (rc == SN_ERR_INTERRUPTED) {
        fprintf(stderr, "segnas: %s at step %lld: saving a checkpoint to resume from (--resume)\n",
                cli_interrupted() ? "interrupted" : "stopped (--stop-after)", (long long)t->step);
        if (save_checkpoint(r)) return 1;
        return cli_interrupted() ? 130 : 0;
    }
    if (rc) {
        fprintf(stderr, "segnas: training failed: %s\n", sn_ctx_status(r->ctx) ? sn_ctx_error(r->ctx) : sn_status_name(rc));
        return 1;
    }
    if (save_checkpoint(r)) return 1;
    double acc, miou = validate(r, &acc);
    log_validation(r, miou, acc);
    fprintf(stderr, "done: %lld steps, final loss %.4f, val mIoU %.2f%% (%lld images), pixel accuracy %.2f%%\n",
            (long long)t->step, ema, 100 * miou, (long long)(r->flags.val_samples ? r->flags.val_samples : r->val->count),
            100 * acc);
    checkpoint_path(r);
    printf("%s\n", r->path);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_run r;
    memset(&r, 0, sizeof r);
    flags_default(&r.flags);
    int rc = parse_flags(&r.flags, argc, argv);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    sn_ctx_options co = {.threads = r.flags.threads};
    r.ctx = sn_ctx_create(&co);
    if (!r.ctx) {
        fprintf(stderr, "segnas: cannot start the engine (out of memory?)\n");
        return 1;
    }
    if (r.flags.resume) {
        sn_model_config c;
        sn_train_options o;
        checkpoint_path(&r);
        rc = read_resume_config(&r, &c, &o); /* batch, crop and seed before the loader opens */
    }
    if (!rc) rc = cli_mkdir_p(r.flags.run_dir) || cli_open_data(&r.flags.data, "train", &r.train) ||
                  cli_open_data(&r.flags.data, "val", &r.val) || open_loader(&r);
    if (!rc) rc = build(&r);
    if (!rc) {
        snprintf(r.path, sizeof r.path, "%s/log.jsonl", r.flags.run_dir);
        r.log = fopen(r.path, r.flags.resume ? "a" : "w");
        if (!r.log) fprintf(stderr, "segnas: cannot write %s\n", r.path), rc = 1;
    }
    if (!rc) {
        cli_install_interrupt();
        const sn_model_config *c = &r.trainer.model.cfg;
        fprintf(stderr, "train: %d cells, F = %d, head %s, %lld weights, %d classes, %lld steps of %d x %dx%d, lr %g, "
                "weight decay %g\n",
                c->genotype.n_layers, c->genotype.filter_multiplier, sn_head_name(c->head),
                (long long)sn_param_set_numel(&r.trainer.model.weights), c->n_classes,
                (long long)r.trainer.opt.total_steps, r.flags.batch, r.crop, r.crop, r.trainer.opt.lr,
                r.trainer.opt.weight_decay);
        rc = train_loop(&r);
    }
    if (r.loader) sn_loader_destroy(r.loader);
    sn_trainer_free(&r.trainer);
    if (r.train) sn_dataset_close(r.train);
    if (r.val) sn_dataset_close(r.val);
    if (r.log) fclose(r.log);
    sn_ctx_destroy(r.ctx);
    return rc;
}
