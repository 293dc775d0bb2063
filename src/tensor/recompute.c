/* Gradient checkpointing by segments (see tensor.h), one at a time or a
 * group of independent ones at once.
 *
 * A group (sn_recompute_all) runs its segments concurrently, one worker
 * context ("lane") per OpenMP thread, each segment single-threaded inside
 * its lane. Why: the supernet's cells are many small convolutions, and on 2
 * cores a 2-thread team per convolution gains nothing there (the 128x128
 * search step took 1.66 s on 2 threads and 1.60 s on 1; the second thread
 * waited 84% of the time); independent cells side by side keep both busy.
 *
 * A lane has its own arenas, tape, primitive cache and oneDNN stream, so
 * lanes share nothing mutable but the tensors they are given. What two
 * segments of a group may touch together is summed through buffers of the
 * lane's own (ctx->keep, below) and added by the parent after the group in
 * segment order, so the result does not depend on which thread ran what:
 * the gradients of inputs used by more than one segment, and the gradients
 * of parameter rows taken with sn_param_rows (src/tensor/tensor.c). Every
 * other gradient a segment writes must be its own (its inputs used by it
 * alone, its own parameters). */
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "context.h"

typedef struct group group;

typedef struct segment {
    sn_segment_fn fn;
    void *user;
    group *grp; /* NULL for a lone segment */
} segment;

struct group {
    int n;
    sn_segment_call *calls;
    sn_tensor **outs;
    bool done; /* the backward of the whole group ran */
};

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

/* Runs the segment in `run` again with the tape on and backpropagates
 * gy (the gradient of its output) through it into the inputs. */
static int rerun_backward(sn_ctx *run, const segment *seg, sn_tensor *const *inputs, int n, const float *gy)
{
    int mark = run->tape_len;
    run->recomputing = true;
    sn_tensor *y = run_in_scratch(run, seg, inputs, n);
    run->recomputing = false;
    int rc = run->status;
    if (!rc && y && y->requires_grad) {
        sn_arena *step = run->step;
        run->step = run->scratch;
        bool fresh; /* y may be one of the inputs, whose gradient then exists */
        float *g = sn_grad_for_write(run, y, &fresh);
        if (g)
            for (int64_t i = 0; i < y->numel; i++) g[i] = fresh ? gy[i] : g[i] + gy[i];
        rc = g ? sn_walk_tape_from(run, mark) : run->status;
        run->step = step;
    }
    run->tape_len = mark;
    sn_arena_reset(run->scratch);
    return rc;
}

/* ---- lanes ------------------------------------------------------------------------ */
static int ensure_lanes(sn_ctx *ctx, int n)
{
    if (ctx->n_lanes >= n) return SN_OK;
    sn_ctx **lanes = realloc(ctx->lanes, (size_t)n * sizeof *lanes);
    if (!lanes) return sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for %d worker contexts", n);
    ctx->lanes = lanes;
    for (; ctx->n_lanes < n; ctx->n_lanes++) {
        sn_ctx_options o = {0}; /* threads 0: leaves the thread settings alone */
        sn_ctx *lane = sn_ctx_create(&o);
        if (!lane || ensure_scratch(lane)) {
            sn_ctx_destroy(lane);
            return sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for a worker context");
        }
        lane->keep = lane->step;
        lanes[ctx->n_lanes] = lane;
    }
    return SN_OK;
}

float *sn_lane_private_grad(sn_ctx *ctx, float *dst, int64_t n)
{
    float *g = sn_arena_alloc(ctx->keep, (size_t)n * sizeof *g);
    sn_grad_add *a = sn_arena_alloc(ctx->keep, sizeof *a);
    if (!g || !a) {
        sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory for a worker's gradient buffer");
        return NULL;
    }
    memset(g, 0, (size_t)n * sizeof *g);
    *a = (sn_grad_add){dst, g, n, ctx->owed};
    ctx->owed = a;
    return g;
}

/* The calling thread's lane, running single-threaded: its oneDNN
 * primitives get a team of one, its own kernels' parallel loops one thread
 * (the setting belongs to this thread's task in the parallel region and
 * ends with it). */
static sn_ctx *my_lane(sn_ctx *ctx)
{
#ifdef _OPENMP
    omp_set_num_threads(1);
    return ctx->lanes[omp_get_thread_num()];
#else
    return ctx->lanes[0];
#endif
}

