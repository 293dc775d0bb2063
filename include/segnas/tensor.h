/* segnas layer 1: tensors, arenas, the engine context and the autograd tape.
 *
 * Every tensor is float32, contiguous, row-major in the order of `shape`.
 * 4-D activations are NHWC: shape = {N, H, W, C} (channels-last measured
 * fastest with oneDNN on this class of machine, see DESIGN.md).
 *
 * Errors: functions that build tensors return NULL on failure and record a
 * status plus a message on the context (the first error wins; it is "sticky":
 * every builder given a NULL input returns NULL at once, so a whole forward
 * pass can be written without checks and tested once at the end).
 * Functions returning `int` return 0 (SN_OK) or an sn_status code.
 */
#ifndef SEGNAS_TENSOR_H
#define SEGNAS_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sn_status {
    SN_OK = 0,
    SN_ERR_ARG,        /* bad argument or flag value */
    SN_ERR_SHAPE,      /* shapes that do not fit together */
    SN_ERR_NOMEM,      /* out of memory */
    SN_ERR_IO,         /* file could not be read or written */
    SN_ERR_FORMAT,     /* file content is malformed */
    SN_ERR_NUMERIC,    /* NaN / Inf where a number was expected */
    SN_ERR_BACKEND,    /* oneDNN (or another library) failed */
    SN_ERR_INTERRUPTED /* stopped by a signal */
} sn_status;

const char *sn_status_name(int status);

#define SN_MAX_DIMS 5

typedef struct sn_arena sn_arena;
typedef struct sn_ctx sn_ctx;
typedef struct sn_node sn_node;

typedef struct sn_tensor {
    int ndim;
    int64_t shape[SN_MAX_DIMS];
    int64_t numel;
    float *data;
    float *grad;         /* NULL until a gradient flows into it */
    bool grad_borrowed;  /* grad is the caller's buffer of sn_backward_from:
                            read-only, copied before anything adds to it */
    bool requires_grad;
    bool is_param;       /* lives in the persistent arena; grad persists */
    sn_node *node;       /* op that produced it; NULL for leaves */
    const char *name;    /* optional, for messages and checkpoints */
} sn_tensor;

/* ---- arenas: bump allocators that never give memory back inside a step -- */
sn_arena *sn_arena_create(size_t initial_bytes);
void sn_arena_destroy(sn_arena *a);
/* 64-byte aligned; NULL when out of memory. */
void *sn_arena_alloc(sn_arena *a, size_t bytes);
/* Forget every allocation; keeps (and merges) the memory for the next step. */
void sn_arena_reset(sn_arena *a);
size_t sn_arena_used(const sn_arena *a);
size_t sn_arena_capacity(const sn_arena *a);

/* ---- context ------------------------------------------------------------ */
typedef struct sn_ctx_options {
    int threads;               /* 0 = leave OpenMP's default */
    size_t step_arena_bytes;   /* initial size of the per-step arena */
    size_t param_arena_bytes;  /* initial size of the persistent arena */
} sn_ctx_options;

/* NULL only when out of memory or the backend cannot start. */
sn_ctx *sn_ctx_create(const sn_ctx_options *opt);
void sn_ctx_destroy(sn_ctx *ctx);

int sn_ctx_status(const sn_ctx *ctx);
const char *sn_ctx_error(const sn_ctx *ctx);
void sn_ctx_clear_error(sn_ctx *ctx);
/* Records the first error (printf format); returns `status`. */
int sn_ctx_fail(sn_ctx *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets OpenMP's (and so oneDNN's) thread count. */
void sn_set_num_threads(int n);
int sn_get_num_threads(void);

/* Ends a step: resets the tape and the per-step arena. Parameter gradients
 * are kept (call sn_zero_grad). */
void sn_step_end(sn_ctx *ctx);

sn_arena *sn_ctx_step_arena(sn_ctx *ctx);
sn_arena *sn_ctx_param_arena(sn_ctx *ctx);

/* Gradient recording. Evaluation code disables it; returns the old value. */
bool sn_set_grad_enabled(sn_ctx *ctx, bool enabled);
bool sn_grad_enabled(const sn_ctx *ctx);

/* ---- tensors ------------------------------------------------------------ */
/* Activation in the per-step arena; data uninitialised. */
sn_tensor *sn_tensor_new(sn_ctx *ctx, int ndim, const int64_t *shape);
sn_tensor *sn_tensor_new4(sn_ctx *ctx, int64_t n, int64_t h, int64_t w, int64_t c);
/* Same shape as `like`, zero-filled / uninitialised. */
sn_tensor *sn_tensor_zeros_like(sn_ctx *ctx, const sn_tensor *like);
sn_tensor *sn_tensor_empty_like(sn_ctx *ctx, const sn_tensor *like);
/* Persistent parameter with a persistent zeroed gradient. */
sn_tensor *sn_param_new(sn_ctx *ctx, const char *name, int ndim, const int64_t *shape);
/* Persistent buffer without gradient (e.g. batch-norm running stats). */
sn_tensor *sn_buffer_new(sn_ctx *ctx, const char *name, int ndim, const int64_t *shape);

