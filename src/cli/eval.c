/* segnas eval: a trained network over a split: confusion matrix, per-class
 * IoU, mIoU, pixel accuracy; single or multi-scale, flip, whole image or
 * sliding windows (segnas/eval.h: softmax probabilities are averaged over
 * scales and flips, logits over overlapping windows). Writes eval.json next
 * to the checkpoint (or --out). */
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

#define MAX_SCALES 16

static int parse_scales(const char *s, double *scales, int *n)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0 && v <= 16) || *n == MAX_SCALES) return -1;
        scales[(*n)++] = v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return *n ? 0 : -1;
}

static int parse_crop(const char *s, int *h, int *w)
{
    if (!strcmp(s, "whole")) {
        *h = *w = 0;
        return 0;
    }
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X')) return -1;
    const char *t = end + 1;
    long b = strtol(t, &end, 10);
    if (end == t || *end || a < 16 || b < 16 || a > 8192 || b > 8192) return -1;
    *w = (int)a, *h = (int)b;
    return 0;
}

static void print_table(const cli_trained *t, const sn_confusion *c, int64_t images)
{
    printf("%-20s %8s\n", "class", "IoU(%)");
    for (int k = 0; k < c->n_classes; k++) {
        double iou = sn_confusion_iou(c, k);
        if (isnan(iou)) printf("%-20s %8s\n", t->class_names[k], "-");
        else printf("%-20s %8.2f\n", t->class_names[k], 100 * iou);
    }
    printf("%-20s %8.2f\n%-20s %8.2f\n(%lld images, %lld labelled pixels)\n", "mIoU", 100 * sn_confusion_miou(c),
           "pixel accuracy", 100 * sn_confusion_pixel_accuracy(c), (long long)images, (long long)sn_confusion_total(c));
}

static int write_json(const char *path, const cli_trained *t, const sn_confusion *c, const char *split,
                      const char *scales, bool flip, const char *crop, int64_t images)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "split", split);
    cJSON_AddStringToObject(o, "scales", scales);
    cJSON_AddBoolToObject(o, "flip", flip);
    cJSON_AddStringToObject(o, "crop_eval", crop);
    cJSON_AddNumberToObject(o, "images", (double)images);
    double miou = sn_confusion_miou(c), acc = sn_confusion_pixel_accuracy(c);
    cJSON_AddItemToObject(o, "miou", isnan(miou) ? cJSON_CreateNull() : cJSON_CreateNumber(miou));
    cJSON_AddItemToObject(o, "pixel_accuracy", isnan(acc) ? cJSON_CreateNull() : cJSON_CreateNumber(acc));
    cJSON *per = cJSON_AddObjectToObject(o, "iou");
    for (int k = 0; k < c->n_classes; k++) {
        double iou = sn_confusion_iou(c, k);
        cJSON_AddItemToObject(per, t->class_names[k], isnan(iou) ? cJSON_CreateNull() : cJSON_CreateNumber(iou));
    }
    cJSON *conf = cJSON_AddArrayToObject(o, "confusion");
    for (int a = 0; a < c->n_classes; a++) {
        cJSON *row = cJSON_CreateArray();
        for (int b = 0; b < c->n_classes; b++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)c->counts[(int64_t)a * c->n_classes + b]));
        cJSON_AddItemToArray(conf, row);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    char err[512];
    int rc = text ? sn_write_file_atomic(path, text, strlen(text), err, sizeof err) : SN_ERR_NOMEM;
    if (rc) fprintf(stderr, "segnas: %s\n", text ? err : "out of memory");
    free(text);
    return rc;
}

