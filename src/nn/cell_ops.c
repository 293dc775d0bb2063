/* The eight Auto-DeepLab cell operators, shared by the supernet (as the
 * candidates of every mixed edge) and the discrete networks. Definitions
 * follow the official code (tensorflow/models research/deeplab/core
 * nas_cell.py, via DESIGN.md), not the DARTS-style PyTorch ports. */
#include "segnas/nn.h"
#include "segnas/search.h"

/* A depthwise conv has no BN of its own: conv_bn with an identity BN would
 * cost a pass, so the dw modules below only use their conv. */
static int depthwise_init(sn_nn_builder *b, sn_conv_bn *m, int64_t c, int k, int stride, bool relu_before)
{
    m->relu_before = relu_before;
    m->relu_after = false;
    size_t at = sn_nn_push(b, "conv");
    int rc = sn_conv_init(b, &m->conv, c, c, k, stride, 1, (int)c, false);
    sn_nn_pop(b, at);
    return rc;
}

static sn_tensor *depthwise_forward(sn_ctx *ctx, const sn_conv_bn *m, sn_tensor *x)
{
    if (m->relu_before) x = sn_relu(ctx, x);
    return sn_conv_forward(ctx, &m->conv, x);
}

static int sep_conv_init(sn_nn_builder *b, sn_cell_op_module *m, int k, bool affine)
{
    int rc = 0;
    size_t at = sn_nn_push(b, "dw1");
    rc = rc ? rc : depthwise_init(b, &m->dw1, m->c_in, k, m->stride, true);
    sn_nn_pop(b, at);
    at = sn_nn_push(b, "pw1");
    rc = rc ? rc : sn_conv_bn_init(b, &m->pw1, m->c_in, m->c_out, 1, 1, 1, 1, false, false, affine);
    sn_nn_pop(b, at);
    at = sn_nn_push(b, "dw2");
    rc = rc ? rc : depthwise_init(b, &m->dw2, m->c_out, k, 1, true);
    sn_nn_pop(b, at);
    at = sn_nn_push(b, "pw2");
    rc = rc ? rc : sn_conv_bn_init(b, &m->pw2, m->c_out, m->c_out, 1, 1, 1, 1, false, false, affine);
    sn_nn_pop(b, at);
    return rc;
}

int sn_cell_op_init(sn_nn_builder *b, sn_cell_op_module *m, int kind, int64_t c_in, int64_t c_out,
                    int stride, bool affine)
{
    *m = (sn_cell_op_module){.kind = kind, .stride = stride, .c_in = c_in, .c_out = c_out};
    if (stride != 1 && stride != 2)
        return sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: cell operator stride %d (1 or 2)", b->prefix, stride);
    size_t at = sn_nn_push(b, "%s", sn_cell_op_name(kind));
    int rc = SN_OK;
    switch (kind) {
    case SN_CELL_NONE: break;
    case SN_CELL_SEP_CONV_3X3: rc = sep_conv_init(b, m, 3, affine); break;
    case SN_CELL_SEP_CONV_5X5: rc = sep_conv_init(b, m, 5, affine); break;
    case SN_CELL_ATROUS_3X3:
    case SN_CELL_ATROUS_5X5: {
        int k = kind == SN_CELL_ATROUS_3X3 ? 3 : 5;
        int rate = stride == 1 ? 2 : 1; /* strided: resize by 0.5 then rate 1 */
        rc = sn_conv_bn_init(b, &m->main, c_in, c_out, k, 1, rate, 1, true, false, affine);
        break;
    }
    case SN_CELL_MAX_POOL_3X3:
    case SN_CELL_AVG_POOL_3X3:
    case SN_CELL_SKIP_CONNECT:
        m->has_proj = c_in != c_out || (kind == SN_CELL_SKIP_CONNECT && stride == 2);
        if (m->has_proj) {
            int proj_stride = kind == SN_CELL_SKIP_CONNECT ? stride : 1;
            rc = sn_conv_bn_init(b, &m->main, c_in, c_out, 1, proj_stride, 1, 1, kind == SN_CELL_SKIP_CONNECT,
                                 false, affine);
        }
        break;
    default: rc = sn_ctx_fail(b->ctx, SN_ERR_ARG, "%s: unknown cell operator %d", b->prefix, kind);
    }
    sn_nn_pop(b, at);
    return rc;
}

bool sn_cell_op_starts_with_relu(const sn_cell_op_module *m)
{
    switch (m->kind) {
    case SN_CELL_SEP_CONV_3X3:
    case SN_CELL_SEP_CONV_5X5: return true;
    case SN_CELL_ATROUS_3X3:
    case SN_CELL_ATROUS_5X5: return m->stride == 1; /* strided: the resize comes first */
    case SN_CELL_SKIP_CONNECT: return m->has_proj;
    default: return false;
    }
}

sn_tensor *sn_cell_op_forward(sn_ctx *ctx, const sn_cell_op_module *m, sn_tensor *x, sn_tensor *x_relu,
                              bool training)
{
    if (!x) return NULL;
    if (!x_relu && sn_cell_op_starts_with_relu(m) && !(x_relu = sn_relu(ctx, x))) return NULL;
    switch (m->kind) {
    case SN_CELL_NONE: return NULL;
    case SN_CELL_SEP_CONV_3X3:
    case SN_CELL_SEP_CONV_5X5: {
        sn_tensor *y = sn_conv_bn_forward(ctx, &m->pw1, sn_conv_forward(ctx, &m->dw1.conv, x_relu), training);
        return sn_conv_bn_forward(ctx, &m->pw2, depthwise_forward(ctx, &m->dw2, y), training);
    }
    case SN_CELL_ATROUS_3X3:
    case SN_CELL_ATROUS_5X5:
        if (m->stride == 1) return sn_conv_bn_forward_after_relu(ctx, &m->main, x_relu, training);
        x = sn_resize_bilinear(ctx, x, (x->shape[1] + 1) / 2, (x->shape[2] + 1) / 2, false);
        return sn_conv_bn_forward(ctx, &m->main, x, training);
    case SN_CELL_MAX_POOL_3X3:
    case SN_CELL_AVG_POOL_3X3: {
        sn_pool_kind kind = m->kind == SN_CELL_MAX_POOL_3X3 ? SN_POOL_MAX : SN_POOL_AVG;
        sn_tensor *y = sn_pool3x3_same(ctx, x, kind, m->stride);
        return m->has_proj ? sn_conv_bn_forward(ctx, &m->main, y, training) : y;
    }
    case SN_CELL_SKIP_CONNECT: return m->has_proj ? sn_conv_bn_forward_after_relu(ctx, &m->main, x_relu, training) : x;
    default: sn_ctx_fail(ctx, SN_ERR_ARG, "unknown cell operator %d", m->kind); return NULL;
    }
}
