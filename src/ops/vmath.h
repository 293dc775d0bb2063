/* Row helpers for the softmax and the cross-entropy, written so that gcc
 * and clang vectorise them without -ffast-math (which segnas never uses: it
 * folds isnan away), and the 16-float vector of our own NHWC kernels
 * (ops/pool_backward.c, ops/bn_narrow.c).
 *
 * sn_vexpf: glibc's expf only vectorises under -ffast-math. Inputs here are
 * x - max <= 0.
 * Cephes' expf: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts so
 * n ln2 is exact), exp(r) by a degree-6 polynomial, 2^n put into the
 * exponent bits. Relative error about 2e-7 on [-87, 88]; inputs below -87
 * give ~1.6e-38 instead of a subnormal, harmless next to a sum >= 1. */
#ifndef SEGNAS_OPS_VMATH_H
#define SEGNAS_OPS_VMATH_H

#include <stdint.h>
#include <string.h>

static inline float sn_vexpf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* round-to-nearest of x / ln2 without a libm call: adding 1.5 * 2^23
     * pushes the fraction out of the mantissa. */
    const float shift = 12582912.0f;
    float n = (x * 1.44269504088896341f + shift) - shift;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

/* Maximum of x[0..k), k >= 1, kept as 16 running lane maxima: an
 * elementwise select that both compilers vectorise, where a max reduction
 * does not vectorise under clang without -ffast-math (NaN ordering). */
static inline float sn_row_max(const float *x, int64_t k)
{
    float m = x[0];
    int64_t c = 0;
    if (k >= 16) {
        float lane[16];
        for (int l = 0; l < 16; l++) lane[l] = x[l];
        for (c = 16; c + 16 <= k; c += 16)
#pragma omp simd
            for (int l = 0; l < 16; l++) lane[l] = x[c + l] > lane[l] ? x[c + l] : lane[l];
        for (int l = 0; l < 16; l++) m = lane[l] > m ? lane[l] : m;
    }
    for (; c < k; c++) m = x[c] > m ? x[c] : m;
    return m;
}

/* One AVX-512 register with -march=native (GCC/clang vector extensions:
 * two 256-bit halves elsewhere). Loads and stores through memcpy: unaligned,
 * no aliasing question, single vmovups. */
#define SN_VL 16
typedef float sn_vf __attribute__((vector_size(SN_VL * sizeof(float))));
typedef int32_t sn_vi __attribute__((vector_size(SN_VL * sizeof(int32_t))));

static inline sn_vf sn_vload(const float *p)
{
    sn_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void sn_vstore(float *p, sn_vf v) { memcpy(p, &v, sizeof v); }

#endif
