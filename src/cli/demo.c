/* segnas demo: the out-of-the-box example, end to end on the embedded
 * synthetic data set (no download, no data argument): a scaled-down
 * Auto-DeepLab search, its decoding, the found network retrained from
 * scratch, evaluated, and the curves of both runs, all in one results
 * folder with the exact commands that made every file (commands.txt) and
 * an index (README.md).
 *
 * Each step is the ordinary subcommand (cmd_search, cmd_decode, ...) run
 * in-process on an argv built here, printed first as a user would type it,
 * so that what the demo does and what commands.txt says cannot diverge.
 * The default sizes finish in about 15 minutes on 2 cores; --quick runs the
 * same pipeline in seconds (tests/cli_demo.sh). */
#include <assert.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "segnas/tensor.h"

/* Sizes of one demo flavour. The search is the scaled-down one the demo
 * always ran (L = 6, F = 4 at 64x64, ~3 minutes); the retraining uses the
 * same data set (trainA + trainB together, as section 5 retrains on the
 * whole train split) with DeepLab's recipe (train.c). */
typedef struct demo_sizes {
    int layers, filters, stem, blocks, size, batch, epochs, grid_n;
    int64_t synth_train, synth_val, steps_per_epoch, val_samples;
    int64_t train_steps, val_every, eval_images;
} demo_sizes;

static const demo_sizes full_sizes = {
    .layers = 6, .filters = 4, .stem = 16, .blocks = 5, .size = 64, .batch = 4, .epochs = 6, .grid_n = 8,
    .synth_train = 800, .synth_val = 50, .steps_per_epoch = 120, .val_samples = 50,
    .train_steps = 1500, .val_every = 250, .eval_images = 200,
};

static const demo_sizes quick_sizes = {
    .layers = 3, .filters = 2, .stem = 4, .blocks = 3, .size = 32, .batch = 2, .epochs = 2, .grid_n = 2,
    .synth_train = 40, .synth_val = 4, .steps_per_epoch = 3, .val_samples = 2,
    .train_steps = 4, .val_every = 2, .eval_images = 4,
};

/* ---- one step: an argv for a cmd_* function ------------------------------ */
enum { MAX_ARGS = 48, N_STEPS = 5 };

typedef struct demo_step {
    const char *name; /* the subcommand */
    int (*run)(int argc, char **argv);
    const char *makes; /* comment line of commands.txt */
    int argc;
    char *argv[MAX_ARGS];
    char buf[4096]; /* the argument strings */
    size_t used;
    double seconds;
} demo_step;

/* Appends one argument. --out is limited to 512 characters, so every argv
 * fits the buffer: overflow is a programmer error. */
__attribute__((format(printf, 2, 3))) static void arg(demo_step *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *dst = s->buf + s->used;
    int n = vsnprintf(dst, sizeof s->buf - s->used, fmt, ap);
    va_end(ap);
    assert(n >= 0 && s->used + (size_t)n + 1 < sizeof s->buf && s->argc < MAX_ARGS);
    s->argv[s->argc++] = dst;
    s->used += (size_t)n + 1;
}

static void flag_int(demo_step *s, const char *name, int64_t v)
{
    arg(s, "--%s", name);
    arg(s, "%lld", (long long)v);
}

static void data_flags(demo_step *s, const demo_sizes *z, int64_t val_count, bool train_count)
{
    flag_int(s, "synth-size", z->size);
    if (train_count) flag_int(s, "synth-train", z->synth_train);
    flag_int(s, "synth-val", val_count);
}

