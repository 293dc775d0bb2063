/* Writes the seed corpora for scripts/fuzz.sh: small PNGs of every colour
 * type and depth, JPEGs (RGB, grey), and a few list / class files. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

#include "support/image_files.h"

enum { W = 16, H = 8 };

static char path[4096];
static const char *at(const char *dir, const char *name)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void images(const char *d)
{
    uint8_t px[W * H * 8], pal[256][3], trns[16];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 29 + (i >> 4));
    for (int i = 0; i < 256; i++) pal[i][0] = (uint8_t)i, pal[i][1] = (uint8_t)(i * 3), pal[i][2] = (uint8_t)(255 - i);
    for (int i = 0; i < 16; i++) trns[i] = (uint8_t)(i * 16);
    uint8_t idx4[W * H];
    for (int i = 0; i < W * H; i++) idx4[i] = (uint8_t)(i % 16);
    const uint8_t(*p)[3] = (const uint8_t(*)[3])pal;
    png_file(at(d, "rgb8.png"), W, H, 8, PNG_COLOR_TYPE_RGB, px, NULL, 0, NULL, 0, false);
    png_file(at(d, "rgba8.png"), W, H, 8, PNG_COLOR_TYPE_RGB_ALPHA, px, NULL, 0, NULL, 0, false);
    png_file(at(d, "grey8.png"), W, H, 8, PNG_COLOR_TYPE_GRAY, px, NULL, 0, NULL, 0, false);
    png_file(at(d, "ga8.png"), W, H, 8, PNG_COLOR_TYPE_GRAY_ALPHA, px, NULL, 0, NULL, 0, false);
    png_file(at(d, "grey16.png"), W, H, 16, PNG_COLOR_TYPE_GRAY, px, NULL, 0, NULL, 0, false);
    png_file(at(d, "rgba16.png"), W, H, 16, PNG_COLOR_TYPE_RGB_ALPHA, px, NULL, 0, NULL, 0, false);
    png_file(at(d, "pal8.png"), W, H, 8, PNG_COLOR_TYPE_PALETTE, px, p, 256, NULL, 0, false);
    png_file(at(d, "pal4trns.png"), W, H, 4, PNG_COLOR_TYPE_PALETTE, idx4, p, 16, trns, 16, false);
    png_file(at(d, "grey1.png"), W, H, 1, PNG_COLOR_TYPE_GRAY, idx4, NULL, 0, NULL, 0, false);
    png_file(at(d, "adam7.png"), W, H, 8, PNG_COLOR_TYPE_RGB, px, NULL, 0, NULL, 0, true);
    jpeg_file(at(d, "rgb.jpg"), W, H, 3, px, 80);
    jpeg_file(at(d, "grey.jpg"), W, H, 1, px, 80);
}

static void lists(const char *d)
{
    write_bytes(at(d, "voc.txt"), "2007_000032\n2007_000039\r\n\n", -1);
    write_bytes(at(d, "aug.txt"), "/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png\n", -1);
    write_bytes(at(d, "classes.txt"), "background\ncat\ndog\n\n", -1);
    write_bytes(at(d, "odd.txt"), "  a b\n..\n.\n\t\n/x/\n", -1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds IMAGE_DIR LIST_DIR\n");
        return 2;
    }
    if (mkdirs("%s", argv[1]) || mkdirs("%s", argv[2])) return 1;
    images(argv[1]);
    lists(argv[2]);
    return 0;
}
