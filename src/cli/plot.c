/* segnas plot RUN_DIR... [--out DIR]: SVG curves of a run folder from its
 * log.jsonl, written by `segnas search` or `segnas train` (told apart by
 * their events). A folder without a log.jsonl of its own is scanned for
 * RUN_DIR/<sub>/log.jsonl (the demo keeps its search and its training side
 * by side).
 *
 * search: loss.svg (loss_w, loss_arch per weight step), val_miou.svg (per
 *   epoch), alpha.svg (per operator, its softmax weight averaged over the
 *   cell's edges), beta.svg (see beta_end_levels), genotype.svg (the last
 *   decoded architecture, re-rendered);
 * train: loss.svg (loss per step), val_miou.svg (per validation).
 *
 * A log of an interrupted and resumed run may hold a step twice (steps after
 * the last checkpoint are redone): the last line written wins. Values the
 * writers printed as "nan"/"inf" (not JSON) are read as missing points. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/svg.h"
#include "cli/svg_chart.h"
#include "segnas/search.h"

#define MAX_RUNS 64
#define MAX_LOG_BYTES ((size_t)1 << 30)

/* One logged point. Search evaluations keep mIoU, pixel accuracy, the
 * per-operator alpha means and the per-level beta view side by side. */
enum { V_MIOU = 0, V_ACC = 1, V_ALPHA = 2, V_BETA = V_ALPHA + SN_CELL_OP_COUNT, N_VALUES = V_BETA + SN_MAX_LEVELS };
/* Step records reuse the first slots. */
enum { V_LOSS = 0, V_LOSS_ARCH = 1 };

typedef struct rec {
    int64_t epoch, step, seq; /* seq: line order, so that the last duplicate wins */
    double key;               /* x of the point */
    double v[N_VALUES];
} rec;

typedef struct rec_list {
    rec *r;
    int64_t n, cap;
} rec_list;

enum { KIND_SEARCH = 1, KIND_TRAIN = 2 };

typedef struct run_log {
    char dir[4096], log_path[4200], name[128];
    int kinds;           /* KIND_* bits of the events seen */
    rec_list steps, evals;
    int n_levels, n_edges;
    int64_t genotype_epoch;
    char *genotype;      /* JSON of the latest epoch's decoded architecture */
    int64_t lines, bad_lines;
} run_log;

static void run_log_free(run_log *L)
{
    free(L->steps.r), free(L->evals.r), free(L->genotype);
    memset(L, 0, sizeof *L);
}

static rec *rec_push(rec_list *l, int64_t seq)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 256;
        rec *r = realloc(l->r, sizeof(rec) * (size_t)cap);
        if (!r) return NULL;
        l->r = r, l->cap = cap;
    }
    rec *r = &l->r[l->n++];
    r->epoch = r->step = 0, r->seq = seq, r->key = NAN;
    for (int i = 0; i < N_VALUES; i++) r->v[i] = NAN;
    return r;
}

/* ---- reading the log ---------------------------------------------------------- */

/* %g prints NaN and infinities as nan, -nan, inf, -inf: not JSON. Outside
 * strings such tokens become null (a missing value). out has room for
 * 2 * strlen(in) + 1 bytes ("inf" -> "null" is the only growth). */
