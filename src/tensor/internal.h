/* Internal to the engine: what an op implementation needs to record itself on
 * the tape. Not part of the public API. */
#ifndef SEGNAS_TENSOR_INTERNAL_H
#define SEGNAS_TENSOR_INTERNAL_H

#include "segnas/tensor.h"

/* An op's entry in the dispatch table: each op file defines one
 * `const sn_op_info` and points its nodes at it. */
typedef struct sn_op_info {
    const char *name;
    /* Accumulates into the gradients of node->in[i] (use sn_grad_of) from
     * node->out->grad. Returns 0 or an sn_status (message set on ctx). */
    int (*backward)(sn_ctx *ctx, sn_node *node);
} sn_op_info;

struct sn_node {
    const sn_op_info *op;
    int n_in;
    sn_tensor **in;     /* n_in inputs (entries may be NULL for optional ones) */
    sn_tensor *out;
    void *saved;        /* op-specific state, allocated in the step arena */
};

/* Allocates n bytes in the step arena, recording SN_ERR_NOMEM on failure. */
void *sn_step_alloc(sn_ctx *ctx, size_t bytes);
/* Zeroed variant. */
void *sn_step_calloc(sn_ctx *ctx, size_t bytes);

/* Gradient buffer of t for an op that will produce every element: when t
 * has no gradient yet it is allocated WITHOUT zero fill and *fresh is set
 * (the op writes); otherwise *fresh is false and the op must add. Saves a
 * zero pass plus a read in the common single-consumer case. */
float *sn_grad_for_write(sn_ctx *ctx, sn_tensor *t, bool *fresh);

/* True when the result of an op with these inputs must be recorded. */
bool sn_needs_grad(const sn_ctx *ctx, sn_tensor *const *in, int n_in);

/* Records `out = op(in...)` on the tape when gradients are needed (sets
 * out->requires_grad and out->node). Returns the node (with `saved` bytes of
 * zeroed op state) or NULL when nothing needs recording; on allocation
 * failure records SN_ERR_NOMEM and returns NULL with ctx failed. */
sn_node *sn_record(sn_ctx *ctx, const sn_op_info *op, sn_tensor *out,
                   sn_tensor *const *in, int n_in, size_t saved_bytes);

/* sn_record without the requires-grad test: the node is recorded whenever
 * gradients are enabled (for ops whose output depends on parameters that
 * are not among their inputs). */
sn_node *sn_record_always(sn_ctx *ctx, const sn_op_info *op, sn_tensor *out, sn_tensor *const *in, int n_in,
                          size_t saved_bytes);

/* Walks tape nodes [from, ctx's tape end) in reverse (src/tensor/autograd.c). */
int sn_walk_tape_from(sn_ctx *ctx, int from);

/* Builder helper: true when any of the n inputs is NULL (an earlier failure)
 * or the context already failed. Non-optional inputs only. */
bool sn_any_null(const sn_ctx *ctx, sn_tensor *const *in, int n);

/* Generic keyed cache for backend objects (oneDNN primitives), owned by the
 * context and freed with it. Key bytes are copied. */
void *sn_cache_get(sn_ctx *ctx, const void *key, size_t key_len);
/* Stores value (freed with `destroy` at context destruction). Returns 0 or
 * SN_ERR_NOMEM. */
int sn_cache_put(sn_ctx *ctx, const void *key, size_t key_len, void *value,
                 void (*destroy)(void *value));

/* Backend hook: the oneDNN engine/stream live in the context but are created
 * lazily by ops/onednn so the tensor layer does not depend on oneDNN. */
void **sn_ctx_backend_slot(sn_ctx *ctx);
void sn_ctx_set_backend_destroy(sn_ctx *ctx, void (*destroy)(void *backend));

/* For functions that report through an (err, errlen) buffer instead of a
 * context: formats the message into err (when not NULL) and returns status. */
int sn_errf(char *err, size_t errlen, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define SN_UNUSED(x) ((void)(x))

#endif
