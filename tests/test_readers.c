/* Data set readers on small trees built on the fly: Cityscapes (labelIds
 * mapped 34 -> 19 with exact expected train ids, labelTrainIds preferred),
 * VOC (lists, palette indices, train_aug), ADE20K (reduce-zero-label, both
 * root forms), folder (classes.txt, split lists, stems); and the errors:
 * size mismatch, out-of-range labels, empty splits, missing folders and
 * files, each naming the file. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"
#include "segnas/data.h"
#include "support/check.h"
#include "support/image_files.h"

static char *root;
static char pb[4][1024];

static const char *P(int slot, const char *fmt, const char *a)
{
    char rel[512];
    snprintf(rel, sizeof rel, fmt, a);
    snprintf(pb[slot], sizeof pb[slot], "%s/%s", root, rel);
    return pb[slot];
}

static void rgb_png(const char *path, int w, int h, int seed)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i * 7 + seed);
    png_file(path, w, h, 8, PNG_COLOR_TYPE_RGB, px, NULL, 0, NULL, 0, false);
    free(px);
}

static void rgb_jpeg(const char *path, int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i % 3 * 60 + i / 3 % w * 4);
    jpeg_file(path, w, h, 3, px, 90);
    free(px);
}

static void grey_png(const char *path, int w, int h, const uint8_t *v)
{
    png_file(path, w, h, 8, PNG_COLOR_TYPE_GRAY, v, NULL, 0, NULL, 0, false);
}

static void palette_png(const char *path, int w, int h, const uint8_t *v)
{
    uint8_t pal[256][3];
    sn_voc_colormap(pal);
    png_file(path, w, h, 8, PNG_COLOR_TYPE_PALETTE, v, (const uint8_t(*)[3])pal, 256, NULL, 0, false);
}

static int open_ds(sn_dataset **ds, sn_data_format f, const char *r, const char *split, char *err, size_t n)
{
    err[0] = 0;
    return sn_dataset_open(ds, f, r, split, err, n);
}

/* ---- Cityscapes ------------------------------------------------------------------------ */
static void test_cityscapes(void)
{
    enum { CW = 8, CH = 5 };
    mkdirs("%s/cs/leftImg8bit/train/aachen", root), mkdirs("%s/cs/leftImg8bit/train/bochum", root);
    mkdirs("%s/cs/gtFine/train/aachen", root), mkdirs("%s/cs/gtFine/train/bochum", root);
    mkdirs("%s/cs/leftImg8bit/val/zurich", root), mkdirs("%s/cs/gtFine/val/zurich", root);
    mkdirs("%s/cs/leftImg8bit/test/empty_city", root);
    rgb_png(P(0, "cs/leftImg8bit/train/bochum/%s_leftImg8bit.png", "bochum_000000_000313"), CW, CH, 1);
    rgb_png(P(0, "cs/leftImg8bit/train/aachen/%s_leftImg8bit.png", "aachen_000000_000019"), CW, CH, 2);
    /* aachen: labelIds 0..33, then 34, 100, 255, -> mapped. */
    uint8_t ids[CW * CH];
    for (int i = 0; i < CW * CH; i++) ids[i] = (uint8_t)(i < 34 ? i : i == 34 ? 34 : i == 35 ? 100 : 255);
    grey_png(P(0, "cs/gtFine/train/aachen/%s_gtFine_labelIds.png", "aachen_000000_000019"), CW, CH, ids);
    /* bochum: labelTrainIds present (preferred) and a conflicting labelIds. */
    uint8_t tid[CW * CH], junk[CW * CH];
    for (int i = 0; i < CW * CH; i++) tid[i] = (uint8_t)(i % 7 == 6 ? 255 : i % 19), junk[i] = 26;
    grey_png(P(0, "cs/gtFine/train/bochum/%s_gtFine_labelTrainIds.png", "bochum_000000_000313"), CW, CH, tid);
    grey_png(P(0, "cs/gtFine/train/bochum/%s_gtFine_labelIds.png", "bochum_000000_000313"), CW, CH, junk);

    char err[640];
    sn_dataset *ds = NULL;
    const char *r = P(3, "%s", "cs");
    int rc = open_ds(&ds, SN_DATA_CITYSCAPES, r, "train", err, sizeof err);
    CHECK(rc == 0 && ds && ds->count == 2 && ds->n_classes == 19, "cityscapes train opens: %s", err);
    if (rc) return;
    CHECK(strstr(ds->sample_name(ds, 0), "aachen_000000_000019") && strstr(ds->sample_name(ds, 1), "bochum"),
          "cities sorted");
    CHECK(!strcmp(ds->class_names[0], "road") && !strcmp(ds->class_names[18], "bicycle") &&
              !strcmp(ds->class_names[6], "traffic light"),
          "class names");
    CHECK(ds->palette[0][0] == 128 && ds->palette[0][1] == 64 && ds->palette[0][2] == 128 && ds->palette[10][2] == 180,
          "palette road, sky");
    static const uint8_t want_tid[34] = {255, 255, 255, 255, 255, 255, 255, 0,  1,  255, 255, 2,
                                         3,   4,   255, 255, 255, 5,   255, 6,  7,  8,   9,   10,
                                         11,  12,  13,  14,  15,  255, 255, 16, 17, 18};
    sn_image img = {0}, lab = {0};
    rc = ds->load(ds, 0, &img, &lab, err, sizeof err);
    int ok = rc == 0 && lab.w == CW && lab.h == CH && img.c == 3;
    for (int i = 0; ok && i < CW * CH; i++) ok = lab.data[i] == (i < 34 ? want_tid[i] : 255);
    CHECK(ok, "labelIds mapped to the exact train ids (0-6 -> 255, 7 -> 0, ..., 33 -> 18, >= 34 -> 255): %s", err);
    rc = ds->load(ds, 1, &img, &lab, err, sizeof err);
    CHECK(rc == 0 && !memcmp(lab.data, tid, sizeof tid), "labelTrainIds preferred and read as is: %s", err);
    sn_dataset_close(ds);

    /* val: a labelTrainIds value 19 is out of range. */
    rgb_png(P(0, "cs/leftImg8bit/val/zurich/%s_leftImg8bit.png", "zurich_1"), CW, CH, 3);
    tid[1 * CW + 2] = 19;
    grey_png(P(0, "cs/gtFine/val/zurich/%s_gtFine_labelTrainIds.png", "zurich_1"), CW, CH, tid);
    rc = open_ds(&ds, SN_DATA_CITYSCAPES, r, "val", err, sizeof err);
    CHECK(rc == 0, "cityscapes val opens");
    if (!rc) {
        rc = ds->load(ds, 0, &img, &lab, err, sizeof err);
        CHECK(rc == SN_ERR_FORMAT && strstr(err, "zurich_1_gtFine_labelTrainIds.png") && strstr(err, "value 19") &&
                  strstr(err, "x=2, y=1"),
              "out-of-range train id named with file, value, pixel: %s", err);
        sn_dataset_close(ds);
    }
    rc = open_ds(&ds, SN_DATA_CITYSCAPES, r, "test", err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && !ds && strstr(err, "leftImg8bit/test") && strstr(err, "empty"), "empty split: %s", err);
    rc = open_ds(&ds, SN_DATA_CITYSCAPES, r, "train_extra", err, sizeof err);
    CHECK(rc == SN_ERR_IO && strstr(err, "leftImg8bit/train_extra"), "missing split folder: %s", err);
    sn_image_free(&img), sn_image_free(&lab);
}

