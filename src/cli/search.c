/* segnas search: the Auto-DeepLab supernet search (bi-level, first order).
 *
 * Writes into --run DIR: search.safetensors (+ .json sidecar) checkpoints,
 * log.jsonl (one JSON object per step / evaluation), genotype.json (the
 * decoding of the current alpha and beta, refreshed every epoch). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/svg.h"
#include "segnas/eval.h"
#include "segnas/search.h"
#include "segnas/train.h"

typedef struct search_flags {
    cli_data_flags data;
    const char *run_dir;
    int layers, levels, blocks, filter_multiplier, stem_channels;
    int epochs, arch_start, batch, crop, threads, loader_threads;
    int64_t steps_per_epoch, val_samples, checkpoint_every, seed, stop_after;
    double lr, lr_min, momentum, wd, arch_lr, arch_wd;
    double scale_min, scale_max; /* 0 = the data's default */
    bool resume, space_size, affine, skip_bad;
    const char *recompute; /* "auto", "on", "off" */
} search_flags;

static void flags_default(search_flags *f)
{
    sn_supernet_config c;
    sn_supernet_config_default(&c);
    sn_search_options o;
    sn_search_options_default(&o);
    memset(f, 0, sizeof *f);
    cli_data_flags_default(&f->data);
    f->run_dir = "run/search";
    f->recompute = "auto";
    f->layers = c.n_layers, f->levels = c.n_levels, f->blocks = c.n_blocks;
    f->filter_multiplier = c.filter_multiplier, f->stem_channels = c.stem_channels;
    f->epochs = o.epochs, f->arch_start = o.arch_start_epoch;
    f->batch = 2, f->crop = 0, f->threads = 2, f->loader_threads = 1;
    f->val_samples = 100, f->checkpoint_every = 200;
    f->lr = o.w_lr, f->lr_min = o.w_lr_min, f->momentum = o.w_momentum, f->wd = o.w_weight_decay;
    f->arch_lr = o.a_lr, f->arch_wd = o.a_weight_decay;
}

