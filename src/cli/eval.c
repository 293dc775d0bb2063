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
#define MAX_GRID_ROWS 64
#define GRID_GAP 4 /* white pixels between the panels of the grid */

/* The first evaluated images, kept for --grid. */
typedef struct grid_rows {
    int n, max;
    sn_image img[MAX_GRID_ROWS], label[MAX_GRID_ROWS], pred[MAX_GRID_ROWS];
} grid_rows;

typedef struct eval_stats {
    int64_t images;
    double infer_seconds; /* wall time inside sn_infer_probs, all images */
} eval_stats;

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

static double ms_per_image(const eval_stats *st)
{
    return st->images > 0 ? 1000 * st->infer_seconds / (double)st->images : NAN;
}

static void print_table(FILE *f, const cli_trained *t, const sn_confusion *c, const eval_stats *st)
{
    fprintf(f, "%-20s %8s\n", "class", "IoU(%)");
    for (int k = 0; k < c->n_classes; k++) {
        double iou = sn_confusion_iou(c, k);
        if (isnan(iou)) fprintf(f, "%-20s %8s\n", t->class_names[k], "-");
        else fprintf(f, "%-20s %8.2f\n", t->class_names[k], 100 * iou);
    }
    fprintf(f, "%-20s %8.2f\n%-20s %8.2f\n(%lld images, %lld labelled pixels)\n", "mIoU", 100 * sn_confusion_miou(c),
            "pixel accuracy", 100 * sn_confusion_pixel_accuracy(c), (long long)st->images,
            (long long)sn_confusion_total(c));
    fprintf(f, "inference: %.2f ms per image\n", ms_per_image(st));
}

/* eval.txt beside the JSON: "X.json" -> "X.txt", any other name + ".txt". */
static int write_text(const char *json_path, const cli_trained *t, const sn_confusion *c, const eval_stats *st)
{
    char path[4200], err[512], *text = NULL;
    size_t len = strlen(json_path), n = 0;
    if (len > 5 && !strcmp(json_path + len - 5, ".json")) len -= 5;
    snprintf(path, sizeof path, "%.*s.txt", (int)len, json_path);
    FILE *f = open_memstream(&text, &n);
    if (!f) {
        fprintf(stderr, "segnas: cannot write %s: out of memory\n", path);
        return 1;
    }
    print_table(f, t, c, st);
    bool ok = !ferror(f);
    ok = !fclose(f) && ok;
    int rc = ok ? sn_write_file_atomic(path, text, n, err, sizeof err) : 1;
    if (rc) fprintf(stderr, "segnas: %s\n", ok ? err : "cannot write the table: out of memory");
    else fprintf(stderr, "wrote %s\n", path);
    free(text);
    return rc ? 1 : 0;
}

static int write_json(const char *path, const cli_trained *t, const sn_confusion *c, const char *split,
                      const char *scales, bool flip, const char *crop, const eval_stats *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "split", split);
    cJSON_AddStringToObject(o, "scales", scales);
    cJSON_AddBoolToObject(o, "flip", flip);
    cJSON_AddStringToObject(o, "crop_eval", crop);
    cJSON_AddNumberToObject(o, "images", (double)st->images);
    double ms = ms_per_image(st);
    cJSON_AddItemToObject(o, "ms_per_image", isnan(ms) ? cJSON_CreateNull() : cJSON_CreateNumber(ms));
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

/* ---- --grid: input | ground truth | prediction per row ------------------------ */
static void grid_free(grid_rows *g)
{
    for (int i = 0; i < g->n; i++) sn_image_free(&g->img[i]), sn_image_free(&g->label[i]), sn_image_free(&g->pred[i]);
    g->n = 0;
}

static int copy_image(sn_image *dst, const sn_image *src, const uint8_t *data)
{
    if (sn_image_alloc(dst, src->w, src->h, src->c)) return 1;
    memcpy(dst->data, data, (size_t)src->w * src->h * src->c);
    return 0;
}

/* Keeps image, label and prediction while the grid has room. */
static int grid_keep(grid_rows *g, const sn_image *img, const sn_image *label, const uint8_t *pred)
{
    if (!g || g->n >= g->max) return 0;
    int i = g->n;
    sn_image pred_img = {.w = img->w, .h = img->h, .c = 1};
    if (copy_image(&g->img[i], img, img->data) || copy_image(&g->label[i], label, label->data) ||
        copy_image(&g->pred[i], &pred_img, pred)) {
        sn_image_free(&g->img[i]), sn_image_free(&g->label[i]), sn_image_free(&g->pred[i]);
        fprintf(stderr, "segnas: --grid: out of memory\n");
        return 1;
    }
    g->n++;
    return 0;
}

/* Copies one panel into the grid at (x0, y0): RGB as is (grey repeated),
 * class indices through the palette with the ignore label (255) black. */
static void blit(sn_image *out, int x0, int y0, const sn_image *src, const uint8_t (*palette)[3])
{
    for (int y = 0; y < src->h; y++)
        for (int x = 0; x < src->w; x++) {
            const uint8_t *p = src->data + ((size_t)y * src->w + x) * src->c;
            uint8_t *q = out->data + ((size_t)(y0 + y) * out->w + (x0 + x)) * 3;
            if (palette) {
                static const uint8_t black[3] = {0, 0, 0};
                const uint8_t *col = p[0] == 255 ? black : palette[p[0]];
                q[0] = col[0], q[1] = col[1], q[2] = col[2];
            } else {
                bool rgb = src->c >= 3;
                q[0] = p[0], q[1] = p[rgb ? 1 : 0], q[2] = p[rgb ? 2 : 0];
            }
        }
}

