/* Backward passes of the 3x3 stride-2 convolution on NHWC / HWIO, register
 * tiled (see conv_stride2.h for when and why).
 *
 * Geometry: input x {n,h,w,ci}, output dy {n,oh,ow,co}; input column
 * ix = 2*ox - pad_left + kx (rows alike).
 *
 * Backward data by column pairs. Pair b holds input columns 2b and 2b+1,
 * L = 2*ci contiguous floats of dx. Output column ox reaches column
 * 2b + q (q = 0, 1) through tap kx when 2b + q = 2*ox - pad_left + kx, i.e.
 * ox = b + (q + pad_left - kx) / 2: each kx serves one q, from column b
 * itself ("same": two taps) or from one neighbour ("near": b - 1 when
 * pad_left = 0, b + 1 when 1; one tap, so only the lanes of one q are
 * nonzero). With the weights rearranged once per call into
 *   comb[ky][same|near][co][L]  (zero where no tap lands),
 * the gradient of a pair row is  sum over ky, part: dy(oy, b + off) comb,
 * a product whose vectors run over the L lanes of the pair. */
#include <omp.h>
#include <string.h>

#include "ops/conv_stride2.h"
#include "ops/onednn/onednn.h"

typedef float s2_vec __attribute__((vector_size(64)));
#define S2_LANES 16
#define S2_LD(v, p) memcpy(&(v), (p), sizeof(s2_vec))
#define S2_ST(p, v) memcpy((p), &(v), sizeof(s2_vec))
/* Pins a loaded vector in a register. Left alone, gcc folds the load into
 * each FMA that uses it (vfmadd231ps mem, ...): 4 loads of the same vector
 * per step, which makes the tiles load-bound (2 vector loads per cycle
 * against 2 FMAs) at ~2/3 of the FMA rate. */
#ifdef __AVX512F__
#define S2_IN_REG(v) __asm__("" : "+v"(v))
#else
#define S2_IN_REG(v) (void)(v)
#endif

enum {
    TILE_VECS = 5,  /* vectors per tile row: 80 floats */
    DX_PAIRS = 4,   /* pairs per backward-data tile: 4 x 5 accumulators */
    DW_CIN = 4,     /* input channels per backward-weights tile: 4 x 5 */
};

/* The channel range where these beat oneDNN (measured: whole training
 * step of one convolution, forward on oneDNN, both paths alternating step
 * by step in one process, batch 2, 2 threads; oneDNN / ours):
 *   80x80 40->80 1.14-1.18, 64x64 64->128 1.22, 160x160 32->64 1.21,
 *   40x40 80->160 1.17, 80x80 24->48 1.14, 40x40 128->128 1.05,
 *   40x40 96->192 1.07, 257x257 64->128 (batch 1) 2.14;
 *   but 80x80 16->32 0.98, 128x128 8->16 0.84 (too few lanes per tile to
 *   hide the loads), 40x40 128->256 0.91, 20x20 160->320 0.84 and 24x24
 *   320->320 0.70 (the combined weights and the weight tiles outgrow L2). */
#define S2_MIN_CIN 24
#define S2_MAX_CIN 128
#define S2_MAX_COUT 192

/* Below this many multiply-adds one thread works alone. */
#define S2_PAR_MIN_MACS 1000000

bool sn_conv_s2_suits(const sn_conv_shape *s)
{
#ifdef __AVX512F__
    const sn_conv_params *p = &s->p;
    return s->kh == 3 && s->kw == 3 && p->stride_h == 2 && p->stride_w == 2 && p->dilation_h == 1 &&
           p->dilation_w == 1 && p->groups == 1 && p->pad_top <= 1 && p->pad_left <= 1 && s->ci % 8 == 0 &&
           s->ci >= S2_MIN_CIN && s->ci <= S2_MAX_CIN && s->co % 16 == 0 && s->co <= S2_MAX_COUT;
#else
    (void)s;
    return false;
#endif
}

static int team_of(const sn_conv_shape *s)
{
    int64_t macs = s->n * s->oh * s->ow * s->co * s->ci * 9;
    return macs >= S2_PAR_MIN_MACS ? omp_get_max_threads() : 1;
}

/* Splits `vecs` vectors into chunks of at most TILE_VECS, as even as can be
 * (6 -> 3 + 3, not 5 + 1: a 1-vector tile is load-bound). */
static int chunk_vecs(int vecs)
{
    int chunks = (vecs + TILE_VECS - 1) / TILE_VECS;
    return (vecs + chunks - 1) / chunks;
}

static int64_t floor_half(int64_t a) { return a >= 0 ? a / 2 : -((1 - a) / 2); }