static void sanitize_json(const char *in, char *out)
{
    static const char *bad[] = {"-infinity", "infinity", "-nan", "nan", "-inf", "inf"};
    bool in_string = false;
    while (*in) {
        char c = *in;
        if (in_string) {
            *out++ = *in++;
            if (c == '\\' && *in) *out++ = *in++;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        size_t match = 0;
        for (size_t k = 0; k < sizeof bad / sizeof bad[0] && !match; k++) {
            size_t n = strlen(bad[k]);
            if (!strncasecmp(in, bad[k], n) && !isalnum((unsigned char)in[n])) match = n;
        }
        if (match) {
            memcpy(out, "null", 4), out += 4, in += match;
            continue;
        }
        *out++ = *in++;
    }
    *out = '\0';
}

/* NaN when missing or not a number (null included). */
static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static bool int_field(const cJSON *o, const char *key, int64_t *out)
{
    double v = num(o, key);
    if (!(fabs(v) < 1e15)) return false; /* missing, NaN, or too large to be a counter */
    *out = (int64_t)v;
    return true;
}

/* Per operator, the softmax weight (over the operators of an edge, none
 * included: Eq. 2 of Auto-DeepLab) averaged over the cell's edges. */
static int alpha_op_means(const cJSON *alpha, double *means)
{
    int n = cJSON_GetArraySize(alpha), n_ops = SN_CELL_OP_COUNT;
    if (!cJSON_IsArray(alpha) || n == 0 || n % n_ops) return 0;
    int edges = n / n_ops;
    double logit[SN_CELL_OP_COUNT];
    for (int o = 0; o < n_ops; o++) means[o] = 0;
    const cJSON *item = alpha->child;
    for (int e = 0; e < edges; e++) {
        double mx = -INFINITY, sum = 0;
        for (int o = 0; o < n_ops; o++, item = item->next) {
            logit[o] = cJSON_IsNumber(item) ? item->valuedouble : NAN;
            mx = logit[o] > mx ? logit[o] : mx; /* a NaN logit propagates through the sum below */
        }
        for (int o = 0; o < n_ops; o++) sum += exp(logit[o] - mx);
        for (int o = 0; o < n_ops; o++) means[o] += exp(logit[o] - mx) / sum / edges;
    }
    return edges;
}

/* The beta view: the probability that the network path ENDS at each level,
 * i.e. the marginal over the last layer's levels of the Markov chain that
 * starts at level 0 and moves with the transition probabilities of Eq. 7
 * (softmax over the valid directions of each node). One number per level
 * that sums to one, whatever L is: it shows at a glance which output stride
 * the search is settling on, whereas the raw (L-1) x levels x 3 betas would
 * be dozens of lines. The full path is in genotype.svg. */
static bool beta_end_levels(const cJSON *beta, int n_levels, int n_layers, double *p)
{
    int n = cJSON_GetArraySize(beta);
    if (!cJSON_IsArray(beta) || n_levels < 1 || n_levels > SN_MAX_LEVELS || n % (n_levels * 3)) return false;
    int transitions = n / (n_levels * 3);
    if (n_layers > 0 && transitions != n_layers - 1) return false;
    double b[SN_MAX_LAYERS * SN_MAX_LEVELS * 3];
    if (transitions >= SN_MAX_LAYERS) return false;
    int i = 0;
    for (const cJSON *item = beta->child; item; item = item->next) b[i++] = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    for (int s = 0; s < n_levels; s++) p[s] = s == 0;
    for (int t = 0; t < transitions; t++) {
        double q[SN_MAX_LEVELS] = {0};
        for (int s = 0; s < n_levels; s++) {
            const double *bt = &b[(t * n_levels + s) * 3];
            double mx = -INFINITY, sum = 0;
            for (int d = 0; d < 3; d++)
                if (sn_transition_valid(s, d, n_levels) && !(bt[d] <= mx)) mx = bt[d];
            for (int d = 0; d < 3; d++)
                if (sn_transition_valid(s, d, n_levels)) sum += exp(bt[d] - mx);
            for (int d = 0; d < 3; d++)
                if (sn_transition_valid(s, d, n_levels)) q[s + d - 1] += p[s] * exp(bt[d] - mx) / sum;
        }
        for (int s = 0; s < n_levels; s++) p[s] = q[s];
    }
    return true;
}

static int parse_arch_event(run_log *L, const cJSON *o, int64_t seq)
{
    rec *r = rec_push(&L->evals, seq);
    if (!r) return -1;
    if (!int_field(o, "epoch", &r->epoch)) {
        L->evals.n--;
        return 1;
    }
    r->v[V_MIOU] = num(o, "val_miou"), r->v[V_ACC] = num(o, "val_pixel_accuracy");
    int edges = alpha_op_means(cJSON_GetObjectItemCaseSensitive(o, "alpha"), &r->v[V_ALPHA]);
    if (edges) L->n_edges = edges;
    const cJSON *geno = cJSON_GetObjectItemCaseSensitive(o, "genotype");
    double levels = num(geno, "levels");
    int n_levels = levels >= 1 && levels <= SN_MAX_LEVELS ? (int)levels : 4; /* 4: the supernet's default */
    int n_layers = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(geno, "path"));
    if (beta_end_levels(cJSON_GetObjectItemCaseSensitive(o, "beta"), n_levels, n_layers, &r->v[V_BETA]))
        L->n_levels = n_levels;
    if (cJSON_IsObject(geno) && r->epoch >= L->genotype_epoch) {
        char *text = cJSON_PrintUnformatted(geno);
        if (!text) return -1;
        free(L->genotype);
        L->genotype = text, L->genotype_epoch = r->epoch;
    }
    return 0;
}

