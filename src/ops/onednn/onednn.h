/* The only place segnas talks to oneDNN (its 2.x C API). oneDNN 3.x drops
 * the *_desc_init functions and renumbers batch-norm flags, so the port to it
 * stays inside this folder: one file per primitive kind plus this common part.
 *
 * Rules measured on the target machines (DESIGN.md):
 *  - activations and gradients NHWC; weights with format `any`, reordered
 *    from our HWIO layout to the primitive's choice;
 *  - every backward primitive created with `any` weights and the forward pd
 *    as hint (forcing the forward's format silently selects `ref`);
 *  - primitives cached per (op, shapes, thread count) in the context cache;
 *  - tiny primitives created AND run with a team of 1 (sn_dnnl_team_size);
 *  - implementation names recorded so benchmarks can print them: a `ref`
 *    implementation on a hot path is a bug. */
#ifndef SEGNAS_OPS_ONEDNN_H
#define SEGNAS_OPS_ONEDNN_H

#include <oneapi/dnnl/dnnl.h>

#include "ops/ops_common.h"

typedef struct sn_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    struct {
        char op[32];
        char impl[96];
    } impls[64];
    int n_impls;
} sn_dnnl;

/* The context's oneDNN engine and stream, created on first use; NULL (with
 * ctx failed) if oneDNN cannot start. */
sn_dnnl *sn_dnnl_get(sn_ctx *ctx);

/* 0 when st is dnnl_success; otherwise records SN_ERR_BACKEND with `what`
 * and oneDNN's status name, and returns SN_ERR_BACKEND. */
int sn_dnnl_check(sn_ctx *ctx, dnnl_status_t st, const char *what);

/* Records the implementation name oneDNN chose for `pd` under `op`
 * (e.g. "conv_bwd_weights"), for sn_impl_name(). */
void sn_dnnl_note_impl(sn_ctx *ctx, const char *op, const_dnnl_primitive_desc_t pd);
/* Destroys the non-NULL objects of the three lists (what a cache entry
 * holds); SN_DNNL_LEN gives a list's length. */
#define SN_DNNL_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))
void sn_dnnl_destroy(const dnnl_primitive_t *prims, int n_prims, const dnnl_primitive_desc_t *pds, int n_pds,
                     const dnnl_memory_t *mems, int n_mems);
/* The same for one of our own kernels, named "segnas:..." (kept beside
 * oneDNN's names, so a benchmark sees which ran). */
void sn_note_impl(sn_ctx *ctx, const char *op, const char *impl);

/* Memory descriptor of a 4-D NHWC tensor (oneDNN's logical dims are NCHW,
 * the physical layout is tag acdb = nhwc). */
dnnl_status_t sn_dnnl_md_nhwc(dnnl_memory_desc_t *md, int64_t n, int64_t h, int64_t w, int64_t c);

/* ---- OpenMP team size per primitive ------------------------------------------
 * oneDNN 2.6 (OpenMP runtime) reads omp_get_max_threads() when a primitive
 * descriptor / primitive is created (many jit kernels fix their work split
 * then) and again at execution (parallel(0, ...) and parallel_nd use the
 * current value). For tiny tensors a 2-thread fork/join costs more than the
 * kernel (DESIGN.md: 0.6 us alone vs 4.4 us), so each primitive gets a team
 * size from its work, and both its creation and every execution run with
 * omp_set_num_threads(team) set on the calling thread, restored right after.
 * This relies on segnas calling oneDNN only from a single thread outside any
 * parallel region (true everywhere in src/ops): omp_set_num_threads changes
 * the calling thread's ICV, which is what oneDNN reads. The team is part of
 * every cache key, beside sn_get_num_threads(). */

/* Work estimate in FLOP-equivalents: flops + SN_DNNL_ELEM_WORK per element
 * read or written (memory-bound ops cost ~0.1-0.2 ns per element on one core
 * here, ~16 FLOPs of a small convolution). */
#define SN_DNNL_ELEM_WORK 16
/* Below this one thread runs a primitive. Measured alone (1 vs 2 threads,
 * one primitive repeated: src/ops/onednn/common.c) a 2-thread team already
 * wins from ~300k (~3 us on one core). In a real chain it does not: each
 * primitive's half of the data sits in the other core's cache after the
 * previous one, and the supernet step (L=12 F=8, batch 2, 2 threads, median
 * of 3 interleaved runs) was fastest with 3M: 128x128 weight + arch step
 * 1.86 + 1.19 s at 300k, 1.63 + 1.06 s at 3M, 1.70 + 1.08 s with every
 * primitive serial; 64x64 1.00 + 0.52 s at 300k, 0.90 + 0.46 s at 3M. */
#ifndef SN_DNNL_SERIAL_WORK
#define SN_DNNL_SERIAL_WORK 3000000
#endif

int64_t sn_dnnl_work(int64_t flops, int64_t elements);
/* 1 when work < SN_DNNL_SERIAL_WORK, else sn_get_num_threads(). */
int sn_dnnl_team_size(int64_t work);
/* Sets the calling thread's OpenMP team size to `team` and returns the one
 * to give back to sn_dnnl_team_leave (no-op when they are equal). */
int sn_dnnl_team_enter(int team);
void sn_dnnl_team_leave(int saved);

/* The start of every cache lookup that misses: a zeroed entry of `size`
 * bytes and the context's engine, or NULL with ctx failed (oneDNN cannot
 * start, or out of memory: `what` names the entry). */
void *sn_dnnl_entry_new(sn_ctx *ctx, size_t size, dnnl_engine_t *engine, const char *what);

/* The end of every cache lookup that had to build its entry: returns the
 * entry, now in the context's cache, or NULL after destroying it when its
 * creation failed (rc != 0) or the cache is out of memory (`what` names it
 * in that message). */
void *sn_dnnl_cache_keep(sn_ctx *ctx, const void *key, size_t key_len, void *entry, void (*destroy)(void *),
                         int rc, const char *what);

/* Reorder src_md -> dst_md; with `sum` the destination is accumulated into
 * (a sum post-op), which is how weight gradients reach our HWIO buffers. */
int sn_dnnl_reorder_create(sn_ctx *ctx, dnnl_engine_t eng, const dnnl_memory_desc_t *src_md,
                           const dnnl_memory_desc_t *dst_md, bool sum, dnnl_primitive_t *out);

/* Points a memory object (created with DNNL_MEMORY_NONE) at our buffer. */
int sn_dnnl_set_handle(sn_ctx *ctx, dnnl_memory_t m, const void *p);

/* dst[0..n) += the first n floats of an owned memory object (a bias
 * gradient oneDNN computed). */
int sn_dnnl_add_from(sn_ctx *ctx, dnnl_memory_t m, float *dst, int64_t n);

/* Runs a primitive with (arg, memory) pairs on the context's stream with a
 * team of `team` threads (the one it was created with) and waits for it. */
int sn_dnnl_exec(sn_ctx *ctx, dnnl_primitive_t prim, int team, int n_args, const dnnl_exec_arg_t *args,
                 const char *what);

#endif