/* ---- backward data ------------------------------------------------------------- */
/* out[t*L + 16v] (= or +=) sum_c col[t][c] * w[c*L + 16v], t < T, v < NV. */
static inline __attribute__((always_inline)) void dx_tile_fixed(const float *const *col, const float *w,
                                                                int64_t L, int64_t co, float *out, bool load,
                                                                int T, int NV)
{
    s2_vec acc[DX_PAIRS][TILE_VECS];
SN_UNROLL_TILE
    for (int t = 0; t < T; t++)
SN_UNROLL_TILE
        for (int v = 0; v < NV; v++) {
            if (load) S2_LD(acc[t][v], out + t * L + v * S2_LANES);
            else memset(&acc[t][v], 0, sizeof acc[t][v]);
        }
    for (int64_t c = 0; c < co; c++) {
        s2_vec wv[TILE_VECS];
SN_UNROLL_TILE
        for (int v = 0; v < NV; v++) {
            S2_LD(wv[v], w + c * L + v * S2_LANES);
            S2_IN_REG(wv[v]);
        }
SN_UNROLL_TILE
        for (int t = 0; t < T; t++) {
            float d = col[t][c];
SN_UNROLL_TILE
            for (int v = 0; v < NV; v++) acc[t][v] += d * wv[v];
        }
    }
SN_UNROLL_TILE
    for (int t = 0; t < T; t++)
SN_UNROLL_TILE
        for (int v = 0; v < NV; v++) S2_ST(out + t * L + v * S2_LANES, acc[t][v]);
}

/* noinline: each case keeps its own register allocation. */
static __attribute__((noinline)) void dx_tile(const float *const *col, const float *w, int64_t L, int64_t co,
                                              float *out, bool load, int T, int NV)
{
#define S2_DX_CASE(nv)                                                                                     \
    case nv:                                                                                               \
        if (T == DX_PAIRS) dx_tile_fixed(col, w, L, co, out, load, DX_PAIRS, nv);                          \
        else                                                                                               \
            for (int t = 0; t < T; t++) dx_tile_fixed(col + t, w, L, co, out + t * L, load, 1, nv);        \
        break;
    switch (NV) {
        S2_DX_CASE(1)
        S2_DX_CASE(2)
        S2_DX_CASE(3)
        S2_DX_CASE(4)
        S2_DX_CASE(5)
    default: break;
    }
#undef S2_DX_CASE
}

typedef struct dx_plan {
    const sn_conv_shape *s;
    const float *dy, *comb, *zero_col; /* zero_col: co zeros, the column beyond an edge */
    float *dx;
    int64_t L;
    int near_off;          /* -1 or +1 */
    int near_v0, near_v1;  /* the near part's nonzero vectors [v0, v1) */
    bool accumulate;
} dx_plan;

/* comb[ky][part][c][q*ci + i] = w(ky, kx, i, c) for the kx that reaches
 * column q of a pair from the same (part 0) or the near (part 1) column.
 * Each tap is a ci x co -> co x ci transpose, done in 16 x 16 blocks (a
 * plain loop writes one cache line per element: 23 us on layer e). */
static void combine_weights(const sn_conv_shape *s, const float *w, float *comb)
{
    int64_t ci = s->ci, co = s->co, L = 2 * ci;
    int pl = s->p.pad_left, near_q = pl;
    for (int ky = 0; ky < 3; ky++) /* the near part's other half: no tap lands there */
        for (int64_t c = 0; c < co; c++)
            memset(comb + ((ky * 2 + 1) * co + c) * L + (1 - near_q) * ci, 0, (size_t)ci * sizeof *comb);
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            int q = (kx + pl) & 1, part = q + pl - kx == 0 ? 0 : 1;
            float *dst = comb + (ky * 2 + part) * co * L + q * ci;
            const float *src = w + (ky * 3 + kx) * ci * co;
            for (int64_t i0 = 0; i0 < ci; i0 += 16)
                for (int64_t c0 = 0; c0 < co; c0 += 16) {
                    int64_t i1 = i0 + 16 < ci ? i0 + 16 : ci, c1 = c0 + 16 < co ? c0 + 16 : co;
                    for (int64_t c = c0; c < c1; c++)
                        for (int64_t i = i0; i < i1; i++) dst[c * L + i] = src[i * co + c];
                }
        }
}

/* Pairs [b0, b1) of one dx row (out points at pair b0) from dy row `dyrow`
 * through one part: vectors [v0, v1), dy columns b + off. */
