/* trainA / trainB for the bi-level search (Auto-DeepLab Sec. 3.3, after
 * DARTS): network weights are fitted on one half of the training list and
 * the architecture parameters on the other, disjoint half. */
#include <stdlib.h>
#include <string.h>

#include "segnas/data.h"

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

void sn_split_halves(const int64_t *indices, int64_t n, uint64_t seed, int64_t *a, int64_t *b)
{
    if (n <= 0) return;
    int64_t na = (n + 1) / 2;
    /* Which POSITIONS go to a: the first half of a seeded Fisher-Yates
     * permutation of 0..n-1. Drawing positions (not values) keeps the split
     * a partition of the list even when it holds repeated indices. */
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    if (!perm) {
        /* Without memory, fall back to a deterministic alternate split: still
         * disjoint and covering, only not random. */
        for (int64_t i = 0, ia = 0, ib = 0; i < n; i++) *(i & 1 ? &b[ib++] : &a[ia++]) = indices[i];
        return;
    }
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    sn_rng r;
    sn_rng_seed(&r, seed ^ 0x5b1175b1175b1175ULL);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sn_rng_below(&r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int64_t i = 0; i < n; i++) *(i < na ? &a[i] : &b[i - na]) = indices[perm[i]];
    free(perm);
    qsort(a, (size_t)na, sizeof *a, cmp_i64);
    qsort(b, (size_t)(n - na), sizeof *b, cmp_i64);
}
