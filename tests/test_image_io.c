/* Image files: PNGs of every colour type and depth written with libpng
 * directly and JPEGs written with libjpeg are read back and compared pixel
 * for pixel (JPEG: against libjpeg's own decode of the same file); writes
 * round-trip; corrupt, truncated, oversized and mislabelled files give the
 * right status and a message naming the file; reads are thread-safe. */
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#include "segnas/data.h"
#include "support/check.h"
#include "support/image_files.h"

enum { W = 13, H = 7 };

static char *dir;
static char path_buf[8][512];

static const char *P(int slot, const char *name)
{
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", dir, name);
    return path_buf[slot];
}

/* Expected RGB of pixel i for a decoded source with c channels. */
static int same_rgb(const sn_image *im, const uint8_t *src, int c, int w, int h)
{
    if (im->w != w || im->h != h || im->c != 3) return 0;
    for (int i = 0; i < w * h; i++)
        for (int k = 0; k < 3; k++)
            if (im->data[i * 3 + k] != src[i * c + (c >= 3 ? k : 0)]) return 0;
    return 1;
}

static void test_png_rgb_types(void)
{
    uint8_t rgba[W * H * 4], rgb[W * H * 3], grey[W * H], ga[W * H * 2];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int i = y * W + x;
            for (int k = 0; k < 4; k++) rgba[i * 4 + k] = pattern(x, y, k);
            for (int k = 0; k < 3; k++) rgb[i * 3 + k] = pattern(x, y, k);
            grey[i] = pattern(x, y, 0);
            ga[i * 2] = pattern(x, y, 1), ga[i * 2 + 1] = pattern(x, y, 2);
        }
    char err[512];
    sn_image im = {0};
    struct {
        const char *name;
        int ctype, c;
        const uint8_t *px;
        bool interlace;
    } cases[] = {
        {"rgb.png", PNG_COLOR_TYPE_RGB, 3, rgb, false},     {"rgba.png", PNG_COLOR_TYPE_RGB_ALPHA, 4, rgba, false},
        {"grey.png", PNG_COLOR_TYPE_GRAY, 1, grey, false},   {"ga.png", PNG_COLOR_TYPE_GRAY_ALPHA, 2, ga, false},
        {"adam7.png", PNG_COLOR_TYPE_RGB, 3, rgb, true},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const char *p = P(0, cases[t].name);
        CHECK(png_file(p, W, H, 8, cases[t].ctype, cases[t].px, NULL, 0, NULL, 0, cases[t].interlace) == 0, "write %s", p);
        int rc = sn_image_read_rgb(p, &im, err, sizeof err);
        CHECK(rc == 0 && same_rgb(&im, cases[t].px, cases[t].c, W, H), "%s read as RGB exactly (rc %d %s)",
              cases[t].name, rc, rc ? err : "");
    }
    /* Labels: grey and grey+alpha keep the grey value; RGB/RGBA refused. */
    sn_image lab = {0};
    CHECK(sn_label_read(P(0, "grey.png"), &lab, err, sizeof err) == 0 && lab.c == 1 && !memcmp(lab.data, grey, W * H),
          "grey label exact");
    int ok = sn_label_read(P(0, "ga.png"), &lab, err, sizeof err) == 0 && lab.c == 1;
    for (int i = 0; ok && i < W * H; i++) ok = lab.data[i] == ga[2 * i];
    CHECK(ok, "grey+alpha label keeps grey, drops alpha");
    int rc = sn_label_read(P(0, "rgb.png"), &lab, err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, P(1, "rgb.png")) && strstr(err, "RGB"), "RGB label refused: %s", err);
    CHECK(lab.data == NULL && lab.w == 0, "failed read leaves a zeroed image");
    rc = sn_label_read(P(0, "rgba.png"), &lab, err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, "rgba.png"), "RGBA label refused: %s", err);
    sn_image_free(&im);
    sn_image_free(&lab);
}