/* ---- VOC ------------------------------------------------------------------------------------ */
static void test_voc(void)
{
    enum { VW = 10, VH = 6 };
    mkdirs("%s/VOCdevkit/VOC2012/JPEGImages", root), mkdirs("%s/VOCdevkit/VOC2012/SegmentationClass", root);
    mkdirs("%s/VOCdevkit/VOC2012/SegmentationClassAug", root), mkdirs("%s/VOCdevkit/VOC2012/ImageSets/Segmentation", root);
    const char *ids[3] = {"2007_000032", "2007_000039", "2007_000063"};
    uint8_t lab_v[VW * VH];
    for (int i = 0; i < VW * VH; i++) lab_v[i] = (uint8_t)(i % 9 == 0 ? 255 : i % 21);
    for (int k = 0; k < 3; k++) {
        rgb_jpeg(P(0, "VOCdevkit/VOC2012/JPEGImages/%s.jpg", ids[k]), VW, k == 2 ? VH + 1 : VH);
        palette_png(P(0, "VOCdevkit/VOC2012/SegmentationClass/%s.png", ids[k]), VW, VH, lab_v);
    }
    uint8_t aug[VW * VH];
    for (int i = 0; i < VW * VH; i++) aug[i] = (uint8_t)(i % 5);
    grey_png(P(0, "VOCdevkit/VOC2012/SegmentationClassAug/%s.png", ids[1]), VW, VH, aug);
    write_bytes(P(0, "%s/train.txt", "VOCdevkit/VOC2012/ImageSets/Segmentation"), "2007_000032\r\n\n  2007_000039  \n", -1);
    write_bytes(P(0, "%s/val.txt", "VOCdevkit/VOC2012/ImageSets/Segmentation"), "2007_000063\n", -1);
    write_bytes(P(0, "%s/trainval.txt", "VOCdevkit/VOC2012/ImageSets/Segmentation"), "\n\n", -1);
    write_bytes(P(0, "%s/train_aug.txt", "VOCdevkit/VOC2012/ImageSets/Segmentation"),
                "/JPEGImages/2007_000039.jpg /SegmentationClassAug/2007_000039.png\n", -1);

    char err[640];
    sn_dataset *ds = NULL;
    const char *r = P(3, "%s", "VOCdevkit/VOC2012");
    int rc = open_ds(&ds, SN_DATA_VOC, r, "train", err, sizeof err);
    CHECK(rc == 0 && ds->count == 2 && ds->n_classes == 21, "voc train opens with 2 ids: %s", err);
    if (rc) return;
    CHECK(!strcmp(ds->class_names[15], "person") && !strcmp(ds->class_names[20], "tvmonitor"), "voc names");
    const uint8_t(*pal)[3] = ds->palette;
    CHECK(pal[1][0] == 128 && pal[1][1] == 0 && pal[2][1] == 128 && pal[3][0] == 128 && pal[3][1] == 128 &&
              pal[15][0] == 192 && pal[15][1] == 128 && pal[15][2] == 128 && pal[255][0] == 224 && pal[255][2] == 192,
          "VOC colour map (1 aeroplane, 2, 3, 15 person, 255 boundary)");
    sn_image img = {0}, lab = {0};
    rc = ds->load(ds, 1, &img, &lab, err, sizeof err);
    int w = 0, h = 0;
    uint8_t *want = jpeg_decode_rgb(P(0, "VOCdevkit/VOC2012/JPEGImages/%s.jpg", ids[1]), &w, &h);
    CHECK(rc == 0 && !memcmp(lab.data, lab_v, sizeof lab_v) && img.w == w && !memcmp(img.data, want, (size_t)w * h * 3),
          "voc sample: palette indices incl. 255 exact, image = libjpeg decode: %s", err);
    free(want);
    CHECK(strstr(ds->sample_name(ds, 1), "2007_000039.jpg") != NULL, "sample name is the image path");
    sn_dataset_close(ds);

    rc = open_ds(&ds, SN_DATA_VOC, P(3, "%s", "VOCdevkit"), "val", err, sizeof err);
    CHECK(rc == 0 && ds->count == 1, "root = VOCdevkit works: %s", err);
    if (!rc) {
        rc = ds->load(ds, 0, &img, &lab, err, sizeof err);
        CHECK(rc == SN_ERR_SHAPE && strstr(err, "2007_000063.png") && strstr(err, "2007_000063.jpg") &&
                  strstr(err, "10x6") && strstr(err, "10x7"),
              "size mismatch names both files and sizes: %s", err);
        sn_dataset_close(ds);
    }
    rc = open_ds(&ds, SN_DATA_VOC, r, "train_aug", err, sizeof err);
    CHECK(rc == 0 && ds->count == 1, "train_aug (SBD list form) opens: %s", err);
    if (!rc) {
        rc = ds->load(ds, 0, &img, &lab, err, sizeof err);
        CHECK(rc == 0 && !memcmp(lab.data, aug, sizeof aug), "train_aug reads SegmentationClassAug: %s", err);
        sn_dataset_close(ds);
    }
    rc = open_ds(&ds, SN_DATA_VOC, r, "trainval", err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, "trainval.txt") && strstr(err, "empty"), "empty list: %s", err);
    rc = open_ds(&ds, SN_DATA_VOC, r, "test", err, sizeof err);
    CHECK(rc == SN_ERR_IO && strstr(err, "Segmentation/test.txt"), "missing list: %s", err);

    /* A label value 21 (neither class nor 255). */
    lab_v[3 * VW + 7] = 21;
    palette_png(P(0, "VOCdevkit/VOC2012/SegmentationClass/%s.png", ids[0]), VW, VH, lab_v);
    rc = open_ds(&ds, SN_DATA_VOC, r, "train", err, sizeof err);
    if (!rc) {
        rc = ds->load(ds, 0, &img, &lab, err, sizeof err);
        CHECK(rc == SN_ERR_FORMAT && strstr(err, "2007_000032.png") && strstr(err, "value 21") && strstr(err, "x=7, y=3"),
              "label 21 named with file, value, pixel: %s", err);
        sn_dataset_close(ds);
    }
    sn_image_free(&img), sn_image_free(&lab);
}

