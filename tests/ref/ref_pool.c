/* Pooling references: windowed max / average (padding excluded from the
 * count, TF 'SAME'), global average. */
#include <math.h>

#include "ref/ref.h"

int64_t ref_pool_out_h(const ref_pool_shape *s) { return (s->h + s->pad_t + s->pad_b - s->k) / s->stride + 1; }
int64_t ref_pool_out_w(const ref_pool_shape *s) { return (s->w + s->pad_l + s->pad_r - s->k) / s->stride + 1; }

void ref_pool2d(const ref_pool_shape *s, const double *x, double *y)
{
    int64_t oh = ref_pool_out_h(s), ow = ref_pool_out_w(s);
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++)
                for (int64_t ch = 0; ch < s->c; ch++) {
                    double acc = s->max ? -INFINITY : 0.0;
                    int64_t count = 0;
                    for (int ki = 0; ki < s->k; ki++)
                        for (int kj = 0; kj < s->k; kj++) {
                            int64_t r = i * s->stride - s->pad_t + ki, q = j * s->stride - s->pad_l + kj;
                            if (r < 0 || r >= s->h || q < 0 || q >= s->w) continue;
                            double v = x[((b * s->h + r) * s->w + q) * s->c + ch];
                            if (s->max) acc = v > acc ? v : acc;
                            else acc += v;
                            count++;
                        }
                    y[((b * oh + i) * ow + j) * s->c + ch] = s->max ? acc : acc / (double)count;
                }
}

void ref_global_avg_pool(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c)
{
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            double acc = 0;
            for (int64_t p = 0; p < h * w; p++) acc += x[(b * h * w + p) * c + ch];
            y[b * c + ch] = acc / (double)(h * w);
        }
}