/* One event. Returns 0 (used or ignored: unknown events are allowed), 1 (a
 * known event missing its fields), -1 (out of memory). */
static int parse_event(run_log *L, const cJSON *o, int64_t seq)
{
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "event");
    const char *event = cJSON_IsString(ev) ? ev->valuestring : "";
    bool search_step = !strcmp(event, "step") && cJSON_GetObjectItemCaseSensitive(o, "loss_w");
    bool train_step = !strcmp(event, "step") && !search_step && cJSON_GetObjectItemCaseSensitive(o, "loss");
    if (!strcmp(event, "epoch") || cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "alpha"))) {
        L->kinds |= KIND_SEARCH;
        return parse_arch_event(L, o, seq);
    }
    if (!search_step && !train_step && strcmp(event, "val")) return 0;
    rec *r = rec_push(!strcmp(event, "val") ? &L->evals : &L->steps, seq);
    if (!r) return -1;
    if (!int_field(o, "step", &r->step) || (search_step && !int_field(o, "epoch", &r->epoch))) {
        (!strcmp(event, "val") ? &L->evals : &L->steps)->n--;
        return 1;
    }
    if (search_step) {
        L->kinds |= KIND_SEARCH;
        r->v[V_LOSS] = num(o, "loss_w");
        double la = num(o, "loss_arch");
        r->v[V_LOSS_ARCH] = la >= 0 ? la : NAN; /* -1: no architecture step yet (before --arch-start) */
    } else if (train_step) {
        L->kinds |= KIND_TRAIN;
        r->v[V_LOSS] = num(o, "loss");
    } else {
        L->kinds |= KIND_TRAIN;
        r->v[V_MIOU] = num(o, "val_miou"), r->v[V_ACC] = num(o, "val_pixel_accuracy");
    }
    return 0;
}

static bool blank(const char *s)
{
    while (isspace((unsigned char)*s)) s++;
    return !*s;
}

/* Reads every line; prints the error and returns 1 when the file cannot be
 * read or holds no event of a search or a training. */
static int read_log(run_log *L)
{
    char *text = NULL, err[512];
    size_t len = 0;
    if (sn_read_file(L->log_path, MAX_LOG_BYTES, &text, &len, err, sizeof err)) {
        fprintf(stderr, "segnas: cannot read the log: %s\n", err);
        return 1;
    }
    int rc = 0;
    char *fixed = NULL;
    for (size_t at = 0; at < len && !rc;) {
        char *line = text + at, *nl = memchr(line, '\n', len - at);
        size_t line_len = nl ? (size_t)(nl - line) : len - at;
        at += line_len + 1;
        line[line_len] = '\0'; /* the newline, or the NUL sn_read_file appends */
        if (blank(line) && strlen(line) == line_len) continue;
        L->lines++;
        if (strlen(line) != line_len) { /* a NUL byte inside: not text */
            L->bad_lines++;
            continue;
        }
        char *f = realloc(fixed, 2 * line_len + 1);
        if (!f) {
            rc = -1;
            break;
        }
        fixed = f;
        sanitize_json(line, fixed);
        cJSON *o = cJSON_Parse(fixed);
        int r = cJSON_IsObject(o) ? parse_event(L, o, L->lines) : 1;
        cJSON_Delete(o);
        if (r < 0) rc = -1;
        else L->bad_lines += r;
    }
    free(fixed), free(text);
    if (rc < 0) {
        fprintf(stderr, "segnas: %s: out of memory\n", L->log_path);
        return 1;
    }
    if (!L->lines) {
        fprintf(stderr, "segnas: %s: the log is empty (did the run start?)\n", L->log_path);
        return 1;
    }
    if (!L->kinds) {
        fprintf(stderr, "segnas: %s: no search or training events in %lld lines (%lld unreadable): not a segnas log?\n",
                L->log_path, (long long)L->lines, (long long)L->bad_lines);
        return 1;
    }
    if (L->kinds == (KIND_SEARCH | KIND_TRAIN)) {
        fprintf(stderr, "segnas: %s: holds both search and training events; plot each run's own log\n", L->log_path);
        return 1;
    }
    if (L->bad_lines)
        fprintf(stderr, "segnas: %s: skipped %lld unreadable lines of %lld\n", L->log_path, (long long)L->bad_lines,
                (long long)L->lines);
    return 0;
}

