/* NHWC depthwise convolution (channel multiplier 1): forward, backward data
 * and backward weights, for the cases where oneDNN 2.6 has no fast path
 * (DESIGN.md: dilated depthwise in every direction, and the backward of
 * undilated kernels larger than 3x3).
 *
 * Both convolution directions are one "gather": every element of the
 * destination sums source elements times taps of the kernel.
 *  - forward: dst = y, src = x, tap k of output o reads x at o*s - pad + k*d;
 *  - backward data: dst = dx, src = dy, tap k of input i reads dy at
 *    (i + pad - k*d) / s where that divides. For stride 1 this is the forward
 *    with the kernel rotated by 180 degrees; for stride s the inputs of one
 *    phase (i mod s) share their set of taps, and consecutive inputs of a
 *    phase read consecutive outputs. Gathering (instead of scattering from
 *    dy) makes the parallel loop over destination rows race-free.
 * Along the width, destinations are grouped once per call into segments that
 * share the same tap range (borders vs interior), so the inner kernels
 * (depthwise_kernels.h) run without bounds checks: tiles of up to 8 pixels x
 * one channel block (16/8/1 lanes), accumulators in registers.
 *
 * Backward weights: dw[ky,kx,c] += sum over n,oy,ox of x * dy. Work items
 * are (row chunk, channel block); each row chunk owns a private slice of
 * partial sums in a stack buffer (no malloc on the hot path), reduced at the
 * end. When the slices would not fit the buffer (large C, where channel
 * blocks alone give enough parallelism), there is one row chunk and items
 * accumulate straight into dw: different channel blocks never collide. */
/* The kernels need FMAs (a += x * w contracted) to reach the target of
 * DESIGN.md (layer c): the build passes -ffp-contract=fast (CMakeLists.txt). */

#include <omp.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "ops/depthwise.h"
#include "ops/ops_common.h"

enum {
    DW_TILE_MAX = 8,      /* pixels (forward) or taps (weights) per register tile */
    DW_SEG_MAX = 128,     /* width segments built at once (2k+1 per phase suffice) */
    DW_WBUF_FLOATS = 8192, /* stack buffer for per-chunk weight partials (32 KiB) */
    DW_WROWS = 8           /* output rows per block of the weight gradient */
};
/* Below this many multiply-adds the fork/join of OpenMP costs more than it saves. */
#define DW_PAR_MIN_FMAS ((int64_t)1 << 16)

typedef float dw_v16 __attribute__((vector_size(64)));
typedef float dw_v8 __attribute__((vector_size(32)));

/* One register tile of the gather (strides in floats). */
typedef struct dw_tile {
    const float *in;
    ptrdiff_t in_ky, in_kx, in_t;
    const float *w;
    ptrdiff_t w_ky, w_kx;
    int nky, nkx;
    float *out;
    ptrdiff_t out_t;
    const float *init; /* bias of the channel block, or NULL for zero */
    bool accumulate;   /* start from out instead of init */
} dw_tile;

/* One weight-gradient job: M taps of one kernel row over rows x pixels. */
typedef struct dw_wtile {
    const float *x;
    ptrdiff_t x_row, x_t, x_kx;
    const float *dy;
    ptrdiff_t dy_row, dy_t;
    int64_t nrows, npix;
    float *out;
    ptrdiff_t out_kx;
} dw_wtile;

#define DW_V dw_v16
#define DW_FN(name) name##_16
#include "ops/depthwise_kernels.h"
#undef DW_V
#undef DW_FN
#define DW_V dw_v8
#define DW_FN(name) name##_8
#include "ops/depthwise_kernels.h"
#undef DW_V
#undef DW_FN
#define DW_V float
#define DW_FN(name) name##_1
#include "ops/depthwise_kernels.h"
#undef DW_V
#undef DW_FN

/* ---- channel blocks: 16 lanes, then one of 8, then single channels ------- */
static int64_t block_count(int64_t c) { return c / 16 + (c % 16 >= 8) + c % 8; }

