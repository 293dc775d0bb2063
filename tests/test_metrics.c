/* Confusion matrix, IoU, mIoU and pixel accuracy against hand-computed
 * values, including ignored pixels and classes absent from the split. */
#include <math.h>

#include "segnas/eval.h"
#include "support/check.h"

static void test_hand_computed(void)
{
    sn_confusion c;
    CHECK(sn_confusion_init(&c, 4, 255) == SN_OK, "init");
    /* 10 pixels; class 3 never appears in labels nor predictions. */
    const uint8_t labels[10] = {0, 0, 0, 1, 1, 2, 2, 2, 255, 255};
    const uint8_t pred[10] = {0, 0, 1, 1, 2, 2, 2, 0, 3, 1};
    CHECK(sn_confusion_add(&c, pred, labels, 10, NULL) == SN_OK, "add");
    /* rows true, cols pred:
     *   0: [2,1,0,0]  1: [0,1,1,0]  2: [1,0,2,0]  3: [0,0,0,0]
     * IoU0 = 2/(2+1+1) = 0.5; IoU1 = 1/(1+1+1) = 1/3; IoU2 = 2/(2+1+1) = 0.5;
     * IoU3 undefined (ignored pixels predicted 3 do not count). */
    CHECK(c.counts[0 * 4 + 1] == 1 && c.counts[2 * 4 + 0] == 1 && c.counts[1 * 4 + 2] == 1, "cells");
    CHECK_NEAR(sn_confusion_iou(&c, 0), 0.5, 1e-12, "IoU 0");
    CHECK_NEAR(sn_confusion_iou(&c, 1), 1.0 / 3, 1e-12, "IoU 1");
    CHECK_NEAR(sn_confusion_iou(&c, 2), 0.5, 1e-12, "IoU 2");
    CHECK(isnan(sn_confusion_iou(&c, 3)), "absent class has no IoU");
    CHECK_NEAR(sn_confusion_miou(&c), (0.5 + 1.0 / 3 + 0.5) / 3, 1e-12, "mIoU skips the absent class");
    CHECK_NEAR(sn_confusion_pixel_accuracy(&c), 5.0 / 8, 1e-12, "pixel accuracy excludes ignored pixels");
    CHECK(sn_confusion_total(&c) == 8, "8 counted pixels");

    /* A class absent from labels but predicted: IoU 0, and it counts. */
    const uint8_t l2[2] = {0, 0}, p2[2] = {3, 0};
    sn_confusion_add(&c, p2, l2, 2, NULL);
    CHECK_NEAR(sn_confusion_iou(&c, 3), 0.0, 1e-12, "predicted-only class has IoU 0");
    CHECK_NEAR(sn_confusion_miou(&c), (3.0 / 6 + 1.0 / 3 + 0.5 + 0) / 4, 1e-12, "mIoU with it");

    int64_t bad = -1;
    const uint8_t l3[3] = {0, 7, 0}, p3[3] = {0, 0, 0};
    int64_t before = sn_confusion_total(&c);
    CHECK(sn_confusion_add(&c, p3, l3, 3, &bad) == SN_ERR_ARG && bad == 1, "label out of range found at 1");
    CHECK(sn_confusion_total(&c) == before, "a bad batch counts nothing");
    sn_confusion_free(&c);
}

static void test_argmax(void)
{
    sn_ctx *ctx = test_ctx();
    sn_tensor *t = sn_tensor_new4(ctx, 1, 1, 2, 3);
    const float v[6] = {0.1f, 0.9f, 0.3f, 2.0f, -1.0f, 2.0f};
    for (int i = 0; i < 6; i++) t->data[i] = v[i];
    uint8_t pred[2];
    sn_argmax_channels(t, pred);
    CHECK(pred[0] == 1 && pred[1] == 0, "argmax (first of ties)");
    sn_ctx_destroy(ctx);
}

int main(void)
{
    test_hand_computed();
    test_argmax();
    return check_summary("metrics");
}