/* ---- ordering: x of each point, duplicates of resumed runs ------------------------ */
static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Sorts by key and keeps the last-written record of each key. */
static void sort_dedupe(rec_list *l)
{
    if (l->n < 2) return;
    qsort(l->r, (size_t)l->n, sizeof(rec), cmp_rec);
    int64_t out = 0;
    for (int64_t i = 0; i < l->n; i++) {
        if (out > 0 && l->r[out - 1].key == l->r[i].key) l->r[out - 1] = l->r[i];
        else l->r[out++] = l->r[i];
    }
    l->n = out;
}

/* Search steps are numbered within an epoch: x = epoch * S + step, with S
 * the longest epoch in the log. Train steps and evaluations are global. */
static void assign_keys(run_log *L)
{
    bool search = L->kinds == KIND_SEARCH;
    int64_t per_epoch = 1;
    for (int64_t i = 0; i < L->steps.n; i++) per_epoch = L->steps.r[i].step > per_epoch ? L->steps.r[i].step : per_epoch;
    for (int64_t i = 0; i < L->steps.n; i++) {
        rec *r = &L->steps.r[i];
        r->key = search ? (double)r->epoch * (double)per_epoch + (double)r->step : (double)r->step;
    }
    for (int64_t i = 0; i < L->evals.n; i++) L->evals.r[i].key = search ? (double)L->evals.r[i].epoch : (double)L->evals.r[i].step;
    sort_dedupe(&L->steps), sort_dedupe(&L->evals);
}

/* ---- charts ---------------------------------------------------------------------- */

/* Columns of a record list, malloc'ed together: x then `n_cols` value
 * columns (times `scale`). */
typedef struct columns {
    double *x, *y[N_VALUES];
    int64_t n;
    double *mem;
} columns;

static int columns_make(const rec_list *l, int first, int n_cols, double scale, columns *c)
{
    memset(c, 0, sizeof *c);
    c->n = l->n;
    c->mem = malloc(sizeof(double) * (size_t)(l->n ? l->n : 1) * (size_t)(n_cols + 1));
    if (!c->mem) return 1;
    c->x = c->mem;
    for (int k = 0; k < n_cols; k++) c->y[k] = c->mem + (size_t)(k + 1) * (size_t)l->n;
    for (int64_t i = 0; i < l->n; i++) {
        c->x[i] = l->r[i].key;
        for (int k = 0; k < n_cols; k++) c->y[k][i] = scale * l->r[i].v[first + k];
    }
    return 0;
}

/* Centred moving average over 2*half+1 points, finite values only (prefix
 * sums: O(n)); NaN where the value itself is missing, so that gaps stay gaps. */
static double *moving_average(const double *y, int64_t n, int64_t half)
{
    double *out = malloc(sizeof(double) * (size_t)(n ? n : 1)), *sum = malloc(sizeof(double) * (size_t)(n + 1));
    int64_t *cnt = malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!out || !sum || !cnt) {
        free(out), free(sum), free(cnt);
        return NULL;
    }
    sum[0] = 0, cnt[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        bool ok = isfinite(y[i]);
        sum[i + 1] = sum[i] + (ok ? y[i] : 0), cnt[i + 1] = cnt[i] + ok;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t a = i - half < 0 ? 0 : i - half, b = i + half + 1 > n ? n : i + half + 1;
        out[i] = isfinite(y[i]) && cnt[b] > cnt[a] ? (sum[b] - sum[a]) / (double)(cnt[b] - cnt[a]) : NAN;
    }
    free(sum), free(cnt);
    return out;
}

typedef struct plot_out {
    char dir[4096];
    char prefix[160]; /* "" or "<run name>_" when several runs share --out */
} plot_out;