static void dx_part(const dx_plan *plan, const float *dyrow, const float *w, int off, int v0, int v1, float *out,
                    int64_t b0, int64_t b1, bool load)
{
    const sn_conv_shape *s = plan->s;
    int nv = chunk_vecs(v1 - v0);
    for (int64_t b = b0; b < b1; b += DX_PAIRS) {
        int T = b1 - b < DX_PAIRS ? (int)(b1 - b) : DX_PAIRS;
        const float *col[DX_PAIRS];
        for (int t = 0; t < T; t++) {
            int64_t ox = b + t + off;
            col[t] = ox >= 0 && ox < s->ow ? dyrow + ox * s->co : plan->zero_col;
        }
        for (int v = v0; v < v1; v += nv) {
            int n = v1 - v < nv ? v1 - v : nv;
            dx_tile(col, w + v * S2_LANES, plan->L, s->co, out + (b - b0) * plan->L + v * S2_LANES, load, T, n);
        }
    }
}

/* Pairs [b0, b1) of dx row (n, iy), written to out (pair b0 first). */
static void dx_pairs(const dx_plan *plan, int64_t n, int64_t iy, float *out, int64_t b0, int64_t b1, bool load)
{
    const sn_conv_shape *s = plan->s;
    int64_t co = s->co, L = plan->L;
    bool first = true;
    for (int ky = 0; ky < 3; ky++) {
        int64_t a = iy + s->p.pad_top - ky, oy = a / 2;
        if (a < 0 || (a & 1) || oy >= s->oh) continue;
        const float *dyrow = plan->dy + (n * s->oh + oy) * s->ow * co;
        const float *w = plan->comb + ky * 2 * co * L;
        dx_part(plan, dyrow, w, 0, 0, (int)(L / S2_LANES), out, b0, b1, load || !first);
        dx_part(plan, dyrow, w + co * L, plan->near_off, plan->near_v0, plan->near_v1, out, b0, b1, true);
        first = false;
    }
    if (first && !load) memset(out, 0, (size_t)((b1 - b0) * L) * sizeof *out);
}

static void dx_row(const dx_plan *plan, int64_t n, int64_t iy)
{
    const sn_conv_shape *s = plan->s;
    int64_t ci = s->ci, pairs = s->w / 2;
    float *row = plan->dx + (n * s->h + iy) * s->w * ci;
    dx_pairs(plan, n, iy, row, 0, pairs, plan->accumulate);
    if (!(s->w & 1)) return;
    /* The last column has no partner: run its pair in a buffer. */
    float buf[2 * S2_MAX_CIN];
    memset(buf, 0, (size_t)plan->L * sizeof *buf);
    if (plan->accumulate) memcpy(buf, row + pairs * plan->L, (size_t)ci * sizeof *buf);
    dx_pairs(plan, n, iy, buf, pairs, pairs + 1, true);
    memcpy(row + pairs * plan->L, buf, (size_t)ci * sizeof *buf);
}

int sn_conv_s2_backward_data(sn_ctx *ctx, const sn_conv_shape *s, const float *dy, const float *w, float *dx,
                             bool accumulate)
{
    int64_t ci = s->ci, co = s->co, L = 2 * ci;
    float *comb = sn_step_alloc(ctx, (size_t)(3 * 2 * co * L + co) * sizeof(float));
    if (!comb) return ctx_status(ctx);
    float *zero_col = comb + 3 * 2 * co * L;
    memset(zero_col, 0, (size_t)co * sizeof *zero_col);
    combine_weights(s, w, comb);
    int pad_l = s->p.pad_left, near_q = pad_l; /* the near part lands on q = pad_left */
    dx_plan plan = {s, dy, comb, zero_col, dx, L, pad_l ? 1 : -1, (int)(near_q * ci / S2_LANES),
                    (int)(((near_q + 1) * ci + S2_LANES - 1) / S2_LANES), accumulate};
    int64_t rows = s->n * s->h;
#pragma omp parallel for schedule(static) num_threads(team_of(s))
    for (int64_t r = 0; r < rows; r++) dx_row(&plan, r / s->h, r % s->h);
    sn_note_impl(ctx, "conv_bwd_data", "segnas:s2_pairs");
    return SN_OK;
}

/* ---- backward weights ---------------------------------------------------------- */
/* dw[r*co + 16v] += sum_p x[p*xs + r] * dy[p*co + 16v], r < DW_CIN, v < NV.
 * The same product as dx_tile_fixed, but its rows are neighbours in memory:
 * broadcasts at fixed offsets from one pointer. Through dx_tile's pointer
 * per row (which the zero column at an edge needs) it ran 0.58 instead of
 * 0.49 ms on layer e. */
