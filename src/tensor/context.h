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
};

#endif