static void test_png_16bit(void)
{
    uint8_t px[W * H * 2];
    uint16_t v[W * H];
    for (int i = 0; i < W * H; i++) {
        v[i] = (uint16_t)((i * 7) % 256 * 257); /* k*257 scales to exactly k */
        px[2 * i] = (uint8_t)(v[i] >> 8), px[2 * i + 1] = (uint8_t)v[i];
    }
    char err[512];
    sn_image im = {0};
    const char *p = P(0, "grey16.png");
    png_file(p, W, H, 16, PNG_COLOR_TYPE_GRAY, px, NULL, 0, NULL, 0, false);
    int ok = sn_image_read_rgb(p, &im, err, sizeof err) == 0 && im.c == 3;
    for (int i = 0; ok && i < W * H; i++) ok = im.data[3 * i] == v[i] / 257 && im.data[3 * i + 2] == v[i] / 257;
    CHECK(ok, "16-bit grey scaled to 8 bits: %s", err);
    /* 16-bit labels: values < 256 exact, larger ones refused with the pixel. */
    for (int i = 0; i < W * H; i++) px[2 * i] = 0, px[2 * i + 1] = (uint8_t)(i % 200);
    png_file(p, W, H, 16, PNG_COLOR_TYPE_GRAY, px, NULL, 0, NULL, 0, false);
    sn_image lab = {0};
    ok = sn_label_read(p, &lab, err, sizeof err) == 0 && lab.c == 1;
    for (int i = 0; ok && i < W * H; i++) ok = lab.data[i] == i % 200;
    CHECK(ok, "16-bit label values < 256 exact: %s", err);
    int x = 4, y = 3;
    px[2 * (y * W + x)] = 1, px[2 * (y * W + x) + 1] = 44; /* 300 */
    png_file(p, W, H, 16, PNG_COLOR_TYPE_GRAY, px, NULL, 0, NULL, 0, false);
    int rc = sn_label_read(p, &lab, err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, "grey16.png") && strstr(err, "300") && strstr(err, "x=4, y=3"),
          "16-bit label 300 refused with value and pixel: %s", err);
    /* 16-bit RGBA image. */
    uint8_t rgba16[W * H * 8];
    for (int i = 0; i < W * H * 4; i++) rgba16[2 * i] = (uint8_t)(i * 3), rgba16[2 * i + 1] = (uint8_t)(i * 3);
    png_file(p, W, H, 16, PNG_COLOR_TYPE_RGB_ALPHA, rgba16, NULL, 0, NULL, 0, false);
    ok = sn_image_read_rgb(p, &im, err, sizeof err) == 0;
    for (int i = 0; ok && i < W * H; i++)
        for (int k = 0; k < 3; k++) ok &= im.data[3 * i + k] == (uint8_t)((4 * i + k) * 3);
    CHECK(ok, "16-bit RGBA scaled, alpha dropped: %s", err);
    sn_image_free(&im), sn_image_free(&lab);
}

static void test_png_palette(void)
{
    uint8_t pal[256][3], idx[W * H], trns[256];
    for (int i = 0; i < 256; i++) pal[i][0] = (uint8_t)i, pal[i][1] = (uint8_t)(255 - i), pal[i][2] = (uint8_t)(i * 7), trns[i] = (uint8_t)i;
    for (int i = 0; i < W * H; i++) idx[i] = (uint8_t)(i % 23);
    idx[5] = 255, idx[17] = 255, idx[W * H - 1] = 254;
    char err[512];
    const char *p = P(0, "pal.png");
    png_file(p, W, H, 8, PNG_COLOR_TYPE_PALETTE, idx, (const uint8_t(*)[3])pal, 256, NULL, 0, false);
    sn_image lab = {0}, im = {0};
    CHECK(sn_label_read(p, &lab, err, sizeof err) == 0 && lab.c == 1 && lab.w == W && lab.h == H &&
              !memcmp(lab.data, idx, W * H),
          "palette label keeps indices incl. 255: %s", err);
    int ok = sn_image_read_rgb(p, &im, err, sizeof err) == 0;
    for (int i = 0; ok && i < W * H; i++) ok = !memcmp(im.data + 3 * i, pal[idx[i]], 3);
    CHECK(ok, "palette image expands to the palette colours");
    /* With tRNS the colours are the same (alpha dropped), indices too. */
    png_file(p, W, H, 8, PNG_COLOR_TYPE_PALETTE, idx, (const uint8_t(*)[3])pal, 256, trns, 256, false);
    ok = sn_image_read_rgb(p, &im, err, sizeof err) == 0 && im.c == 3;
    for (int i = 0; ok && i < W * H; i++) ok = !memcmp(im.data + 3 * i, pal[idx[i]], 3);
    CHECK(ok, "palette+tRNS image: colours, alpha dropped: %s", err);
    CHECK(sn_label_read(p, &lab, err, sizeof err) == 0 && !memcmp(lab.data, idx, W * H), "palette+tRNS label indices");
    /* 4-bit palette (png_set_packing): indices 0..15 unscaled. */
    uint8_t idx4[W * H];
    for (int i = 0; i < W * H; i++) idx4[i] = (uint8_t)(i % 16);
    png_file(p, W, H, 4, PNG_COLOR_TYPE_PALETTE, idx4, (const uint8_t(*)[3])pal, 16, NULL, 0, false);
    CHECK(sn_label_read(p, &lab, err, sizeof err) == 0 && !memcmp(lab.data, idx4, W * H), "4-bit palette indices: %s", err);
    /* 1-bit grey: labels 0/1, image 0/255. */
    uint8_t bits[W * H];
    for (int i = 0; i < W * H; i++) bits[i] = (uint8_t)((i / 3) & 1);
    png_file(p, W, H, 1, PNG_COLOR_TYPE_GRAY, bits, NULL, 0, NULL, 0, false);
    CHECK(sn_label_read(p, &lab, err, sizeof err) == 0 && !memcmp(lab.data, bits, W * H), "1-bit grey label 0/1: %s", err);
    ok = sn_image_read_rgb(p, &im, err, sizeof err) == 0;
    for (int i = 0; ok && i < W * H; i++) ok = im.data[3 * i + 1] == (bits[i] ? 255 : 0);
    CHECK(ok, "1-bit grey image 0/255");
    sn_image_free(&lab), sn_image_free(&im);
}