static int parse_flags(search_flags *f, int argc, char **argv)
{
    const arg_spec specs[] = {
        {"data", ARG_STRING, &f->data.root, "data set folder (default: the embedded synthetic set)"},
        {"data-format", ARG_STRING, &f->data.format, "cityscapes, voc, ade20k or folder"},
        {"synth-size", ARG_INT, &f->data.synth_size, "synthetic images: side in pixels"},
        {"synth-train", ARG_INT64, &f->data.synth_train, "synthetic images: training samples"},
        {"synth-val", ARG_INT64, &f->data.synth_val, "synthetic images: validation samples"},
        {"run", ARG_STRING, &f->run_dir, "output folder (checkpoints, log, genotype)"},
        {"layers", ARG_INT, &f->layers, "L: cell layers of the trellis"},
        {"levels", ARG_INT, &f->levels, "downsample levels (4 = 4, 8, 16, 32)"},
        {"blocks", ARG_INT, &f->blocks, "B: blocks per cell"},
        {"filter-multiplier", ARG_INT, &f->filter_multiplier, "F: level s has B*F*2^s channels"},
        {"stem-channels", ARG_INT, &f->stem_channels, "stem widths C, C, 2C"},
        {"affine", ARG_BOOL, &f->affine, "learnable batch-norm scale/shift inside cells"},
        {"recompute", ARG_STRING, &f->recompute,
         "recompute cells in backward (less memory; with 2+ threads also faster): on, off, auto (on for crops over 160 or with 2+ threads)"},
        {"epochs", ARG_INT, &f->epochs, "search epochs"},
        {"arch-start", ARG_INT, &f->arch_start, "first epoch with architecture updates (-1 = epochs/2)"},
        {"steps-per-epoch", ARG_INT64, &f->steps_per_epoch, "weight steps per epoch (0 = one pass over trainA)"},
        {"batch", ARG_INT, &f->batch, "images per step"},
        {"crop", ARG_INT, &f->crop, "square training crop (0 = 321, or the synthetic image size)"},
        {"scale-min", ARG_DOUBLE, &f->scale_min, "random scale augmentation, lower bound (0 = 0.5; 1 on synth)"},
        {"scale-max", ARG_DOUBLE, &f->scale_max, "random scale augmentation, upper bound (0 = 2.0; 1 on synth)"},
        {"lr", ARG_DOUBLE, &f->lr, "weights: initial SGD learning rate (cosine)"},
        {"lr-min", ARG_DOUBLE, &f->lr_min, "weights: final learning rate"},
        {"momentum", ARG_DOUBLE, &f->momentum, "weights: SGD momentum"},
        {"weight-decay", ARG_DOUBLE, &f->wd, "weights: weight decay"},
        {"arch-lr", ARG_DOUBLE, &f->arch_lr, "alpha/beta: Adam learning rate"},
        {"arch-weight-decay", ARG_DOUBLE, &f->arch_wd, "alpha/beta: weight decay"},
        {"val-samples", ARG_INT64, &f->val_samples, "held-out images evaluated per epoch (0 = all)"},
        {"checkpoint-every", ARG_INT64, &f->checkpoint_every, "steps between checkpoints"},
        {"seed", ARG_INT64, &f->seed, "random seed (weights, splits, augmentation)"},
        {"threads", ARG_INT, &f->threads, "compute threads (OpenMP and oneDNN)"},
        {"loader-threads", ARG_INT, &f->loader_threads, "data loading threads"},
        {"skip-bad", ARG_BOOL, &f->skip_bad, "skip unreadable samples (counted) instead of stopping"},
        {"resume", ARG_BOOL, &f->resume, "continue from the checkpoint in --run"},
        {"stop-after", ARG_INT64, &f->stop_after,
         "stop with a checkpoint after this many weight steps in total, as Ctrl-C would (0 = run to the end)"},
        {"space-size", ARG_BOOL, &f->space_size, "print the number of paths and cells and exit"},
    };
    int rc = args_parse("segnas search [options]", specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc;
    struct { const char *name; int64_t v, lo, hi; } ranges[] = {
        {"layers", f->layers, 1, SN_MAX_LAYERS}, {"levels", f->levels, 1, SN_MAX_LEVELS},
        {"blocks", f->blocks, 1, SN_MAX_BLOCKS}, {"filter-multiplier", f->filter_multiplier, 1, 4096},
        {"stem-channels", f->stem_channels, 1, 4096}, {"epochs", f->epochs, 1, 1000000},
        {"arch-start", f->arch_start, -1, 1000000}, {"steps-per-epoch", f->steps_per_epoch, 0, INT64_MAX},
        {"batch", f->batch, 1, 4096}, {"crop", f->crop, 0, 8192}, {"threads", f->threads, 1, 1024},
        {"loader-threads", f->loader_threads, 1, 256}, {"val-samples", f->val_samples, 0, INT64_MAX},
        {"checkpoint-every", f->checkpoint_every, 1, INT64_MAX}, {"stop-after", f->stop_after, 0, INT64_MAX}, {"synth-size", f->data.synth_size, 16, 4096},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (ranges[i].v < ranges[i].lo || ranges[i].v > ranges[i].hi) {
            fprintf(stderr, "segnas: --%s %lld: must be in %lld..%lld\n", ranges[i].name, (long long)ranges[i].v,
                    (long long)ranges[i].lo, (long long)ranges[i].hi);
            return ARGS_BAD;
        }
    if (strcmp(f->recompute, "auto") && strcmp(f->recompute, "on") && strcmp(f->recompute, "off")) {
        fprintf(stderr, "segnas: --recompute %s: expected on, off or auto\n", f->recompute);
        return ARGS_BAD;
    }
    if (f->scale_min < 0 || f->scale_max < f->scale_min || f->scale_max > 8) {
        fprintf(stderr, "segnas: --scale-min %g --scale-max %g: need 0 <= min <= max <= 8\n", f->scale_min, f->scale_max);
        return ARGS_BAD;
    }
    if (!(f->lr > 0) || !(f->lr_min >= 0) || !(f->arch_lr > 0) || f->momentum < 0 || f->wd < 0 || f->arch_wd < 0) {
        fprintf(stderr, "segnas: learning rates must be positive, momentum and weight decays non-negative\n");
        return ARGS_BAD;
    }
    return ARGS_OK;
}

static void config_from_flags(const search_flags *f, int n_classes, sn_supernet_config *c, sn_search_options *o)
{
    sn_supernet_config_default(c);
    c->n_layers = f->layers, c->n_levels = f->levels, c->n_blocks = f->blocks;
    c->filter_multiplier = f->filter_multiplier, c->stem_channels = f->stem_channels;
    c->n_classes = n_classes, c->affine = f->affine;
    sn_search_options_default(o);
    o->epochs = f->epochs;
    o->arch_start_epoch = f->arch_start >= 0 ? f->arch_start : f->epochs / 2;
    o->w_lr = f->lr, o->w_lr_min = f->lr_min, o->w_momentum = f->momentum, o->w_weight_decay = f->wd;
    o->a_lr = f->arch_lr, o->a_weight_decay = f->arch_wd;
}

/* ---- evaluation on the held-out split ------------------------------------ */
static double evaluate(sn_searcher *s, const sn_dataset *val, int64_t max_samples, double *pixel_acc)
{
    sn_confusion conf;
    *pixel_acc = NAN;
    if (sn_confusion_init(&conf, val->n_classes, 255)) return NAN;
    int64_t n = max_samples && max_samples < val->count ? max_samples : val->count;
    sn_augment_config aug;
    sn_augment_config_default(&aug);
    sn_image img = {0}, label = {0};
    float *x = NULL;
    uint8_t *pred = NULL;
    int failed = 0;
    for (int64_t i = 0; i < n && !failed; i++) {
        char err[512];
        if (val->load(val, i, &img, &label, err, sizeof err)) {
            fprintf(stderr, "segnas: evaluation: %s\n", err);
            failed = 1;
            break;
        }
        float *nx = realloc(x, sizeof(float) * (size_t)img.w * img.h * 3);
        uint8_t *np = realloc(pred, (size_t)img.w * img.h);
        if (!nx || !np) {
            free(nx ? nx : x), free(np ? np : pred);
            x = NULL, pred = NULL, failed = 1;
            break;
        }
        x = nx, pred = np;
        failed = sn_image_to_float(&img, img.h, img.w, aug.mean, aug.std, x, err, sizeof err) ||
                 sn_search_predict(s, x, 1, img.h, img.w, pred) ||
                 sn_confusion_add(&conf, pred, label.data, (int64_t)img.w * img.h, NULL);
        if (failed) fprintf(stderr, "segnas: evaluation of sample %lld failed: %s\n", (long long)i, sn_ctx_error(s->ctx));
    }
    double miou = failed ? NAN : sn_confusion_miou(&conf);
    *pixel_acc = failed ? NAN : sn_confusion_pixel_accuracy(&conf);
    sn_image_free(&img), sn_image_free(&label);
    free(x), free(pred);
    sn_confusion_free(&conf);
    return miou;
}

/* ---- the loop --------------------------------------------------------------- */
typedef struct search_run {
    search_flags flags;
    sn_ctx *ctx;
    sn_dataset *train, *val;
    sn_loader *loader_a, *loader_b;
    sn_searcher searcher;
    FILE *log;
    char path[4096];
} search_run;

static void log_arch(search_run *r, const char *event, double miou, double acc)
{
    sn_genotype g;
    sn_search_decode(&r->searcher, &g);
    char *geno = sn_genotype_to_json(&g);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddNumberToObject(o, "epoch", (double)r->searcher.epoch);
    cJSON_AddNumberToObject(o, "weight_steps", (double)r->searcher.weight_steps);
    if (!isnan(miou)) cJSON_AddNumberToObject(o, "val_miou", miou);
    if (!isnan(acc)) cJSON_AddNumberToObject(o, "val_pixel_accuracy", acc);
    cJSON *alpha = cJSON_AddArrayToObject(o, "alpha");
    for (int64_t i = 0; i < r->searcher.net.alpha->numel; i++)
        cJSON_AddItemToArray(alpha, cJSON_CreateNumber(r->searcher.net.alpha->data[i]));
    cJSON *beta = cJSON_AddArrayToObject(o, "beta");
    for (int64_t i = 0; i < r->searcher.net.beta->numel; i++)
        cJSON_AddItemToArray(beta, cJSON_CreateNumber(r->searcher.net.beta->data[i]));
    cJSON_AddItemToObject(o, "genotype", geno ? cJSON_Parse(geno) : cJSON_CreateNull());
    char *line = cJSON_PrintUnformatted(o);
    cli_log_line(r->log, line);
    free(line), free(geno);
    cJSON_Delete(o);
    char err[512];
    snprintf(r->path, sizeof r->path, "%s/genotype.json", r->flags.run_dir);
    if (sn_genotype_write_json(&g, r->path, err, sizeof err)) fprintf(stderr, "segnas: %s\n", err);
    snprintf(r->path, sizeof r->path, "%s/genotype.svg", r->flags.run_dir);
    char title[64];
    snprintf(title, sizeof title, "search, epoch %lld", (long long)r->searcher.epoch);
    svg_write_genotype(r->path, &g, title);
}

static int checkpoint_path(search_run *r)
{
    snprintf(r->path, sizeof r->path, "%s/search.safetensors", r->flags.run_dir);
    return 0;
}

/* What the sidecar's "extra" keeps so that --resume rebuilds the same
 * data stream. */
static char *run_extra_json(const search_flags *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seed", (double)f->seed);
    cJSON_AddNumberToObject(o, "batch", f->batch);
    cJSON_AddNumberToObject(o, "crop", f->crop);
    cJSON_AddStringToObject(o, "data", f->data.root ? f->data.root : "synth");
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int save_checkpoint(search_run *r)
{
    char err[512];
    checkpoint_path(r);
    char *extra = run_extra_json(&r->flags);
    int rc = sn_searcher_save(&r->searcher, r->path, extra, err, sizeof err);
    free(extra);
    if (rc) fprintf(stderr, "segnas: checkpoint: %s\n", err);
    return rc;
}

/* --resume: the configuration, options and data-stream settings come from
 * the checkpoint, not from the flags. */
static int read_resume_config(search_run *r, sn_supernet_config *cfg, sn_search_options *opt)
{
    char err[512], *extra = NULL;
    checkpoint_path(r);
    if (sn_searcher_read_config(r->path, cfg, opt, &extra, err, sizeof err)) {
        fprintf(stderr, "segnas: --resume: %s\n", err);
        return 1;
    }
    cJSON *o = extra ? cJSON_Parse(extra) : NULL;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed"), *batch = cJSON_GetObjectItemCaseSensitive(o, "batch");
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(o, "crop");
    if (cJSON_IsNumber(seed)) r->flags.seed = (int64_t)seed->valuedouble;
    if (cJSON_IsNumber(batch) && batch->valuedouble >= 1) r->flags.batch = (int)batch->valuedouble;
    if (cJSON_IsNumber(crop) && crop->valuedouble >= 0) r->flags.crop = (int)crop->valuedouble;
    cJSON_Delete(o);
    free(extra);
    return 0;
}

/* Restores the state and fast-forwards both loaders past the batches the
 * interrupted run consumed, so that the data stream continues exactly. */
static int resume(search_run *r)
{
    char err[512];
    if (sn_searcher_load(&r->searcher, r->path, err, sizeof err)) {
        fprintf(stderr, "segnas: --resume: %s\n", err);
        return 1;
    }
    sn_batch b;
    for (int64_t i = 0; i < r->searcher.weight_steps; i++)
        if (cli_next_batch(r->loader_a, &b)) return 1;
    for (int64_t i = 0; i < r->searcher.arch_steps; i++)
        if (cli_next_batch(r->loader_b, &b)) return 1;
    fprintf(stderr, "resumed at epoch %lld, step %lld\n", (long long)r->searcher.epoch + 1,
            (long long)r->searcher.step_in_epoch);
    return 0;
}

static int run_epoch(search_run *r, cli_progress *bar)
{
    sn_searcher *s = &r->searcher;
    const sn_search_options *o = &s->opt;
    bool arch = s->epoch >= o->arch_start_epoch;
    while (s->step_in_epoch < o->steps_per_epoch) {
        if (cli_interrupted() || (r->flags.stop_after && s->weight_steps >= r->flags.stop_after))
            return SN_ERR_INTERRUPTED;
        sn_batch a, b;
        double lw = NAN, la = NAN, lr = sn_search_weight_lr(s);
        if (cli_next_batch(r->loader_a, &a)) return SN_ERR_IO;
        if (sn_search_weight_step(s, a.images, a.labels, a.n, a.h, a.w, &lw)) return sn_ctx_status(r->ctx);
        if (arch) {
            if (cli_next_batch(r->loader_b, &b)) return SN_ERR_IO;
            if (sn_search_arch_step(s, b.images, b.labels, b.n, b.h, b.w, &la)) return sn_ctx_status(r->ctx);
        }
        s->step_in_epoch++;
        char line[256], extra[96];
        snprintf(line, sizeof line,
                 "{\"event\":\"step\",\"epoch\":%lld,\"step\":%lld,\"loss_w\":%.6g,\"loss_arch\":%.6g,\"lr\":%.6g}",
                 (long long)s->epoch, (long long)s->step_in_epoch, lw, arch ? la : -1.0, lr);
        cli_log_line(r->log, line);
        snprintf(extra, sizeof extra, "epoch %lld loss %.3f%s", (long long)s->epoch + 1, lw, arch ? " +arch" : "");
        cli_progress_update(bar, s->epoch * o->steps_per_epoch + s->step_in_epoch, extra);
        if (s->weight_steps % r->flags.checkpoint_every == 0 && save_checkpoint(r)) return SN_ERR_IO;
    }
    return SN_OK;
}

static int search_loop(search_run *r)
{
    sn_searcher *s = &r->searcher;
    const sn_search_options *o = &s->opt;
    cli_progress bar;
    cli_progress_start(&bar, "search", (int64_t)o->epochs * o->steps_per_epoch);
    int rc = SN_OK;
    while (r->searcher.epoch < o->epochs && !rc) {
        rc = run_epoch(r, &bar);
        if (rc) break;
        double acc = NAN, miou = evaluate(s, r->val, r->flags.val_samples, &acc);
        r->searcher.epoch++, r->searcher.step_in_epoch = 0;
        log_arch(r, "epoch", miou, acc);
        if (bar.tty) fprintf(stderr, "\n");
        fprintf(stderr, "epoch %lld/%d: held-out mIoU %.2f%%, pixel accuracy %.2f%%\n", (long long)r->searcher.epoch,
                o->epochs, 100 * miou, 100 * acc);
        rc = save_checkpoint(r);
    }
    cli_progress_end(&bar);
    int64_t skipped = sn_loader_skipped(r->loader_a) + sn_loader_skipped(r->loader_b);
    if (skipped) fprintf(stderr, "segnas: skipped %lld unreadable samples (--skip-bad)\n", (long long)skipped);
    if (rc == SN_ERR_INTERRUPTED) {
        fprintf(stderr, "segnas: %s: saving a checkpoint to resume from (--resume)\n",
                cli_interrupted() ? "interrupted" : "stopped (--stop-after)");
        if (save_checkpoint(r)) return 1;
        return cli_interrupted() ? 130 : 0;
    }
    if (rc) {
        fprintf(stderr, "segnas: search failed: %s\n", sn_ctx_status(r->ctx) ? sn_ctx_error(r->ctx) : sn_status_name(rc));
        return 1;
    }
    sn_genotype g;
    sn_search_decode(s, &g);
    char *text = sn_genotype_to_json(&g);
    printf("%s\n", text ? text : "");
    free(text);
    return 0;
}

static int open_loaders(search_run *r)
{
    int64_t n = r->train->count, *all = malloc(sizeof(int64_t) * (size_t)n);
    int64_t *a = malloc(sizeof(int64_t) * (size_t)((n + 1) / 2 + 1)), *b = malloc(sizeof(int64_t) * (size_t)(n / 2 + 1));
    if (!all || !a || !b) {
        free(all), free(a), free(b);
        fprintf(stderr, "segnas: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < n; i++) all[i] = i;
    sn_split_halves(all, n, (uint64_t)r->flags.seed, a, b);
    sn_loader_config lc;
    sn_loader_config_default(&lc);
    lc.batch = r->flags.batch;
    lc.n_threads = r->flags.loader_threads;
    lc.skip_bad = r->flags.skip_bad;
    lc.seed = (uint64_t)r->flags.seed;
    int crop = r->flags.crop ? r->flags.crop : (r->flags.data.root ? 321 : r->flags.data.synth_size);
    lc.aug.crop_h = lc.aug.crop_w = crop;
    /* The synthetic classes differ by texture frequency, which scaling
     * would blur together: no scale augmentation there unless asked. */
    bool synth = !r->flags.data.root;
    lc.aug.scale_min = (float)(r->flags.scale_min > 0 ? r->flags.scale_min : synth ? 1.0 : 0.5);
    lc.aug.scale_max = (float)(r->flags.scale_max > 0 ? r->flags.scale_max : synth ? 1.0 : 2.0);
    char err[512];
    int rc = sn_loader_create(&r->loader_a, r->train, a, (n + 1) / 2, &lc, err, sizeof err);
    lc.seed ^= 0x5eed;
    if (!rc) rc = sn_loader_create(&r->loader_b, r->train, b, n / 2, &lc, err, sizeof err);
    if (rc) fprintf(stderr, "segnas: %s\n", err);
    free(all), free(a), free(b);
    return rc ? 1 : 0;
}

static void run_close(search_run *r)
{
    if (r->loader_a) sn_loader_destroy(r->loader_a);
    if (r->loader_b) sn_loader_destroy(r->loader_b);
    sn_searcher_free(&r->searcher);
    if (r->train) sn_dataset_close(r->train);
    if (r->val) sn_dataset_close(r->val);
    if (r->log) fclose(r->log);
    if (r->ctx) sn_ctx_destroy(r->ctx);
}

static int print_space_size(const search_flags *f)
{
    printf("network-level paths (L=%d, %d levels): %.4g\n", f->layers, f->levels, sn_space_paths(f->layers, f->levels));
    printf("cell structures (B=%d, %d operators): %.4g\n", f->blocks, SN_CELL_OP_COUNT,
           sn_space_cells(f->blocks, SN_CELL_OP_COUNT));
    return 0;
}

int cmd_search(int argc, char **argv)
{
    search_run r;
    memset(&r, 0, sizeof r);
    flags_default(&r.flags);
    int rc = parse_flags(&r.flags, argc, argv);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (r.flags.space_size) return print_space_size(&r.flags);
    sn_ctx_options co = {.threads = r.flags.threads};
    r.ctx = sn_ctx_create(&co);
    if (!r.ctx) {
        fprintf(stderr, "segnas: cannot start the engine (out of memory?)\n");
        return 1;
    }
    sn_supernet_config cfg;
    sn_search_options opt;
    rc = r.flags.resume ? read_resume_config(&r, &cfg, &opt) : 0;
    rc = rc || cli_mkdir_p(r.flags.run_dir) || cli_open_data(&r.flags.data, "train", &r.train) ||
         cli_open_data(&r.flags.data, "val", &r.val) || open_loaders(&r);
    if (!rc) {
        if (!r.flags.resume) {
            config_from_flags(&r.flags, r.train->n_classes, &cfg, &opt);
            int64_t per_epoch = sn_loader_batches_per_epoch(r.loader_a);
            opt.steps_per_epoch = r.flags.steps_per_epoch ? r.flags.steps_per_epoch : per_epoch;
        }
        int crop = r.flags.crop ? r.flags.crop : (r.flags.data.root ? 321 : r.flags.data.synth_size);
        cfg.recompute = !strcmp(r.flags.recompute, "on") ||
                        (!strcmp(r.flags.recompute, "auto") && sn_supernet_auto_recompute(crop, crop, sn_get_num_threads()));
        if (cfg.n_classes != r.train->n_classes) {
            fprintf(stderr, "segnas: the checkpoint has %d classes, the data %d\n", cfg.n_classes, r.train->n_classes);
            rc = 1;
        } else if (sn_searcher_init(&r.searcher, r.ctx, &cfg, &opt, (uint64_t)r.flags.seed)) {
            fprintf(stderr, "segnas: %s\n", sn_ctx_error(r.ctx));
            rc = 1;
        }
    }
    if (!rc && r.flags.resume) rc = resume(&r);
    if (!rc) {
        snprintf(r.path, sizeof r.path, "%s/log.jsonl", r.flags.run_dir);
        r.log = fopen(r.path, r.flags.resume ? "a" : "w");
        if (!r.log) fprintf(stderr, "segnas: cannot write %s\n", r.path), rc = 1;
    }
    if (!rc) {
        cli_install_interrupt();
        fprintf(stderr, "search: %lld weights, %lld architecture parameters, %lld steps per epoch, arch from epoch %d\n",
                (long long)sn_param_set_numel(&r.searcher.net.weights), (long long)sn_param_set_numel(&r.searcher.net.arch),
                (long long)r.searcher.opt.steps_per_epoch, r.searcher.opt.arch_start_epoch);
        rc = search_loop(&r);
    }
    run_close(&r);
    return rc;
}
