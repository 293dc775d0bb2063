/* Bump allocator. Page faults cost ~10 us per 4 KB page on the target VMs
 * (DESIGN.md), so memory obtained once is kept: reset() rewinds the pointer
 * and, when a step overflowed into extra blocks, merges them into one block
 * big enough for the whole next step. */
#include <stdlib.h>
#include <string.h>

#include "segnas/tensor.h"

#define SN_ALIGN 64

typedef struct sn_block {
    struct sn_block *next;
    size_t size;
    size_t used;
    unsigned char *mem;
} sn_block;

struct sn_arena {
    sn_block *head;    /* current block (newest first) */
    size_t total_used; /* across blocks, for statistics */
};

static size_t align_up(size_t n) { return (n + SN_ALIGN - 1) & ~(size_t)(SN_ALIGN - 1); }

static sn_block *block_new(size_t size)
{
    sn_block *b = malloc(sizeof *b);
    if (!b) return NULL;
    b->mem = aligned_alloc(SN_ALIGN, align_up(size ? size : SN_ALIGN));
    if (!b->mem) {
        free(b);
        return NULL;
    }
    b->size = align_up(size ? size : SN_ALIGN);
    b->used = 0;
    b->next = NULL;
    return b;
}

sn_arena *sn_arena_create(size_t initial_bytes)
{
    sn_arena *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->head = block_new(initial_bytes ? initial_bytes : (size_t)1 << 20);
    if (!a->head) {
        free(a);
        return NULL;
    }
    return a;
}

void sn_arena_destroy(sn_arena *a)
{
    if (!a) return;
    for (sn_block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b->mem);
        free(b);
    }
    free(a);
}

void *sn_arena_alloc(sn_arena *a, size_t bytes)
{
    size_t need = align_up(bytes ? bytes : 1);
    sn_block *b = a->head;
    if (b->size - b->used < need) {
        /* Grow geometrically so a step needs few blocks before the merge. */
        size_t size = b->size * 2 > need ? b->size * 2 : need;
        sn_block *nb = block_new(size);
        if (!nb) return NULL;
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->mem + b->used;
    b->used += need;
    a->total_used += need;
    return p;
}

void sn_arena_reset(sn_arena *a)
{
    if (a->head->next) {
        size_t total = 0;
        for (sn_block *b = a->head; b; b = b->next) total += b->size;
        sn_block *merged = block_new(total);
        if (merged) {
            for (sn_block *b = a->head, *n; b; b = n) {
                n = b->next;
                free(b->mem);
                free(b);
            }
            a->head = merged;
        } else {
            /* Keep the chain; every block is simply rewound. */
            for (sn_block *b = a->head; b; b = b->next) b->used = 0;
        }
    }
    a->head->used = 0;
    a->total_used = 0;
}

size_t sn_arena_used(const sn_arena *a) { return a->total_used; }

size_t sn_arena_capacity(const sn_arena *a)
{
    size_t total = 0;
    for (const sn_block *b = a->head; b; b = b->next) total += b->size;
    return total;
}
