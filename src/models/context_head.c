/* The context module after the backbone when it is not ASPP: one of the
 * heads of segnas/nn.h (PPM, GloRe, A^2, GCU, SGR, non-local) behind one
 * init / forward / cost interface, so that autodeeplab.c and cost.c only
 * dispatch on sn_model_config.head.
 *
 * Widths follow the papers' ratios, expressed in the head's output width c
 * (= aspp_channels, 256 by default) so that every head hands the decoder
 * the same tensor as ASPP would: PSPNet's branch width C/N for N = 4 pyramid
 * levels; GloRe's N = C/4 nodes of C/2 state channels (its section 3.3);
 * A^2-Net's c_m = c_n = C/4; GCU's units of 2, 4, 8, 32 vertices (Li &
 * Gupta, table 1) at C/4 channels each; SGR with one symbolic node per
 * class (the prior adjacency is a class co-occurrence matrix) and D = E =
 * C/4; non-local with C/2 embedding and value channels (Wang et al.'s
 * bottleneck of half the input). */
#include <string.h>

#include "segnas/models.h"

static const char *const head_names[SN_HEAD_COUNT] = {"aspp", "ppm", "glore", "a2", "gcu", "sgr", "nonlocal"};

const char *sn_head_name(int kind) { return kind >= 0 && kind < SN_HEAD_COUNT ? head_names[kind] : "?"; }

int sn_head_parse(const char *name)
{
    for (int i = 0; name && i < SN_HEAD_COUNT; i++)
        if (!strcmp(name, head_names[i])) return i;
    return -1;
}

static int64_t at_least_1(int64_t v) { return v < 1 ? 1 : v; }

int sn_context_head_init(sn_nn_builder *b, sn_context_head *m, int kind, int64_t c_in, int64_t c_out, int n_classes,
                         const float *sgr_adjacency)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
    int64_t quarter = at_least_1(c_out / 4), half = at_least_1(c_out / 2);
    size_t at = sn_nn_push(b, "%s", sn_head_name(kind));
    int rc;
    switch (kind) {
    case SN_HEAD_PPM: rc = sn_ppm_init(b, &m->ppm, c_in, c_out, quarter); break;
    case SN_HEAD_GLORE: rc = sn_glore_init(b, &m->glore, c_in, c_out, quarter, half); break;
    case SN_HEAD_A2: rc = sn_a2_init(b, &m->a2, c_in, c_out, quarter, quarter); break;
    case SN_HEAD_GCU: rc = sn_gcu_init(b, &m->gcu, c_in, c_out, 4, NULL, quarter); break;
    case SN_HEAD_SGR: rc = sn_sgr_init(b, &m->sgr, c_in, c_out, n_classes, quarter, quarter, sgr_adjacency); break;
    case SN_HEAD_NONLOCAL: rc = sn_nonlocal_init(b, &m->nonlocal, c_in, c_out, half, half); break;
    default:
        rc = sn_ctx_fail(b->ctx, SN_ERR_ARG, "model: head %d is not a context head (aspp is built by sn_aspp_init)",
                         kind);
    }
    sn_nn_pop(b, at);
    return rc;
}

sn_tensor *sn_context_head_forward(sn_ctx *ctx, const sn_context_head *m, sn_tensor *x, bool training)
{
    switch (m->kind) {
    case SN_HEAD_PPM: return sn_ppm_forward(ctx, &m->ppm, x, training);
    case SN_HEAD_GLORE: return sn_glore_forward(ctx, &m->glore, x, training);
    case SN_HEAD_A2: return sn_a2_forward(ctx, &m->a2, x, training);
    case SN_HEAD_GCU: return sn_gcu_forward(ctx, &m->gcu, x, training);
    case SN_HEAD_SGR: return sn_sgr_forward(ctx, &m->sgr, x, training);
    case SN_HEAD_NONLOCAL: return sn_nonlocal_forward(ctx, &m->nonlocal, x, training);
    default: sn_ctx_fail(ctx, SN_ERR_ARG, "model: head %d is not a context head", m->kind); return NULL;
    }
}

sn_cost sn_context_head_cost(const sn_context_head *m, int64_t h, int64_t w)
{
    switch (m->kind) {
    case SN_HEAD_PPM: return sn_ppm_cost(&m->ppm, h, w);
    case SN_HEAD_GLORE: return sn_glore_cost(&m->glore, h, w);
    case SN_HEAD_A2: return sn_a2_cost(&m->a2, h, w);
    case SN_HEAD_GCU: return sn_gcu_cost(&m->gcu, h, w);
    case SN_HEAD_SGR: return sn_sgr_cost(&m->sgr, h, w);
    case SN_HEAD_NONLOCAL: return sn_nonlocal_cost(&m->nonlocal, h, w);
    default: return (sn_cost){0};
    }
}