static int out_path(const plot_out *o, const char *file, char *path, size_t len)
{
    int n = snprintf(path, len, "%s/%s%s", o->dir, o->prefix, file);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "segnas: output path too long: %s/%s%s\n", o->dir, o->prefix, file);
        return 1;
    }
    return 0;
}

static int write_chart(const plot_out *o, const char *file, const svg_chart *c)
{
    char path[4400];
    if (out_path(o, file, path, sizeof path) || svg_chart_write(path, c)) return 1;
    fprintf(stderr, "wrote %s\n", path);
    return 0;
}

/* Loss per step: the raw values faint and thin, a light moving average
 * (about 1/40 of the run, at least 5 points wide) on top when the run is
 * long enough to be noisy. */
static int plot_loss(const run_log *L, const plot_out *o)
{
    bool search = L->kinds == KIND_SEARCH;
    int n_losses = search ? 2 : 1;
    columns c;
    if (columns_make(&L->steps, V_LOSS, n_losses, 1, &c)) return -1;
    int64_t half = c.n / 80;
    double *avg[2] = {NULL, NULL};
    for (int k = 0; k < n_losses && half >= 2; k++)
        if (!(avg[k] = moving_average(c.y[k], c.n, half))) {
            free(avg[0]), free(c.mem);
            return -1;
        }
    const char *names[2] = {search ? "loss_w" : "loss", "loss_arch"};
    char avg_names[2][96], title[4300];
    svg_series s[4];
    int n = 0;
    for (int k = 0; k < n_losses; k++) {
        const char *colour = svg_chart_colour(k);
        s[n++] = (svg_series){.name = names[k], .x = c.x, .y = c.y[k], .n = c.n,
                              .colour = colour, .width = avg[k] ? 1 : 1.6, .opacity = avg[k] ? 0.3 : 1};
        if (avg[k]) {
            snprintf(avg_names[k], sizeof avg_names[k], "%s, mean of %lld", names[k], (long long)(2 * half + 1));
            s[n++] = (svg_series){.name = avg_names[k], .x = c.x, .y = avg[k], .n = c.n, .colour = colour, .width = 2};
        }
    }
    snprintf(title, sizeof title, "%s loss per step: %s", search ? "search" : "training", L->dir);
    svg_chart ch = {.title = title, .x_label = search ? "weight step" : "step", .y_label = "cross-entropy loss",
                    .y_from_zero = true, .series = s, .n_series = n};
    int rc = write_chart(o, "loss.svg", &ch);
    free(avg[0]), free(avg[1]), free(c.mem);
    return rc;
}

static int plot_val(const run_log *L, const plot_out *o)
{
    bool search = L->kinds == KIND_SEARCH;
    columns c;
    if (columns_make(&L->evals, V_MIOU, 2, 100, &c)) return -1;
    svg_series s[2] = {
        {.name = "mIoU", .x = c.x, .y = c.y[0], .n = c.n, .markers = c.n <= 60},
        {.name = "pixel accuracy", .x = c.x, .y = c.y[1], .n = c.n, .markers = c.n <= 60, .dashed = true},
    };
    char title[4300];
    snprintf(title, sizeof title, "held-out mIoU and pixel accuracy: %s", L->dir);
    svg_chart ch = {.title = title, .x_label = search ? "epoch" : "step", .y_label = "%", .y_from_zero = true,
                    .series = s, .n_series = 2};
    int rc = write_chart(o, "val_miou.svg", &ch);
    free(c.mem);
    return rc;
}

static int plot_alpha(const run_log *L, const plot_out *o)
{
    columns c;
    if (columns_make(&L->evals, V_ALPHA, SN_CELL_OP_COUNT, 1, &c)) return -1;
    svg_series s[SN_CELL_OP_COUNT];
    for (int k = 0; k < SN_CELL_OP_COUNT; k++)
        s[k] = (svg_series){.name = sn_cell_op_name(k), .x = c.x, .y = c.y[k], .n = c.n, .markers = c.n <= 60,
                            .dashed = k == SN_CELL_NONE};
    char title[4300];
    snprintf(title, sizeof title, "alpha: softmax weight per operator, mean of %d edges: %s", L->n_edges, L->dir);
    /* Not from zero: the weights start at 1/8 each and part by a few percent. */
    svg_chart ch = {.title = title, .x_label = "epoch", .y_label = "mean operator weight",
                    .series = s, .n_series = SN_CELL_OP_COUNT, .width = 820};
    int rc = write_chart(o, "alpha.svg", &ch);
    free(c.mem);
    return rc;
}

