/* The 8-bit HWC image every reader fills and every writer takes. Sizes are
 * checked here once so that no caller can ask for an overflowing buffer:
 * w*h*c is computed in size_t only after each side is known to be small. */
#include <stdlib.h>
#include <string.h>

#include "segnas/data.h"

void sn_image_free(sn_image *img)
{
    if (!img) return;
    free(img->data);
    *img = (sn_image){0};
}

bool sn_image_size_ok(int w, int h, int c)
{
    if (w < 1 || h < 1 || c < 1 || c > 4) return false;
    if (w > SN_IMAGE_MAX_SIDE || h > SN_IMAGE_MAX_SIDE) return false;
    return (uint64_t)w * (uint64_t)h * (uint64_t)c <= SN_IMAGE_MAX_BYTES;
}

int sn_image_alloc(sn_image *img, int w, int h, int c)
{
    *img = (sn_image){0};
    if (!sn_image_size_ok(w, h, c)) return SN_ERR_ARG;
    uint8_t *d = calloc((size_t)w * (size_t)h * (size_t)c, 1);
    if (!d) return SN_ERR_NOMEM;
    *img = (sn_image){.w = w, .h = h, .c = c, .data = d};
    return SN_OK;
}

/* Keeps the buffer when the size already fits (the loader's workers reuse
 * their images from sample to sample). */
int sn_image_ensure(sn_image *img, int w, int h, int c)
{
    if (img->data && img->w == w && img->h == h && img->c == c) return SN_OK;
    sn_image_free(img);
    return sn_image_alloc(img, w, h, c);
}
