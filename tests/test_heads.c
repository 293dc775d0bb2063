/* The context and graph heads (A2, GloRe, GCU, SGR, Non-local, PPM): output
 * shape in training and evaluation mode, the gradient of sum(r * head(x))
 * with respect to the input and to all head parameters against central
 * differences (float64 sums) along the gradient and a random direction, the
 * A2 and Non-local forward against naive double implementations of their
 * formulas, analytic costs (parameter counts against the tensors, A2 linear
 * and Non-local quadratic in HW), and errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/nn.h"
#include "support/check.h"

enum { N = 2, H = 8, W = 8, C = 8 };

typedef enum { A2, NONLOCAL, GLORE, GCU, SGR, PPM } head_kind;

typedef struct head {
    const char *name;
    head_kind kind;
    int64_t c_in, c_out;
    union {
        sn_a2_head a2;
        sn_nonlocal_head nl;
        sn_glore_head glore;
        sn_gcu_head gcu;
        sn_sgr_head sgr;
        sn_ppm_head ppm;
    } m;
    sn_param_set params, buffers;
} head;

/* A symmetric non-negative prior for SGR (a co-occurrence-like matrix). */
static void prior(float *a, int64_t m)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j <= i; j++) a[i * m + j] = a[j * m + i] = (float)((i * 7 + j * 3) % 5) * 0.25f;
}

static int head_init(sn_ctx *ctx, head *hd, head_kind kind, const char *name, int64_t c_in, int64_t c_out,
                     uint64_t seed)
{
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    *hd = (head){.name = name, .kind = kind, .c_in = c_in, .c_out = c_out};
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &hd->params, .buffers = &hd->buffers};
    snprintf(b.prefix, sizeof b.prefix, "%s", name);
    float adj[6 * 6];
    prior(adj, 6);
    int vertices[3] = {2, 4, 8};
    switch (kind) {
    case A2: return sn_a2_init(&b, &hd->m.a2, c_in, c_out, 4, 3);
    case NONLOCAL: return sn_nonlocal_init(&b, &hd->m.nl, c_in, c_out, 4, 3);
    case GLORE: return sn_glore_init(&b, &hd->m.glore, c_in, c_out, 5, 4);
    case GCU: return sn_gcu_init(&b, &hd->m.gcu, c_in, c_out, 3, vertices, 4);
    case SGR: return sn_sgr_init(&b, &hd->m.sgr, c_in, c_out, 6, 5, 4, adj);
    case PPM: return sn_ppm_init(&b, &hd->m.ppm, c_in, c_out, 2);
    }
    return SN_ERR_ARG;
}

static sn_tensor *head_forward(sn_ctx *ctx, const head *hd, sn_tensor *x, bool training)
{
    switch (hd->kind) {
    case A2: return sn_a2_forward(ctx, &hd->m.a2, x, training);
    case NONLOCAL: return sn_nonlocal_forward(ctx, &hd->m.nl, x, training);
    case GLORE: return sn_glore_forward(ctx, &hd->m.glore, x, training);
    case GCU: return sn_gcu_forward(ctx, &hd->m.gcu, x, training);
    case SGR: return sn_sgr_forward(ctx, &hd->m.sgr, x, training);
    case PPM: return sn_ppm_forward(ctx, &hd->m.ppm, x, training);
    }
    return NULL;
}

static sn_cost head_cost(const head *hd, int64_t h, int64_t w)
{
    switch (hd->kind) {
    case A2: return sn_a2_cost(&hd->m.a2, h, w);
    case NONLOCAL: return sn_nonlocal_cost(&hd->m.nl, h, w);
    case GLORE: return sn_glore_cost(&hd->m.glore, h, w);
    case GCU: return sn_gcu_cost(&hd->m.gcu, h, w);
    case SGR: return sn_sgr_cost(&hd->m.sgr, h, w);
    case PPM: return sn_ppm_cost(&hd->m.ppm, h, w);
    }
    return (sn_cost){0};
}

static void head_free(head *hd)
{
    sn_param_set_free(&hd->params);
    sn_param_set_free(&hd->buffers);
}

/* ---- gradients ---------------------------------------------------------------- */
typedef struct problem {
    sn_ctx *ctx;
    head *hd;
    sn_tensor *x; /* a persistent tensor, so that it keeps its gradient */
    float *r;
    int64_t out_n;
} problem;

/* L = sum r * head(x) in float64, training mode; *mag = sqrt(sum (r y)^2),
 * the scale of L's float32 rounding (independent errors of a few ulps per
 * output add up like a random walk). */