static void build_steps(demo_step steps[N_STEPS], const demo_sizes *z, const char *out, int threads)
{
    memset(steps, 0, sizeof(demo_step) * N_STEPS);
    demo_step *s = &steps[0];
    *s = (demo_step){.name = "search", .run = cmd_search,
                     .makes = "the Auto-DeepLab search: search/ (checkpoint, log.jsonl with alpha, beta, held-out mIoU)"};
    arg(s, "--run"), arg(s, "%s/search", out);
    flag_int(s, "layers", z->layers), flag_int(s, "filter-multiplier", z->filters);
    flag_int(s, "stem-channels", z->stem), flag_int(s, "blocks", z->blocks);
    data_flags(s, z, z->synth_val, true);
    flag_int(s, "batch", z->batch), flag_int(s, "epochs", z->epochs);
    flag_int(s, "steps-per-epoch", z->steps_per_epoch), flag_int(s, "val-samples", z->val_samples);
    flag_int(s, "checkpoint-every", 100), flag_int(s, "threads", threads);

    s = &steps[1];
    *s = (demo_step){.name = "decode", .run = cmd_decode,
                     .makes = "decoding (top-2 cell, Viterbi path): genotype.json, genotype.svg"};
    arg(s, "%s/search/search.safetensors", out), arg(s, "-o"), arg(s, "%s/genotype.json", out);

    s = &steps[2];
    *s = (demo_step){.name = "train", .run = cmd_train,
                     .makes = "the found network retrained from scratch: train/ (checkpoint, log.jsonl)"};
    arg(s, "--arch"), arg(s, "%s/genotype.json", out), arg(s, "--run"), arg(s, "%s/train", out);
    data_flags(s, z, z->synth_val, true);
    flag_int(s, "steps", z->train_steps), flag_int(s, "batch", z->batch);
    flag_int(s, "val-every", z->val_every), flag_int(s, "val-samples", z->val_samples);
    flag_int(s, "checkpoint-every", z->train_steps), flag_int(s, "threads", threads);

    s = &steps[3];
    *s = (demo_step){.name = "eval", .run = cmd_eval,
                     .makes = "evaluation on the validation images: eval.json, eval.txt, grid.png"};
    arg(s, "%s/train/train.safetensors", out);
    data_flags(s, z, z->eval_images, false);
    arg(s, "--out"), arg(s, "%s/eval.json", out), arg(s, "--grid"), arg(s, "%s/grid.png", out);
    flag_int(s, "grid-n", z->grid_n), flag_int(s, "threads", threads);

    s = &steps[4];
    *s = (demo_step){.name = "plot", .run = cmd_plot,
                     .makes = "curves of both runs (losses, mIoU, alpha and beta over the search): *.svg"};
    arg(s, "%s/search", out), arg(s, "%s/train", out), arg(s, "--out"), arg(s, "%s", out);
}