static void test_jpeg(void)
{
    enum { JW = 37, JH = 21 };
    uint8_t rgb[JW * JH * 3], grey[JW * JH];
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            for (int k = 0; k < 3; k++) rgb[(y * JW + x) * 3 + k] = (uint8_t)(x * 4 + y * 2 * k + 10);
            grey[y * JW + x] = (uint8_t)(x * 5 + y * 2);
        }
    char err[512];
    sn_image im = {0};
    const char *names[2] = {"rgb.jpg", "grey.jpg"};
    jpeg_file(P(0, names[0]), JW, JH, 3, rgb, 92);
    jpeg_file(P(0, names[1]), JW, JH, 1, grey, 92);
    for (int t = 0; t < 2; t++) {
        const char *p = P(0, names[t]);
        int w = 0, h = 0;
        uint8_t *want = jpeg_decode_rgb(p, &w, &h);
        int rc = sn_image_read_rgb(p, &im, err, sizeof err);
        CHECK(rc == 0 && w == JW && h == JH && same_rgb(&im, want, 3, JW, JH), "%s equals libjpeg's decode: %s", p,
              rc ? err : "");
        /* And close to the source (quality 92). */
        const uint8_t *src = t ? grey : rgb;
        int worst = 0;
        for (int i = 0; rc == 0 && i < JW * JH; i++)
            for (int k = 0; k < 3; k++) {
                int d = abs(im.data[3 * i + k] - src[t ? i : 3 * i + k]);
                worst = d > worst ? d : worst;
            }
        CHECK(rc == 0 && worst <= 16, "%s within 16 of the source (worst %d)", p, worst);
        free(want);
    }
    int rc = sn_label_read(P(0, "rgb.jpg"), &im, err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, "rgb.jpg") && strstr(err, "PNG"), "JPEG label refused: %s", err);
    sn_image_free(&im);
}

/* Buffer reuse: a second read of the same size keeps the memory. */
static void test_reuse(void)
{
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)i;
    const char *p = P(0, "reuse.png");
    png_file(p, W, H, 8, PNG_COLOR_TYPE_RGB, rgb, NULL, 0, NULL, 0, false);
    char err[256];
    sn_image im = {0};
    sn_image_read_rgb(p, &im, err, sizeof err);
    uint8_t *before = im.data;
    memset(im.data, 0, (size_t)W * H * 3);
    CHECK(sn_image_read_rgb(p, &im, err, sizeof err) == 0 && im.data == before && !memcmp(im.data, rgb, sizeof rgb),
          "same-size read reuses the buffer and refills it");
    sn_image_free(&im);
    sn_image_free(&im); /* idempotent */
}

