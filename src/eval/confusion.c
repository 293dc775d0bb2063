/* Confusion matrix and the metrics the segmentation benchmarks report. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/eval.h"

int sn_confusion_init(sn_confusion *c, int n_classes, int ignore_label)
{
    memset(c, 0, sizeof *c);
    if (n_classes < 1 || n_classes > 256) return SN_ERR_ARG;
    c->counts = calloc((size_t)n_classes * n_classes, sizeof *c->counts);
    if (!c->counts) return SN_ERR_NOMEM;
    c->n_classes = n_classes;
    c->ignore_label = ignore_label;
    return SN_OK;
}

void sn_confusion_free(sn_confusion *c)
{
    free(c->counts);
    memset(c, 0, sizeof *c);
}

void sn_confusion_reset(sn_confusion *c)
{
    memset(c->counts, 0, (size_t)c->n_classes * c->n_classes * sizeof *c->counts);
}

int sn_confusion_add(sn_confusion *c, const uint8_t *pred, const uint8_t *labels, int64_t n, int64_t *bad_index)
{
    /* Validate first so that a bad batch counts nothing. */
    for (int64_t i = 0; i < n; i++) {
        bool ignored = labels[i] == c->ignore_label;
        if ((!ignored && labels[i] >= c->n_classes) || pred[i] >= c->n_classes) {
            if (bad_index) *bad_index = i;
            return SN_ERR_ARG;
        }
    }
    for (int64_t i = 0; i < n; i++)
        if (labels[i] != c->ignore_label) c->counts[labels[i] * c->n_classes + pred[i]]++;
    return SN_OK;
}

void sn_argmax_channels(const sn_tensor *logits, uint8_t *pred)
{
    int64_t k = logits->shape[logits->ndim - 1], rows = logits->numel / k;
#pragma omp parallel for if (rows > 4096) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = logits->data + r * k;
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (x[j] > x[best]) best = j;
        pred[r] = (uint8_t)best;
    }
}

void sn_confusion_merge(sn_confusion *into, const sn_confusion *from)
{
    for (int64_t i = 0; i < (int64_t)into->n_classes * into->n_classes; i++) into->counts[i] += from->counts[i];
}

double sn_confusion_iou(const sn_confusion *c, int k)
{
    int64_t tp = c->counts[k * c->n_classes + k], fp = 0, fn = 0;
    for (int j = 0; j < c->n_classes; j++) {
        if (j == k) continue;
        fp += c->counts[j * c->n_classes + k];
        fn += c->counts[k * c->n_classes + j];
    }
    int64_t denom = tp + fp + fn;
    return denom ? (double)tp / (double)denom : NAN;
}

double sn_confusion_miou(const sn_confusion *c)
{
    double sum = 0;
    int n = 0;
    for (int k = 0; k < c->n_classes; k++) {
        double iou = sn_confusion_iou(c, k);
        if (!isnan(iou)) sum += iou, n++;
    }
    return n ? sum / n : NAN;
}

int64_t sn_confusion_total(const sn_confusion *c)
{
    int64_t total = 0;
    for (int64_t i = 0; i < (int64_t)c->n_classes * c->n_classes; i++) total += c->counts[i];
    return total;
}

double sn_confusion_pixel_accuracy(const sn_confusion *c)
{
    int64_t correct = 0, total = sn_confusion_total(c);
    for (int k = 0; k < c->n_classes; k++) correct += c->counts[k * c->n_classes + k];
    return total ? (double)correct / (double)total : NAN;
}
