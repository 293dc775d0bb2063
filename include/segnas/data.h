/* segnas layer 7: images, data sets, augmentation, the loader, `synth`.
 *
 * Errors: functions return 0 or an sn_status and write a message naming the
 * file and the problem into `err` (errlen bytes, may be NULL). */
#ifndef SEGNAS_DATA_H
#define SEGNAS_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segnas/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 8-bit image, rows of w*c bytes (HWC). Labels are c == 1 images whose
 * values are class indices (255 = ignore). */
typedef struct sn_image {
    int w, h, c;
    uint8_t *data; /* malloc'ed; sn_image_free releases it */
} sn_image;

void sn_image_free(sn_image *img);
int sn_image_alloc(sn_image *img, int w, int h, int c);

/* ---- image files (src/data/image_io.c) ----------------------------------- */
/* Reads a PNG or JPEG (chosen by the file's magic bytes, not its name) as
 * 8-bit RGB (c = 3; grey and palette images are expanded, alpha dropped,
 * 16-bit scaled down). */
int sn_image_read_rgb(const char *path, sn_image *img, char *err, size_t errlen);
/* Reads a label PNG as one channel: palette PNGs keep their INDICES (PASCAL
 * VOC SegmentationClass), grey 8-bit as is; 16-bit grey must be < 256;
 * RGB labels are rejected with a message. */
int sn_label_read(const char *path, sn_image *label, char *err, size_t errlen);
/* Writes 8-bit grey (c=1), RGB (c=3) or RGBA (c=4) PNG atomically. */
int sn_png_write(const char *path, const sn_image *img, char *err, size_t errlen);
/* Writes a palette PNG (index image + 256-entry RGB palette). */
int sn_png_write_palette(const char *path, const sn_image *index, const uint8_t (*palette)[3],
                         char *err, size_t errlen);

/* ---- data sets --------------------------------------------------------- */
typedef enum sn_data_format {
    SN_DATA_CITYSCAPES,
    SN_DATA_VOC,
    SN_DATA_ADE20K,
    SN_DATA_FOLDER,
    SN_DATA_SYNTH
} sn_data_format;

/* Parses "cityscapes", "voc", "ade20k", "folder", "synth"; -1 if unknown. */
int sn_data_format_parse(const char *name);
const char *sn_data_format_name(sn_data_format f);

typedef struct sn_dataset sn_dataset;

/* A data set is a list of samples plus class metadata, behind a small vtable
 * so that file-backed readers and the in-memory generator look the same. */
struct sn_dataset {
    sn_data_format format;
    int n_classes;
    const char *const *class_names; /* n_classes entries */
    const uint8_t (*palette)[3];    /* 256 entries (colour of each class index) */
    int64_t count;                  /* number of samples in the split */
    /* Loads sample i (0 <= i < count): image RGB and label (already mapped to
     * train ids, 255 = ignore). Thread-safe (loader threads call it). */
    int (*load)(const sn_dataset *ds, int64_t i, sn_image *img, sn_image *label, char *err, size_t errlen);
    /* Human-readable name of sample i (e.g. the image path). */
    const char *(*sample_name)(const sn_dataset *ds, int64_t i);
    void (*destroy)(sn_dataset *ds);
    void *impl;
};

/* Opens a split of a data set in its standard layout (see README):
 * root is the data set's top folder, split "train", "val", "test",
 * "trainval", "train_aug" as the format has. */
int sn_dataset_open(sn_dataset **out, sn_data_format format, const char *root, const char *split,
                    char *err, size_t errlen);
void sn_dataset_close(sn_dataset *ds);

#ifdef __cplusplus
}
#endif
#endif