static double loss_of(problem *p, bool backward, double *mag)
{
    sn_ctx *ctx = p->ctx;
    bool old = sn_set_grad_enabled(ctx, backward);
    sn_tensor *y = head_forward(ctx, p->hd, p->x, true);
    double l = NAN, m = 0;
    if (y && y->numel == p->out_n) {
        l = 0;
        for (int64_t i = 0; i < y->numel; i++) l += (double)p->r[i] * y->data[i], m += ((double)p->r[i] * y->data[i]) * ((double)p->r[i] * y->data[i]);
        if (backward) CHECK(sn_backward_from(ctx, y, p->r) == SN_OK, "%s backward: %s", p->hd->name, sn_ctx_error(ctx));
    }
    sn_set_grad_enabled(ctx, old);
    sn_step_end(ctx);
    if (mag) *mag = sqrt(m);
    return l;
}

/* As tests/test_supernet.c: the step shrinks until one central difference
 * agrees within 2e-3 relative plus the float32 noise of the loss.
 * SEGNAS_TEST_VERBOSE=1 prints every step tried, SEGNAS_TEST_ALLSTEPS=1
 * tries all steps down to 5e-6 (a debugging aid). */
static bool fd_agreement(problem *p, const sn_param_set *set, const float *dir, double analytic, const char *what,
                         double max_noise)
{
    int64_t total = sn_param_set_numel(set), off = 0;
    float *saved = malloc(sizeof(float) * (size_t)total);
    for (int i = 0; i < set->n; i++) {
        memcpy(saved + off, set->items[i]->data, sizeof(float) * (size_t)set->items[i]->numel);
        off += set->items[i]->numel;
    }
    bool ok = false;
    for (double h = 1e-2; h > 5e-6 && (!ok || getenv("SEGNAS_TEST_ALLSTEPS")); h /= 3) {
        double l[2], mag = 0;
        for (int side = 0; side < 2; side++) {
            off = 0;
            for (int i = 0; i < set->n; i++) {
                sn_tensor *t = set->items[i];
                for (int64_t k = 0; k < t->numel; k++)
                    t->data[k] = saved[off + k] + (float)((side ? -h : h) * dir[off + k]);
                off += t->numel;
            }
            l[side] = loss_of(p, false, &mag);
        }
        /* Each output is off by a few ulps of the values it was computed
         * from; the difference divides that by 2h. */
        double fd = (l[0] - l[1]) / (2 * h), noise = 8 * mag * 0x1p-23 / h;
        /* Past max_noise (relative to the derivative) the check would
         * accept anything: stop (after the first step). */
        if (h < 1e-2 && noise > max_noise * fabs(analytic) && !getenv("SEGNAS_TEST_ALLSTEPS")) break;
        double tol = 2e-3 * fabs(analytic) + noise;
        ok |= fabs(analytic - fd) <= tol;
        if (!ok || getenv("SEGNAS_TEST_VERBOSE"))
            printf("  %-9s %-24s h %.1e  analytic %+.6e  fd %+.6e  |diff| %.1e  tol %.1e\n", p->hd->name, what, h,
                   analytic, fd, fabs(analytic - fd), tol);
    }
    off = 0;
    for (int i = 0; i < set->n; i++) {
        memcpy(set->items[i]->data, saved + off, sizeof(float) * (size_t)set->items[i]->numel);
        off += set->items[i]->numel;
    }
    free(saved);
    return ok;
}

/* Along the unit gradient (the derivative is |g|: any wrong component
 * lowers it), and, when `random`, along a random unit direction. max_noise
 * as in fd_agreement. */