static int count_tmp_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static void test_write_roundtrip(void)
{
    char err[512];
    for (int c = 1; c <= 4; c++) {
        if (c == 2) continue;
        sn_image im = {0}, back = {0};
        sn_image_alloc(&im, W, H, c);
        for (int i = 0; i < W * H * c; i++) im.data[i] = (uint8_t)(i * 13 + c);
        const char *p = P(0, "written.png");
        CHECK(sn_png_write(p, &im, err, sizeof err) == 0, "write c=%d: %s", c, err);
        int ok = sn_image_read_rgb(p, &back, err, sizeof err) == 0 && same_rgb(&back, im.data, c, W, H);
        CHECK(ok, "c=%d PNG round trip", c);
        if (c == 1)
            CHECK(sn_label_read(p, &back, err, sizeof err) == 0 && !memcmp(back.data, im.data, W * H), "grey label round trip");
        sn_image_free(&im), sn_image_free(&back);
    }
    uint8_t pal[256][3];
    for (int i = 0; i < 256; i++) pal[i][0] = (uint8_t)i, pal[i][1] = (uint8_t)(i / 2), pal[i][2] = 7;
    sn_image idx = {0}, back = {0};
    sn_image_alloc(&idx, W, H, 1);
    for (int i = 0; i < W * H; i++) idx.data[i] = (uint8_t)(i % 3 ? i : 255);
    const char *p = P(0, "written_pal.png");
    CHECK(sn_png_write_palette(p, &idx, (const uint8_t(*)[3])pal, err, sizeof err) == 0, "palette write: %s", err);
    CHECK(sn_label_read(p, &back, err, sizeof err) == 0 && !memcmp(back.data, idx.data, W * H), "palette round trip (indices)");
    int ok = sn_image_read_rgb(p, &back, err, sizeof err) == 0;
    for (int i = 0; ok && i < W * H; i++) ok = !memcmp(back.data + 3 * i, pal[idx.data[i]], 3);
    CHECK(ok, "palette round trip (colours)");
    CHECK(count_tmp_files() == 0, "no temporary files left behind");
    /* Errors: a folder that does not exist; a wrong channel count. */
    int rc = sn_png_write("/nonexistent_segnas_dir/x.png", &idx, err, sizeof err);
    CHECK(rc == SN_ERR_IO && strstr(err, "/nonexistent_segnas_dir/x.png"), "write into a missing folder: %s", err);
    rc = sn_png_write_palette(p, &back, (const uint8_t(*)[3])pal, err, sizeof err);
    CHECK(rc == SN_ERR_ARG && strstr(err, "written_pal.png"), "palette write of an RGB image refused: %s", err);
    sn_image_free(&idx), sn_image_free(&back);
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v; }

/* A valid small PNG whose IHDR is rewritten to claim w x h (CRC fixed). */
static void png_claiming(const char *p, uint32_t w, uint32_t h)
{
    uint8_t rgb[W * H * 3] = {0};
    png_file(p, W, H, 8, PNG_COLOR_TYPE_RGB, rgb, NULL, 0, NULL, 0, false);
    size_t n;
    uint8_t *b = read_bytes(p, &n);
    put_be32(b + 16, w), put_be32(b + 20, h); /* 8 signature + 4 length + 4 "IHDR" */
    put_be32(b + 29, crc32_png(b + 12, 17));
    write_bytes(p, b, (long)n);
    free(b);
}

static void expect_bad(const char *p, int want_rc, bool label, const char *what, const char *also)
{
    char err[512] = "";
    sn_image im = {0};
    int rc = label ? sn_label_read(p, &im, err, sizeof err) : sn_image_read_rgb(p, &im, err, sizeof err);
    CHECK(rc == want_rc && strstr(err, p) && (!also || strstr(err, also)) && im.data == NULL,
          "%s: rc %d (want %d), message '%s'", what, rc, want_rc, err);
}