/* The first failure of any lane becomes the parent's; lanes start clean. */
static int collect_failures(sn_ctx *ctx)
{
    for (int i = 0; i < ctx->n_lanes; i++) {
        sn_ctx *lane = ctx->lanes[i];
        if (lane->status) {
            sn_ctx_fail(ctx, lane->status, "%s", lane->errmsg);
            sn_ctx_clear_error(lane);
        }
        lane->owed = NULL;
        lane->tape_len = 0;
        sn_arena_reset(lane->keep);
    }
    return ctx->status;
}

/* ---- forward ------------------------------------------------------------------------ */
/* Runs the segment in `run` without a tape, in run's scratch arena, and
 * copies its output into `home` (the same context or a lane's parent). */
static sn_tensor *run_scoped(sn_ctx *run, sn_ctx *home, const segment *seg, sn_tensor *const *inputs, int n)
{
    if (ensure_scratch(run)) return NULL;
    bool grad = run->grad_enabled;
    run->grad_enabled = false;
    sn_tensor *tmp = run_in_scratch(run, seg, inputs, n);
    run->grad_enabled = grad;
    sn_tensor *y = NULL;
    if (tmp) {
#pragma omp critical(sn_recompute_home_arena)
        y = sn_tensor_empty_like(home, tmp);
    }
    if (y) memcpy(y->data, tmp->data, (size_t)y->numel * sizeof(float));
    sn_arena_reset(run->scratch);
    return y;
}

static int segment_backward(sn_ctx *ctx, sn_node *node);
static const sn_op_info segment_op = {"recompute", segment_backward};

sn_tensor *sn_recompute(sn_ctx *ctx, sn_segment_fn fn, void *user, sn_tensor *const *inputs, int n_inputs)
{
    if (sn_any_null(ctx, inputs, n_inputs)) return NULL;
    if (ctx->in_segment) return fn(ctx, user, inputs, n_inputs);
    segment seg = {fn, user, NULL};
    /* Without a tape there is nothing to recompute, but the scratch arena
     * still bounds inference memory to one segment's activations. */
    sn_tensor *y = run_scoped(ctx, ctx, &seg, inputs, n_inputs);
    if (!y || !ctx->grad_enabled) return y;
    sn_node *node = sn_record_always(ctx, &segment_op, y, inputs, n_inputs, sizeof seg);
    if (!node) return NULL;
    *(segment *)node->saved = seg;
    return y;
}

static int group_failed(sn_ctx *ctx, int n, sn_tensor **outs)
{
    for (int i = 0; i < n; i++) outs[i] = NULL;
    return ctx->status;
}

int sn_recompute_all(sn_ctx *ctx, int n, const sn_segment_call *calls, sn_tensor **outs)
{
    for (int i = 0; i < n; i++) outs[i] = NULL;
    for (int i = 0; i < n; i++)
        if (sn_any_null(ctx, calls[i].inputs, calls[i].n_inputs))
            return ctx->status ? ctx->status
                               : sn_ctx_fail(ctx, SN_ERR_ARG, "recompute_all: segment %d of %d has a NULL input", i, n);
    int nt = sn_get_num_threads() < n ? sn_get_num_threads() : n;
    if (nt < 2 || ctx->in_segment || ctx->keep) { /* one at a time */
        for (int i = 0; i < n; i++)
            if (!(outs[i] = sn_recompute(ctx, calls[i].fn, calls[i].user, calls[i].inputs, calls[i].n_inputs)))
                return group_failed(ctx, n, outs);
        return SN_OK;
    }
    if (ensure_lanes(ctx, nt)) return ctx->status;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int i = 0; i < n; i++) {
        segment seg = {calls[i].fn, calls[i].user, NULL};
        outs[i] = run_scoped(my_lane(ctx), ctx, &seg, calls[i].inputs, calls[i].n_inputs);
    }
    if (collect_failures(ctx)) return group_failed(ctx, n, outs);
    if (!ctx->grad_enabled) return SN_OK;
    group *g = sn_step_alloc(ctx, sizeof *g);
    sn_segment_call *copy = g ? sn_step_alloc(ctx, (size_t)n * sizeof *copy) : NULL;
    sn_tensor **ys = copy ? sn_step_alloc(ctx, (size_t)n * sizeof *ys) : NULL;
    if (!ys) return group_failed(ctx, n, outs);
    memcpy(copy, calls, (size_t)n * sizeof *copy);
    memcpy(ys, outs, (size_t)n * sizeof *ys);
    *g = (group){n, copy, ys, false};
    /* One node per output, adjacent on the tape: the first one the backward
     * walk reaches (the last) runs the whole group, when every output's
     * gradient is complete (their consumers come later on the tape). */
    for (int i = 0; i < n; i++) {
        sn_node *node = sn_record_always(ctx, &segment_op, outs[i], calls[i].inputs, calls[i].n_inputs, sizeof(segment));
        if (!node) return group_failed(ctx, n, outs);
        *(segment *)node->saved = (segment){calls[i].fn, calls[i].user, g};
    }
    return SN_OK;
}

