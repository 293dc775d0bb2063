/* Batch normalization of NHWC tensors whose channel count is not a multiple
 * of 16, our own kernels. For those oneDNN 2.6 falls back to its avx2 NHWC
 * kernel (bnorm_tbb_jit:avx2 at 40 channels, bnorm_jit:avx512_core at 48),
 * which costs 1.7x per element at 8 channels (the supernet's /4 level at
 * F=8) what the avx512 one costs at 16. Measured, oneDNN -> ours, context of
 * 2 threads: 2x32x32x8 forward 8.8 -> 4.5 us, backward 10.5 -> 5.3 us;
 * 2x64x64x20 70 -> 48 and 100 -> 66 us; supernet step (L=12 F=8, 128x128,
 * recompute, alternating step by step in one process) 2.83 -> 2.69 s.
 *
 * Here the tensor is read as flat floats in periods of lcm(C, 16): lane j of
 * a period always holds channel j % C, so every pass is full-width vector
 * arithmetic with per-lane constants (8 channels: 2 pixels per vector). Sums
 * are kept in float per lane for 64 periods at a time, then added into
 * double, as the statistics of a large map need (80x80x2 = 12800 terms per
 * channel). */
#include <math.h>
#include <string.h>

#include "ops/bn_narrow.h"
#include "ops/vmath.h"

#define MAX_PERIOD (SN_BN_NARROW_MAX_C * SN_VL) /* lcm(C, 16) <= 16 C */
#define FLUSH 64                               /* periods per float partial sum */

bool sn_bn_narrow_suits(const sn_bn_shape *s) { return s->c % SN_VL != 0 && s->c < SN_BN_NARROW_MAX_C; }

static int64_t period_of(int64_t c)
{
    int64_t a = c, b = SN_VL;
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return c / a * SN_VL;
}

/* A per-channel value spread over one period: lane i holds v[i % c]. */
static void spread(const double *v, int64_t c, int64_t period, float *out)
{
    for (int64_t i = 0; i < period; i++) out[i] = (float)v[i % c];
}

static inline sn_vf term(const float *a, sn_vf ca, const float *b, sn_vf cb, int64_t i)
{
    sn_vf f = sn_vload(a + i) - ca;
    return b ? f * (sn_vload(b + i) - cb) : f;
}

/* Float lane sums of periods [p0, p1) into acc. One vector per period (C
 * divides 16, the supernet's case): four register accumulators, or the sums
 * wait on each other's latency. */
static void lane_sums(const float *a, const float *ca, const float *b, const float *cb, int64_t nv, int64_t p0,
                      int64_t p1, sn_vf *acc)
{
    if (nv == 1) {
        sn_vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, c0 = ca ? sn_vload(ca) : a0, c1 = b ? sn_vload(cb) : a0;
        int64_t p = p0;
        for (; p + 4 <= p1; p += 4) {
            a0 += term(a, c0, b, c1, p * SN_VL);
            a1 += term(a, c0, b, c1, (p + 1) * SN_VL);
            a2 += term(a, c0, b, c1, (p + 2) * SN_VL);
            a3 += term(a, c0, b, c1, (p + 3) * SN_VL);
        }
        for (; p < p1; p++) a0 += term(a, c0, b, c1, p * SN_VL);
        acc[0] = (a0 + a1) + (a2 + a3);
        return;
    }
    sn_vf zero = {0};
    memset(acc, 0, (size_t)nv * sizeof(sn_vf));
    for (int64_t p = p0; p < p1; p++)
        for (int64_t v = 0; v < nv; v++) {
            sn_vf cav = ca ? sn_vload(ca + v * SN_VL) : zero, cbv = b ? sn_vload(cb + v * SN_VL) : zero;
            acc[v] += term(a, cav, b, cbv, (p * nv + v) * SN_VL);
        }
}

/* Per-channel sums, in double, of (a - ca) * (b - cb), or of (a - ca) when b
 * is NULL, over `total` floats; ca and cb are per-lane patterns (ca NULL:
 * zero). */
static void channel_sums(const float *a, const float *ca, const float *b, const float *cb, int64_t c,
                         int64_t period, int64_t total, double *sum)
{
    int64_t nv = period / SN_VL, periods = total / period;
    double lane[MAX_PERIOD];
    sn_vf acc[MAX_PERIOD / SN_VL];
    memset(lane, 0, (size_t)period * sizeof(double));
    for (int64_t p0 = 0; p0 < periods; p0 += FLUSH) {
        lane_sums(a, ca, b, cb, nv, p0, p0 + FLUSH < periods ? p0 + FLUSH : periods, acc);
        for (int64_t v = 0; v < nv; v++)
            for (int j = 0; j < SN_VL; j++) lane[v * SN_VL + j] += acc[v][j];
    }
    for (int64_t k = 0; k < c; k++) sum[k] = 0;
    for (int64_t i = 0; i < period; i++) sum[i % c] += lane[i];
    for (int64_t i = periods * period; i < total; i++) { /* the tail: whole pixels */
        int64_t j = i % period;
        double f = (double)a[i] - (ca ? ca[j] : 0.0f);
        sum[i % c] += b ? f * ((double)b[i] - cb[j]) : f;
    }
}

/* out = (accumulate ? out : 0) + k1 * a + k2 * b + k3 over periods [p0, p1),
 * constants per lane (b NULL: no k2 term). */
