/* Reverse-mode autograd: ops append nodes to the tape while running forward;
 * sn_backward walks it from the end and each node's backward accumulates
 * into the gradients of its inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"

/* A borrowed gradient (see sn_backward_from) becomes an own copy before
 * anything adds to it. */
static float *own_grad(sn_ctx *ctx, sn_tensor *t)
{
    float *g = sn_step_alloc(ctx, (size_t)t->numel * sizeof(float));
    if (!g) return NULL;
    memcpy(g, t->grad, (size_t)t->numel * sizeof(float));
    t->grad = g;
    t->grad_borrowed = false;
    return g;
}

float *sn_grad_of(sn_ctx *ctx, sn_tensor *t)
{
    if (t->grad_borrowed) return own_grad(ctx, t);
    if (!t->grad) t->grad = sn_step_calloc(ctx, (size_t)t->numel * sizeof(float));
    return t->grad;
}

float *sn_grad_for_write(sn_ctx *ctx, sn_tensor *t, bool *fresh)
{
    *fresh = t->grad == NULL;
    if (t->grad_borrowed) return own_grad(ctx, t);
    if (*fresh) t->grad = sn_step_alloc(ctx, (size_t)t->numel * sizeof(float));
    return t->grad;
}

bool sn_needs_grad(const sn_ctx *ctx, sn_tensor *const *in, int n_in)
{
    if (!ctx->grad_enabled) return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

static int tape_push(sn_ctx *ctx, sn_node *node)
{
    if (ctx->tape_len == ctx->tape_cap) {
        int cap = ctx->tape_cap ? ctx->tape_cap * 2 : 1024;
        sn_node **tape = realloc(ctx->tape, (size_t)cap * sizeof *tape);
        if (!tape) return sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory growing the tape to %d nodes", cap);
        ctx->tape = tape;
        ctx->tape_cap = cap;
    }
    ctx->tape[ctx->tape_len++] = node;
    return SN_OK;
}

sn_node *sn_record(sn_ctx *ctx, const sn_op_info *op, sn_tensor *out, sn_tensor *const *in,
                   int n_in, size_t saved_bytes)
{
    if (!sn_needs_grad(ctx, in, n_in)) return NULL;
    return sn_record_always(ctx, op, out, in, n_in, saved_bytes);
}

sn_node *sn_record_always(sn_ctx *ctx, const sn_op_info *op, sn_tensor *out, sn_tensor *const *in, int n_in,
                          size_t saved_bytes)
{
    if (!ctx->grad_enabled) return NULL;
    sn_node *node = sn_step_alloc(ctx, sizeof *node);
    sn_tensor **ins = node ? sn_step_alloc(ctx, (size_t)(n_in ? n_in : 1) * sizeof *ins) : NULL;
    void *saved = (ins && saved_bytes) ? sn_step_calloc(ctx, saved_bytes) : NULL;
    if (!ins || (saved_bytes && !saved)) return NULL;
    memcpy(ins, in, (size_t)n_in * sizeof *ins);
    *node = (sn_node){op, n_in, ins, out, saved};
    if (tape_push(ctx, node)) return NULL;
    out->node = node;
    out->requires_grad = true;
    return node;
}

int sn_tape_size(const sn_ctx *ctx) { return ctx->tape_len; }

int sn_walk_tape_from(sn_ctx *ctx, int from)
{
    for (int i = ctx->tape_len - 1; i >= from; i--) {
        sn_node *node = ctx->tape[i];
        if (!node->out->grad) continue; /* no gradient reached this node */
        int rc = node->op->backward(ctx, node);
        if (rc) return sn_ctx_fail(ctx, rc, "backward of %s failed", node->op->name);
    }
    return SN_OK;
}

int sn_backward_from(sn_ctx *ctx, sn_tensor *out, const float *grad_out)
{
    if (ctx->status) return ctx->status;
    if (!out) return sn_ctx_fail(ctx, SN_ERR_ARG, "backward from a NULL tensor");
    if (!out->grad && !out->is_param) {
        /* The usual case: borrow the caller's buffer (no pass over it). */
        out->grad = (float *)grad_out;
        out->grad_borrowed = true;
        return sn_walk_tape_from(ctx, 0);
    }
    float *g = sn_grad_of(ctx, out);
    if (!g) return ctx->status;
    int64_t n = out->numel;
#pragma omp parallel for simd if (parallel : n > 32768) schedule(static)
    for (int64_t i = 0; i < n; i++) g[i] += grad_out[i];
    return sn_walk_tape_from(ctx, 0);
}

int sn_backward(sn_ctx *ctx, sn_tensor *loss)
{
    if (ctx->status) return ctx->status;
    if (!loss) return sn_ctx_fail(ctx, SN_ERR_ARG, "backward from a NULL loss");
    if (loss->numel != 1)
        return sn_ctx_fail(ctx, SN_ERR_SHAPE, "backward needs a scalar loss, got %lld elements",
                           (long long)loss->numel);
    if (!isfinite(loss->data[0]))
        return sn_ctx_fail(ctx, SN_ERR_NUMERIC, "loss is %f: training diverged (lower the learning rate?)",
                           (double)loss->data[0]);
    float *one = sn_step_alloc(ctx, sizeof *one); /* borrowed until the step ends */
    if (!one) return ctx->status;
    *one = 1.0f;
    return sn_backward_from(ctx, loss, one);
}

void sn_zero_grad(sn_tensor *const *params, int n)
{
    for (int i = 0; i < n; i++) {
        if (params[i]->grad_borrowed) params[i]->grad = NULL, params[i]->grad_borrowed = false;
        else if (params[i]->grad) memset(params[i]->grad, 0, (size_t)params[i]->numel * sizeof(float));
    }
}