static void test_bad_files(void)
{
    uint8_t rgb[64 * 48 * 3];
    for (int i = 0; i < (int)sizeof rgb; i++) rgb[i] = (uint8_t)(i * 31 ^ (i >> 5));
    const char *good_png = P(2, "good.png"), *good_jpg = P(3, "good.jpg");
    png_file(good_png, 64, 48, 8, PNG_COLOR_TYPE_RGB, rgb, NULL, 0, NULL, 0, false);
    jpeg_file(good_jpg, 64, 48, 3, rgb, 90);
    size_t n_png, n_jpg;
    uint8_t *png = read_bytes(good_png, &n_png), *jpg = read_bytes(good_jpg, &n_jpg);

    const char *p = P(0, "trunc.png");
    write_bytes(p, png, (long)(n_png * 2 / 3));
    expect_bad(p, SN_ERR_FORMAT, false, "truncated PNG", NULL);
    expect_bad(p, SN_ERR_FORMAT, true, "truncated PNG label", NULL);
    write_bytes(p, png, (long)(n_png - 12)); /* IEND missing */
    expect_bad(p, SN_ERR_FORMAT, false, "PNG without IEND", NULL);
    write_bytes(p, png, 20);
    expect_bad(p, SN_ERR_FORMAT, false, "PNG cut inside IHDR", NULL);
    png[n_png / 2] ^= 0x55; /* IDAT byte: CRC or zlib error */
    write_bytes(p, png, (long)n_png);
    expect_bad(p, SN_ERR_FORMAT, false, "PNG with a flipped IDAT byte", NULL);

    p = P(0, "trunc.jpg");
    write_bytes(p, jpg, (long)(n_jpg * 2 / 3));
    expect_bad(p, SN_ERR_FORMAT, false, "truncated JPEG", NULL);
    write_bytes(p, jpg, 200);
    expect_bad(p, SN_ERR_FORMAT, false, "JPEG cut in its header", NULL);

    p = P(0, "text.png");
    write_bytes(p, "this is not an image\n", -1);
    expect_bad(p, SN_ERR_FORMAT, false, "text file named .png", "not a PNG or JPEG");
    expect_bad(p, SN_ERR_FORMAT, true, "text file named .png (label)", "not a PNG or JPEG");
    p = P(0, "empty.png");
    write_bytes(p, "", 0);
    expect_bad(p, SN_ERR_FORMAT, false, "empty file", NULL);
    expect_bad(P(0, "missing.png"), SN_ERR_IO, false, "missing file", NULL);
    expect_bad(dir, SN_ERR_IO, false, "a folder", "not a regular file");

    p = P(0, "huge.png");
    png_claiming(p, 40000, 10);
    expect_bad(p, SN_ERR_FORMAT, false, "40000 px wide", NULL);
    png_claiming(p, 20000, 20000);
    expect_bad(p, SN_ERR_FORMAT, false, "20000x20000 from a tiny file", NULL);
    png_claiming(p, 0, 5);
    expect_bad(p, SN_ERR_FORMAT, false, "zero width", NULL);
    png_claiming(p, W, H + 5);
    expect_bad(p, SN_ERR_FORMAT, false, "more rows claimed than stored", NULL);
    free(png), free(jpg);

    sn_image im = {0};
    CHECK(sn_image_alloc(&im, SN_IMAGE_MAX_SIDE + 1, 1, 1) == SN_ERR_ARG && !im.data, "alloc: side over the limit");
    CHECK(sn_image_alloc(&im, 0, 5, 3) == SN_ERR_ARG, "alloc: zero width");
    CHECK(sn_image_alloc(&im, 20000, 20000, 3) == SN_ERR_ARG, "alloc: bytes over the limit");
    CHECK(sn_image_alloc(&im, 2, 3, 5) == SN_ERR_ARG, "alloc: 5 channels");
    CHECK(sn_image_alloc(&im, 2, 3, 3) == 0 && im.w == 2 && im.h == 3 && im.c == 3 && im.data[17] == 0, "alloc ok, zeroed");
    sn_image_free(&im);
}

/* Loader threads read concurrently: results must equal a serial read. */
typedef struct thread_arg {
    const char *png, *jpg;
    const sn_image *want_png, *want_jpg;
    int mismatches;
} thread_arg;

static void *reader_thread(void *p)
{
    thread_arg *a = p;
    sn_image im = {0};
    char err[256];
    for (int r = 0; r < 25; r++) {
        if (sn_image_read_rgb(a->png, &im, err, sizeof err) || memcmp(im.data, a->want_png->data, (size_t)im.w * im.h * 3))
            a->mismatches++;
        if (sn_image_read_rgb(a->jpg, &im, err, sizeof err) || memcmp(im.data, a->want_jpg->data, (size_t)im.w * im.h * 3))
            a->mismatches++;
    }
    sn_image_free(&im);
    return NULL;
}

static void test_threads(void)
{
    const char *png = P(2, "good.png"), *jpg = P(3, "good.jpg");
    sn_image a = {0}, b = {0};
    char err[256];
    sn_image_read_rgb(png, &a, err, sizeof err);
    sn_image_read_rgb(jpg, &b, err, sizeof err);
    pthread_t t[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){png, jpg, &a, &b, 0};
        pthread_create(&t[i], NULL, reader_thread, &args[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL), bad += args[i].mismatches;
    CHECK(bad == 0 && a.data && b.data, "4 threads x 50 reads equal the serial read (%d mismatches)", bad);
    sn_image_free(&a), sn_image_free(&b);
}

int main(void)
{
    dir = tmp_make("imageio");
    if (!dir) {
        fprintf(stderr, "cannot make a temporary folder\n");
        return 1;
    }
    test_png_rgb_types();
    test_png_16bit();
    test_png_palette();
    test_jpeg();
    test_reuse();
    test_write_roundtrip();
    test_bad_files();
    test_threads();
    tmp_remove(dir);
    return check_summary("image_io");
}
