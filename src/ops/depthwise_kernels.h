/* Register-blocked inner kernels of ops/depthwise.c for ONE channel-block
 * width. This is a template: depthwise.c includes it three times, with DW_V
 * defined as a 16-lane vector, an 8-lane vector and plain float (the channel
 * tails), and DW_FN(name) appending the width to each name. There is no
 * include guard on purpose.
 *
 * GCC/clang vector extensions instead of intrinsics: the same code compiles
 * to AVX-512 with -march=native and to SSE pairs without it, and T/M are
 * compile-time constants after inlining, so the accumulators live in
 * registers (auto-vectorising a plain channel loop keeps them in memory:
 * 3 loads + 1 store per FMA). Loads and stores go through memcpy (unaligned,
 * no aliasing question); compilers turn them into single vmovups. */

#define DW_LD(v, p) memcpy(&(v), (p), sizeof(DW_V))
#define DW_ST(p, v) memcpy((p), &(v), sizeof(DW_V))

/* T outputs of one tile: out[t*out_t] = init + sum over taps of
 * in[ky*in_ky + kx*in_kx + t*in_t] * w[ky*w_ky + kx*w_kx]. T independent
 * accumulators hide the FMA latency; each weight load serves T FMAs. */
static inline __attribute__((always_inline)) void DW_FN(tile_fixed)(const dw_tile *a, int T)
{
    DW_V acc[DW_TILE_MAX], zero;
    memset(&zero, 0, sizeof zero);
SN_UNROLL_TILE
    for (int t = 0; t < T; t++) {
        if (a->accumulate) DW_LD(acc[t], a->out + t * a->out_t);
        else if (a->init) DW_LD(acc[t], a->init);
        else acc[t] = zero;
    }
    for (int ky = 0; ky < a->nky; ky++) {
        const float *in = a->in + ky * a->in_ky, *w = a->w + ky * a->w_ky;
        for (int kx = 0; kx < a->nkx; kx++) {
            DW_V wv;
            DW_LD(wv, w + kx * a->w_kx);
            const float *p = in + kx * a->in_kx;
SN_UNROLL_TILE
            for (int t = 0; t < T; t++) {
                DW_V xv;
                DW_LD(xv, p + t * a->in_t);
                acc[t] += xv * wv;
            }
        }
    }
SN_UNROLL_TILE
    for (int t = 0; t < T; t++) DW_ST(a->out + t * a->out_t, acc[t]);
}

/* noinline: inlined into the OpenMP loop body, the eight unrolled variants
 * share one register allocation and spill (seen with clang 14). */
static __attribute__((noinline)) void DW_FN(tile)(const dw_tile *a, int T)
{
    switch (T) {
    case 1: DW_FN(tile_fixed)(a, 1); break;
    case 2: DW_FN(tile_fixed)(a, 2); break;
    case 3: DW_FN(tile_fixed)(a, 3); break;
    case 4: DW_FN(tile_fixed)(a, 4); break;
    case 5: DW_FN(tile_fixed)(a, 5); break;
    case 6: DW_FN(tile_fixed)(a, 6); break;
    case 7: DW_FN(tile_fixed)(a, 7); break;
    default: DW_FN(tile_fixed)(a, 8); break;
    }
}

/* Weight gradient of M horizontal taps over a block of rows x pixels:
 * out[j*out_kx] += sum_{r,p} x[r*x_row + p*x_t + j*x_kx] * dy[r*dy_row + p*dy_t].
 * Each dy load serves M FMAs; with M <= 4 two pixels go to separate
 * accumulators so that at least 6 FMA chains are in flight. */
static inline __attribute__((always_inline)) void DW_FN(wgrad_fixed)(const dw_wtile *a, int M)
{
    enum { P_MAX = 2 };
    const int P = M <= 4 ? 2 : 1;
    DW_V acc[P_MAX][DW_TILE_MAX], zero;
    memset(&zero, 0, sizeof zero);
SN_UNROLL_TILE
    for (int j = 0; j < M; j++) acc[0][j] = acc[1][j] = zero;
    for (int64_t r = 0; r < a->nrows; r++) {
        const float *xr = a->x + r * a->x_row, *dr = a->dy + r * a->dy_row;
        int64_t p = 0;
        for (; p + P <= a->npix; p += P) {
SN_UNROLL_TILE
            for (int q = 0; q < P; q++) {
                DW_V d;
                DW_LD(d, dr + (p + q) * a->dy_t);
                const float *xp = xr + (p + q) * a->x_t;
SN_UNROLL_TILE
                for (int j = 0; j < M; j++) {
                    DW_V xv;
                    DW_LD(xv, xp + j * a->x_kx);
                    acc[q][j] += xv * d;
                }
            }
        }
        for (; p < a->npix; p++) {
            DW_V d;
            DW_LD(d, dr + p * a->dy_t);
            const float *xp = xr + p * a->x_t;
SN_UNROLL_TILE
            for (int j = 0; j < M; j++) {
                DW_V xv;
                DW_LD(xv, xp + j * a->x_kx);
                acc[0][j] += xv * d;
            }
        }
    }
SN_UNROLL_TILE
    for (int j = 0; j < M; j++) {
        DW_V o;
        DW_LD(o, a->out + j * a->out_kx);
        o += acc[0][j] + acc[1][j];
        DW_ST(a->out + j * a->out_kx, o);
    }
}

static __attribute__((noinline)) void DW_FN(wgrad)(const dw_wtile *a, int M)
{
    switch (M) {
    case 1: DW_FN(wgrad_fixed)(a, 1); break;
    case 2: DW_FN(wgrad_fixed)(a, 2); break;
    case 3: DW_FN(wgrad_fixed)(a, 3); break;
    case 4: DW_FN(wgrad_fixed)(a, 4); break;
    case 5: DW_FN(wgrad_fixed)(a, 5); break;
    case 6: DW_FN(wgrad_fixed)(a, 6); break;
    case 7: DW_FN(wgrad_fixed)(a, 7); break;
    default: DW_FN(wgrad_fixed)(a, 8); break;
    }
}

/* Sum of dy over rows x pixels, added to out (the bias gradient). */
static void DW_FN(bias_sum)(const float *dy, int64_t rows, int64_t npix, ptrdiff_t dy_t, ptrdiff_t dy_row,
                            float *out)
{
    DW_V acc[4];
    memset(acc, 0, sizeof acc);
    for (int64_t r = 0; r < rows; r++) {
        const float *dr = dy + r * dy_row;
        int64_t p = 0;
        for (; p + 4 <= npix; p += 4)
SN_UNROLL_TILE
            for (int q = 0; q < 4; q++) {
                DW_V d;
                DW_LD(d, dr + (p + q) * dy_t);
                acc[q] += d;
            }
        for (; p < npix; p++) {
            DW_V d;
            DW_LD(d, dr + p * dy_t);
            acc[0] += d;
        }
    }
    DW_V o;
    DW_LD(o, out);
    o += (acc[0] + acc[1]) + (acc[2] + acc[3]);
    DW_ST(out, o);
}

#undef DW_LD
#undef DW_ST