static void affine_periods(const float *a, const float *b, const float *k1, const float *k2, const float *k3,
                           int64_t period, int64_t p0, int64_t p1, float *out, bool accumulate)
{
    for (int64_t p = p0; p < p1; p++)
        for (int64_t j = 0; j < period; j += SN_VL) {
            int64_t i = p * period + j;
            sn_vf r = sn_vload(k1 + j) * sn_vload(a + i) + sn_vload(k3 + j);
            if (b) r += sn_vload(k2 + j) * sn_vload(b + i);
            if (accumulate) r += sn_vload(out + i);
            sn_vstore(out + i, r);
        }
}

/* The same over `total` floats, threads for large maps (an OpenMP region
 * with a false `if` still costs a call into the runtime, so small maps take
 * the plain call). */
static void affine(const float *a, const float *b, const float *k1, const float *k2, const float *k3,
                   int64_t period, int64_t total, float *out, bool accumulate)
{
    int64_t periods = total / period;
    if (total > SN_PAR_MIN * 8) {
#pragma omp parallel for schedule(static)
        for (int64_t p = 0; p < periods; p++) affine_periods(a, b, k1, k2, k3, period, p, p + 1, out, accumulate);
    } else {
        affine_periods(a, b, k1, k2, k3, period, 0, periods, out, accumulate);
    }
    for (int64_t i = periods * period; i < total; i++) {
        int64_t j = i % period;
        float r = k1[j] * a[i] + k3[j] + (b ? k2[j] * b[i] : 0.0f);
        out[i] = accumulate ? out[i] + r : r;
    }
}

void sn_bn_narrow_forward(const sn_bn_shape *s, const float *x, const float *gamma, const float *beta, float *mean,
                          float *var, float *y)
{
    int64_t c = s->c, period = period_of(c), m = s->n * s->h * s->w, total = m * c;
    double mu[SN_BN_NARROW_MAX_C], v[SN_BN_NARROW_MAX_C], a[SN_BN_NARROW_MAX_C], b[SN_BN_NARROW_MAX_C];
    float centre[MAX_PERIOD] = {0}, k1[MAX_PERIOD], k3[MAX_PERIOD]; /* = {0}: for GCC's flow analysis */
    for (int64_t k = 0; k < c; k++) mu[k] = mean[k], v[k] = var[k];
    if (!s->global_stats) {
        /* two passes: the mean, then squares about it (no cancellation) */
        channel_sums(x, NULL, NULL, NULL, c, period, total, mu);
        for (int64_t k = 0; k < c; k++) mu[k] /= (double)m;
        spread(mu, c, period, centre);
        channel_sums(x, centre, x, centre, c, period, total, v);
        for (int64_t k = 0; k < c; k++) {
            v[k] /= (double)m;
            mean[k] = (float)mu[k], var[k] = (float)v[k];
        }
    }
    for (int64_t k = 0; k < c; k++) {
        a[k] = (gamma ? gamma[k] : 1.0) / sqrt(v[k] + s->eps);
        b[k] = (beta ? beta[k] : 0.0) - a[k] * mu[k];
    }
    spread(a, c, period, k1);
    spread(b, c, period, k3);
    affine(x, NULL, k1, NULL, k3, period, total, y, false);
}

void sn_bn_narrow_backward(const sn_bn_shape *s, const float *x, const float *dy, const float *gamma,
                           const float *mean, const float *var, float *dx, bool accumulate, float *dgamma,
                           float *dbeta)
{
    int64_t c = s->c, period = period_of(c), m = s->n * s->h * s->w, total = m * c;
    double mu[SN_BN_NARROW_MAX_C], s1[SN_BN_NARROW_MAX_C], s2[SN_BN_NARROW_MAX_C];
    double ka[SN_BN_NARROW_MAX_C], kb[SN_BN_NARROW_MAX_C], kc[SN_BN_NARROW_MAX_C];
    float centre[MAX_PERIOD] = {0}, k1[MAX_PERIOD], k2[MAX_PERIOD], k3[MAX_PERIOD]; /* = {0}: as above */
    for (int64_t k = 0; k < c; k++) mu[k] = mean[k];
    spread(mu, c, period, centre);
    channel_sums(dy, NULL, NULL, NULL, c, period, total, s1); /* sum dy */
    channel_sums(dy, NULL, x, centre, c, period, total, s2);  /* sum dy (x - mu) */
    /* dx = g r (dy - s1/m - (x - mu) r^2 s2/m) = ka dy + kb x + kc */
    for (int64_t k = 0; k < c; k++) {
        double r = 1.0 / sqrt((double)var[k] + s->eps), g = (gamma ? gamma[k] : 1.0) * r;
        ka[k] = g;
        kb[k] = s->global_stats ? 0.0 : -g * r * r * s2[k] / (double)m;
        kc[k] = s->global_stats ? 0.0 : -g * s1[k] / (double)m - kb[k] * mu[k];
        if (dgamma) dgamma[k] += (float)(s2[k] * r);
        if (dbeta) dbeta[k] += (float)s1[k];
    }
    spread(ka, c, period, k1);
    spread(kb, c, period, k2);
    spread(kc, c, period, k3);
    affine(dy, s->global_stats ? NULL : x, k1, k2, k3, period, total, dx, accumulate);
}
