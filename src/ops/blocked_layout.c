/* NHWC <-> nChw16c copies (blocked_layout.h). One pixel's c channels map to
 * ceil(c/16) runs of 16 floats, hw * 16 floats apart; a loop over pixels
 * keeps every stream sequential. */
#include "ops/blocked_layout.h"
#include "ops/ops_common.h"

void sn_nhwc_to_blocked(const float *x, float *out, int64_t n, int64_t hw, int64_t c)
{
    int64_t blocks = (c + SN_BLOCK - 1) / SN_BLOCK, pixels = n * hw;
#pragma omp parallel for if (pixels * c > SN_PAR_MIN) schedule(static)
    for (int64_t p = 0; p < pixels; p++) {
        int64_t img = p / hw, pix = p % hw;
        const float *src = x + p * c;
        for (int64_t b = 0; b < blocks; b++) {
            float *dst = out + ((img * blocks + b) * hw + pix) * SN_BLOCK;
            int64_t live = c - b * SN_BLOCK < SN_BLOCK ? c - b * SN_BLOCK : SN_BLOCK;
            for (int64_t j = 0; j < SN_BLOCK; j++) dst[j] = j < live ? src[b * SN_BLOCK + j] : 0.0f;
        }
    }
}

void sn_blocked_to_nhwc(const float *in, float *y, int64_t n, int64_t hw, int64_t c, bool accumulate)
{
    int64_t blocks = (c + SN_BLOCK - 1) / SN_BLOCK, pixels = n * hw;
#pragma omp parallel for if (pixels * c > SN_PAR_MIN) schedule(static)
    for (int64_t p = 0; p < pixels; p++) {
        int64_t img = p / hw, pix = p % hw;
        float *dst = y + p * c;
        for (int64_t b = 0; b < blocks; b++) {
            const float *src = in + ((img * blocks + b) * hw + pix) * SN_BLOCK;
            int64_t live = c - b * SN_BLOCK < SN_BLOCK ? c - b * SN_BLOCK : SN_BLOCK;
            if (accumulate)
                for (int64_t j = 0; j < live; j++) dst[b * SN_BLOCK + j] += src[j];
            else
                for (int64_t j = 0; j < live; j++) dst[b * SN_BLOCK + j] = src[j];
        }
    }
}