/* Width (16, 8 or 1) and first channel of block b. */
static int block_of(int64_t c, int64_t b, int64_t *c0)
{
    int64_t n16 = c / 16, n8 = c % 16 >= 8;
    if (b < n16) return *c0 = 16 * b, 16;
    if (b < n16 + n8) return *c0 = 16 * n16, 8;
    *c0 = 16 * n16 + 8 * n8 + (b - n16 - n8);
    return 1;
}

static void run_tile(int width, const dw_tile *a, int T)
{
    if (width == 16) tile_16(a, T);
    else if (width == 8) tile_8(a, T);
    else tile_1(a, T);
}

static void run_wgrad(int width, const dw_wtile *a, int M)
{
    if (width == 16) wgrad_16(a, M);
    else if (width == 8) wgrad_8(a, M);
    else wgrad_1(a, M);
}

/* ---- geometry of one axis ------------------------------------------------ */
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

/* The taps of one destination coordinate: tap j (0 <= j < nk) is kernel
 * index k0 + j*kstep and reads source coordinate i0 + j*istep. Consecutive
 * destinations of a segment (step ostep) read sources itstep apart. */
typedef struct dw_axis {
    bool transposed; /* backward data: destination = input side */
    int k, s, d, pad;
    int64_t src_n, dst_n;
    int kstep;
    int64_t istep, ostep, itstep;
} dw_axis;

typedef struct dw_seg {
    int64_t o0, n, i0;
    int k0, nk;
} dw_seg;

static dw_axis axis_fwd(int k, int s, int d, int pad, int64_t in_n, int64_t out_n)
{
    return (dw_axis){false, k, s, d, pad, in_n, out_n, 1, d, 1, s};
}

/* Taps k of input i satisfy k*d = i + pad (mod s): an arithmetic progression
 * with step s/gcd(s,d); the output read moves by d/gcd(s,d) against it. */
static dw_axis axis_bwd(int k, int s, int d, int pad, int64_t in_n, int64_t out_n)
{
    int g = gcd(s, d);
    return (dw_axis){true, k, s, d, pad, out_n, in_n, s / g, -(int64_t)(d / g), s, 1};
}

static dw_seg taps_fwd(const dw_axis *a, int64_t o)
{
    dw_seg t = {0};
    int64_t lo = o * a->s - a->pad, hi = a->src_n - 1 - lo;
    if (hi < 0) return t;
    int64_t kmin = lo >= 0 ? 0 : ceil_div(-lo, a->d), kmax = hi / a->d;
    if (kmax > a->k - 1) kmax = a->k - 1;
    if (kmin > kmax) return t;
    t.k0 = (int)kmin, t.nk = (int)(kmax - kmin + 1), t.i0 = lo + kmin * a->d;
    return t;
}

static dw_seg taps_bwd(const dw_axis *a, int64_t i)
{
    dw_seg t = {0};
    int64_t num = i + a->pad; /* = o*s + k*d */
    int base = -1;
    for (int k = 0; k < a->kstep && k < a->k; k++)
        if ((num - (int64_t)k * a->d) % a->s == 0) {
            base = k;
            break;
        }
    if (base < 0) return t;
    int64_t kmin = num - (a->src_n - 1) * a->s; /* o <= src_n - 1 */
    kmin = kmin > 0 ? ceil_div(kmin, a->d) : 0;
    int64_t kmax = num / a->d; /* o >= 0 */
    if (kmax > a->k - 1) kmax = a->k - 1;
    int64_t k0 = base >= kmin ? base : base + ceil_div(kmin - base, a->kstep) * a->kstep;
    if (k0 > kmax) return t;
    t.k0 = (int)k0, t.nk = (int)((kmax - k0) / a->kstep + 1), t.i0 = (num - k0 * a->d) / a->s;
    return t;
}

static dw_seg axis_taps(const dw_axis *a, int64_t o) { return a->transposed ? taps_bwd(a, o) : taps_fwd(a, o); }

