/* Gradient checkpointing by segments (see tensor.h). */
#include <string.h>

#include "context.h"

typedef struct segment {
    sn_segment_fn fn;
    void *user;
} segment;

bool sn_recomputing(const sn_ctx *ctx) { return ctx->recomputing; }

static int ensure_scratch(sn_ctx *ctx)
{
    if (!ctx->scratch) ctx->scratch = sn_arena_create((size_t)16 << 20);
    return ctx->scratch ? SN_OK : sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for the recomputation arena");
}

/* Runs fn with the scratch arena as the step arena. */
static sn_tensor *run_in_scratch(sn_ctx *ctx, const segment *seg, sn_tensor *const *inputs, int n)
{
    sn_arena *step = ctx->step;
    ctx->step = ctx->scratch;
    ctx->in_segment = true;
    sn_tensor *y = seg->fn(ctx, seg->user, inputs, n);
    ctx->in_segment = false;
    ctx->step = step;
    return y;
}

static int segment_backward(sn_ctx *ctx, sn_node *node)
{
    const segment *seg = node->saved;
    /* The inputs' gradients must outlive the scratch arena. */
    for (int i = 0; i < node->n_in; i++)
        if (node->in[i]->requires_grad && !sn_grad_of(ctx, node->in[i])) return ctx->status;
    int mark = ctx->tape_len;
    ctx->recomputing = true;
    sn_tensor *y = run_in_scratch(ctx, seg, node->in, node->n_in);
    ctx->recomputing = false;
    int rc = ctx->status;
    if (!rc && y && y->requires_grad) {
        sn_arena *step = ctx->step;
        ctx->step = ctx->scratch;
        bool fresh; /* y may be one of the inputs, whose gradient then exists */
        float *g = sn_grad_for_write(ctx, y, &fresh);
        const float *gy = node->out->grad;
        if (g)
            for (int64_t i = 0; i < y->numel; i++) g[i] = fresh ? gy[i] : g[i] + gy[i];
        rc = g ? sn_walk_tape_from(ctx, mark) : ctx->status;
        ctx->step = step;
    }
    ctx->tape_len = mark;
    sn_arena_reset(ctx->scratch);
    return rc;
}

static const sn_op_info segment_op = {"recompute", segment_backward};

/* Runs the segment without a tape in the scratch arena and copies its
 * output into the step arena; the scratch arena is reset. */
static sn_tensor *run_scoped(sn_ctx *ctx, const segment *seg, sn_tensor *const *inputs, int n)
{
    if (ensure_scratch(ctx)) return NULL;
    bool grad = ctx->grad_enabled;
    ctx->grad_enabled = false;
    sn_tensor *tmp = run_in_scratch(ctx, seg, inputs, n);
    ctx->grad_enabled = grad;
    sn_tensor *y = tmp ? sn_tensor_empty_like(ctx, tmp) : NULL;
    if (y) memcpy(y->data, tmp->data, (size_t)y->numel * sizeof(float));
    sn_arena_reset(ctx->scratch);
    return y;
}

sn_tensor *sn_recompute(sn_ctx *ctx, sn_segment_fn fn, void *user, sn_tensor *const *inputs, int n_inputs)
{
    if (sn_any_null(ctx, inputs, n_inputs)) return NULL;
    if (ctx->in_segment) return fn(ctx, user, inputs, n_inputs);
    segment seg = {fn, user};
    /* Without a tape there is nothing to recompute, but the scratch arena
     * still bounds inference memory to one segment's activations. */
    sn_tensor *y = run_scoped(ctx, &seg, inputs, n_inputs);
    if (!y || !ctx->grad_enabled) return y;
    sn_node *node = sn_record_always(ctx, &segment_op, y, inputs, n_inputs, sizeof seg);
    if (!node) return NULL;
    *(segment *)node->saved = seg;
    return y;
}