static int run_split(sn_ctx *ctx, const cli_trained *t, const sn_dataset *ds, const sn_infer_config *ic,
                     int64_t max_images, sn_confusion *conf, int64_t *images)
{
    int k = t->model.cfg.n_classes;
    int64_t n = max_images && max_images < ds->count ? max_images : ds->count;
    sn_image img = {0}, label = {0};
    float *probs = NULL;
    uint8_t *pred = NULL;
    cli_progress bar;
    cli_progress_start(&bar, "eval", n);
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        char err[512];
        if ((rc = ds->load(ds, i, &img, &label, err, sizeof err))) {
            fprintf(stderr, "segnas: %s\n", err);
            break;
        }
        free(probs), free(pred);
        probs = malloc(sizeof(float) * (size_t)img.w * img.h * k), pred = malloc((size_t)img.w * img.h);
        if (!probs || !pred) {
            fprintf(stderr, "segnas: out of memory\n");
            rc = 1;
            break;
        }
        if ((rc = sn_infer_probs(ctx, &t->model, &img, ic, probs))) {
            fprintf(stderr, "segnas: %s: %s\n", ds->sample_name(ds, i), sn_ctx_error(ctx));
            break;
        }
        sn_probs_argmax(probs, (int64_t)img.w * img.h, k, pred);
        int64_t bad;
        if ((rc = sn_confusion_add(conf, pred, label.data, (int64_t)img.w * img.h, &bad)))
            fprintf(stderr, "segnas: %s: label %d at pixel %lld is not a class of the model (0..%d, 255)\n",
                    ds->sample_name(ds, i), label.data[bad], (long long)bad, k - 1);
        *images = i + 1;
        cli_progress_update(&bar, i + 1, NULL);
        if (cli_interrupted()) rc = 130;
    }
    cli_progress_end(&bar);
    sn_image_free(&img), sn_image_free(&label);
    free(probs), free(pred);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    cli_data_flags data;
    cli_data_flags_default(&data);
    const char *split = "val", *scales_s = "1", *crop_s = "whole", *out = NULL, *positional[1] = {NULL};
    bool flip = false;
    int threads = 2, n_pos = 0;
    int64_t max_images = 0;
    const arg_spec specs[] = {
        {"data", ARG_STRING, &data.root, "data set folder (default: the embedded synthetic set)"},
        {"data-format", ARG_STRING, &data.format, "cityscapes, voc, ade20k or folder"},
        {"synth-size", ARG_INT, &data.synth_size, "synthetic images: side in pixels"},
        {"synth-val", ARG_INT64, &data.synth_val, "synthetic images: validation samples"},
        {"split", ARG_STRING, &split, "split to evaluate"},
        {"scales", ARG_STRING, &scales_s, "comma-separated input scales, e.g. 0.5,0.75,1,1.25,1.5,1.75"},
        {"flip", ARG_BOOL, &flip, "add the horizontally mirrored prediction"},
        {"crop-eval", ARG_STRING, &crop_s, "WxH sliding windows (stride 2/3), or 'whole' image"},
        {"max-images", ARG_INT64, &max_images, "evaluate only the first N images (0 = all)"},
        {"out", ARG_STRING, &out, "eval.json path (default: next to the checkpoint)"},
        {"threads", ARG_INT, &threads, "compute threads"},
    };
    int rc = args_parse("segnas eval RUN/train.safetensors [--data DIR] [--split val] [--scales LIST] [--flip] "
                        "[--crop-eval WxH|whole]", specs, ARG_COUNT(specs), argc, argv, positional, &n_pos, 1);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    double scales[MAX_SCALES];
    int n_scales, crop_h, crop_w;
    if (n_pos != 1) {
        fprintf(stderr, "segnas: eval needs the checkpoint (RUN/train.safetensors)\n");
        return 2;
    }
    if (parse_scales(scales_s, scales, &n_scales)) {
        fprintf(stderr, "segnas: --scales '%s': expected up to %d comma-separated numbers in (0, 16]\n", scales_s,
                MAX_SCALES);
        return 2;
    }
    if (parse_crop(crop_s, &crop_h, &crop_w)) {
        fprintf(stderr, "segnas: --crop-eval '%s': expected WxH (16..8192) or 'whole'\n", crop_s);
        return 2;
    }
    if (threads < 1 || max_images < 0) {
        fprintf(stderr, "segnas: --threads must be >= 1 and --max-images >= 0\n");
        return 2;
    }
    sn_ctx_options co = {.threads = threads};
    sn_ctx *ctx = sn_ctx_create(&co);
    if (!ctx) return 1;
    cli_trained t;
    sn_dataset *ds = NULL;
    sn_confusion conf = {0};
    int64_t images = 0;
    rc = cli_trained_open(ctx, positional[0], &t);
    if (!rc) rc = cli_open_data(&data, split, &ds) ? 1 : 0;
    if (!rc && ds->n_classes != t.model.cfg.n_classes) {
        fprintf(stderr, "segnas: the data has %d classes, the network %d\n", ds->n_classes, t.model.cfg.n_classes);
        rc = 1;
    }
    if (!rc && sn_confusion_init(&conf, t.model.cfg.n_classes, 255)) rc = 1;
    if (!rc) {
        cli_install_interrupt();
        sn_infer_config ic;
        sn_infer_config_default(&ic);
        ic.scales = scales, ic.n_scales = n_scales, ic.flip = flip, ic.crop_h = crop_h, ic.crop_w = crop_w;
        rc = run_split(ctx, &t, ds, &ic, max_images, &conf, &images);
    }
    if (!rc) {
        print_table(&t, &conf, images);
        char path[4096];
        if (out) snprintf(path, sizeof path, "%s", out);
        else {
            snprintf(path, sizeof path, "%s", positional[0]);
            char *slash = strrchr(path, '/');
            snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "eval.json");
        }
        rc = write_json(path, &t, &conf, split, scales_s, flip, crop_s, images) ? 1 : 0;
        if (!rc) fprintf(stderr, "wrote %s\n", path);
    }
    sn_confusion_free(&conf);
    if (ds) sn_dataset_close(ds);
    if (t.model.cells || t.class_names[0]) cli_trained_close(&t);
    sn_ctx_destroy(ctx);
    return rc;
}