bool sn_same_shape(const sn_tensor *a, const sn_tensor *b);
/* "2x16x16x8" into buf; returns buf. */
const char *sn_shape_str(const sn_tensor *t, char *buf, size_t len);
void sn_tensor_fill(sn_tensor *t, float v);

/* A reshaped view sharing data (and gradient) with `x`. Recorded on the tape
 * so gradients flow. numel must match. */
sn_tensor *sn_reshape(sn_ctx *ctx, sn_tensor *x, int ndim, const int64_t *shape);

/* A view of rows [first, first+n) of a parameter (first axis), sharing its
 * data and its persistent gradient, so gradients flow into the parameter
 * without a tape node (e.g. one edge's alpha logits). */
sn_tensor *sn_param_rows(sn_ctx *ctx, sn_tensor *param, int64_t first, int64_t n);

/* ---- autograd ------------------------------------------------------------ */
/* Gradient buffer of t, allocated zero-filled on first use. */
float *sn_grad_of(sn_ctx *ctx, sn_tensor *t);
/* Seeds d(loss)/d(loss) = 1 (loss must have one element) and walks the tape
 * in reverse. Gradients accumulate into every tensor that requires them. */
int sn_backward(sn_ctx *ctx, sn_tensor *loss);
/* Same with an explicit gradient for `out` (numel floats). When `out` had
 * no gradient yet, grad_out is used in place, not copied (as PyTorch's
 * y.backward(dy) does): it must stay unchanged until the step ends, and
 * segnas never writes to it (a later accumulation into out's gradient
 * copies it first). */
int sn_backward_from(sn_ctx *ctx, sn_tensor *out, const float *grad_out);
/* Zeroes the gradients of `n` parameters. */
void sn_zero_grad(sn_tensor *const *params, int n);
/* Number of nodes recorded on the tape since the last step end. */
int sn_tape_size(const sn_ctx *ctx);

/* ---- recomputation (gradient checkpointing) ------------------------------
 * sn_recompute(fn) runs a segment of the network, keeping only its output:
 * its intermediate activations live in a scratch arena that is reset at
 * once. The backward runs the segment again with the tape on (still in the
 * scratch arena) and backpropagates through it. Memory: one segment's
 * activations instead of all of them; cost: one more forward. fn must be
 * deterministic (no random draws) and may use parameters that are not
 * among `inputs`; `user` must stay valid until the backward. Segments do
 * not nest (an inner one runs as plain code). With gradients disabled it
 * runs the segment once in the scratch arena and keeps only its output:
 * inference memory is one segment's activations. */
typedef sn_tensor *(*sn_segment_fn)(sn_ctx *ctx, void *user, sn_tensor *const *inputs, int n_inputs);
sn_tensor *sn_recompute(sn_ctx *ctx, sn_segment_fn fn, void *user, sn_tensor *const *inputs, int n_inputs);
/* n independent segments: the same as sn_recompute on each in turn (outs[i]
 * the output of calls[i]), but with two or more threads they run side by
 * side, each single-threaded in a worker context of its own (one per
 * thread, kept in ctx). Independent: no segment reads another's output.
 * They may share inputs and parameter rows taken with sn_param_rows (the
 * supernet's cells share alpha): those gradients are summed per segment and
 * added in segment order, so results do not depend on the thread count of
 * the group. Any other parameter a segment trains must be its own. The
 * backward of the group runs when the walk reaches its last output. Returns
 * SN_OK or the first failure (outs then NULL). */
#define SN_SEGMENT_MAX_INPUTS 4
typedef struct sn_segment_call {
    sn_segment_fn fn;
    void *user;
    sn_tensor *inputs[SN_SEGMENT_MAX_INPUTS];
    int n_inputs;
} sn_segment_call;
int sn_recompute_all(sn_ctx *ctx, int n, const sn_segment_call *calls, sn_tensor **outs);
/* True while a segment runs again for its backward: ops with side effects
 * (batch-norm running statistics) must skip them. */
bool sn_recomputing(const sn_ctx *ctx);

/* ---- files ------------------------------------------------------------- */
/* Writes `len` bytes to `path` atomically: "<path>.tmp.<pid>", fflush and
 * fsync, rename over the target, fsync the directory. On failure the old
 * file is untouched and the temporary removed. */
int sn_write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* Reads a whole file (at most max_len bytes) into a malloc'ed buffer with a
 * NUL appended (free() it). */
int sn_read_file(const char *path, size_t max_len, char **data, size_t *len, char *err,
                 size_t errlen);

/* ---- random numbers: deterministic, seeded, one stream per component ---- */
typedef struct sn_rng {
    uint64_t s[4];
} sn_rng;
void sn_rng_seed(sn_rng *r, uint64_t seed);
uint64_t sn_rng_next(sn_rng *r);
/* Uniform in [0, 1). */
double sn_rng_uniform(sn_rng *r);
double sn_rng_normal(sn_rng *r);
/* Uniform integer in [0, n). */
uint64_t sn_rng_below(sn_rng *r, uint64_t n);
void sn_rng_fill_normal(sn_rng *r, float *x, int64_t n, float mean, float std);
void sn_rng_fill_uniform(sn_rng *r, float *x, int64_t n, float lo, float hi);

#ifdef __cplusplus
}
#endif
#endif
