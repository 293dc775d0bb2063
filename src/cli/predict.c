/* segnas predict: colourised masks (palette PNG, the data set's palette
 * from the checkpoint sidecar; the synthetic palette by default) and, with
 * --overlay, the image blended with the mask colours (RGB PNG). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_run.h"
#include "segnas/eval.h"

#define MAX_INPUTS 256

typedef struct predict_opts {
    const char *out;
    bool overlay, flip;
    double alpha;
    sn_infer_config ic;
} predict_opts;

static bool image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* "dir/name.jpg" -> "name". */
static void stem_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    snprintf(out, len, "%s", slash ? slash + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

static int predict_one(sn_ctx *ctx, const cli_trained *t, const predict_opts *o, const char *path)
{
    char err[512], name[1024], dest[4096];
    sn_image img = {0}, mask = {0}, over = {0};
    int k = t->model.cfg.n_classes, rc = sn_image_read_rgb(path, &img, err, sizeof err);
    float *probs = NULL;
    if (rc) {
        fprintf(stderr, "segnas: %s\n", err);
        return 1;
    }
    int64_t n = (int64_t)img.w * img.h;
    probs = malloc(sizeof(float) * (size_t)n * k);
    rc = !probs || sn_image_alloc(&mask, img.w, img.h, 1);
    if (!rc && (rc = sn_infer_probs(ctx, &t->model, &img, &o->ic, probs)))
        fprintf(stderr, "segnas: %s: %s\n", path, sn_ctx_error(ctx));
    if (!rc) {
        sn_probs_argmax(probs, n, k, mask.data);
        stem_of(path, name, sizeof name);
        snprintf(dest, sizeof dest, "%s/%s_mask.png", o->out, name);
        rc = sn_png_write_palette(dest, &mask, (const uint8_t(*)[3])t->palette, err, sizeof err);
    }
    if (!rc && o->overlay) {
        rc = sn_image_alloc(&over, img.w, img.h, 3);
        for (int64_t p = 0; p < n && !rc; p++)
            for (int c = 0; c < 3; c++)
                over.data[p * 3 + c] = (uint8_t)((1 - o->alpha) * img.data[p * 3 + c] +
                                                 o->alpha * t->palette[mask.data[p]][c] + 0.5);
        snprintf(dest, sizeof dest, "%s/%s_overlay.png", o->out, name);
        if (!rc) rc = sn_png_write(dest, &over, err, sizeof err);
    }
    if (rc && err[0]) fprintf(stderr, "segnas: %s\n", err);
    else if (!rc) printf("%s -> %s/%s_mask.png%s\n", path, o->out, name, o->overlay ? " (+ overlay)" : "");
    free(probs);
    sn_image_free(&img), sn_image_free(&mask), sn_image_free(&over);
    return rc ? 1 : 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The images of a folder, in name order. */
static int predict_folder(sn_ctx *ctx, const cli_trained *t, const predict_opts *o, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "segnas: cannot open folder %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) && !rc;) {
        if (!image_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) rc = 1;
            else names = nn;
        }
        if (!rc) {
            size_t len = strlen(dir) + strlen(e->d_name) + 2;
            if (!(names[n] = malloc(len))) rc = 1;
            else snprintf(names[n++], len, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && !rc && !cli_interrupted(); i++) rc = predict_one(ctx, t, o, names[i]);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (!n && !rc) fprintf(stderr, "segnas: no PNG or JPEG images in %s\n", dir);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    predict_opts o = {.out = NULL, .alpha = 0.5};
    sn_infer_config_default(&o.ic);
    const char *positional[MAX_INPUTS + 1];
    int n_pos = 0, threads = 2;
    const arg_spec specs[] = {
        {"out", ARG_STRING, &o.out, "output folder (masks NAME_mask.png, overlays NAME_overlay.png)"},
        {"overlay", ARG_BOOL, &o.overlay, "also write the image blended with the mask colours"},
        {"alpha", ARG_DOUBLE, &o.alpha, "overlay: weight of the mask colour"},
        {"flip", ARG_BOOL, &o.flip, "average with the horizontally mirrored prediction"},
        {"threads", ARG_INT, &threads, "compute threads"},
    };
    int rc = args_parse("segnas predict RUN/train.safetensors IMAGE_OR_FOLDER... --out DIR [--overlay]", specs,
                        ARG_COUNT(specs), argc, argv, positional, &n_pos, MAX_INPUTS + 1);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (n_pos < 2 || !o.out) {
        fprintf(stderr, "segnas: predict needs the checkpoint, at least one image or folder, and --out DIR\n");
        return 2;
    }
    if (!(o.alpha >= 0 && o.alpha <= 1) || threads < 1) {
        fprintf(stderr, "segnas: --alpha must be in [0,1] and --threads >= 1\n");
        return 2;
    }
    o.ic.flip = o.flip;
    sn_ctx_options co = {.threads = threads};
    sn_ctx *ctx = sn_ctx_create(&co);
    if (!ctx) return 1;
    cli_trained t;
    rc = cli_trained_open(ctx, positional[0], &t) || cli_mkdir_p(o.out);
    if (!rc) cli_install_interrupt();
    for (int i = 1; i < n_pos && !rc && !cli_interrupted(); i++) {
        struct stat st;
        if (stat(positional[i], &st)) {
            fprintf(stderr, "segnas: %s: no such file or folder\n", positional[i]);
            rc = 1;
        } else {
            rc = S_ISDIR(st.st_mode) ? predict_folder(ctx, &t, &o, positional[i]) : predict_one(ctx, &t, &o, positional[i]);
        }
    }
    if (t.model.cells) cli_trained_close(&t);
    sn_ctx_destroy(ctx);
    return rc ? 1 : 0;
}
