#include "cache.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static sn_cache_entry *probe(sn_cache_entry *slots, size_t cap, uint64_t h, const void *key,
                             size_t len)
{
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        sn_cache_entry *e = &slots[i];
        if (!e->key) return e;
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) return e;
    }
}

void *sn_cache_find(const sn_cache *c, const void *key, size_t key_len)
{
    if (!c->cap) return NULL;
    sn_cache_entry *e = probe(c->slots, c->cap, fnv1a(key, key_len), key, key_len);
    return e->key ? e->value : NULL;
}

static int grow(sn_cache *c)
{
    size_t cap = c->cap ? c->cap * 2 : 64;
    sn_cache_entry *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < c->cap; i++) {
        sn_cache_entry *e = &c->slots[i];
        if (e->key) *probe(slots, cap, e->hash, e->key, e->key_len) = *e;
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return 0;
}

int sn_cache_insert(sn_cache *c, const void *key, size_t key_len, void *value,
                    void (*destroy)(void *value))
{
    if ((c->len + 1) * 2 > c->cap && grow(c)) return -1;
    uint64_t h = fnv1a(key, key_len);
    sn_cache_entry *e = probe(c->slots, c->cap, h, key, key_len);
    if (e->key) { /* replace */
        if (e->destroy) e->destroy(e->value);
        e->value = value;
        e->destroy = destroy;
        return 0;
    }
    void *k = malloc(key_len ? key_len : 1);
    if (!k) return -1;
    memcpy(k, key, key_len);
    *e = (sn_cache_entry){h, k, key_len, value, destroy};
    c->len++;
    return 0;
}

void sn_cache_clear(sn_cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        sn_cache_entry *e = &c->slots[i];
        if (!e->key) continue;
        if (e->destroy) e->destroy(e->value);
        free(e->key);
    }
    free(c->slots);
    *c = (sn_cache){0};
}