/* ---- ADE20K ----------------------------------------------------------------------------- */
static void test_ade20k(void)
{
    enum { AW = 9, AH = 4 };
    mkdirs("%s/ade/ADEChallengeData2016/images/training", root);
    mkdirs("%s/ade/ADEChallengeData2016/annotations/training", root);
    mkdirs("%s/ade/ADEChallengeData2016/images/validation", root);
    mkdirs("%s/ade/ADEChallengeData2016/annotations/validation", root);
    uint8_t v[AW * AH];
    for (int i = 0; i < AW * AH; i++) v[i] = (uint8_t)(i == 0 ? 0 : i == 1 ? 1 : i == 2 ? 150 : i * 4);
    for (int k = 0; k < 2; k++) {
        char stem[32];
        snprintf(stem, sizeof stem, "ADE_train_0000000%d", 2 - k);
        rgb_jpeg(P(0, "ade/ADEChallengeData2016/images/training/%s.jpg", stem), AW, AH);
        grey_png(P(0, "ade/ADEChallengeData2016/annotations/training/%s.png", stem), AW, AH, v);
    }
    v[AW + 3] = 151;
    rgb_jpeg(P(0, "ade/ADEChallengeData2016/images/validation/%s.jpg", "ADE_val_00000001"), AW, AH);
    grey_png(P(0, "ade/ADEChallengeData2016/annotations/validation/%s.png", "ADE_val_00000001"), AW, AH, v);

    char err[640];
    sn_dataset *ds = NULL;
    int rc = open_ds(&ds, SN_DATA_ADE20K, P(3, "%s", "ade"), "train", err, sizeof err);
    CHECK(rc == 0 && ds->count == 2 && ds->n_classes == 150, "ade20k opens from the parent folder: %s", err);
    if (rc) return;
    int names_ok = 1;
    for (int c = 0; c < 150; c++) names_ok &= ds->class_names[c] && ds->class_names[c][0];
    CHECK(names_ok && !strcmp(ds->class_names[0], "wall") && !strcmp(ds->class_names[149], "flag") &&
              !strcmp(ds->class_names[12], "person"),
          "150 ADE names");
    CHECK(ds->palette[0][0] == 120 && ds->palette[149][0] == 92 && ds->palette[149][2] == 255, "ADE palette ends");
    CHECK(strstr(ds->sample_name(ds, 0), "ADE_train_00000001.jpg") != NULL, "sorted by name");
    sn_image img = {0}, lab = {0};
    rc = ds->load(ds, 0, &img, &lab, err, sizeof err);
    int ok = rc == 0 && lab.data[0] == 255 && lab.data[1] == 0 && lab.data[2] == 149;
    for (int i = 3; ok && i < AW * AH; i++) ok = lab.data[i] == i * 4 - 1;
    CHECK(ok, "reduce-zero-label: 0 -> 255, k -> k-1: %s", err);
    sn_dataset_close(ds);
    rc = open_ds(&ds, SN_DATA_ADE20K, P(3, "%s", "ade/ADEChallengeData2016"), "val", err, sizeof err);
    CHECK(rc == 0 && ds->count == 1, "ade20k opens from ADEChallengeData2016, val -> validation: %s", err);
    if (!rc) {
        rc = ds->load(ds, 0, &img, &lab, err, sizeof err);
        CHECK(rc == SN_ERR_FORMAT && strstr(err, "ADE_val_00000001.png") && strstr(err, "value 151"),
              "ADE value 151 refused: %s", err);
        sn_dataset_close(ds);
    }
    sn_image_free(&img), sn_image_free(&lab);
}

