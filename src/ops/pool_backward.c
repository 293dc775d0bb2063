/* Backward of windowed max / average pooling on NHWC tensors, our own
 * kernels. oneDNN 2.6's NHWC pooling backward is 10x slower whenever the
 * channel count is not a multiple of 16 (3x3 'SAME', 32x32, batch 2, one
 * thread: 91 us at 8 channels, 9 us at 16; 95 us at 20, 24 and 40
 * channels), which is every cell of the supernet's /4 level at F=8 and most
 * levels of the discrete networks at F=20.
 *
 * Scatter form: every output sends its gradient to its taps (max: to the
 * first tap of the window, row-major, that equals the output, which is the
 * tap the forward's strict '>' scan kept, PyTorch's and oneDNN's choice on
 * ties; average: to every real tap, divided by their count). At stride 1 a
 * run of whole-window output columns is one contiguous stretch of floats
 * whose every tap is the same stretch of x shifted by a constant, whatever
 * the channel count, so it is processed 16 floats at a time (8 channels =
 * 2 pixels per vector); the clipped columns at the borders and strided
 * pooling go pixel by pixel. */
#include <string.h>

#include "ops/pool_backward.h"
#include "ops/vmath.h"

/* The window of `len` consecutive output floats: `rows` x `cols` taps,
 * strides in floats, where x and dx point at lane 0's first tap. */
typedef struct taps {
    int64_t rows, cols, row_stride, col_stride;
} taps;

/* Floats per block of a run: the vector chunks of a block take the taps in
 * the outer loop, so consecutive updates hit different addresses (a chunk
 * at a time, its 9 read-modify-writes overlap the next chunk's and stall on
 * store forwarding: 2x slower). 64 masks of max pooling stay on the stack. */
#define BLOCK (64 * SN_VL)

static void max_vectors(const float *x, float *dx, const float *y, const float *g, const taps *t, int64_t nv)
{
    sn_vi done[BLOCK / SN_VL];
    memset(done, 0, sizeof done);
    for (int64_t r = 0; r < t->rows; r++)
        for (int64_t c = 0; c < t->cols; c++) {
            int64_t p = r * t->row_stride + c * t->col_stride;
            for (int64_t v = 0; v < nv; v++) {
                int64_t i = v * SN_VL;
                sn_vi hit = (sn_vload(x + p + i) == sn_vload(y + i)) & ~done[v];
                sn_vstore(dx + p + i, sn_vload(dx + p + i) + (sn_vf)((sn_vi)sn_vload(g + i) & hit));
                done[v] |= hit;
            }
        }
}

static void max_scalars(const float *x, float *dx, const float *y, const float *g, const taps *t, int64_t len)
{
    for (int64_t j = 0; j < len; j++) {
        int64_t first = -1;
        for (int64_t r = 0; r < t->rows && first < 0; r++)
            for (int64_t c = 0; c < t->cols; c++) {
                int64_t p = r * t->row_stride + c * t->col_stride + j;
                if (x[p] == y[j]) {
                    first = p;
                    break;
                }
            }
        if (first >= 0) dx[first] += g[j];
    }
}

static void avg_floats(float *dx, const float *g, float scale, const taps *t, int64_t len)
{
    int64_t nv = len / SN_VL * SN_VL;
    for (int64_t r = 0; r < t->rows; r++)
        for (int64_t c = 0; c < t->cols; c++) {
            float *d = dx + r * t->row_stride + c * t->col_stride;
            for (int64_t i = 0; i < nv; i += SN_VL) sn_vstore(d + i, sn_vload(d + i) + sn_vload(g + i) * scale);
            for (int64_t j = nv; j < len; j++) d[j] += g[j] * scale;
        }
}

/* `len` output floats starting at y / g, taps starting at x / dx. */
static void run_backward(const sn_pool_shape *s, const float *x, float *dx, const float *y, const float *g,
                         float scale, const taps *t, int64_t len)
{
    for (int64_t b = 0; b < len; b += BLOCK) {
        int64_t n = len - b < BLOCK ? len - b : BLOCK, nv = n / SN_VL;
        if (s->kind == SN_POOL_AVG) {
            avg_floats(dx + b, g + b, scale, t, n);
            continue;
        }
        max_vectors(x + b, dx + b, y + b, g + b, t, nv);
        int64_t tail = b + nv * SN_VL;
        max_scalars(x + tail, dx + tail, y + tail, g + tail, t, n - nv * SN_VL);
    }
}

typedef struct span {
    int64_t lo, hi; /* clipped input range of a window along one axis */
} span;

static span window_1d(int64_t o, int stride, int pad, int k, int64_t in)
{
    span r = {o * stride - pad, o * stride - pad + k};
    if (r.lo < 0) r.lo = 0;
    if (r.hi > in) r.hi = in;
    return r;
}

/* One output row of one image: x, dx point at the image, y, g at the row. */
static void row_backward(const sn_pool_shape *s, const float *x, float *dx, const float *y, const float *g,
                         int64_t oh)
{
    int64_t c = s->c, row = s->w * c;
    span rh = window_1d(oh, s->stride, s->pad_t, s->k, s->h);
    taps t = {rh.hi - rh.lo, 0, row, c};
    /* Stride 1: output columns [lo, hi) have their whole window inside. */
    int64_t lo = 0, hi = 0;
    if (s->stride == 1) {
        lo = s->pad_l;
        hi = s->w - s->k + s->pad_l + 1 < s->ow ? s->w - s->k + s->pad_l + 1 : s->ow;
        if (hi < lo) hi = lo;
    }
    if (hi > lo) {
        t.cols = s->k;
        int64_t in = rh.lo * row + (lo - s->pad_l) * c;
        run_backward(s, x + in, dx + in, y + lo * c, g + lo * c, 1.0f / (float)(t.rows * t.cols), &t,
                     (hi - lo) * c);
    }
    for (int64_t ow = 0; ow < s->ow; ow++) {
        if (ow >= lo && ow < hi) continue;
        span rw = window_1d(ow, s->stride, s->pad_l, s->k, s->w);
        t.cols = rw.hi - rw.lo;
        int64_t in = rh.lo * row + rw.lo * c;
        run_backward(s, x + in, dx + in, y + ow * c, g + ow * c, 1.0f / (float)(t.rows * t.cols), &t, c);
    }
}

static void image_backward(const sn_pool_shape *s, const float *x, const float *y, const float *dy, float *dx,
                           int64_t n)
{
    int64_t in_img = s->h * s->w * s->c, out_img = s->oh * s->ow * s->c;
    for (int64_t oh = 0; oh < s->oh; oh++) {
        int64_t q = n * out_img + oh * s->ow * s->c;
        row_backward(s, x + n * in_img, dx + n * in_img, y + q, dy + q, oh);
    }
}

void sn_pool_backward(const sn_pool_shape *s, const float *x, const float *y, const float *dy, float *dx,
                      bool accumulate)
{
    int64_t in_img = s->h * s->w * s->c, out_img = s->oh * s->ow * s->c;
    if (!accumulate) memset(dx, 0, (size_t)(s->n * in_img) * sizeof(float));
    /* Images write disjoint parts of dx; the rows of one image overlap. A
     * false OpenMP `if` still calls the runtime: small maps call directly. */
    if (s->n > 1 && s->n * out_img * s->k * s->k > SN_PAR_MIN) {
#pragma omp parallel for schedule(static)
        for (int64_t n = 0; n < s->n; n++) image_backward(s, x, y, dy, dx, n);
    } else {
        for (int64_t n = 0; n < s->n; n++) image_backward(s, x, y, dy, dx, n);
    }
}
