/* `segnas data`: `synth` (data_synth.c) and `inspect`, which reads every
 * sample of a split as training would (same readers, same checks) and
 * reports what it found: image sizes, per-class pixel counts, ignore
 * pixels, bad files; optionally the image-level class co-occurrence matrix
 * that the SGR head uses as its prior adjacency (row i: the fraction of
 * the images containing class i that also contain class j). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "segnas/data.h"
#include "segnas/train.h"

enum { CHUNK = 64, MSG = 640 };

typedef struct size_count {
    int w, h;
    int64_t n;
} size_count;

typedef struct inspect_stats {
    int n_classes;
    int64_t loaded, bad, pixels;
    int64_t hist[256];
    int64_t *cooc; /* n_classes^2 image counts */
    size_count *sizes;
    int n_sizes, cap_sizes;
    char **bad_msgs;
} inspect_stats;

/* What one worker learns from one sample (merged in index order). */
typedef struct sample_result {
    int rc;
    int w, h;
    int64_t hist[256];
    char msg[MSG];
} sample_result;

static void load_one(const sn_dataset *ds, int64_t i, sample_result *r)
{
    sn_image img = {0}, lab = {0};
    memset(r->hist, 0, sizeof r->hist);
    r->msg[0] = 0;
    char why[MSG - 96] = "";
    r->rc = ds->load(ds, i, &img, &lab, why, sizeof why);
    if (r->rc) {
        snprintf(r->msg, sizeof r->msg, "sample %lld: %s", (long long)i, why[0] ? why : sn_status_name(r->rc));
    } else {
        r->w = img.w, r->h = img.h;
        size_t n = (size_t)lab.w * lab.h;
        for (size_t k = 0; k < n; k++) r->hist[lab.data[k]]++;
    }
    sn_image_free(&img);
    sn_image_free(&lab);
}

static int add_size(inspect_stats *s, int w, int h)
{
    for (int k = 0; k < s->n_sizes; k++)
        if (s->sizes[k].w == w && s->sizes[k].h == h) return s->sizes[k].n++, 0;
    if (s->n_sizes == s->cap_sizes) {
        int cap = s->cap_sizes ? 2 * s->cap_sizes : 16;
        size_count *p = realloc(s->sizes, (size_t)cap * sizeof *p);
        if (!p) return 1;
        s->sizes = p, s->cap_sizes = cap;
    }
    s->sizes[s->n_sizes++] = (size_count){w, h, 1};
    return 0;
}

static int merge(inspect_stats *s, const sample_result *r)
{
    if (r->rc) {
        char **p = realloc(s->bad_msgs, (size_t)(s->bad + 1) * sizeof *p);
        if (!p) return 1;
        s->bad_msgs = p;
        if (!(p[s->bad] = strdup(r->msg))) return 1;
        s->bad++;
        return 0;
    }
    s->loaded++;
    s->pixels += (int64_t)r->w * r->h;
    int present[256], n_present = 0;
    for (int c = 0; c < 256; c++) {
        s->hist[c] += r->hist[c];
        if (r->hist[c] && c < s->n_classes) present[n_present++] = c;
    }
    for (int a = 0; a < n_present; a++)
        for (int b = 0; b < n_present; b++) s->cooc[(int64_t)present[a] * s->n_classes + present[b]]++;
    return add_size(s, r->w, r->h);
}

static int cmp_size(const void *pa, const void *pb)
{
    const size_count *a = pa, *b = pb;
    if (a->n != b->n) return a->n > b->n ? -1 : 1;
    if (a->w != b->w) return a->w < b->w ? -1 : 1;
    return (a->h > b->h) - (a->h < b->h);
}

static void print_report(const sn_dataset *ds, const char *root, const char *split, int64_t visited,
                         inspect_stats *s)
{
    printf("data set: %s %s (split %s)\n", sn_data_format_name(ds->format), root, split);
    printf("images: %lld inspected of %lld, %lld read, %lld bad\n", (long long)visited, (long long)ds->count,
           (long long)s->loaded, (long long)s->bad);
    qsort(s->sizes, (size_t)s->n_sizes, sizeof *s->sizes, cmp_size);
    printf("image sizes (WxH: images), %d distinct:\n", s->n_sizes);
    for (int k = 0; k < s->n_sizes; k++) printf("  %dx%d: %lld\n", s->sizes[k].w, s->sizes[k].h, (long long)s->sizes[k].n);
    double total = s->pixels > 0 ? (double)s->pixels : 1;
    printf("class pixels (%d classes; %% of all label pixels):\n", ds->n_classes);
    printf("  %3s  %-24s %14s %8s\n", "id", "class", "pixels", "%");
    for (int c = 0; c < ds->n_classes; c++)
        printf("  %3d  %-24s %14lld %7.3f%%\n", c, ds->class_names[c], (long long)s->hist[c], 100.0 * s->hist[c] / total);
    printf("ignore (255): %lld pixels (%.3f%%)\n", (long long)s->hist[255], 100.0 * s->hist[255] / total);
    printf("bad files: %lld\n", (long long)s->bad);
    for (int64_t k = 0; k < s->bad; k++) printf("  %s\n", s->bad_msgs[k]);
}

/* {"format", "split", "images", "classes": [...], "counts": [[...]],
 *  "matrix": [[...]]}: counts[i][j] = images holding both i and j,
 * matrix[i][j] = counts[i][j] / counts[i][i] (a zero row when i never
 * occurs). Written atomically. */