static void check_group(problem *p, const sn_param_set *set, const char *what, uint64_t seed, bool random,
                        double max_noise)
{
    int64_t total = sn_param_set_numel(set), off = 0;
    float *dir = malloc(sizeof(float) * (size_t)total);
    double norm = 0;
    for (int i = 0; i < set->n; i++) {
        sn_tensor *t = set->items[i];
        for (int64_t k = 0; k < t->numel; k++) dir[off + k] = t->grad[k], norm += (double)t->grad[k] * t->grad[k];
        off += t->numel;
    }
    norm = sqrt(norm);
    CHECK(norm > 0, "%s: nonzero gradient for the %s", p->hd->name, what);
    for (int64_t k = 0; k < total; k++) dir[k] = (float)(dir[k] / norm);
    CHECK(fd_agreement(p, set, dir, norm, what, max_noise), "%s: derivative along the %s gradient", p->hd->name,
          what);
    if (!random) {
        free(dir);
        return;
    }

    sn_rng rng;
    sn_rng_seed(&rng, seed);
    sn_rng_fill_normal(&rng, dir, total, 0, 1);
    double dn = 0, analytic = 0;
    for (int64_t k = 0; k < total; k++) dn += (double)dir[k] * dir[k];
    off = 0;
    for (int i = 0; i < set->n; i++) {
        sn_tensor *t = set->items[i];
        for (int64_t k = 0; k < t->numel; k++) {
            dir[off + k] = (float)(dir[off + k] / sqrt(dn));
            analytic += (double)t->grad[k] * dir[off + k];
        }
        off += t->numel;
    }
    CHECK(fd_agreement(p, set, dir, analytic, what, max_noise), "%s: derivative of the %s along a random direction",
          p->hd->name, what);
    free(dir);
}

/* Every parameter must receive a gradient (a disconnected one would pass the
 * directional checks unnoticed). */
static void check_all_reached(const head *hd)
{
    for (int i = 0; i < hd->params.n; i++) {
        const sn_tensor *t = hd->params.items[i];
        double s = 0;
        for (int64_t k = 0; k < t->numel; k++) s += fabs(t->grad[k]);
        CHECK(s > 0, "%s: parameter %s gets a gradient", hd->name, t->name);
    }
}

static void test_head(sn_ctx *ctx, head_kind kind, const char *name, int64_t c_out, uint64_t seed)
{
    head hd;
    CHECK(head_init(ctx, &hd, kind, name, C, c_out, seed) == SN_OK, "%s init: %s", name, sn_ctx_error(ctx));
    if (sn_ctx_status(ctx)) return;
    int64_t shape[4] = {N, H, W, C};
    char xname[64];
    snprintf(xname, sizeof xname, "%s.input", name);
    sn_tensor *x = sn_param_new(ctx, xname, 4, shape);
    fill_normal(x, seed + 1, 1.0f);

    /* Shapes, evaluation mode without a tape, training mode with one. */
    bool old = sn_set_grad_enabled(ctx, false);
    sn_tensor *y = head_forward(ctx, &hd, x, false);
    CHECK(y && y->ndim == 4 && y->shape[0] == N && y->shape[1] == H && y->shape[2] == W && y->shape[3] == c_out,
          "%s eval output is %dx%dx%dx%lld: %s", name, N, H, W, (long long)c_out, sn_ctx_error(ctx));
    bool finite = y != NULL;
    for (int64_t i = 0; y && i < y->numel; i++) finite &= isfinite(y->data[i]) != 0;
    CHECK(finite && sn_tape_size(ctx) == 0, "%s eval output finite, nothing recorded", name);
    sn_set_grad_enabled(ctx, old);
    sn_step_end(ctx);
    y = head_forward(ctx, &hd, x, true);
    CHECK(y && y->shape[3] == c_out && y->requires_grad && sn_tape_size(ctx) > 0, "%s train output recorded: %s",
          name, sn_ctx_error(ctx));
    sn_step_end(ctx);

    problem p = {.ctx = ctx, .hd = &hd, .x = x, .out_n = (int64_t)N * H * W * c_out};
    p.r = random_floats(p.out_n, seed + 2);
    sn_zero_grad(hd.params.items, hd.params.n);
    sn_zero_grad(&x, 1);
    double l0 = loss_of(&p, true, NULL);
    CHECK(isfinite(l0), "%s: finite loss %g", name, l0);
    check_all_reached(&hd);
    sn_param_set in = {0};
    sn_param_set_add(&in, x);
    check_group(&p, &in, "input", seed + 3, true, INFINITY);
    check_group(&p, &hd.params, "params", seed + 4, true, INFINITY);
    /* And each parameter tensor alone along its gradient, so that a small
     * one (GCU's scales, a bias) cannot hide behind the large ones; here
     * the step may not shrink until noise covers a 1% error. PPM's pooled
     * maps are a few cells per channel, so each step crosses BN-ReLU kinks
     * and its difference converges only at steps where the noise is a few
     * percent: it gets 4%. */
    for (int i = 0; i < hd.params.n; i++) {
        sn_param_set one = {0};
        sn_param_set_add(&one, hd.params.items[i]);
        check_group(&p, &one, hd.params.items[i]->name, seed + 5 + (uint64_t)i, false, kind == PPM ? 4e-2 : 5e-3);
        sn_param_set_free(&one);
    }
    sn_param_set_free(&in);
    free(p.r);

    /* The analytic parameter count is the number of learnable values. */
    sn_cost cost = head_cost(&hd, H, W);
    CHECK(cost.params == sn_param_set_numel(&hd.params), "%s: cost counts %lld parameters, the head has %lld", name,
          (long long)cost.params, (long long)sn_param_set_numel(&hd.params));
    CHECK(cost.madds > 0, "%s: %g multiply-adds", name, cost.madds);
    head_free(&hd);
}