/* Groups destination coordinates (phase by phase) into runs that share a
 * tap range. Resumable: fills at most DW_SEG_MAX segments per call and
 * returns how many (0 when the axis is done). */
typedef struct dw_cursor {
    int64_t phase, o;
} dw_cursor;

static int build_segs(const dw_axis *a, dw_cursor *c, dw_seg *segs)
{
    int n = 0;
    while (c->phase < a->ostep && c->phase < a->dst_n) {
        if (c->o >= a->dst_n) {
            c->o = ++c->phase;
            continue;
        }
        dw_seg t = axis_taps(a, c->o);
        dw_seg *last = n ? &segs[n - 1] : NULL;
        if (last && last->k0 == t.k0 && last->nk == t.nk && c->o == last->o0 + last->n * a->ostep &&
            (t.nk == 0 || t.i0 == last->i0 + last->n * a->itstep)) {
            last->n++;
        } else {
            if (n == DW_SEG_MAX) return n;
            t.o0 = c->o, t.n = 1;
            segs[n++] = t;
        }
        c->o += a->ostep;
    }
    return n;
}

/* ---- forward and backward data: the gather ------------------------------- */
typedef struct dw_gather {
    int64_t n, c, src_h, src_w, dst_h, dst_w;
    int kw;
    dw_axis ax_h, ax_w;
    const float *src, *w, *bias;
    float *dst;
    bool accumulate;
} dw_gather;

static void gather_row(const dw_gather *g, const dw_seg *segs, int nseg, int64_t n, int64_t oy)
{
    const int64_t C = g->c;
    dw_seg v = axis_taps(&g->ax_h, oy);
    if (v.nk == 0 && g->accumulate) return;
    const float *src_row = g->src + (n * g->src_h + v.i0) * g->src_w * C;
    float *dst_row = g->dst + (n * g->dst_h + oy) * g->dst_w * C;
    for (int64_t b = 0, nb = block_count(C); b < nb; b++) {
        int64_t c0;
        int width = block_of(C, b, &c0);
        for (int si = 0; si < nseg; si++) {
            const dw_seg *h = &segs[si];
            if (h->nk == 0 && g->accumulate) continue;
            for (int64_t t0 = 0; t0 < h->n; t0 += DW_TILE_MAX) {
                int T = (int)(h->n - t0 < DW_TILE_MAX ? h->n - t0 : DW_TILE_MAX);
                dw_tile a = {
                    .in = src_row + (h->i0 + t0 * g->ax_w.itstep) * C + c0,
                    .in_ky = (ptrdiff_t)(g->ax_h.istep * g->src_w * C),
                    .in_kx = (ptrdiff_t)(g->ax_w.istep * C),
                    .in_t = (ptrdiff_t)(g->ax_w.itstep * C),
                    .w = g->w + ((int64_t)v.k0 * g->kw + h->k0) * C + c0,
                    .w_ky = (ptrdiff_t)((int64_t)g->ax_h.kstep * g->kw * C),
                    .w_kx = (ptrdiff_t)(g->ax_w.kstep * C),
                    .nky = v.nk,
                    .nkx = h->nk,
                    .out = dst_row + (h->o0 + t0 * g->ax_w.ostep) * C + c0,
                    .out_t = (ptrdiff_t)(g->ax_w.ostep * C),
                    .init = g->bias ? g->bias + c0 : NULL,
                    .accumulate = g->accumulate,
                };
                run_tile(width, &a, T);
            }
        }
    }
}

static void gather(const dw_gather *g, int64_t fmas)
{
    dw_seg segs[DW_SEG_MAX];
    dw_cursor cur = {0, 0};
    int64_t rows = g->n * g->dst_h;
    bool par = fmas >= DW_PAR_MIN_FMAS;
    for (int nseg; (nseg = build_segs(&g->ax_w, &cur, segs)) > 0;) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t r = 0; r < rows; r++) gather_row(g, segs, nseg, r / g->dst_h, r % g->dst_h);
    }
}

