/* Open-addressing hash map from byte keys to backend objects. Looked up once
 * per op call, so it must cost far less than oneDNN's own cache (1-4 us). */
#ifndef SEGNAS_TENSOR_CACHE_H
#define SEGNAS_TENSOR_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sn_cache_entry {
    uint64_t hash;
    void *key;
    size_t key_len;
    void *value;
    void (*destroy)(void *value);
} sn_cache_entry;

typedef struct sn_cache {
    sn_cache_entry *slots;
    size_t cap, len; /* cap is a power of two */
} sn_cache;

void *sn_cache_find(const sn_cache *c, const void *key, size_t key_len);
/* 0 on success, -1 when out of memory. */
int sn_cache_insert(sn_cache *c, const void *key, size_t key_len, void *value,
                    void (*destroy)(void *value));
void sn_cache_clear(sn_cache *c);

#endif
