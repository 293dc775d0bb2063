/* xoshiro256** seeded through splitmix64: small, fast, reproducible across
 * platforms. Each component owns its own sn_rng so that adding a random draw
 * in one place does not shift the stream of another. */
#include <math.h>

#include "segnas/tensor.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void sn_rng_seed(sn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

uint64_t sn_rng_next(sn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sn_rng_uniform(sn_rng *r) { return (double)(sn_rng_next(r) >> 11) * 0x1.0p-53; }

double sn_rng_normal(sn_rng *r)
{
    /* Box-Muller; one value per call keeps the state simple to checkpoint. */
    double u1 = sn_rng_uniform(r), u2 = sn_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t sn_rng_below(sn_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    /* Rejection sampling removes modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = sn_rng_next(r);
    while (x >= limit);
    return x % n;
}

void sn_rng_fill_normal(sn_rng *r, float *x, int64_t n, float mean, float std)
{
    for (int64_t i = 0; i < n; i++) x[i] = mean + std * (float)sn_rng_normal(r);
}

void sn_rng_fill_uniform(sn_rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)sn_rng_uniform(r);
}