static int plot_beta(const run_log *L, const plot_out *o)
{
    static const char *level_names[SN_MAX_LEVELS] = {"ends at /4", "ends at /8", "ends at /16", "ends at /32",
                                                     "ends at /64", "ends at /128"};
    int n_levels = L->n_levels ? L->n_levels : 4;
    columns c;
    if (columns_make(&L->evals, V_BETA, n_levels, 1, &c)) return -1;
    svg_series s[SN_MAX_LEVELS];
    for (int k = 0; k < n_levels; k++)
        s[k] = (svg_series){.name = level_names[k], .x = c.x, .y = c.y[k], .n = c.n, .markers = c.n <= 60};
    char title[4300];
    snprintf(title, sizeof title, "beta: probability that the path ends at each level: %s", L->dir);
    svg_chart ch = {.title = title, .x_label = "epoch", .y_label = "probability (last layer)", .y_min = 0,
                    .y_max = 1, .series = s, .n_series = n_levels};
    int rc = write_chart(o, "beta.svg", &ch);
    free(c.mem);
    return rc;
}

static int plot_genotype(const run_log *L, const plot_out *o)
{
    if (!L->genotype) return 0;
    sn_genotype g;
    char err[512], path[4400], title[64];
    if (sn_genotype_from_json(L->genotype, L->log_path, &g, err, sizeof err)) {
        /* The curves are drawn already; a bad picture is not worth failing for. */
        fprintf(stderr, "segnas: warning: %s: no genotype.svg, the latest genotype is unreadable: %s\n", L->log_path, err);
        return 0;
    }
    snprintf(title, sizeof title, "search, epoch %lld", (long long)L->genotype_epoch);
    if (out_path(o, "genotype.svg", path, sizeof path) || svg_write_genotype(path, &g, title)) return 1;
    fprintf(stderr, "wrote %s\n", path);
    return 0;
}

static int plot_run(run_log *L, const plot_out *o)
{
    if (read_log(L)) return 1;
    assign_keys(L);
    int rc = plot_loss(L, o);
    if (!rc) rc = plot_val(L, o);
    if (!rc && L->kinds == KIND_SEARCH) rc = plot_alpha(L, o);
    if (!rc && L->kinds == KIND_SEARCH) rc = plot_beta(L, o);
    if (!rc && L->kinds == KIND_SEARCH) rc = plot_genotype(L, o);
    if (rc < 0) fprintf(stderr, "segnas: %s: out of memory\n", L->log_path);
    return rc ? 1 : 0;
}

/* ---- finding the logs ------------------------------------------------------------- */
static bool is_file(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

static int add_run(run_log *runs, int *n, const char *dir, const char *log_path)
{
    if (*n == MAX_RUNS) {
        fprintf(stderr, "segnas: more than %d logs to plot\n", MAX_RUNS);
        return 1;
    }
    run_log *L = &runs[*n];
    memset(L, 0, sizeof *L);
    if ((size_t)snprintf(L->dir, sizeof L->dir, "%s", dir) >= sizeof L->dir ||
        (size_t)snprintf(L->log_path, sizeof L->log_path, "%s", log_path) >= sizeof L->log_path) {
        fprintf(stderr, "segnas: path too long: %s\n", log_path);
        return 1;
    }
    (*n)++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* dir/name into out; false when it does not fit. */
static bool join(char *out, size_t len, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    if (a + 1 + b >= len) return false;
    memcpy(out, dir, a), out[a] = '/', memcpy(out + a + 1, name, b + 1);
    return true;
}

/* RUN/<sub>/log.jsonl for every sub-folder, in name order. */
static int scan_subfolders(run_log *runs, int *n, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    char *names[MAX_RUNS], sub[4096], log[4200];
    int found = 0, rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d)) && found < MAX_RUNS;) {
        if (e->d_name[0] == '.' || !join(sub, sizeof sub, dir, e->d_name) || !join(log, sizeof log, sub, "log.jsonl") ||
            !is_file(log))
            continue;
        if (!(names[found] = strdup(e->d_name))) rc = 1;
        else found++;
    }
    closedir(d);
    qsort(names, (size_t)found, sizeof names[0], cmp_str);
    for (int i = 0; i < found; i++) {
        join(sub, sizeof sub, dir, names[i]), join(log, sizeof log, sub, "log.jsonl");
        if (!rc) rc = add_run(runs, n, sub, log);
        free(names[i]);
    }
    if (rc == 1 && *n < MAX_RUNS) fprintf(stderr, "segnas: out of memory\n");
    return rc ? -1 : found;
}