/* ---- A2 and Non-local against their formulas ---------------------------------- */
enum { RN = 2, RH = 3, RW = 4, RC = 3, RM = 2, RK = 2 };
#define RP (RH * RW)

/* x_i . W[:, o] + b[o] for a 1x1 conv weight {ci, co}. */
static double lin(const double *x, const float *w, const float *b, int64_t ci, int64_t co, int64_t o)
{
    double s = b ? b[o] : 0;
    for (int64_t c = 0; c < ci; c++) s += x[c] * w[c * co + o];
    return s;
}

/* out_i = b_out + z_i W_out + (x_i or x_i W_proj) for one sample. */
static void finish(const double z[RP][RM], const double *x, const sn_conv *out, const sn_conv *proj, bool has_proj,
                   int64_t co, double *y)
{
    for (int i = 0; i < RP; i++)
        for (int64_t o = 0; o < co; o++)
            y[i * co + o] = lin(z[i], out->w->data, out->b->data, RM, co, o) +
                            (has_proj ? lin(x + i * RC, proj->w->data, NULL, RC, co, o) : x[i * RC + o]);
}

static void a2_naive(const sn_a2_head *m, const double *x, double *y)
{
    double phi[RP][RM], th[RP][RK], rho[RP][RK], g[RK][RM] = {{0}}, z[RP][RM];
    for (int i = 0; i < RP; i++) {
        for (int j = 0; j < RM; j++) phi[i][j] = lin(x + i * RC, m->phi.w->data, m->phi.b->data, RC, RM, j);
        for (int k = 0; k < RK; k++) th[i][k] = lin(x + i * RC, m->theta.w->data, NULL, RC, RK, k);
        for (int k = 0; k < RK; k++) rho[i][k] = lin(x + i * RC, m->rho.w->data, m->rho.b->data, RC, RK, k);
    }
    /* gather: G = phi^T softmax_over_pixels(theta) */
    for (int k = 0; k < RK; k++) {
        double s = 0;
        for (int i = 0; i < RP; i++) s += exp(th[i][k]);
        for (int i = 0; i < RP; i++)
            for (int j = 0; j < RM; j++) g[k][j] += exp(th[i][k]) / s * phi[i][j];
    }
    /* distribute: z_i = sum_k softmax_over_k(rho_i)_k G_k */
    for (int i = 0; i < RP; i++) {
        double s = 0;
        for (int k = 0; k < RK; k++) s += exp(rho[i][k]);
        for (int j = 0; j < RM; j++) {
            z[i][j] = 0;
            for (int k = 0; k < RK; k++) z[i][j] += exp(rho[i][k]) / s * g[k][j];
        }
    }
    finish((const double(*)[RM])z, x, &m->out, &m->proj, m->has_proj, m->c_out, y);
}

static void nonlocal_naive(const sn_nonlocal_head *m, const double *x, double *y)
{
    double q[RP][RK], k[RP][RK], v[RP][RM], z[RP][RM];
    for (int i = 0; i < RP; i++) {
        for (int a = 0; a < RK; a++) q[i][a] = lin(x + i * RC, m->theta.w->data, m->theta.b->data, RC, RK, a);
        for (int a = 0; a < RK; a++) k[i][a] = lin(x + i * RC, m->phi.w->data, m->phi.b->data, RC, RK, a);
        for (int a = 0; a < RM; a++) v[i][a] = lin(x + i * RC, m->g.w->data, m->g.b->data, RC, RM, a);
    }
    for (int i = 0; i < RP; i++) {
        double f[RP], s = 0;
        for (int j = 0; j < RP; j++) {
            f[j] = 0;
            for (int a = 0; a < RK; a++) f[j] += q[i][a] * k[j][a];
            f[j] = exp(f[j]);
            s += f[j];
        }
        for (int a = 0; a < RM; a++) {
            z[i][a] = 0;
            for (int j = 0; j < RP; j++) z[i][a] += f[j] / s * v[j][a];
        }
    }
    finish((const double(*)[RM])z, x, &m->out, &m->proj, m->has_proj, m->c_out, y);
}