static int64_t fma_count(const sn_dw_shape *s) { return s->n * s->oh * s->ow * s->c * s->kh * s->kw; }

void sn_dw_forward(const sn_dw_shape *s, const float *x, const float *w, const float *b, float *y)
{
    const sn_conv_params *p = &s->p;
    dw_gather g = {
        .n = s->n, .c = s->c, .src_h = s->h, .src_w = s->w, .dst_h = s->oh, .dst_w = s->ow, .kw = s->kw,
        .ax_h = axis_fwd(s->kh, p->stride_h, p->dilation_h, p->pad_top, s->h, s->oh),
        .ax_w = axis_fwd(s->kw, p->stride_w, p->dilation_w, p->pad_left, s->w, s->ow),
        .src = x, .w = w, .bias = b, .dst = y, .accumulate = false,
    };
    gather(&g, fma_count(s));
}

void sn_dw_backward_data(const sn_dw_shape *s, const float *dy, const float *w, float *dx, bool accumulate)
{
    const sn_conv_params *p = &s->p;
    dw_gather g = {
        .n = s->n, .c = s->c, .src_h = s->oh, .src_w = s->ow, .dst_h = s->h, .dst_w = s->w, .kw = s->kw,
        .ax_h = axis_bwd(s->kh, p->stride_h, p->dilation_h, p->pad_top, s->h, s->oh),
        .ax_w = axis_bwd(s->kw, p->stride_w, p->dilation_w, p->pad_left, s->w, s->ow),
        .src = dy, .w = w, .bias = NULL, .dst = dx, .accumulate = accumulate,
    };
    gather(&g, fma_count(s));
}

/* ---- backward weights ------------------------------------------------------ */
typedef struct dw_wjob {
    const sn_dw_shape *s;
    const float *x, *dy;
    const dw_seg *segs;
    int nseg;
    int64_t r0, r1; /* rows n*oh + oy of this chunk */
    float *dw, *db; /* where this chunk accumulates */
} dw_wjob;

/* Rows oy in [lo, hi) for which kernel row ky reads inside the input. */
static void valid_rows(const sn_dw_shape *s, int ky, int64_t *lo, int64_t *hi)
{
    int64_t off = (int64_t)ky * s->p.dilation_h - s->p.pad_top; /* iy = oy*stride + off */
    *lo = ceil_div(-off, s->p.stride_h);
    *hi = floor_div(s->h - 1 - off, s->p.stride_h) + 1;
    if (*lo < 0) *lo = 0;
    if (*hi > s->oh) *hi = s->oh;
}

/* Kernel row ky, image n, output rows [a, b), channel block (c0, width). */
static void wgrad_rows(const dw_wjob *j, int ky, int64_t n, int64_t a, int64_t b, int64_t c0, int width)
{
    const sn_dw_shape *s = j->s;
    const int64_t C = s->c;
    int64_t iy = a * s->p.stride_h - s->p.pad_top + (int64_t)ky * s->p.dilation_h;
    for (int si = 0; si < j->nseg; si++) {
        const dw_seg *h = &j->segs[si];
        for (int kc = h->k0; kc < h->k0 + h->nk; kc += DW_TILE_MAX) {
            int M = h->k0 + h->nk - kc < DW_TILE_MAX ? h->k0 + h->nk - kc : DW_TILE_MAX;
            dw_wtile t = {
                .x = j->x + ((n * s->h + iy) * s->w + h->i0 + (int64_t)(kc - h->k0) * s->p.dilation_w) * C + c0,
                .x_row = (ptrdiff_t)((int64_t)s->p.stride_h * s->w * C),
                .x_t = (ptrdiff_t)((int64_t)s->p.stride_w * C),
                .x_kx = (ptrdiff_t)((int64_t)s->p.dilation_w * C),
                .dy = j->dy + ((n * s->oh + a) * s->ow + h->o0) * C + c0,
                .dy_row = (ptrdiff_t)(s->ow * C),
                .dy_t = (ptrdiff_t)C,
                .nrows = b - a,
                .npix = h->n,
                .out = j->dw + ((int64_t)ky * s->kw + kc) * C + c0,
                .out_kx = (ptrdiff_t)C,
            };
            run_wgrad(width, &t, M);
        }
    }
}

