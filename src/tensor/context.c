/* The engine context: the two arenas, the tape, the error of the first
 * failure, the backend-object cache. One per thread of training. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "context.h"

const char *sn_status_name(int status)
{
    switch (status) {
    case SN_OK: return "ok";
    case SN_ERR_ARG: return "bad argument";
    case SN_ERR_SHAPE: return "shape mismatch";
    case SN_ERR_NOMEM: return "out of memory";
    case SN_ERR_IO: return "I/O error";
    case SN_ERR_FORMAT: return "bad format";
    case SN_ERR_NUMERIC: return "numeric error";
    case SN_ERR_BACKEND: return "backend error";
    case SN_ERR_INTERRUPTED: return "interrupted";
    default: return "unknown error";
    }
}

sn_ctx *sn_ctx_create(const sn_ctx_options *opt)
{
    sn_ctx_options def = {0};
    if (!opt) opt = &def;
    sn_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->step = sn_arena_create(opt->step_arena_bytes ? opt->step_arena_bytes : (size_t)16 << 20);
    ctx->params = sn_arena_create(opt->param_arena_bytes ? opt->param_arena_bytes : (size_t)4 << 20);
    if (!ctx->step || !ctx->params) {
        sn_ctx_destroy(ctx);
        return NULL;
    }
    ctx->grad_enabled = true;
    if (opt->threads > 0) sn_set_num_threads(opt->threads);
    return ctx;
}

void sn_ctx_destroy(sn_ctx *ctx)
{
    if (!ctx) return;
    for (int i = 0; i < ctx->n_lanes; i++) sn_ctx_destroy(ctx->lanes[i]);
    free(ctx->lanes);
    sn_cache_clear(&ctx->cache);
    if (ctx->backend && ctx->backend_destroy) ctx->backend_destroy(ctx->backend);
    sn_arena_destroy(ctx->step);
    sn_arena_destroy(ctx->params);
    sn_arena_destroy(ctx->scratch);
    free(ctx->tape);
    free(ctx);
}

int sn_ctx_status(const sn_ctx *ctx) { return ctx->status; }

const char *sn_ctx_error(const sn_ctx *ctx) { return ctx->status ? ctx->errmsg : ""; }

void sn_ctx_clear_error(sn_ctx *ctx)
{
    ctx->status = SN_OK;
    ctx->errmsg[0] = '\0';
}

int sn_ctx_fail(sn_ctx *ctx, int status, const char *fmt, ...)
{
    if (ctx->status == SN_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
        va_end(ap);
        ctx->status = status;
    }
    return status;
}

void sn_set_num_threads(int n)
{
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int sn_get_num_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void sn_step_end(sn_ctx *ctx)
{
    ctx->tape_len = 0;
    sn_arena_reset(ctx->step);
}

sn_arena *sn_ctx_step_arena(sn_ctx *ctx) { return ctx->step; }
sn_arena *sn_ctx_param_arena(sn_ctx *ctx) { return ctx->params; }

bool sn_set_grad_enabled(sn_ctx *ctx, bool enabled)
{
    bool old = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return old;
}

bool sn_grad_enabled(const sn_ctx *ctx) { return ctx->grad_enabled; }

void *sn_step_alloc(sn_ctx *ctx, size_t bytes)
{
    void *p = sn_arena_alloc(ctx->step, bytes);
    if (!p) sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory allocating %zu bytes for a step", bytes);
    return p;
}

void *sn_step_calloc(sn_ctx *ctx, size_t bytes)
{
    void *p = sn_step_alloc(ctx, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void **sn_ctx_backend_slot(sn_ctx *ctx) { return &ctx->backend; }

void sn_ctx_set_backend_destroy(sn_ctx *ctx, void (*destroy)(void *backend))
{
    ctx->backend_destroy = destroy;
}

void *sn_cache_get(sn_ctx *ctx, const void *key, size_t key_len)
{
    return sn_cache_find(&ctx->cache, key, key_len);
}

int sn_cache_put(sn_ctx *ctx, const void *key, size_t key_len, void *value,
                 void (*destroy)(void *value))
{
    if (sn_cache_insert(&ctx->cache, key, key_len, value, destroy))
        return sn_ctx_fail(ctx, SN_ERR_NOMEM, "out of memory growing the primitive cache");
    return SN_OK;
}
