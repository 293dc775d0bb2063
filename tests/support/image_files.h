/* Test helpers for the data layer: a temporary folder, and PNG/JPEG files
 * written with libpng/libjpeg DIRECTLY (not through segnas), so that the
 * readers are checked against the libraries rather than against themselves. */
#ifndef SEGNAS_TEST_IMAGE_FILES_H
#define SEGNAS_TEST_IMAGE_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* mkdtemp("/tmp/segnas_<tag>_XXXXXX"); the returned buffer is static-free
 * (malloc'ed). tmp_remove deletes the whole tree and frees the name. */
char *tmp_make(const char *tag);
void tmp_remove(char *dir);

/* mkdir -p of printf(fmt, ...). Returns 0 on success. */
int mkdirs(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes `len` bytes (len < 0: strlen) to a file. Returns 0 on success. */
int write_bytes(const char *path, const void *data, long len);
/* Reads a whole file (malloc'ed), NULL on failure. */
uint8_t *read_bytes(const char *path, size_t *len);

/* A PNG via libpng: `depth` 1..16, `ctype` a PNG_COLOR_TYPE_*, `pixels`
 * rows packed as libpng expects AFTER png_set_packing (one sample per byte
 * for depth < 8; big-endian pairs for 16-bit). Palette: n_palette RGB
 * entries; trns: n_trns alpha values (palette) or NULL. interlace: Adam7. */
int png_file(const char *path, int w, int h, int depth, int ctype, const uint8_t *pixels,
             const uint8_t (*palette)[3], int n_palette, const uint8_t *trns, int n_trns, bool interlace);
/* A baseline JPEG via libjpeg: c = 1 (grey) or 3 (RGB). */
int jpeg_file(const char *path, int w, int h, int c, const uint8_t *pixels, int quality);
/* Decodes a JPEG with libjpeg directly to RGB (malloc'ed w*h*3). */
uint8_t *jpeg_decode_rgb(const char *path, int *w, int *h);

/* A smooth test pattern: value of pixel (x, y), channel k. */
uint8_t pattern(int x, int y, int k);

#endif
