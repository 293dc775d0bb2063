/* Named parameter collections and the builder that fills them. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/nn.h"

int sn_param_set_add(sn_param_set *s, sn_tensor *t)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        sn_tensor **items = realloc(s->items, (size_t)cap * sizeof *items);
        if (!items) return SN_ERR_NOMEM;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = t;
    return SN_OK;
}

void sn_param_set_free(sn_param_set *s)
{
    free(s->items);
    *s = (sn_param_set){0};
}

int64_t sn_param_set_numel(const sn_param_set *s)
{
    int64_t n = 0;
    for (int i = 0; i < s->n; i++) n += s->items[i]->numel;
    return n;
}

sn_tensor *sn_param_set_find(const sn_param_set *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (s->items[i]->name && !strcmp(s->items[i]->name, name)) return s->items[i];
    return NULL;
}

size_t sn_nn_push(sn_nn_builder *b, const char *fmt, ...)
{
    size_t old = strlen(b->prefix);
    if (old && old + 1 < sizeof b->prefix) b->prefix[old] = '.', b->prefix[old + 1] = '\0';
    size_t at = strlen(b->prefix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->prefix + at, sizeof b->prefix - at, fmt, ap);
    va_end(ap);
    return old;
}

void sn_nn_pop(sn_nn_builder *b, size_t old_len) { b->prefix[old_len] = '\0'; }

static sn_tensor *named(sn_nn_builder *b, const char *leaf, int ndim, const int64_t *shape, bool learnable)
{
    char name[256];
    snprintf(name, sizeof name, "%s%s%s", b->prefix, b->prefix[0] ? "." : "", leaf);
    sn_tensor *t = learnable ? sn_param_new(b->ctx, name, ndim, shape) : sn_buffer_new(b->ctx, name, ndim, shape);
    if (!t) return NULL;
    sn_param_set *set = learnable ? b->params : b->buffers;
    if (set && sn_param_set_add(set, t)) {
        sn_ctx_fail(b->ctx, SN_ERR_NOMEM, "out of memory collecting parameter %s", name);
        return NULL;
    }
    return t;
}

sn_tensor *sn_nn_param(sn_nn_builder *b, const char *leaf, int ndim, const int64_t *shape)
{
    return named(b, leaf, ndim, shape, true);
}

sn_tensor *sn_nn_buffer(sn_nn_builder *b, const char *leaf, int ndim, const int64_t *shape)
{
    return named(b, leaf, ndim, shape, false);
}