/* ---- backward ------------------------------------------------------------------------ */
/* Whether input k of segment i also feeds another segment of the group
 * that needs a backward. */
static bool shared_input(const group *g, int i, int k)
{
    const sn_tensor *t = g->calls[i].inputs[k];
    for (int j = 0; j < g->n; j++) {
        if (!g->outs[j]->grad) continue;
        for (int m = 0; m < g->calls[j].n_inputs; m++)
            if ((j != i || m != k) && g->calls[j].inputs[m] == t) return true;
    }
    return false;
}

/* Segment i of the group in a lane: its inputs as lane-local copies whose
 * gradient is the input's own (used by this segment alone) or a private
 * buffer owed to it. Returns the sums the parent must add. */
static sn_grad_add *lane_backward(sn_ctx *lane, const group *g, int i, const bool *shared)
{
    const sn_segment_call *c = &g->calls[i];
    sn_tensor *in[SN_SEGMENT_MAX_INPUTS];
    lane->owed = NULL;
    for (int k = 0; k < c->n_inputs && !lane->status; k++) {
        sn_tensor *t = c->inputs[k], *local = sn_arena_alloc(lane->keep, sizeof *local);
        if (!local) {
            sn_ctx_fail(lane, SN_ERR_NOMEM, "out of memory for a worker's input");
            break;
        }
        *local = *t;
        local->node = NULL; /* a leaf of the lane's tape */
        local->grad_borrowed = false;
        if (t->requires_grad) local->grad = shared[k] ? sn_lane_private_grad(lane, t->grad, t->numel) : t->grad;
        in[k] = local;
    }
    segment seg = {c->fn, c->user, NULL};
    if (!lane->status) rerun_backward(lane, &seg, in, c->n_inputs, g->outs[i]->grad);
    return lane->owed;
}

static int group_backward(sn_ctx *ctx, group *g)
{
    if (g->done) return SN_OK;
    g->done = true;
    int n = g->n, nt = sn_get_num_threads() < n ? sn_get_num_threads() : n;
    /* Every gradient a lane writes in place exists before the lanes start. */
    bool *shared = sn_step_calloc(ctx, (size_t)n * SN_SEGMENT_MAX_INPUTS * sizeof *shared);
    sn_grad_add **owed = sn_step_calloc(ctx, (size_t)n * sizeof *owed);
    if (!shared || !owed || ensure_lanes(ctx, nt)) return ctx->status;
    for (int i = 0; i < n; i++) {
        if (!g->outs[i]->grad) continue;
        for (int k = 0; k < g->calls[i].n_inputs; k++) {
            sn_tensor *t = g->calls[i].inputs[k];
            if (t->requires_grad && !sn_grad_of(ctx, t)) return ctx->status;
            shared[i * SN_SEGMENT_MAX_INPUTS + k] = shared_input(g, i, k);
        }
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int i = 0; i < n; i++)
        if (g->outs[i]->grad) owed[i] = lane_backward(my_lane(ctx), g, i, shared + i * SN_SEGMENT_MAX_INPUTS);
    for (int i = 0; i < n; i++) /* segment order: the same sums on any thread count */
        for (const sn_grad_add *a = owed[i]; a; a = a->next)
            for (int64_t e = 0; e < a->n; e++) a->dst[e] += a->src[e];
    return collect_failures(ctx);
}

static int segment_backward(sn_ctx *ctx, sn_node *node)
{
    const segment *seg = node->saved;
    if (seg->grp) return group_backward(ctx, seg->grp);
    /* The inputs' gradients must outlive the scratch arena. */
    for (int i = 0; i < node->n_in; i++)
        if (node->in[i]->requires_grad && !sn_grad_of(ctx, node->in[i])) return ctx->status;
    return rerun_backward(ctx, seg, node->in, node->n_in, node->out->grad);
}
