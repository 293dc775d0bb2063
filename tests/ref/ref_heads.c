/* References for the ops of the context and graph heads: adaptive average
 * pooling, Gaussian soft-assignment logits, normalised mean residual. */
#include <math.h>

#include "ref/ref.h"

void ref_adaptive_avg_pool2d(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t oh,
                             int64_t ow)
{
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++)
                for (int64_t ch = 0; ch < c; ch++) {
                    int64_t h0 = i * h / oh, h1 = ((i + 1) * h + oh - 1) / oh;
                    int64_t w0 = j * w / ow, w1 = ((j + 1) * w + ow - 1) / ow;
                    double s = 0;
                    for (int64_t r = h0; r < h1; r++)
                        for (int64_t q = w0; q < w1; q++) s += x[((b * h + r) * w + q) * c + ch];
                    y[((b * oh + i) * ow + j) * c + ch] = s / (double)((h1 - h0) * (w1 - w0));
                }
}

void ref_gaussian_logits(const double *x, const double *centres, const double *sigma, double *y, int64_t rows,
                         int64_t k, int64_t c)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t kk = 0; kk < k; kk++) {
            double s = 0;
            for (int64_t ch = 0; ch < c; ch++) {
                double d = (x[i * c + ch] - centres[kk * c + ch]) / sigma[kk * c + ch];
                s += d * d;
            }
            y[i * k + kk] = -0.5 * s;
        }
}

void ref_soft_residual_mean(const double *x, const double *q, const double *centres, const double *sigma,
                            double *z, int64_t b, int64_t p, int64_t k, int64_t c, bool normalize)
{
    for (int64_t s = 0; s < b; s++)
        for (int64_t kk = 0; kk < k; kk++) {
            double mass = 0, ss = 0;
            for (int64_t i = 0; i < p; i++) mass += q[(s * p + i) * k + kk];
            double *zk = z + (s * k + kk) * c;
            for (int64_t ch = 0; ch < c; ch++) {
                double acc = 0;
                for (int64_t i = 0; i < p; i++)
                    acc += q[(s * p + i) * k + kk] * (x[(s * p + i) * c + ch] - centres[kk * c + ch]) /
                           sigma[kk * c + ch];
                zk[ch] = acc / mass;
                ss += zk[ch] * zk[ch];
            }
            double norm = normalize ? sqrt(ss + 1e-12) : 1.0;
            for (int64_t ch = 0; ch < c; ch++) zk[ch] /= norm;
        }
}
