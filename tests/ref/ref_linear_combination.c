#include "ref/ref.h"

void ref_linear_combination(int n, const double *const *xs, const double *coef, double *y, int64_t numel)
{
    for (int64_t k = 0; k < numel; k++) {
        double acc = 0;
        for (int i = 0; i < n; i++) acc += coef[i] * xs[i][k];
        y[k] = acc;
    }
}
