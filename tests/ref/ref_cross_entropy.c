/* Double-precision reference of the softmax cross-entropy loss, following
 * PyTorch's CrossEntropyLoss(weight=w, ignore_index=ignore, reduction='mean'):
 * sum_p w[y_p] * (logsumexp(x_p) - x_p[y_p]) / sum_p w[y_p] over pixels whose
 * label is not ignored. Returns 0 when no pixel counts (PyTorch gives NaN). */
#include <math.h>

#include "ref/ref.h"

double ref_softmax_ce(const double *logits, const uint8_t *labels, int64_t pixels, int64_t k, int ignore_label,
                      const double *class_weights)
{
    double num = 0, den = 0;
    for (int64_t p = 0; p < pixels; p++) {
        if (labels[p] == ignore_label) continue;
        const double *x = logits + p * k;
        double m = x[0], s = 0;
        for (int64_t c = 1; c < k; c++) m = x[c] > m ? x[c] : m;
        for (int64_t c = 0; c < k; c++) s += exp(x[c] - m);
        double w = class_weights ? class_weights[labels[p]] : 1.0;
        num += w * (m + log(s) - x[labels[p]]);
        den += w;
    }
    return den > 0 ? num / den : 0.0;
}