/* Rows of 3 panels, each panel the size of the largest image (smaller ones
 * top-left, white around): (3 W + 2 gap) x (n H + (n-1) gap) pixels. */
static int grid_write(const char *path, const grid_rows *g, const uint8_t (*palette)[3])
{
    if (!g->n) {
        fprintf(stderr, "segnas: --grid: no image was evaluated\n");
        return 1;
    }
    int w = 0, h = 0;
    for (int i = 0; i < g->n; i++) {
        const sn_image *panels[3] = {&g->img[i], &g->label[i], &g->pred[i]}; /* a label may differ in size */
        for (int k = 0; k < 3; k++) w = panels[k]->w > w ? panels[k]->w : w, h = panels[k]->h > h ? panels[k]->h : h;
    }
    sn_image out = {0};
    char err[512];
    int64_t gw = 3 * (int64_t)w + 2 * GRID_GAP, gh = (int64_t)g->n * h + (int64_t)(g->n - 1) * GRID_GAP;
    if (gw > SN_IMAGE_MAX_SIDE || gh > SN_IMAGE_MAX_SIDE || sn_image_alloc(&out, (int)gw, (int)gh, 3)) {
        fprintf(stderr, "segnas: --grid: a %lldx%lld picture is too large (use --grid-n)\n", (long long)gw,
                (long long)gh);
        return 1;
    }
    memset(out.data, 255, (size_t)out.w * out.h * 3);
    for (int i = 0; i < g->n; i++) {
        int y0 = i * (h + GRID_GAP);
        blit(&out, 0, y0, &g->img[i], NULL);
        blit(&out, w + GRID_GAP, y0, &g->label[i], palette);
        blit(&out, 2 * (w + GRID_GAP), y0, &g->pred[i], palette);
    }
    int rc = sn_png_write(path, &out, err, sizeof err);
    if (rc) fprintf(stderr, "segnas: --grid: %s\n", err);
    else fprintf(stderr, "wrote %s (%d rows: input | ground truth | prediction, %dx%d)\n", path, g->n, out.w, out.h);
    sn_image_free(&out);
    return rc ? 1 : 0;
}

static int run_split(sn_ctx *ctx, const cli_trained *t, const sn_dataset *ds, const sn_infer_config *ic,
                     int64_t max_images, sn_confusion *conf, eval_stats *st, grid_rows *grid)
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
        double t0 = cli_now();
        rc = sn_infer_probs(ctx, &t->model, &img, ic, probs);
        st->infer_seconds += cli_now() - t0;
        if (rc) {
            fprintf(stderr, "segnas: %s: %s\n", ds->sample_name(ds, i), sn_ctx_error(ctx));
            break;
        }
        sn_probs_argmax(probs, (int64_t)img.w * img.h, k, pred);
        if ((rc = grid_keep(grid, &img, &label, pred))) break;
        int64_t bad;
        if ((rc = sn_confusion_add(conf, pred, label.data, (int64_t)img.w * img.h, &bad)))
            fprintf(stderr, "segnas: %s: label %d at pixel %lld is not a class of the model (0..%d, 255)\n",
                    ds->sample_name(ds, i), label.data[bad], (long long)bad, k - 1);
        st->images = i + 1;
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
    const char *split = "val", *scales_s = "1", *crop_s = "whole", *out = NULL, *grid_path = NULL, *positional[1] = {NULL};
    bool flip = false;
    int threads = 2, n_pos = 0, grid_n = 4;
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
        {"out", ARG_STRING, &out, "eval.json path (default: next to the checkpoint); eval.txt goes beside it"},
        {"grid", ARG_STRING, &grid_path, "PNG of input | ground truth | prediction for the first images"},
        {"grid-n", ARG_INT, &grid_n, "rows of --grid"},
        {"threads", ARG_INT, &threads, "compute threads"},
    };
    int rc = args_parse("segnas eval RUN/train.safetensors [--data DIR] [--split val] [--scales LIST] [--flip] "
                        "[--crop-eval WxH|whole] [--grid FILE.png [--grid-n N]]", specs, ARG_COUNT(specs), argc, argv, positional, &n_pos, 1);
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
    if (grid_n < 1 || grid_n > MAX_GRID_ROWS) {
        fprintf(stderr, "segnas: --grid-n %d: must be in 1..%d\n", grid_n, MAX_GRID_ROWS);
        return 2;
    }
    if (grid_path && !*grid_path) {
        fprintf(stderr, "segnas: --grid: empty file name\n");
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
    eval_stats st = {0};
    grid_rows grid = {.max = grid_n};
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
        rc = run_split(ctx, &t, ds, &ic, max_images, &conf, &st, grid_path ? &grid : NULL);
    }
    if (!rc) {
        print_table(stdout, &t, &conf, &st);
        char path[4096];
        if (out) snprintf(path, sizeof path, "%s", out);
        else {
            snprintf(path, sizeof path, "%s", positional[0]);
            char *slash = strrchr(path, '/');
            snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "eval.json");
        }
        rc = write_json(path, &t, &conf, split, scales_s, flip, crop_s, &st) ? 1 : 0;
        if (!rc) fprintf(stderr, "wrote %s\n", path);
        if (!rc) rc = write_text(path, &t, &conf, &st);
        if (!rc && grid_path) rc = grid_write(grid_path, &grid, (const uint8_t(*)[3])t.palette);
    }
    grid_free(&grid);
    sn_confusion_free(&conf);
    if (ds) sn_dataset_close(ds);
    if (t.model.cells || t.class_names[0]) cli_trained_close(&t);
    sn_ctx_destroy(ctx);
    return rc;
}
