/* Atrous spatial pyramid pooling (DeepLabv3) as deeplab/model.py
 * `_extract_features` builds it: image pooling, a 1x1 branch and three 3x3
 * atrous branches, each conv-BN-ReLU; concatenation and a 1x1 projection.
 * The 3x3 branches are dense convs: that is what reproduces the parameter
 * counts of Auto-DeepLab's Table 2 (separable ones would give 7.79M for -S;
 * DESIGN.md). */
#include "segnas/models.h"

void sn_aspp_rates(int output_stride, int rates[3])
{
    static const int base[3] = {6, 12, 18}; /* at output stride 16 */
    for (int i = 0; i < 3; i++) {
        int r = output_stride > 0 ? base[i] * 16 / output_stride : base[i];
        rates[i] = r < 1 ? 1 : r;
    }
}

static int branch_init(sn_nn_builder *b, sn_conv_bn *m, const char *name, int64_t c_in, int64_t c_out, int k, int rate)
{
    size_t at = sn_nn_push(b, "%s", name);
    int rc = sn_conv_bn_init(b, m, c_in, c_out, k, 1, rate, 1, false, true, true);
    sn_nn_pop(b, at);
    return rc;
}

int sn_aspp_init(sn_nn_builder *b, sn_aspp *m, int64_t c_in, int64_t c, int output_stride)
{
    *m = (sn_aspp){.c_in = c_in, .c = c};
    sn_aspp_rates(output_stride, m->rates);
    size_t at = sn_nn_push(b, "aspp");
    int rc = branch_init(b, &m->pool, "image_pooling", c_in, c, 1, 1);
    if (!rc) rc = branch_init(b, &m->b1x1, "aspp0", c_in, c, 1, 1);
    for (int i = 0; i < 3 && !rc; i++) {
        char name[16] = "aspp1";
        name[4] = (char)('1' + i);
        rc = branch_init(b, &m->b3x3[i], name, c_in, c, 3, m->rates[i]);
    }
    if (!rc) rc = branch_init(b, &m->proj, "concat_projection", 5 * c, c, 1, 1);
    sn_nn_pop(b, at);
    return rc;
}

sn_tensor *sn_aspp_forward(sn_ctx *ctx, const sn_aspp *m, sn_tensor *x, bool training)
{
    if (!x) return NULL;
    sn_tensor *pooled = sn_conv_bn_forward(ctx, &m->pool, sn_global_avg_pool(ctx, x), training);
    sn_tensor *branches[5] = {
        pooled ? sn_resize_bilinear(ctx, pooled, x->shape[1], x->shape[2], true) : NULL,
        sn_conv_bn_forward(ctx, &m->b1x1, x, training),
        sn_conv_bn_forward(ctx, &m->b3x3[0], x, training),
        sn_conv_bn_forward(ctx, &m->b3x3[1], x, training),
        sn_conv_bn_forward(ctx, &m->b3x3[2], x, training),
    };
    for (int i = 0; i < 5; i++)
        if (!branches[i]) return NULL;
    return sn_conv_bn_forward(ctx, &m->proj, sn_concat(ctx, 5, branches), training);
}