/* ---- folder ----------------------------------------------------------------------------------- */
static void test_folder(void)
{
    enum { FW = 6, FH = 6 };
    mkdirs("%s/f/images", root), mkdirs("%s/f/masks", root);
    rgb_png(P(0, "f/images/%s.png", "a"), FW, FH, 1);
    rgb_jpeg(P(0, "f/images/%s.jpg", "b"), FW, FH);
    rgb_jpeg(P(0, "f/images/%s.JPEG", "c"), FW, FH);
    write_bytes(P(0, "f/images/%s", "notes.txt"), "ignored", -1);
    uint8_t m[FW * FH];
    for (int i = 0; i < FW * FH; i++) m[i] = (uint8_t)(i % 4 == 3 ? 255 : i % 3);
    palette_png(P(0, "f/masks/%s.png", "a"), FW, FH, m);
    grey_png(P(0, "f/masks/%s.png", "b"), FW, FH, m);
    write_bytes(P(0, "f/%s", "classes.txt"), "background\ncat\ndog\n\n", -1);
    write_bytes(P(0, "f/%s", "train.txt"), "c\na\n", -1);
    write_bytes(P(0, "f/%s", "bad.txt"), "a\nzzz\n", -1);

    char err[640];
    sn_dataset *ds = NULL;
    const char *r = P(3, "%s", "f");
    int rc = open_ds(&ds, SN_DATA_FOLDER, r, "val", err, sizeof err);
    CHECK(rc == 0 && ds->count == 3 && ds->n_classes == 3 && !strcmp(ds->class_names[2], "dog"),
          "folder without val.txt: all images, 3 classes: %s", err);
    if (rc) return;
    CHECK(strstr(ds->sample_name(ds, 0), "a.png") && strstr(ds->sample_name(ds, 1), "b.jpg") &&
              strstr(ds->sample_name(ds, 2), "c.JPEG"),
          "sorted stems, any image extension");
    sn_image img = {0}, lab = {0};
    CHECK(ds->load(ds, 0, &img, &lab, err, sizeof err) == 0 && !memcmp(lab.data, m, sizeof m), "palette mask a: %s", err);
    CHECK(ds->load(ds, 1, &img, &lab, err, sizeof err) == 0 && !memcmp(lab.data, m, sizeof m), "grey mask b: %s", err);
    rc = ds->load(ds, 2, &img, &lab, err, sizeof err);
    CHECK(rc == SN_ERR_IO && strstr(err, "masks/c.png"), "missing mask named: %s", err);
    sn_dataset_close(ds);

    rc = open_ds(&ds, SN_DATA_FOLDER, r, "train", err, sizeof err);
    CHECK(rc == 0 && ds->count == 2 && strstr(ds->sample_name(ds, 0), "c.JPEG") && strstr(ds->sample_name(ds, 1), "a.png"),
          "train.txt picks c, a in list order: %s", err);
    if (!rc) sn_dataset_close(ds);
    rc = open_ds(&ds, SN_DATA_FOLDER, r, "bad", err, sizeof err);
    CHECK(rc == SN_ERR_IO && strstr(err, "bad.txt") && strstr(err, "zzz"), "list naming a missing image: %s", err);

    /* Same stem twice; a blank line inside classes.txt; no classes.txt. */
    rgb_png(P(0, "f/images/%s.png", "b"), FW, FH, 2);
    rc = open_ds(&ds, SN_DATA_FOLDER, r, "train", err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, "b.jpg") && strstr(err, "b.png"), "duplicate stem: %s", err);
    remove(P(0, "f/images/%s.png", "b"));
    write_bytes(P(0, "f/%s", "classes.txt"), "background\n\ncat\n", -1);
    rc = open_ds(&ds, SN_DATA_FOLDER, r, "train", err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, "classes.txt line 2"), "blank line between classes: %s", err);
    remove(P(0, "f/%s", "classes.txt"));
    rc = open_ds(&ds, SN_DATA_FOLDER, r, "train", err, sizeof err);
    CHECK(rc == SN_ERR_IO && strstr(err, "classes.txt"), "missing classes.txt: %s", err);
    write_bytes(P(0, "f/%s", "classes.txt"), "background\ncat\n", -1);
    rc = open_ds(&ds, SN_DATA_FOLDER, r, "val", err, sizeof err);
    if (!rc) {
        rc = ds->load(ds, 0, &img, &lab, err, sizeof err);
        CHECK(rc == SN_ERR_FORMAT && strstr(err, "masks/a.png") && strstr(err, "value 2") && strstr(err, "x=2, y=0"),
              "mask value 2 with 2 classes refused: %s", err);
        sn_dataset_close(ds);
    }
    mkdirs("%s/e/images", root);
    write_bytes(P(0, "e/%s", "classes.txt"), "a\n", -1);
    rc = open_ds(&ds, SN_DATA_FOLDER, P(3, "%s", "e"), "train", err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, "e/images") && strstr(err, "empty"), "empty folder split: %s", err);
    sn_image_free(&img), sn_image_free(&lab);
}

