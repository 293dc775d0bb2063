/* The context and graph-reasoning heads against PyTorch (issue 6: "a
 * reference check of each head's forward against your own PyTorch
 * implementation of it with the same weights"). The peer is
 * bench/heads_torch.py, an independent PyTorch implementation of each head
 * from the papers and the construction documented in segnas/nn.h and
 * src/models/context_head.c; bench/run_heads.sh runs both.
 *
 *   bench_heads dump DIR [options]
 *     for every head (aspp, ppm, glore, a2, gcu, sgr, nonlocal) builds it
 *     standalone, as the model builds it (sn_context_head_init, widths from
 *     c_out; sn_aspp_init at output stride 16), with a fixed seed, and
 *     writes DIR/<head>.safetensors holding:
 *       every parameter and batch-norm buffer under its segnas name (the
 *       buffers as before any forward);
 *       "input.x" {N,H,W,C_in} (N(0,1)); "input.prior" {K,K} (sgr only: the
 *       raw co-occurrence-like prior the head normalises itself);
 *       "out.eval": forward with running statistics;
 *       "out.train": forward with batch statistics (running ones updated),
 *       then backward from "input.grad_out" (N(0,1), the output's shape):
 *       "grad.<param>" of every parameter, "grad.input.x", and
 *       "after.<buffer>" (the updated running statistics);
 *     with the configuration as metadata.
 * Biases, BN affine parameters and running statistics and GCU's scales are
 * drawn at random (their initial values 0 / 1 would hide a transposed or
 * missing term); every other parameter keeps its segnas initialisation.
 * Options: --heads a,b,... --batch N --height H --width W --c-in C --c-out C
 *   --classes K --seed s --threads T */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/models.h"
#include "segnas/train.h"

typedef struct options {
    const char *heads;
    int batch, height, width, c_in, c_out, classes, threads;
    uint64_t seed;
} options;

static int usage(void)
{
    fprintf(stderr, "usage: bench_heads dump DIR [--heads aspp,ppm,glore,a2,gcu,sgr,nonlocal] [--batch N]\n"
                    "       [--height H] [--width W] [--c-in C] [--c-out C] [--classes K] [--seed s] [--threads T]\n");
    return 2;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.heads = "aspp,ppm,glore,a2,gcu,sgr,nonlocal", .batch = 3, .height = 24, .width = 24,
                   .c_in = 64, .c_out = 48, .classes = 8, .threads = 2, .seed = 1};
    for (int i = 0; i < argc; i += 2) {
        if (i + 1 >= argc) return usage();
        const char *a = argv[i], *v = argv[i + 1];
        long x = strtol(v, NULL, 10);
        if (!strcmp(a, "--heads")) o->heads = v;
        else if (!strcmp(a, "--batch")) o->batch = (int)x;
        else if (!strcmp(a, "--height")) o->height = (int)x;
        else if (!strcmp(a, "--width")) o->width = (int)x;
        else if (!strcmp(a, "--c-in")) o->c_in = (int)x;
        else if (!strcmp(a, "--c-out")) o->c_out = (int)x;
        else if (!strcmp(a, "--classes")) o->classes = (int)x;
        else if (!strcmp(a, "--seed")) o->seed = (uint64_t)x;
        else if (!strcmp(a, "--threads")) o->threads = (int)x;
        else return usage();
    }
    if (o->batch < 1 || o->height < 1 || o->width < 1 || o->c_in < 1 || o->c_out < 4 || o->classes < 2 ||
        o->threads < 1 || o->batch > 64 || o->height > 512 || o->width > 512 || o->c_in > 4096 || o->c_out > 4096 ||
        o->classes > 255) {
        fprintf(stderr, "bench_heads: sizes out of range (batch 1..64, height/width 1..512, c-in 1..4096, "
                        "c-out 4..4096, classes 2..255, threads >= 1)\n");
        return 2;
    }
    return 0;
}

/* ---- the list of tensors written ---------------------------------------- */
typedef struct dump_list {
    sn_tensor **items;
    int n, cap;
    bool failed;
} dump_list;