static void test_reference(sn_ctx *ctx, head_kind kind, const char *name, int64_t c_out)
{
    head hd;
    sn_rng rng;
    sn_rng_seed(&rng, 77);
    hd = (head){.name = name, .kind = kind, .c_in = RC, .c_out = c_out};
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &hd.params, .buffers = &hd.buffers};
    int rc = kind == A2 ? sn_a2_init(&b, &hd.m.a2, RC, c_out, RM, RK) : sn_nonlocal_init(&b, &hd.m.nl, RC, c_out, RM, RK);
    CHECK(rc == SN_OK, "%s tiny init: %s", name, sn_ctx_error(ctx));
    if (rc) return;
    /* Biases too (they start at zero). */
    for (int i = 0; i < hd.params.n; i++) sn_rng_fill_normal(&rng, hd.params.items[i]->data, hd.params.items[i]->numel, 0, 0.7f);
    sn_tensor *x = leaf4(ctx, RN, RH, RW, RC, 78);
    sn_tensor *y = head_forward(ctx, &hd, x, false);
    CHECK(y != NULL, "%s tiny forward: %s", name, sn_ctx_error(ctx));
    if (y) {
        double *xd = to_f64(x->data, x->numel), *want = malloc(sizeof(double) * (size_t)y->numel);
        for (int s = 0; s < RN; s++) {
            if (kind == A2) a2_naive(&hd.m.a2, xd + s * RP * RC, want + s * RP * c_out);
            else nonlocal_naive(&hd.m.nl, xd + s * RP * RC, want + s * RP * c_out);
        }
        double e = rel_err_f32_f64(y->data, want, y->numel, 1e-6);
        CHECK(e < 1e-5, "%s (c_out %lld) forward against the naive formula: rel err %g", name, (long long)c_out, e);
        free(xd), free(want);
    }
    sn_step_end(ctx);
    head_free(&hd);
}

/* ---- costs --------------------------------------------------------------- */
static void test_cost_scaling(sn_ctx *ctx)
{
    head a2, nl;
    CHECK(head_init(ctx, &a2, A2, "a2c", 8, 8, 5) == SN_OK && head_init(ctx, &nl, NONLOCAL, "nlc", 8, 8, 6) == SN_OK,
          "cost heads init");
    double ra = sn_a2_cost(&a2.m.a2, 64, 64).madds / sn_a2_cost(&a2.m.a2, 32, 32).madds;
    double rn = sn_nonlocal_cost(&nl.m.nl, 64, 64).madds / sn_nonlocal_cost(&nl.m.nl, 32, 32).madds;
    printf("  multiply-adds 64x64 / 32x32: A2 %.4f, Non-local %.4f\n", ra, rn);
    CHECK(fabs(ra - 4) < 1e-12, "A2 multiply-adds grow linearly with HW: ratio %g for 4x the pixels", ra);
    CHECK(rn > 15 && rn < 16, "Non-local multiply-adds grow quadratically with HW: ratio %g for 4x the pixels", rn);
    /* Exactly: the HW x HW products are 16x, the 1x1 convs 4x. */
    double p = 32.0 * 32, quad = p * p * (3 + 4), lin_part = sn_nonlocal_cost(&nl.m.nl, 32, 32).madds - quad;
    CHECK_NEAR(sn_nonlocal_cost(&nl.m.nl, 64, 64).madds, 16 * quad + 4 * lin_part, 1e-12, "Non-local 16x + 4x split");
    CHECK(sn_a2_cost(&a2.m.a2, 64, 64).madds < sn_nonlocal_cost(&nl.m.nl, 64, 64).madds / 100,
          "A2 is far cheaper than Non-local at 64x64");
    head_free(&a2);
    head_free(&nl);
}