static void test_open_errors(void)
{
    char err[640];
    sn_dataset *ds = NULL;
    const char *missing = P(3, "%s", "no_such_root");
    for (int f = SN_DATA_CITYSCAPES; f <= SN_DATA_FOLDER; f++) {
        int rc = open_ds(&ds, (sn_data_format)f, missing, "train", err, sizeof err);
        CHECK(rc == SN_ERR_IO && !ds && strstr(err, "no_such_root"), "%s: missing root: %s",
              sn_data_format_name((sn_data_format)f), err);
    }
    int rc = open_ds(&ds, SN_DATA_VOC, root, "../etc", err, sizeof err);
    CHECK(rc == SN_ERR_ARG && strstr(err, "../etc"), "split with a path refused: %s", err);
    for (int f = 0; f <= SN_DATA_SYNTH; f++)
        CHECK(sn_data_format_parse(sn_data_format_name((sn_data_format)f)) == f, "format name round trip %d", f);
    CHECK(sn_data_format_parse("imagenet") == -1 && sn_data_format_parse(NULL) == -1, "unknown format");
    rc = open_ds(&ds, SN_DATA_SYNTH, NULL, "val", err, sizeof err);
    CHECK(rc == 0 && ds && ds->format == SN_DATA_SYNTH, "synth through sn_dataset_open: %s", err);
    sn_dataset_close(ds);
    sn_dataset_close(NULL);
}