/* RUN may be a log file, a run folder, or a folder of run folders. */
static int find_logs(run_log *runs, int *n, const char *arg)
{
    char dir[4096], log[4200];
    size_t len = strlen(arg);
    while (len > 1 && arg[len - 1] == '/') len--;
    if (len >= sizeof dir) {
        fprintf(stderr, "segnas: path too long: %s\n", arg);
        return 1;
    }
    memcpy(dir, arg, len), dir[len] = '\0';
    if (is_file(dir)) {
        char *slash = strrchr(dir, '/');
        snprintf(log, sizeof log, "%s", dir);
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        return add_run(runs, n, dir, log);
    }
    snprintf(log, sizeof log, "%s/log.jsonl", dir);
    if (is_file(log)) return add_run(runs, n, dir, log);
    int found = scan_subfolders(runs, n, dir);
    if (found < 0) return 1;
    struct stat st;
    if (!found && stat(dir, &st)) {
        fprintf(stderr, "segnas: %s: no such file or folder\n", arg);
        return 1;
    }
    if (!found) {
        fprintf(stderr, "segnas: %s: no log.jsonl there, nor in its sub-folders\n", arg);
        return 1;
    }
    return 0;
}

/* With --out and several runs, files are prefixed with the run folder's name
 * (made unique with -2, -3, ...). */
static void name_runs(run_log *runs, int n)
{
    for (int i = 0; i < n; i++) {
        const char *slash = strrchr(runs[i].dir, '/'), *base = slash ? slash + 1 : runs[i].dir;
        snprintf(runs[i].name, sizeof runs[i].name, "%s", base);
        for (int j = 0, dup = 1; j < i; j++)
            if (!strcmp(runs[j].name, runs[i].name)) {
                snprintf(runs[i].name, sizeof runs[i].name, "%.100s-%d", base, ++dup);
                j = -1; /* check the new name against all again */
            }
    }
}

int cmd_plot(int argc, char **argv)
{
    const char *out = NULL, *positional[MAX_RUNS];
    int n_pos = 0;
    const arg_spec specs[] = {
        {"out", ARG_STRING, &out, "folder for the SVG files (default: each run's own folder)"},
    };
    int rc = args_parse("segnas plot RUN_DIR... [--out DIR]   (RUN_DIR holds log.jsonl, or sub-folders that do)",
                        specs, ARG_COUNT(specs), argc, argv, positional, &n_pos, MAX_RUNS);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (n_pos == 0) {
        fprintf(stderr, "segnas: plot needs a run folder (segnas plot RUN_DIR [--out DIR])\n");
        return 2;
    }
    if (out && !*out) {
        fprintf(stderr, "segnas: --out: empty folder name\n");
        return 2;
    }
    run_log *runs = calloc(MAX_RUNS, sizeof(run_log));
    if (!runs) return 1;
    int n = 0;
    bool failed = false;
    for (int i = 0; i < n_pos && !rc; i++) rc = find_logs(runs, &n, positional[i]);
    if (!rc && out) rc = cli_mkdir_p(out);
    name_runs(runs, n);
    /* One bad log does not stop the others; the status still says it. */
    for (int i = 0; i < n && !rc; i++) {
        plot_out o = {{0}, {0}};
        snprintf(o.dir, sizeof o.dir, "%s", out ? out : runs[i].dir);
        if (out && n > 1) snprintf(o.prefix, sizeof o.prefix, "%s_", runs[i].name);
        if (plot_run(&runs[i], &o)) failed = true;
    }
    if (failed) rc = 1;
    for (int i = 0; i < n; i++) run_log_free(&runs[i]);
    free(runs);
    return rc ? 1 : 0;
}
