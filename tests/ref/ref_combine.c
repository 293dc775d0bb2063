/* Double-precision references for the combination ops: the mixed op
 * (weighted sum), channel concatenation, softmax, batched matmul. */
#include <math.h>
#include <stdlib.h>

#include "ref/ref.h"

/* Eq. (2)-(3) of Auto-DeepLab: y = sum_i softmax(logits)_i * x_i, a NULL x_i
 * being the zero op. */
void ref_weighted_sum(int n, const double *const *xs, const double *logits, double *y, int64_t numel)
{
    double *w = malloc((size_t)n * sizeof *w);
    if (!w) abort();
    ref_softmax(logits, w, 1, n);
    for (int64_t j = 0; j < numel; j++) y[j] = 0;
    for (int i = 0; i < n; i++)
        if (xs[i])
            for (int64_t j = 0; j < numel; j++) y[j] += w[i] * xs[i][j];
    free(w);
}

void ref_concat(int n, const double *const *xs, const int64_t *channels, int64_t rows, double *y)
{
    int64_t c_out = 0;
    for (int i = 0; i < n; i++) c_out += channels[i];
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            for (int64_t c = 0; c < channels[i]; c++) y[r * c_out + off + c] = xs[i][r * channels[i] + c];
            off += channels[i];
        }
    }
}

void ref_softmax(const double *x, double *y, int64_t rows, int64_t k)
{
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * k;
        double *yr = y + r * k, m = xr[0], s = 0;
        for (int64_t c = 1; c < k; c++) m = xr[c] > m ? xr[c] : m;
        for (int64_t c = 0; c < k; c++) s += yr[c] = exp(xr[c] - m);
        for (int64_t c = 0; c < k; c++) yr[c] /= s;
    }
}

/* Element (i, j) of the i x j matrix `p` of batch b, stored transposed when
 * `t` (then as j x i); batch 0 only when not batched. */
static double at(const double *p, bool batched, bool t, int64_t b, int64_t rows, int64_t cols, int64_t i,
                 int64_t j)
{
    const double *m = p + (batched ? b * rows * cols : 0);
    return t ? m[j * rows + i] : m[i * cols + j];
}

void ref_matmul(const ref_matmul_shape *s, const double *a, const double *b, double *c)
{
    for (int64_t bi = 0; bi < s->batch; bi++)
        for (int64_t i = 0; i < s->m; i++)
            for (int64_t j = 0; j < s->n; j++) {
                double acc = 0;
                for (int64_t l = 0; l < s->k; l++)
                    acc += at(a, s->a_batched, s->trans_a, bi, s->m, s->k, i, l) *
                           at(b, s->b_batched, s->trans_b, bi, s->k, s->n, l, j);
                c[(bi * s->m + i) * s->n + j] = acc;
            }
}
