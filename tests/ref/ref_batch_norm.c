/* Batch-norm references (Ioffe & Szegedy 2015, Alg. 1) over rows = N*H*W
 * NHWC pixels of c channels. gamma / beta may be NULL (1 / 0). */
#include <math.h>

#include "ref/ref.h"

void ref_batch_norm_eval(const double *x, const double *gamma, const double *beta, const double *mean,
                         const double *var, double *y, int64_t rows, int64_t c, double eps)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t ch = 0; ch < c; ch++) {
            double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
            y[r * c + ch] = g * (x[r * c + ch] - mean[ch]) / sqrt(var[ch] + eps) + b;
        }
}

void ref_batch_norm_train(const double *x, const double *gamma, const double *beta, double *y, double *mean,
                          double *var, int64_t rows, int64_t c, double eps)
{
    for (int64_t ch = 0; ch < c; ch++) {
        double m = 0, v = 0;
        for (int64_t r = 0; r < rows; r++) m += x[r * c + ch];
        m /= (double)rows;
        for (int64_t r = 0; r < rows; r++) v += (x[r * c + ch] - m) * (x[r * c + ch] - m);
        v /= (double)rows; /* biased: what the normalisation uses */
        mean[ch] = m;
        var[ch] = v;
    }
    ref_batch_norm_eval(x, gamma, beta, mean, var, y, rows, c, eps);
}
