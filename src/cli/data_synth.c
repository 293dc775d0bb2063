/* `segnas data synth`: writes the synthetic data set (docs/synth.md) in the
 * `folder` layout: images/<stem>.png (RGB), masks/<stem>.png (palette PNG
 * whose indices are the class ids), classes.txt (one name per line, in class
 * order), train.txt and val.txt (one stem per line). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "segnas/data.h"

static int usage_error(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "segnas: --%s%s%s: %s\n", flag, *value ? " " : "", value, why);
    return 2;
}

/* "S" or "HxW", each side in 8..16384. */
static bool parse_size(const char *s, int *h, int *w)
{
    char *end = NULL;
    long a = strtol(s, &end, 10), b = a;
    if (end == s) return false;
    if (*end == 'x' || *end == 'X') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t) return false;
    }
    if (*end || a < 8 || b < 8 || a > 16384 || b > 16384) return false;
    *h = (int)a, *w = (int)b;
    return true;
}

static int make_dir(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        bool last = *p == 0;
        if (*p == '/' || last) {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) return errno;
            if (last) break;
            *p = '/';
        }
    }
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) return ENOTDIR;
    return 0;
}

static int write_lines(const char *dir, const char *file, const char *prefix, int64_t n,
                       const char *const *names)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "segnas: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (names) fprintf(f, "%s\n", names[i]);
        else fprintf(f, "%s_%06lld\n", prefix, (long long)i);
    }
    if (fclose(f)) {
        fprintf(stderr, "segnas: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* One sample: generate and write the image and the mask. */
static int write_sample(const sn_synth_config *c, const char *dir, const char *prefix, int64_t i, int64_t index,
                        sn_image *img, sn_image *lab, char *err, size_t errlen)
{
    char path[4200];
    int rc = sn_synth_generate(c, index, img, lab, err, errlen);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/images/%s_%06lld.png", dir, prefix, (long long)i);
    rc = sn_png_write(path, img, err, errlen);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/masks/%s_%06lld.png", dir, prefix, (long long)i);
    return sn_png_write_palette(path, lab, sn_synth_palette(), err, errlen);
}

/* Generates [0, n) of one split in parallel (samples are independent). */
static int write_split(const sn_synth_config *c, const char *dir, const char *prefix, int64_t n, int64_t offset)
{
    int status = 0;
    char first_err[512] = "";
#pragma omp parallel
    {
        sn_image img = {0}, lab = {0};
        char err[512];
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < n; i++) {
            int rc;
#pragma omp atomic read
            rc = status;
            if (rc) continue;
            rc = write_sample(c, dir, prefix, i, offset + i, &img, &lab, err, sizeof err);
            if (rc) {
#pragma omp critical(synth_err)
                if (!status) status = rc, snprintf(first_err, sizeof first_err, "%s", err);
            }
        }
        sn_image_free(&img);
        sn_image_free(&lab);
    }
    if (status) fprintf(stderr, "segnas: data synth: %s\n", first_err);
    return status;
}

int cmd_data_synth(int argc, char **argv)
{
    sn_synth_config c;
    sn_synth_config_default(&c);
    const char *out = NULL, *size = "64";
    int64_t n = c.train_count, val_n = c.val_count, seed = 0;
    double noise = c.noise_std;
    const arg_spec specs[] = {
        {"out", ARG_STRING, &out, "folder to write (created if missing)"},
        {"n", ARG_INT64, &n, "training samples"},
        {"val-n", ARG_INT64, &val_n, "validation samples"},
        {"size", ARG_STRING, &size, "image size: S (square) or HxW"},
        {"seed", ARG_INT64, &seed, "generator seed (>= 0)"},
        {"noise", ARG_DOUBLE, &noise, "Gaussian pixel noise, std in 8-bit units"},
    };
    int rc = args_parse("segnas data synth --out DIR [--n N] [--val-n M] [--size S|HxW] [--seed K]", specs,
                        ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc == ARGS_HELP) return 0;
    if (rc) return 2;
    char v[32];
    if (!out || !*out) return usage_error("out", "", "required (the folder to write)");
    snprintf(v, sizeof v, "%lld", (long long)n);
    if (n < 1 || n > 10000000) return usage_error("n", v, "must be in 1..10000000");
    snprintf(v, sizeof v, "%lld", (long long)val_n);
    if (val_n < 0 || val_n > 10000000) return usage_error("val-n", v, "must be in 0..10000000");
    snprintf(v, sizeof v, "%lld", (long long)seed);
    if (seed < 0) return usage_error("seed", v, "must be >= 0");
    if (!parse_size(size, &c.height, &c.width)) return usage_error("size", size, "expected S or HxW, 8..16384 each");
    snprintf(v, sizeof v, "%g", noise);
    if (!(noise >= 0 && noise <= 100)) return usage_error("noise", v, "must be in 0..100");
    c.seed = (uint64_t)seed, c.train_count = n, c.val_count = val_n, c.noise_std = (float)noise;

    char sub[4200];
    const char *dirs[2] = {"images", "masks"};
    for (int k = 0; k < 3; k++) {
        if (k == 0) snprintf(sub, sizeof sub, "%s", out);
        else snprintf(sub, sizeof sub, "%s/%s", out, dirs[k - 1]);
        int e = make_dir(sub);
        if (e) {
            fprintf(stderr, "segnas: cannot create folder %s: %s\n", sub, strerror(e));
            return 1;
        }
    }
    if (write_split(&c, out, "train", n, 0) || write_split(&c, out, "val", val_n, SN_SYNTH_VAL_OFFSET)) return 1;
    if (write_lines(out, "classes.txt", NULL, SN_SYNTH_CLASSES, sn_synth_class_names()) ||
        write_lines(out, "train.txt", "train", n, NULL) || write_lines(out, "val.txt", "val", val_n, NULL))
        return 1;
    printf("wrote %lld train + %lld val samples of %dx%d (seed %lld, %d classes) to %s\n", (long long)n,
           (long long)val_n, c.height, c.width, (long long)seed, SN_SYNTH_CLASSES, out);
    return 0;
}