/* ---- printing commands as a shell reads them ------------------------------ */
static void print_word(FILE *f, const char *w)
{
    bool plain = *w != '\0';
    for (const char *p = w; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=,:+-@%", *p)) plain = false;
    if (plain) {
        fputs(w, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = w; *p; p++) {
        if (*p == '\'') fputs("'\\''", f); /* close, escaped quote, reopen */
        else fputc(*p, f);
    }
    fputc('\'', f);
}

static void print_command(FILE *f, const demo_step *s)
{
    fprintf(f, "segnas %s", s->name);
    for (int i = 0; i < s->argc; i++) fputc(' ', f), print_word(f, s->argv[i]);
    fputc('\n', f);
}

static void format_seconds(double s, char *buf, size_t len)
{
    snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

/* ---- commands.txt and README.md -------------------------------------------- */
static FILE *open_out(const char *out, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", out, name);
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "segnas demo: cannot write %s\n", path);
    return f;
}

static int write_commands(const char *out, const char *demo_line, const demo_step steps[N_STEPS])
{
    char path[1024], cwd[2048];
    FILE *f = open_out(out, "commands.txt", path, sizeof path);
    if (!f) return 1;
    fprintf(f, "# Made by: %s\n# The commands that made every file of this folder, in order, run from\n# %s\n"
               "# (segnas = build/segnas). Each one also runs on its own.\n",
            demo_line, getcwd(cwd, sizeof cwd) ? cwd : "(the working directory)");
    for (int i = 0; i < N_STEPS; i++) {
        fprintf(f, "\n# %d. %s\n", i + 1, steps[i].makes);
        print_command(f, &steps[i]);
    }
    return fclose(f) ? 1 : 0;
}

/* The last value of `key` on lines of `event` in a JSON-lines log; NAN if none. */
static double last_logged(const char *path, const char *event, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    double v = NAN;
    char *line = NULL;
    size_t cap = 0;
    char needle[64];
    snprintf(needle, sizeof needle, "\"event\":\"%s\"", event);
    while (getline(&line, &cap, f) > 0) {
        if (!strstr(line, needle)) continue;
        cJSON *o = cJSON_Parse(line);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
        if (cJSON_IsNumber(x)) v = x->valuedouble;
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    return v;
}

typedef struct demo_results {
    double search_miou, train_miou, eval_miou, eval_acc, ms_per_image;
    int64_t eval_images;
} demo_results;

static double json_number(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void read_results(const char *out, demo_results *r)
{
    char path[1024], err[256], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/search/log.jsonl", out);
    r->search_miou = last_logged(path, "epoch", "val_miou");
    snprintf(path, sizeof path, "%s/train/log.jsonl", out);
    r->train_miou = last_logged(path, "val", "val_miou");
    r->eval_miou = r->eval_acc = r->ms_per_image = NAN, r->eval_images = 0;
    snprintf(path, sizeof path, "%s/eval.json", out);
    if (sn_read_file(path, 1 << 24, &text, &len, err, sizeof err)) return;
    cJSON *o = cJSON_Parse(text);
    r->eval_miou = json_number(o, "miou"), r->eval_acc = json_number(o, "pixel_accuracy");
    r->ms_per_image = json_number(o, "ms_per_image");
    double n = json_number(o, "images");
    r->eval_images = isnan(n) ? 0 : (int64_t)n;
    cJSON_Delete(o);
    free(text);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* `segnas plot --out` names its pictures <run folder>_<chart>.svg (plot.c). */
static const char *describe_curve(const char *name)
{
    static const struct { const char *name, *what; } known[] = {
        {"search_loss.svg", "search: weight loss (trainA) and architecture loss (trainB) per step"},
        {"search_val_miou.svg", "search: held-out mIoU of the supernet per epoch"},
        {"search_alpha.svg", "search: alpha over the epochs, per operator its softmax weight averaged over the edges"},
        {"search_beta.svg", "search: beta over the epochs, as the probability that the path ends at each level"},
        {"search_genotype.svg", "search: the architecture decoded at the last epoch (the same as genotype.svg)"},
        {"train_loss.svg", "retraining: loss per step"},
        {"train_val_miou.svg", "retraining: validation mIoU"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(name, known[i].name)) return known[i].what;
    return "curve drawn by `segnas plot` from `search/log.jsonl` or `train/log.jsonl`";
}

/* The curve pictures `segnas plot` drew: every SVG of the folder but the genotype's. */
static void list_curves(FILE *f, const char *out)
{
    DIR *d = opendir(out);
    char *names[64];
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) && n < 64;) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".svg") && strcmp(e->d_name, "genotype.svg"))
            names[n++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    for (int i = 0; i < n; i++) {
        if (names[i]) fprintf(f, "| `%s` | %s |\n", names[i], describe_curve(names[i]));
        free(names[i]);
    }
}

static void percent(char *buf, size_t len, double v)
{
    if (isnan(v)) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.2f%%", 100 * v);
}

static int write_readme(const char *out, const demo_step steps[N_STEPS], const demo_results *r, double total)
{
    char path[1024], t[32], a[16], b[16], c[16], d[16];
    FILE *f = open_out(out, "README.md", path, sizeof path);
    if (!f) return 1;
    percent(a, sizeof a, r->search_miou), percent(b, sizeof b, r->train_miou);
    percent(c, sizeof c, r->eval_miou), percent(d, sizeof d, r->eval_acc);
    fprintf(f, "# segnas demo results\n\nA scaled-down Auto-DeepLab search on the embedded synthetic data set "
               "(docs/synth.md), the found\nnetwork retrained from scratch and evaluated. `commands.txt` holds "
               "the exact commands.\n\n");
    fprintf(f, "| | mIoU |\n|---|---|\n| supernet during the search, held-out images (last epoch) | %s |\n"
               "| retrained network, validation during training (last) | %s |\n"
               "| retrained network, `eval` over %lld validation images | **%s** (pixel accuracy %s) |\n\n",
            a, b, (long long)r->eval_images, c, d);
    fprintf(f, "| file | what |\n|---|---|\n"
               "| `genotype.json` | the architecture found: network-level path and cell (`segnas train --arch` reads it) |\n"
               "| `genotype.svg` | the path on the trellis and the cell |\n"
               "| `eval.json`, `eval.txt` | per-class IoU, mIoU, pixel accuracy, confusion matrix |\n"
               "| `grid.png` | validation images: input, ground truth, prediction |\n");
    list_curves(f, out);
    fprintf(f, "| `commands.txt` | the commands that made these files |\n"
               "| `search/` | search checkpoint, `log.jsonl` (losses per step; alpha, beta, decoding, held-out mIoU per epoch) |\n"
               "| `train/` | checkpoint of the retrained network, `log.jsonl` (loss per step, validation mIoU) |\n\n");
    fprintf(f, "Time per step:");
    for (int i = 0; i < N_STEPS; i++) format_seconds(steps[i].seconds, t, sizeof t), fprintf(f, " %s %s,", steps[i].name, t);
    format_seconds(total, t, sizeof t);
    fprintf(f, " total %s.\n", t);
    return fclose(f) ? 1 : 0;
}

/* ---- the pipeline ------------------------------------------------------------ */
static int run_steps(demo_step steps[N_STEPS], const char *out)
{
    for (int i = 0; i < N_STEPS; i++) {
        printf("\n[%d/%d] ", i + 1, N_STEPS);
        print_command(stdout, &steps[i]);
        fflush(stdout);
        double t0 = cli_now();
        int rc = steps[i].run(steps[i].argc, steps[i].argv);
        steps[i].seconds = cli_now() - t0;
        fflush(stdout);
        if (rc || cli_interrupted()) {
            fprintf(stderr, "\nsegnas demo: step %d of %d (%s) %s; the command was:\n  ", i + 1, N_STEPS, steps[i].name,
                    cli_interrupted() ? "was interrupted" : "failed");
            print_command(stderr, &steps[i]);
            fprintf(stderr, "the files made so far are in %s/\n", out);
            return rc ? rc : 130;
        }
    }
    return 0;
}

static void print_summary(const char *out, const demo_step steps[N_STEPS], const demo_results *r, double total)
{
    char t[32], a[16], b[16], c[16];
    format_seconds(total, t, sizeof t);
    printf("\nsegnas demo: done in %s (", t);
    for (int i = 0; i < N_STEPS; i++)
        format_seconds(steps[i].seconds, t, sizeof t), printf("%s%s %s", i ? ", " : "", steps[i].name, t);
    percent(a, sizeof a, r->search_miou), percent(b, sizeof b, r->eval_miou), percent(c, sizeof c, r->eval_acc);
    printf(")\nmIoU: supernet during the search %s (held-out); the found network retrained %s "
           "(%lld validation images, pixel accuracy %s)\nresults: %s/ (index: %s/README.md, commands: %s/commands.txt)\n",
           a, b, (long long)r->eval_images, c, out, out, out);
}

int cmd_demo(int argc, char **argv)
{
    const char *out = "results";
    int threads = 2;
    bool quick = false;
    int64_t epochs = 0, train_steps = 0;
    const arg_spec specs[] = {
        {"out", ARG_STRING, &out, "results folder"},
        {"quick", ARG_BOOL, &quick, "tiny sizes: the whole pipeline in seconds (a smoke test, meaningless numbers)"},
        {"epochs", ARG_INT64, &epochs, "search epochs (0 = 6; architecture updates in the second half)"},
        {"train-steps", ARG_INT64, &train_steps, "training steps of the found network (0 = 1500)"},
        {"threads", ARG_INT, &threads, "compute threads"},
    };
    int rc = args_parse("segnas demo [--out DIR] [--quick] [options]", specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (!*out || strlen(out) > 512 || threads < 1 || epochs < 0 || epochs > 100000 || train_steps < 0) {
        fprintf(stderr, "segnas demo: --out must be 1..512 characters, --threads >= 1, --epochs and --train-steps >= 0\n");
        return 2;
    }
    demo_sizes z = quick ? quick_sizes : full_sizes;
    if (epochs) z.epochs = (int)epochs;
    if (train_steps) z.train_steps = train_steps, z.val_every = train_steps / 6 ? train_steps / 6 : 1;
    demo_step *steps = malloc(sizeof(demo_step) * N_STEPS); /* 20 KiB: off the stack */
    if (!steps) return 1;
    build_steps(steps, &z, out, threads);
    /* What the user typed, for commands.txt. */
    char demo_line[1024] = "segnas demo";
    for (int i = 0; i < argc; i++)
        snprintf(demo_line + strlen(demo_line), sizeof demo_line - strlen(demo_line), " %s", argv[i]);
    printf("segnas demo: %s Auto-DeepLab search on the synthetic data set, retraining, evaluation -> %s/\n",
           quick ? "a tiny (--quick)" : "a scaled-down", out);
    double t0 = cli_now();
    rc = cli_mkdir_p(out) || write_commands(out, demo_line, steps) ? 1 : run_steps(steps, out);
    if (!rc) {
        double total = cli_now() - t0;
        demo_results r;
        read_results(out, &r);
        rc = write_readme(out, steps, &r, total);
        if (!rc) print_summary(out, steps, &r, total);
    }
    free(steps);
    return rc;
}
