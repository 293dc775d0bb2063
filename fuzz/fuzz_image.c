/* libFuzzer target: arbitrary bytes as an image file. Both readers must
 * return a status (never crash, leak, hang or allocate past the limits);
 * on success the image must be consistent. The bytes go to a memfd so the
 * readers take their ordinary path (fopen, fstat, magic bytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "segnas/data.h"

static void check(int rc, const sn_image *im)
{
    if (rc == 0 && (!im->data || !sn_image_size_ok(im->w, im->h, im->c))) abort();
    if (rc != 0 && im->data) abort(); /* failures leave a zeroed image */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_image", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    sn_image im = {0};
    int rc = sn_image_read_rgb(path, &im, err, sizeof err);
    check(rc, &im);
    if (rc == 0 && im.c != 3) abort();
    /* Read the label into the same image: exercises buffer reuse too. */
    rc = sn_label_read(path, &im, err, sizeof err);
    check(rc, &im);
    if (rc == 0 && im.c != 1) abort();
    sn_image_free(&im);
    close(fd);
    return 0;
}
