/* The DeepLabv3+ decoder as deeplab/model.py `refine_by_decoder` builds it
 * (decoder output stride 4): a 1x1 conv-BN-ReLU projects the low-level
 * feature to 48 channels, the ASPP output is resized to it and
 * concatenated, two dense 3x3 conv-BN-ReLU of 256 refine, and a 1x1 conv
 * with bias gives the logits (`get_branch_logits`). */
#include "segnas/models.h"

int sn_decoder_init(sn_nn_builder *b, sn_decoder *m, int64_t c_aspp, int64_t c_low_in, int64_t c_low, int64_t c,
                    int n_classes)
{
    size_t at = sn_nn_push(b, "feature_projection0");
    int rc = sn_conv_bn_init(b, &m->low_proj, c_low_in, c_low, 1, 1, 1, 1, false, true, true);
    sn_nn_pop(b, at);
    for (int i = 0; i < 2 && !rc; i++) {
        at = sn_nn_push(b, "decoder_conv%d", i);
        rc = sn_conv_bn_init(b, &m->conv[i], i ? c : c_aspp + c_low, c, 3, 1, 1, 1, false, true, true);
        sn_nn_pop(b, at);
    }
    if (rc) return rc;
    at = sn_nn_push(b, "logits");
    rc = sn_conv_init(b, &m->classifier, c, n_classes, 1, 1, 1, 1, true);
    sn_nn_pop(b, at);
    return rc;
}

sn_tensor *sn_decoder_forward(sn_ctx *ctx, const sn_decoder *m, sn_tensor *aspp_out, sn_tensor *low, bool training)
{
    if (!aspp_out || !low) return NULL;
    sn_tensor *proj = sn_conv_bn_forward(ctx, &m->low_proj, low, training);
    sn_tensor *up = aspp_out;
    if (up->shape[1] != low->shape[1] || up->shape[2] != low->shape[2])
        up = sn_resize_bilinear(ctx, up, low->shape[1], low->shape[2], true);
    sn_tensor *parts[2] = {up, proj};
    if (!up || !proj) return NULL;
    sn_tensor *x = sn_concat(ctx, 2, parts);
    for (int i = 0; i < 2; i++) x = sn_conv_bn_forward(ctx, &m->conv[i], x, training);
    return sn_conv_forward(ctx, &m->classifier, x);
}