static void push(dump_list *l, sn_tensor *t)
{
    if (!t) {
        l->failed = true;
        return;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 128;
        sn_tensor **grown = realloc(l->items, sizeof *grown * (size_t)cap);
        if (!grown) {
            l->failed = true;
            return;
        }
        l->items = grown, l->cap = cap;
    }
    l->items[l->n++] = t;
}

/* A persistent copy of `src` (zeros when NULL) with `like`'s shape, named
 * prefix + name: outputs live in the step arena and die at sn_step_end. */
static sn_tensor *copy_named(sn_ctx *ctx, const char *prefix, const char *name, const sn_tensor *like,
                             const float *src)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    sn_tensor *t = sn_buffer_new(ctx, full, like->ndim, like->shape);
    if (!t) return NULL;
    if (src) memcpy(t->data, src, sizeof(float) * (size_t)t->numel);
    else memset(t->data, 0, sizeof(float) * (size_t)t->numel);
    return t;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Random values where the initialisation is a constant (see the header). */
static void perturb(sn_rng *rng, sn_tensor *t)
{
    if (ends_with(t->name, ".bias") || ends_with(t->name, ".beta") || ends_with(t->name, ".running_mean"))
        sn_rng_fill_normal(rng, t->data, t->numel, 0.0f, 0.2f);
    else if (ends_with(t->name, ".gamma") || ends_with(t->name, ".running_var") || ends_with(t->name, ".sigma"))
        sn_rng_fill_uniform(rng, t->data, t->numel, 0.6f, 1.4f);
}

/* A symmetric non-negative K x K prior with a few zero entries and one
 * isolated class (a row and column of zeros), like a class co-occurrence
 * matrix of a data set where one class never appears. */
static void make_prior(sn_rng *rng, float *a, int k)
{
    for (int i = 0; i < k; i++)
        for (int j = 0; j <= i; j++) {
            float v = sn_rng_uniform(rng) < 0.25 ? 0.0f : (float)sn_rng_uniform(rng);
            if (i == k - 1 || j == k - 1) v = 0.0f;
            a[i * k + j] = a[j * k + i] = v;
        }
}

/* ---- one head ------------------------------------------------------------- */
typedef struct head_module {
    int kind;
    sn_aspp aspp;
    sn_context_head context;
} head_module;

static sn_tensor *head_forward(sn_ctx *ctx, const head_module *m, sn_tensor *x, bool training)
{
    return m->kind == SN_HEAD_ASPP ? sn_aspp_forward(ctx, &m->aspp, x, training)
                                   : sn_context_head_forward(ctx, &m->context, x, training);
}

static int fail(sn_ctx *ctx, const char *head, const char *what)
{
    fprintf(stderr, "bench_heads: %s: %s: %s\n", head, what, sn_ctx_status(ctx) ? sn_ctx_error(ctx) : "out of memory");
    return 1;
}