/* ---- errors -------------------------------------------------------------- */
static void test_errors(sn_ctx *ctx)
{
    head hd;
    CHECK(head_init(ctx, &hd, GLORE, "gerr", 8, 8, 3) == SN_OK, "init");
    sn_tensor *x = leaf4(ctx, 1, 4, 4, 5, 1);
    CHECK(!sn_glore_forward(ctx, &hd.m.glore, x, true) && sn_ctx_status(ctx) == SN_ERR_SHAPE &&
              strstr(sn_ctx_error(ctx), "1x4x4x5") && strstr(sn_ctx_error(ctx), "8 channels"),
          "wrong channel count fails naming the shape: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_step_end(ctx);
    head_free(&hd);

    sn_rng rng;
    sn_rng_seed(&rng, 1);
    sn_param_set ps = {0}, bs = {0};
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &ps, .buffers = &bs, .prefix = "sgr_bad"};
    float adj[4] = {1, -0.5f, -0.5f, 1};
    sn_sgr_head sgr;
    CHECK(sn_sgr_init(&b, &sgr, 4, 4, 2, 3, 3, adj) == SN_ERR_ARG && strstr(sn_ctx_error(ctx), "(0, 1)") &&
              strstr(sn_ctx_error(ctx), "sgr_bad"),
          "negative prior adjacency is refused naming the entry: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_a2_head a2;
    CHECK(sn_a2_init(&b, &a2, 4, 4, 0, 2) == SN_ERR_ARG, "zero channels refused: %s", sn_ctx_error(ctx));
    sn_ctx_clear_error(ctx);
    sn_param_set_free(&ps);
    sn_param_set_free(&bs);
}

/* ---- defaults and the SGR prior ---------------------------------------------- */
static void test_defaults(sn_ctx *ctx)
{
    sn_rng rng;
    sn_rng_seed(&rng, 3);
    sn_param_set ps = {0}, bs = {0};
    sn_nn_builder b = {.ctx = ctx, .rng = &rng, .params = &ps, .buffers = &bs, .prefix = "gcu_default"};
    sn_gcu_head g;
    CHECK(sn_gcu_init(&b, &g, 4, 5, 0, NULL, 3) == SN_OK && g.n_units == 4 && g.units[0].vertices == 2 &&
              g.units[3].vertices == 32,
          "GCU default: units of 2, 4, 8, 32 vertices: %s", sn_ctx_error(ctx));
    sn_tensor *x = leaf4(ctx, 1, 8, 8, 4, 9);
    sn_tensor *y = sn_gcu_forward(ctx, &g, x, false);
    CHECK(y && y->shape[1] == 8 && y->shape[2] == 8 && y->shape[3] == 5, "GCU default forward: %s", sn_ctx_error(ctx));
    CHECK(g.fuse.c_in == 4 + 4 * 3, "GCU fuses the input with 4 units of 3 channels");
    sn_step_end(ctx);

    /* SGR normalises its prior to D^-1/2 A D^-1/2 (row sums). */
    float a[9] = {1, 2, 0, 2, 1, 1, 0, 1, 3};
    sn_sgr_head sgr;
    snprintf(b.prefix, sizeof b.prefix, "sgr_prior");
    CHECK(sn_sgr_init(&b, &sgr, 4, 4, 3, 2, 2, a) == SN_OK, "SGR init: %s", sn_ctx_error(ctx));
    double deg[3] = {3, 4, 4}, worst = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) worst = fmax(worst, fabs(sgr.adj->data[i * 3 + j] - a[i * 3 + j] / sqrt(deg[i] * deg[j])));
    CHECK(worst < 1e-6, "SGR prior normalised: max error %g", worst);
    CHECK(!sgr.adj->requires_grad && sn_param_set_find(&bs, "sgr_prior.adjacency") != NULL,
          "the prior is a buffer, not learned");
    sn_param_set_free(&ps);
    sn_param_set_free(&bs);
}

int main(void)
{
    sn_ctx *ctx = test_ctx();
    test_reference(ctx, A2, "a2_ref", RC);
    test_reference(ctx, A2, "a2_ref_proj", 5);
    test_reference(ctx, NONLOCAL, "nl_ref", RC);
    test_reference(ctx, NONLOCAL, "nl_ref_proj", 4);
    test_head(ctx, A2, "a2", C, 100);
    test_head(ctx, A2, "a2_proj", 6, 110);
    test_head(ctx, NONLOCAL, "nonlocal", C, 200);
    test_head(ctx, GLORE, "glore", 6, 300);
    test_head(ctx, GCU, "gcu", C, 400);
    test_head(ctx, SGR, "sgr", C, 500);
    test_head(ctx, SGR, "sgr_proj", 6, 510);
    test_head(ctx, PPM, "ppm", 6, 600);
    test_cost_scaling(ctx);
    test_defaults(ctx);
    test_errors(ctx);
    sn_ctx_destroy(ctx);
    return check_summary("heads");
}
