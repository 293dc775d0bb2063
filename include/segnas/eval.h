/* segnas layer 8: evaluation metrics. */
#ifndef SEGNAS_EVAL_H
#define SEGNAS_EVAL_H

#include <stdint.h>

#include "segnas/data.h"
#include "segnas/models.h"
#include "segnas/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* counts[t * n_classes + p]: pixels of true class t predicted as p. Pixels
 * labelled `ignore_label` are not counted. */
typedef struct sn_confusion {
    int n_classes;
    int ignore_label;
    int64_t *counts;
} sn_confusion;

int sn_confusion_init(sn_confusion *c, int n_classes, int ignore_label); /* 0 or SN_ERR_NOMEM/ARG */
void sn_confusion_free(sn_confusion *c);
void sn_confusion_reset(sn_confusion *c);
/* Adds n pixels of predictions against labels. A label that is neither
 * ignore_label nor < n_classes, or a prediction >= n_classes, returns
 * SN_ERR_ARG (nothing counted) and writes its index to *bad_index. */
int sn_confusion_add(sn_confusion *c, const uint8_t *pred, const uint8_t *labels, int64_t n, int64_t *bad_index);
/* Argmax over the last axis of logits {N,H,W,K} into pred (N*H*W bytes). */
void sn_argmax_channels(const sn_tensor *logits, uint8_t *pred);
void sn_confusion_merge(sn_confusion *into, const sn_confusion *from);

/* IoU of class k = TP / (TP + FP + FN); NaN when the class is absent from
 * both labels and predictions (TP + FP + FN = 0). */
double sn_confusion_iou(const sn_confusion *c, int k);
/* Mean IoU over the classes whose IoU is defined (not NaN), as the
 * Cityscapes / VOC / ADE20K scripts do; NaN if none. */
double sn_confusion_miou(const sn_confusion *c);
/* Correct pixels / counted pixels; NaN when nothing was counted. */
double sn_confusion_pixel_accuracy(const sn_confusion *c);
int64_t sn_confusion_total(const sn_confusion *c);

/* ---- inference of a discrete network (src/eval/inference.c) ---------------
 * As deeplab/model.py `predict_labels_multi_scale`: per scale the image is
 * resized (bilinear), run in evaluation mode (running BN statistics, no
 * dropout, no tape), its logits resized back to the image size
 * (align_corners, as the model's own upsampling) and turned into softmax
 * PROBABILITIES; the probabilities of all scales (and, with flip, of the
 * horizontally mirrored input, mirrored back) are averaged. With a crop,
 * each scaled image is covered by crop_h x crop_w windows at a stride of
 * 2/3 of the crop (windows clipped to the image, the last one flush with
 * its edge) and the LOGITS of overlapping windows are averaged. */
typedef struct sn_infer_config {
    const double *scales; /* NULL or n_scales 0: {1} */
    int n_scales;
    bool flip;
    int crop_h, crop_w;   /* 0: the whole image in one pass */
    float mean[3], std[3];
} sn_infer_config;

/* Scale 1, no flip, whole image, the augmentation's normalisation. */
void sn_infer_config_default(sn_infer_config *c);
/* probs: img->h * img->w * n_classes floats (HWC). */
int sn_infer_probs(sn_ctx *ctx, const sn_model *m, const sn_image *img, const sn_infer_config *c, float *probs);
/* Argmax of probs (n pixels of k classes) into pred. */
void sn_probs_argmax(const float *probs, int64_t n, int k, uint8_t *pred);

#ifdef __cplusplus
}
#endif
#endif