static inline __attribute__((always_inline)) void dw_tile_fixed(const float *x, int64_t xs, const float *dy,
                                                                int64_t co, int64_t np, float *dw, int NV)
{
    s2_vec acc[DW_CIN][TILE_VECS];
SN_UNROLL_TILE
    for (int r = 0; r < DW_CIN; r++)
SN_UNROLL_TILE
        for (int v = 0; v < NV; v++) S2_LD(acc[r][v], dw + r * co + v * S2_LANES);
    for (int64_t p = 0; p < np; p++) {
        s2_vec d[TILE_VECS];
SN_UNROLL_TILE
        for (int v = 0; v < NV; v++) {
            S2_LD(d[v], dy + p * co + v * S2_LANES);
            S2_IN_REG(d[v]);
        }
SN_UNROLL_TILE
        for (int r = 0; r < DW_CIN; r++) {
            float xr = x[p * xs + r];
SN_UNROLL_TILE
            for (int v = 0; v < NV; v++) acc[r][v] += xr * d[v];
        }
    }
SN_UNROLL_TILE
    for (int r = 0; r < DW_CIN; r++)
SN_UNROLL_TILE
        for (int v = 0; v < NV; v++) S2_ST(dw + r * co + v * S2_LANES, acc[r][v]);
}

static __attribute__((noinline)) void dw_tile(const float *x, int64_t xs, const float *dy, int64_t co,
                                              int64_t np, float *dw, int NV)
{
    switch (NV) {
    case 1: dw_tile_fixed(x, xs, dy, co, np, dw, 1); break;
    case 2: dw_tile_fixed(x, xs, dy, co, np, dw, 2); break;
    case 3: dw_tile_fixed(x, xs, dy, co, np, dw, 3); break;
    case 4: dw_tile_fixed(x, xs, dy, co, np, dw, 4); break;
    case 5: dw_tile_fixed(x, xs, dy, co, np, dw, 5); break;
    default: break;
    }
}

/* dw += the contribution of output row (n, oy). */
static void dw_row(const sn_conv_shape *s, const float *x, const float *dy, int64_t n, int64_t oy, float *dw)
{
    int64_t ci = s->ci, co = s->co;
    int nv = chunk_vecs((int)(co / S2_LANES));
    for (int ky = 0; ky < 3; ky++) {
        int64_t iy = 2 * oy - s->p.pad_top + ky;
        if (iy < 0 || iy >= s->h) continue;
        for (int kx = 0; kx < 3; kx++) {
            /* output columns whose input column 2*ox - pad_left + kx is inside */
            int64_t lo = s->p.pad_left - kx, ox0 = lo > 0 ? (lo + 1) / 2 : 0;
            int64_t ox1 = floor_half(s->w - 1 + s->p.pad_left - kx) + 1;
            if (ox1 > s->ow) ox1 = s->ow;
            if (ox1 <= ox0) continue;
            const float *xp = x + ((n * s->h + iy) * s->w + 2 * ox0 - s->p.pad_left + kx) * ci;
            const float *dyp = dy + ((n * s->oh + oy) * s->ow + ox0) * co;
            float *dwt = dw + (ky * 3 + kx) * ci * co;
            for (int64_t c0 = 0; c0 < co; c0 += nv * S2_LANES) {
                int v = (int)((co - c0) / S2_LANES) < nv ? (int)((co - c0) / S2_LANES) : nv;
                for (int64_t i0 = 0; i0 < ci; i0 += DW_CIN)
                    dw_tile(xp + i0, 2 * ci, dyp + c0, co, ox1 - ox0, dwt + i0 * co + c0, v);
            }
        }
    }
}

int sn_conv_s2_backward_weights(sn_ctx *ctx, const sn_conv_shape *s, const float *x, const float *dy, float *dw)
{
    int64_t rows = s->n * s->oh, nw = 9 * s->ci * s->co;
    int team = team_of(s);
    if (team > rows) team = (int)rows;
    /* Thread 0 adds into dw itself, the others into zeroed partial sums. */
    float *part = team > 1 ? sn_step_alloc(ctx, (size_t)((team - 1) * nw) * sizeof(float)) : NULL;
    if (team > 1 && !part) return ctx_status(ctx);
    if (part) memset(part, 0, (size_t)((team - 1) * nw) * sizeof *part);
#pragma omp parallel num_threads(team)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *acc = t == 0 ? dw : part + (t - 1) * nw;
        for (int64_t r = rows * t / nt; r < rows * (t + 1) / nt; r++) dw_row(s, x, dy, r / s->oh, r % s->oh, acc);
    }
    for (int t = 1; t < team; t++) {
        const float *p = part + (t - 1) * nw;
#pragma omp simd
        for (int64_t i = 0; i < nw; i++) dw[i] += p[i];
    }
    sn_note_impl(ctx, "conv_bwd_weights", "segnas:s2_tiles");
    return SN_OK;
}