/* The two parsers on edge cases (the fuzzer covers the rest). */
static void test_parsers(void)
{
    sn_name_list l;
    char err[256];
    const char ids[] = "a\r\n\n b c\n/x/y/2008_1.jpg /z/2008_1.png\nlast";
    CHECK(sn_parse_id_list(ids, sizeof ids - 1, "L", &l, err, sizeof err) == 0 && l.n == 4 && !strcmp(l.items[0], "a") &&
              !strcmp(l.items[1], "b") && !strcmp(l.items[2], "2008_1") && !strcmp(l.items[3], "last"),
          "id list forms");
    sn_name_list_free(&l);
    const char nul[] = "a\nb\0c\n";
    CHECK(sn_parse_id_list(nul, sizeof nul - 1, "L", &l, err, sizeof err) == SN_ERR_FORMAT && strstr(err, "L line 2"),
          "NUL byte refused: %s", err);
    CHECK(sn_parse_id_list("..\n", 3, "L", &l, err, sizeof err) == SN_ERR_FORMAT, "'..' refused");
    CHECK(sn_parse_class_names("x\ny\nx\n", 6, "C", &l, err, sizeof err) == SN_ERR_FORMAT && strstr(err, "line 3"),
          "duplicate class: %s", err);
    CHECK(sn_parse_class_names("\n\n", 2, "C", &l, err, sizeof err) == SN_ERR_FORMAT && strstr(err, "no class"),
          "no classes: %s", err);
    char many[256 * 5];
    int n = 0;
    for (int i = 0; i < 256; i++) n += snprintf(many + n, sizeof many - (size_t)n, "c%d\n", i);
    CHECK(sn_parse_class_names(many, (size_t)n, "C", &l, err, sizeof err) == SN_ERR_FORMAT && strstr(err, "255"),
          "256 classes refused: %s", err);
    CHECK(sn_parse_class_names(many, (size_t)n - 5, "C", &l, err, sizeof err) == 0 && l.n == 255, "255 classes fine");
    sn_name_list_free(&l);
}

int main(void)
{
    root = tmp_make("readers");
    if (!root) {
        fprintf(stderr, "cannot make a temporary folder\n");
        return 1;
    }
    test_cityscapes();
    test_voc();
    test_ade20k();
    test_folder();
    test_open_errors();
    test_parsers();
    tmp_remove(root);
    return check_summary("readers");
}