static int write_cooccurrence(const char *path, const sn_dataset *ds, const char *split, const inspect_stats *s)
{
    int n = ds->n_classes;
    cJSON *root = cJSON_CreateObject(), *names = cJSON_CreateArray(), *counts = cJSON_CreateArray(),
          *matrix = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "format", sn_data_format_name(ds->format));
    cJSON_AddStringToObject(root, "split", split);
    cJSON_AddNumberToObject(root, "images", (double)s->loaded);
    cJSON_AddItemToObject(root, "classes", names);
    cJSON_AddItemToObject(root, "counts", counts);
    cJSON_AddItemToObject(root, "matrix", matrix);
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(names, cJSON_CreateString(ds->class_names[i]));
        cJSON *crow = cJSON_CreateArray(), *mrow = cJSON_CreateArray();
        int64_t diag = s->cooc[(int64_t)i * n + i];
        for (int j = 0; j < n; j++) {
            int64_t c = s->cooc[(int64_t)i * n + j];
            cJSON_AddItemToArray(crow, cJSON_CreateNumber((double)c));
            cJSON_AddItemToArray(mrow, cJSON_CreateNumber(diag ? (double)c / (double)diag : 0.0));
        }
        cJSON_AddItemToArray(counts, crow);
        cJSON_AddItemToArray(matrix, mrow);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char err[512] = "";
    int rc = text ? sn_write_file_atomic(path, text, strlen(text), err, sizeof err) : SN_ERR_NOMEM;
    free(text);
    if (rc) fprintf(stderr, "segnas: --cooccurrence: %s\n", err[0] ? err : "out of memory");
    return rc;
}

/* Reads samples CHUNK at a time in parallel, merges them in index order so
 * the report (and the first bad file) does not depend on the threads. */
static int inspect_run(const sn_dataset *ds, int64_t visit, bool skip_bad, inspect_stats *s)
{
    sample_result *res = malloc(CHUNK * sizeof *res);
    if (!res) return 1;
    for (int64_t start = 0; start < visit; start += CHUNK) {
        int m = (int)(visit - start < CHUNK ? visit - start : CHUNK);
#pragma omp parallel for schedule(dynamic, 1)
        for (int k = 0; k < m; k++) load_one(ds, start + k, &res[k]);
        for (int k = 0; k < m; k++) {
            if (res[k].rc && !skip_bad) {
                fprintf(stderr, "segnas: %s (--skip-bad counts bad files and goes on)\n", res[k].msg);
                free(res);
                return 1;
            }
            if (merge(s, &res[k])) {
                fprintf(stderr, "segnas: out of memory\n");
                free(res);
                return 1;
            }
        }
    }
    free(res);
    return 0;
}

static int cmd_data_inspect(int argc, char **argv)
{
    const char *format = "folder", *root = NULL, *split = "train", *cooc_path = NULL;
    bool skip_bad = false;
    int64_t limit = 0;
    const arg_spec specs[] = {
        {"data-format", ARG_STRING, &format, "cityscapes, voc, ade20k, folder or synth"},
        {"root", ARG_STRING, &root, "the data set's top folder"},
        {"split", ARG_STRING, &split, "train, val, trainval, train_aug, ... as the format has"},
        {"skip-bad", ARG_BOOL, &skip_bad, "count unreadable or invalid samples and go on"},
        {"limit", ARG_INT64, &limit, "inspect only the first N samples (0 = all)"},
        {"cooccurrence", ARG_STRING, &cooc_path, "write the class co-occurrence matrix (JSON) here"},
    };
    const char *usage = "segnas data inspect --data-format F --root DIR [--split S] [--skip-bad] [--limit N] "
                        "[--cooccurrence FILE]";
    int rc = args_parse(usage, specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    int f = sn_data_format_parse(format);
    if (f < 0) return fprintf(stderr, "segnas: --data-format %s: expected cityscapes, voc, ade20k, folder or synth\n", format), 2;
    if (!root && f != SN_DATA_SYNTH) return fprintf(stderr, "segnas: --root is required (usage: %s)\n", usage), 2;
    if (limit < 0) return fprintf(stderr, "segnas: --limit %lld: must be >= 0\n", (long long)limit), 2;
    sn_dataset *ds = NULL;
    char err[640] = "";
    if ((rc = sn_dataset_open(&ds, (sn_data_format)f, root, split, err, sizeof err))) {
        fprintf(stderr, "segnas: %s\n", err[0] ? err : sn_status_name(rc));
        return rc == SN_ERR_ARG ? 2 : 1;
    }
    int64_t visit = limit && limit < ds->count ? limit : ds->count;
    inspect_stats s = {.n_classes = ds->n_classes};
    s.cooc = calloc((size_t)ds->n_classes * ds->n_classes, sizeof *s.cooc);
    rc = s.cooc ? inspect_run(ds, visit, skip_bad, &s) : 1;
    if (!rc) print_report(ds, root ? root : "(embedded)", split, visit, &s);
    if (!rc && cooc_path) rc = write_cooccurrence(cooc_path, ds, split, &s) ? 1 : 0;
    for (int64_t k = 0; k < s.bad; k++) free(s.bad_msgs[k]);
    free(s.bad_msgs), free(s.sizes), free(s.cooc);
    sn_dataset_close(ds);
    return rc;
}

static void data_usage(FILE *f)
{
    fprintf(f, "usage: segnas data <subcommand> [options]   (segnas data <subcommand> --help)\n\n"
               "subcommands:\n"
               "  synth      write the embedded synthetic data set as a folder data set\n"
               "  inspect    read a split: image sizes, class pixel histogram, ignore pixels, bad files\n");
}

int cmd_data(int argc, char **argv)
{
    if (argc < 1) {
        data_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
        data_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[0], "inspect")) return cmd_data_inspect(argc - 1, argv + 1);
    if (!strcmp(argv[0], "synth")) return cmd_data_synth(argc - 1, argv + 1);
    fprintf(stderr, "segnas: data: unknown subcommand '%s' (synth or inspect)\n", argv[0]);
    return 2;
}
