/* Augmentation: flip exactness, hand-computed bilinear / nearest values,
 * labels keep only source values (+ ignore) after scaling, padding values,
 * normalisation numbers, determinism of the draws, error paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/data.h"
#include "support/check.h"

/* A hand-made w x h RGB image with distinct values, and a label. */
static void make_pair(sn_image *img, sn_image *lab, int w, int h)
{
    sn_image_alloc(img, w, h, 3);
    sn_image_alloc(lab, w, h, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            for (int k = 0; k < 3; k++) img->data[(y * w + x) * 3 + k] = (uint8_t)(7 * x + 31 * y + 80 * k);
            lab->data[y * w + x] = (uint8_t)((x * 3 + y) % 5 * 2 + 1); /* odd values 1..9 */
        }
}

static sn_augment_config plain(int h, int w)
{
    sn_augment_config c;
    sn_augment_config_default(&c);
    c.scale_min = c.scale_max = 1, c.crop_h = h, c.crop_w = w;
    for (int k = 0; k < 3; k++) c.mean[k] = 0, c.std[k] = 1; /* out = v / 255 */
    return c;
}

static void test_flip_exact(void)
{
    sn_image img = {0}, lab = {0};
    int W = 5, H = 4;
    make_pair(&img, &lab, W, H);
    sn_augment_config c = plain(H, W);
    float out[4 * 5 * 3], fo[4 * 5 * 3];
    uint8_t ol[4 * 5], fl[4 * 5];
    sn_augment_params p = {.scaled_h = H, .scaled_w = W, .flip = false};
    CHECK(sn_augment_apply(&c, &p, &img, &lab, out, ol, NULL, 0) == 0, "identity apply");
    int bad = 0;
    for (int i = 0; i < H * W; i++) {
        for (int k = 0; k < 3; k++) bad += fabsf(out[i * 3 + k] - img.data[i * 3 + k] / 255.0f) > 1e-6f;
        bad += ol[i] != lab.data[i];
    }
    CHECK(bad == 0, "scale 1, no flip: a copy (%d mismatches)", bad);
    p.flip = true;
    sn_augment_apply(&c, &p, &img, &lab, fo, fl, NULL, 0);
    bad = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int s = y * W + (W - 1 - x), d = y * W + x;
            for (int k = 0; k < 3; k++) bad += fo[d * 3 + k] != out[s * 3 + k];
            bad += fl[d] != lab.data[s];
        }
    CHECK(bad == 0, "flip: out(y, x) == in(y, W-1-x) exactly (%d mismatches)", bad);
    /* Also at a non-unit scale (9 x 7 from 5 x 4): flip mirrors the
     * resampled image exactly. */
    c = plain(7, 9);
    float a[7 * 9 * 3], b[7 * 9 * 3];
    uint8_t al[7 * 9], bl[7 * 9];
    p = (sn_augment_params){.scaled_h = 7, .scaled_w = 9, .flip = false};
    sn_augment_apply(&c, &p, &img, &lab, a, al, NULL, 0);
    p.flip = true;
    sn_augment_apply(&c, &p, &img, &lab, b, bl, NULL, 0);
    bad = 0;
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 9; x++) {
            int s = y * 9 + (8 - x), d = y * 9 + x;
            for (int k = 0; k < 3; k++) bad += b[d * 3 + k] != a[s * 3 + k];
            bad += bl[d] != al[s];
        }
    CHECK(bad == 0, "flip after scaling mirrors exactly (%d mismatches)", bad);
    sn_image_free(&img), sn_image_free(&lab);
}

/* 1 x 2 image [0, 100] scaled to width 4 with half-pixel centres: source
 * positions -0.25 (clamped), 0.25, 0.75, 1.25 (clamped) -> 0, 25, 75, 100;
 * labels [1, 2] nearest -> 1, 1, 2, 2. Down to width 1: position 0.5 -> 50. */
static void test_hand_resampling(void)
{
    sn_image img = {0}, lab = {0};
    sn_image_alloc(&img, 2, 1, 3), sn_image_alloc(&lab, 2, 1, 1);
    memset(img.data, 0, 6);
    img.data[3] = img.data[4] = img.data[5] = 100;
    lab.data[0] = 1, lab.data[1] = 2;
    sn_augment_config c = plain(1, 4);
    float out[12];
    uint8_t ol[4];
    sn_augment_params p = {.scaled_h = 1, .scaled_w = 4};
    CHECK(sn_augment_apply(&c, &p, &img, &lab, out, ol, NULL, 0) == 0, "upscale apply");
    const float want[4] = {0, 25, 75, 100};
    for (int x = 0; x < 4; x++) CHECK_NEAR(out[3 * x + 1] * 255.0f, want[x], 1e-5, "bilinear x2");
    CHECK(ol[0] == 1 && ol[1] == 1 && ol[2] == 2 && ol[3] == 2, "nearest x2 labels %d %d %d %d", ol[0], ol[1],
          ol[2], ol[3]);
    const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    float ev[12];
    CHECK(sn_image_to_float(&img, 1, 4, zero, one, ev, NULL, 0) == 0, "eval resize");
    for (int x = 0; x < 4; x++) CHECK_NEAR(ev[3 * x + 2] * 255.0f, want[x], 1e-5, "eval resize: bilinear x2");
    c = plain(1, 1);
    p = (sn_augment_params){.scaled_h = 1, .scaled_w = 1};
    sn_augment_apply(&c, &p, &img, &lab, out, ol, NULL, 0);
    CHECK_NEAR(out[0] * 255.0f, 50.0, 1e-5, "bilinear /2 averages");
    sn_image_free(&img), sn_image_free(&lab);
}

