/* What the two oneDNN convolution files (conv.c: direct, conv_wino.c:
 * Winograd) share: how our tensors and geometry look to oneDNN. */
#ifndef SEGNAS_OPS_ONEDNN_CONV_COMMON_H
#define SEGNAS_OPS_ONEDNN_CONV_COMMON_H

#include "ops/onednn/conv.h"
#include "ops/onednn/onednn.h"

/* Our HWIO weights (any = false) or a weights descriptor with format `any`. */
dnnl_status_t sn_dnnl_conv_weights_md(dnnl_memory_desc_t *md, const sn_conv_shape *s, bool any);

typedef struct sn_dnnl_conv_geom {
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} sn_dnnl_conv_geom;

sn_dnnl_conv_geom sn_dnnl_conv_geometry(const sn_conv_shape *s);

#endif