/* Rows go in blocks of DW_WROWS so that the x and dy rows of one block stay
 * in L1/L2 while every kernel row ky sweeps them (one image of the 3x3 80x80
 * layer is 1 MiB: sweeping all rows per ky streamed from L3). */
static void wgrad_block(const dw_wjob *j, int64_t c0, int width, bool with_bias)
{
    const sn_dw_shape *s = j->s;
    if (j->r0 >= j->r1) return;
    for (int64_t r0 = j->r0; r0 < j->r1; r0 += DW_WROWS) {
        int64_t r1 = r0 + DW_WROWS < j->r1 ? r0 + DW_WROWS : j->r1;
        for (int ky = 0; ky < s->kh; ky++) {
            int64_t lo, hi;
            valid_rows(s, ky, &lo, &hi);
            for (int64_t n = r0 / s->oh; n <= (r1 - 1) / s->oh; n++) {
                int64_t a = r0 > n * s->oh + lo ? r0 - n * s->oh : lo;
                int64_t b = r1 < n * s->oh + hi ? r1 - n * s->oh : hi;
                if (a < b) wgrad_rows(j, ky, n, a, b, c0, width);
            }
        }
    }
    if (!with_bias || !j->db) return;
    const float *d = j->dy + j->r0 * s->ow * s->c + c0;
    ptrdiff_t C = (ptrdiff_t)s->c;
    int64_t rows = j->r1 - j->r0;
    if (width == 16) bias_sum_16(d, rows, s->ow, C, (ptrdiff_t)s->ow * C, j->db + c0);
    else if (width == 8) bias_sum_8(d, rows, s->ow, C, (ptrdiff_t)s->ow * C, j->db + c0);
    else bias_sum_1(d, rows, s->ow, C, (ptrdiff_t)s->ow * C, j->db + c0);
}

void sn_dw_backward_weights(const sn_dw_shape *s, const float *x, const float *dy, float *dw, float *db)
{
    const int64_t C = s->c, taps = (int64_t)s->kh * s->kw, slice = taps * C + C;
    const int64_t rows = s->n * s->oh, nb = block_count(C);
    const sn_conv_params *p = &s->p;
    dw_axis ax_w = axis_fwd(s->kw, p->stride_w, p->dilation_w, p->pad_left, s->w, s->ow);
    bool par = fma_count(s) >= DW_PAR_MIN_FMAS;
    /* Row chunks: one per thread, as many as have a private slice. */
    int64_t R = par ? omp_get_max_threads() : 1;
    if (R > rows) R = rows;
    if (R * slice > DW_WBUF_FLOATS) R = DW_WBUF_FLOATS / slice;
    if (R < 1) R = 1;
    float buf[DW_WBUF_FLOATS];
    if (R > 1) memset(buf, 0, (size_t)(R * slice) * sizeof *buf);
    dw_seg segs[DW_SEG_MAX];
    dw_cursor cur = {0, 0};
    bool first = true;
    for (int nseg; (nseg = build_segs(&ax_w, &cur, segs)) > 0; first = false) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t item = 0; item < R * nb; item++) {
            int64_t r = item / nb, c0;
            int width = block_of(C, item % nb, &c0);
            dw_wjob j = {s, x, dy, segs, nseg, r * rows / R, (r + 1) * rows / R,
                         R > 1 ? buf + r * slice : dw, R > 1 ? (db ? buf + r * slice + taps * C : NULL) : db};
            wgrad_block(&j, c0, width, first);
        }
    }
    if (R == 1) return;
    for (int64_t r = 0; r < R; r++) {
        const float *part = buf + r * slice;
        for (int64_t i = 0; i < taps * C; i++) dw[i] += part[i];
        if (db)
            for (int64_t i = 0; i < C; i++) db[i] += part[taps * C + i];
    }
}