/* Normalisation by hand with the ImageNet defaults. */
static void test_normalisation(void)
{
    sn_image img = {0};
    sn_image_alloc(&img, 1, 1, 3);
    img.data[0] = 128, img.data[1] = 0, img.data[2] = 255;
    sn_augment_config c;
    sn_augment_config_default(&c);
    c.scale_min = c.scale_max = 1, c.crop_h = c.crop_w = 1, c.flip = false;
    float out[3];
    uint8_t ol;
    CHECK(sn_augment_sample(&c, 1, 0, 0, &img, NULL, out, &ol, NULL, 0) == 0, "normalise");
    CHECK_NEAR(out[0], (128 / 255.0 - 0.485) / 0.229, 1e-5, "R: (128/255 - 0.485) / 0.229");
    CHECK_NEAR(out[1], (0 - 0.456) / 0.224, 1e-5, "G: -0.456 / 0.224");
    CHECK_NEAR(out[2], (1 - 0.406) / 0.225, 1e-5, "B: (1 - 0.406) / 0.225");
    CHECK(ol == 255, "no label -> ignore");
    /* Evaluation resize: same size = normalisation only. */
    float ev[3];
    CHECK(sn_image_to_float(&img, 1, 1, c.mean, c.std, ev, NULL, 0) == 0 && !memcmp(ev, out, sizeof ev),
          "eval conversion matches");
    sn_image_free(&img);
}

/* Random scales with crops larger than the scaled image: labels only hold
 * source values or 255, and 255 / mean appear exactly in the padding. */
static void test_scaled_labels_and_padding(void)
{
    sn_image img = {0}, lab = {0};
    int W = 23, H = 17;
    make_pair(&img, &lab, W, H);
    sn_augment_config c;
    sn_augment_config_default(&c);
    c.crop_h = 30, c.crop_w = 40;
    float *out = malloc(30 * 40 * 3 * sizeof *out);
    uint8_t *ol = malloc(30 * 40);
    int bad_values = 0, bad_pad = 0, padded = 0, flips = 0;
    for (int64_t i = 0; i < 40; i++) {
        sn_augment_params p;
        sn_augment_draw(&c, 5, 0, i, H, W, &p);
        flips += p.flip;
        CHECK(p.scaled_h >= (int)(0.5 * H) && p.scaled_h <= 2 * H + 1, "scaled height %d in range", p.scaled_h);
        CHECK(p.crop_y >= 0 && p.crop_x >= 0 && p.crop_y <= (p.scaled_h > 30 ? p.scaled_h - 30 : 0) &&
                  p.crop_x <= (p.scaled_w > 40 ? p.scaled_w - 40 : 0),
              "crop offset in range");
        sn_augment_apply(&c, &p, &img, &lab, out, ol, NULL, 0);
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < 40; x++) {
                bool pad = y + p.crop_y >= p.scaled_h || x + p.crop_x >= p.scaled_w;
                uint8_t v = ol[y * 40 + x];
                padded += pad;
                if (pad) bad_pad += v != 255 || out[(y * 40 + x) * 3] != 0.0f || out[(y * 40 + x) * 3 + 2] != 0.0f;
                else bad_values += !(v & 1) || v > 9; /* source labels are odd 1..9 */
            }
    }
    CHECK(bad_values == 0, "scaled labels only hold source values (%d bad)", bad_values);
    CHECK(padded > 0 && bad_pad == 0, "padding: label 255, image = mean (%d of %d bad)", bad_pad, padded);
    CHECK(flips > 8 && flips < 32, "about half flipped (%d of 40)", flips);
    sn_augment_params p1, p2, p3;
    sn_augment_draw(&c, 5, 3, 11, H, W, &p1);
    sn_augment_draw(&c, 5, 3, 11, H, W, &p2);
    CHECK(p1.scaled_h == p2.scaled_h && p1.scaled_w == p2.scaled_w && p1.crop_y == p2.crop_y &&
              p1.crop_x == p2.crop_x && p1.flip == p2.flip,
          "same (seed, epoch, index) -> same draw");
    int differ = 0;
    for (int64_t e = 0; e < 8; e++) {
        sn_augment_draw(&c, 5, e, 11, H, W, &p3);
        differ += p3.scaled_h != p1.scaled_h || p3.crop_x != p1.crop_x || p3.flip != p1.flip;
    }
    CHECK(differ >= 5, "other epochs draw differently (%d of 8)", differ);
    free(out), free(ol);
    sn_image_free(&img), sn_image_free(&lab);
}

static void test_errors(void)
{
    sn_image img = {0}, lab = {0};
    make_pair(&img, &lab, 6, 5);
    sn_augment_config c = plain(4, 4);
    float out[4 * 4 * 3];
    uint8_t ol[16];
    char err[200] = "";
    c.crop_h = 0;
    CHECK(sn_augment_sample(&c, 0, 0, 0, &img, &lab, out, ol, err, sizeof err) == SN_ERR_ARG && strstr(err, "0x4"),
          "crop 0 rejected: %s", err);
    c = plain(4, 4);
    lab.w = 5; /* label no longer matches the image */
    CHECK(sn_augment_sample(&c, 0, 0, 0, &img, &lab, out, ol, err, sizeof err) == SN_ERR_SHAPE &&
              strstr(err, "5x6x3") && strstr(err, "5x5x1"),
          "label size mismatch named: %s", err);
    lab.w = 6;
    img.c = 1;
    CHECK(sn_augment_sample(&c, 0, 0, 0, &img, NULL, out, ol, err, sizeof err) == SN_ERR_SHAPE, "grey image: %s",
          err);
    img.c = 3;
    sn_image_free(&img), sn_image_free(&lab);
}

int main(void)
{
    test_flip_exact();
    test_hand_resampling();
    test_normalisation();
    test_scaled_labels_and_padding();
    test_errors();
    return check_summary("augment");
}
