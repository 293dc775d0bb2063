/* PSPNet pyramid pooling module (Zhao et al., "Pyramid Scene Parsing
 * Network", CVPR 2017, Sec. 3.2): adaptive average pooling to 1x1, 2x2,
 * 3x3 and 6x6 bins, 1x1 conv-BN-ReLU per level, bilinear upsampling back,
 * concatenation with the input, and a 3x3 conv-BN-ReLU (the paper's final
 * convolution, which here gives the head its c_out). Bins are capped at the
 * input size so tiny crops still run. */
#include "nn/head_util.h"

static const int pyramid[SN_PPM_LEVELS] = {1, 2, 3, 6};

int sn_ppm_init(sn_nn_builder *b, sn_ppm_head *m, int64_t c_in, int64_t c_out, int64_t c_branch)
{
    if (c_in < 1 || c_out < 1 || c_branch < 1)
        return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: PPM head needs positive sizes, got c_in %lld c_out %lld "
                           "c_branch %lld", b->prefix, (long long)c_in, (long long)c_out, (long long)c_branch);
    *m = (sn_ppm_head){.c_in = c_in, .c_out = c_out, .c_branch = c_branch};
    for (int i = 0; i < SN_PPM_LEVELS; i++) {
        m->bins[i] = pyramid[i];
        size_t at = sn_nn_push(b, "bins%d", pyramid[i]);
        int rc = sn_conv_bn_init(b, &m->branch[i], c_in, c_branch, 1, 1, 1, 1, false, true, true);
        sn_nn_pop(b, at);
        if (rc) return rc;
    }
    size_t at = sn_nn_push(b, "fuse");
    int rc = sn_conv_bn_init(b, &m->fuse, c_in + SN_PPM_LEVELS * c_branch, c_out, 3, 1, 1, 1, false, true, true);
    sn_nn_pop(b, at);
    return rc;
}

static int64_t capped(int bins, int64_t size) { return bins < size ? bins : size; }

sn_tensor *sn_ppm_forward(sn_ctx *ctx, const sn_ppm_head *m, sn_tensor *x, bool training)
{
    if (!head_input_ok(ctx, "ppm", x, m->c_in)) return NULL;
    int64_t h = x->shape[1], w = x->shape[2];
    sn_tensor *parts[1 + SN_PPM_LEVELS] = {x};
    for (int i = 0; i < SN_PPM_LEVELS; i++) {
        sn_tensor *p = sn_adaptive_avg_pool2d(ctx, x, capped(m->bins[i], h), capped(m->bins[i], w));
        parts[1 + i] = sn_resize_bilinear(ctx, sn_conv_bn_forward(ctx, &m->branch[i], p, training), h, w, true);
    }
    return sn_conv_bn_forward(ctx, &m->fuse, sn_concat(ctx, 1 + SN_PPM_LEVELS, parts), training);
}

sn_cost sn_ppm_cost(const sn_ppm_head *m, int64_t h, int64_t w)
{
    sn_cost c = {0};
    for (int i = 0; i < SN_PPM_LEVELS; i++) {
        head_cost_conv(&c, &m->branch[i].conv, capped(m->bins[i], h), capped(m->bins[i], w));
        head_cost_bn(&c, &m->branch[i].bn, m->c_branch);
    }
    head_cost_conv(&c, &m->fuse.conv, h, w);
    head_cost_bn(&c, &m->fuse.bn, m->c_out);
    return c;
}