/* Builds head `kind`, runs it in both modes and writes DIR/<head>.safetensors. */
static int dump_head(const char *dir, int kind, const options *o)
{
    const char *name = sn_head_name(kind);
    sn_ctx_options co = {.threads = o->threads};
    sn_ctx *ctx = sn_ctx_create(&co);
    if (!ctx) return fprintf(stderr, "bench_heads: cannot start the engine\n"), 1;
    sn_param_set params = {0}, buffers = {0};
    sn_rng rng;
    sn_rng_seed(&rng, o->seed);
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &params, .buffers = &buffers};
    head_module *m = calloc(1, sizeof *m);
    float *prior = malloc(sizeof(float) * (size_t)o->classes * (size_t)o->classes);
    dump_list out = {0};
    int rc = 1;
    if (!m || !prior) goto done;
    m->kind = kind;
    make_prior(&rng, prior, o->classes);
    if (kind == SN_HEAD_ASPP ? sn_aspp_init(&b, &m->aspp, o->c_in, o->c_out, 16)
                             : sn_context_head_init(&b, &m->context, kind, o->c_in, o->c_out, o->classes, prior)) {
        rc = fail(ctx, name, "init");
        goto done;
    }
    for (int i = 0; i < params.n; i++) perturb(&rng, params.items[i]), push(&out, params.items[i]);
    for (int i = 0; i < buffers.n; i++) {
        perturb(&rng, buffers.items[i]);
        push(&out, copy_named(ctx, "", buffers.items[i]->name, buffers.items[i], buffers.items[i]->data));
    }
    int64_t xs[4] = {o->batch, o->height, o->width, o->c_in}, ks[2] = {o->classes, o->classes};
    sn_tensor *x = sn_param_new(ctx, "input.x", 4, xs); /* a parameter: its gradient is checked too */
    if (!x) goto done;
    sn_rng_fill_normal(&rng, x->data, x->numel, 0.0f, 1.0f);
    push(&out, x);
    if (kind == SN_HEAD_SGR) {
        sn_tensor *p = sn_buffer_new(ctx, "input.prior", 2, ks);
        if (p) memcpy(p->data, prior, sizeof(float) * (size_t)p->numel);
        push(&out, p);
    }

    /* Eval first: it reads the running statistics without changing them. */
    bool was = sn_set_grad_enabled(ctx, false);
    sn_tensor *y = head_forward(ctx, m, x, false);
    sn_set_grad_enabled(ctx, was);
    if (!y) {
        rc = fail(ctx, name, "eval forward");
        goto done;
    }
    push(&out, copy_named(ctx, "", "out.eval", y, y->data));
    sn_step_end(ctx);

    y = head_forward(ctx, m, x, true);
    if (!y) {
        rc = fail(ctx, name, "training forward");
        goto done;
    }
    sn_tensor *g = copy_named(ctx, "", "input.grad_out", y, NULL);
    if (!g) goto done;
    sn_rng_fill_normal(&rng, g->data, g->numel, 0.0f, 1.0f);
    push(&out, g);
    push(&out, copy_named(ctx, "", "out.train", y, y->data));
    if (sn_backward_from(ctx, y, g->data)) {
        rc = fail(ctx, name, "backward");
        goto done;
    }
    for (int i = 0; i < params.n; i++)
        push(&out, copy_named(ctx, "grad.", params.items[i]->name, params.items[i], params.items[i]->grad));
    push(&out, copy_named(ctx, "grad.", x->name, x, x->grad));
    for (int i = 0; i < buffers.n; i++)
        push(&out, copy_named(ctx, "after.", buffers.items[i]->name, buffers.items[i], buffers.items[i]->data));
    sn_step_end(ctx);
    if (out.failed) {
        fprintf(stderr, "bench_heads: %s: out of memory\n", name);
        goto done;
    }
    char path[4096], meta[512], err[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    snprintf(meta, sizeof meta,
             "{\"head\":\"%s\",\"batch\":%d,\"height\":%d,\"width\":%d,\"c_in\":%d,\"c_out\":%d,\"classes\":%d,"
             "\"output_stride\":16,\"seed\":%llu}",
             name, o->batch, o->height, o->width, o->c_in, o->c_out, o->classes, (unsigned long long)o->seed);
    if (sn_checkpoint_save(path, out.items, out.n, meta, err, sizeof err)) {
        fprintf(stderr, "bench_heads: %s\n", err);
        goto done;
    }
    printf("{\"head\":\"%s\",\"file\":\"%s\",\"tensors\":%d,\"params\":%lld}\n", name, path, out.n,
           (long long)sn_param_set_numel(&params));
    rc = 0;
done:
    free(out.items), free(prior), free(m);
    sn_param_set_free(&params), sn_param_set_free(&buffers);
    sn_ctx_destroy(ctx);
    return rc;
}

static int dump(const char *dir, const options *o)
{
    char list[256];
    snprintf(list, sizeof list, "%s", o->heads);
    int rc = 0;
    for (char *save = NULL, *h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
        int kind = sn_head_parse(h);
        if (kind < 0) {
            fprintf(stderr, "bench_heads: --heads: unknown head '%s'\n", h);
            return 2;
        }
        rc |= dump_head(dir, kind, o);
    }
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    if (argc >= 3 && !strcmp(argv[1], "dump")) return parse(argc - 3, argv + 3, &o) ? 2 : dump(argv[2], &o);
    return usage();
}
