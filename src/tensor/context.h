/* The context's fields, shared by the files of src/tensor only. */
#ifndef SEGNAS_TENSOR_CONTEXT_H
#define SEGNAS_TENSOR_CONTEXT_H

#include "cache.h"
#include "internal.h"

struct sn_ctx {
    sn_arena *step;   /* activations, gradients, tape nodes: reset each step */
    sn_arena *params; /* parameters, their gradients, optimiser state */
    sn_arena *scratch; /* a recomputed segment's activations (src/tensor/recompute.c) */
    bool in_segment;   /* running a segment's function */
    bool recomputing;  /* ... again, for its backward */
    sn_node **tape;   /* grows, never shrinks: no malloc once warm */
    int tape_len, tape_cap;
    bool grad_enabled;
    int status;
    char errmsg[512];
    sn_cache cache;
    void *backend;
    void (*backend_destroy)(void *backend);
    /* Concurrent segments (sn_recompute_all, src/tensor/recompute.c): one
     * worker context per thread, made on first use. */
    struct sn_ctx **lanes;
    int n_lanes;
    /* In a worker: its own step arena (ctx->step points at the scratch arena
     * while a segment runs) and the gradient sums owed to tensors of the
     * parent context, applied by the parent in segment order. */
    sn_arena *keep;
    struct sn_grad_add *owed;
};

/* dst[0..n) += src[0..n), owed by a worker to its parent context. */
typedef struct sn_grad_add {
    float *dst;
    const float *src;
    int64_t n;
    struct sn_grad_add *next;
} sn_grad_add;

/* In a worker context (ctx->keep set): a zeroed gradient buffer of n floats
 * in the worker's own step arena, to be added into dst by the parent after
 * the group; NULL (ctx failed) when out of memory. */
float *sn_lane_private_grad(sn_ctx *ctx, float *dst, int64_t n);

#endif
