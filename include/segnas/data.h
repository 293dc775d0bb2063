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

/* Files are never trusted: an image larger than this (per side, or in
 * decoded bytes) is rejected before any pixel memory is allocated. */
#define SN_IMAGE_MAX_SIDE 30000
#define SN_IMAGE_MAX_BYTES ((uint64_t)1 << 28)

/* Frees the pixels and zeroes the struct (safe on a zeroed image or NULL). */
void sn_image_free(sn_image *img);
/* Zero-filled w x h x c (c in 1..4) image; SN_ERR_ARG when the size is out
 * of the limits above, SN_ERR_NOMEM. `img` is overwritten (not freed). */
int sn_image_alloc(sn_image *img, int w, int h, int c);
/* Like sn_image_alloc but keeps img's buffer when it already has this size
 * (img must be zeroed or hold an image from sn_image_alloc). */
int sn_image_ensure(sn_image *img, int w, int h, int c);
bool sn_image_size_ok(int w, int h, int c);

/* ---- image files (src/data/image_io.c) ----------------------------------- */
/* Reads a PNG or JPEG (chosen by the file's magic bytes, not its name) as
 * 8-bit RGB (c = 3; grey and palette images are expanded, alpha dropped,
 * 16-bit scaled down). `img` must be zeroed or hold an image from
 * sn_image_alloc (its buffer is reused when the size fits); on failure it
 * is freed and zeroed. Thread-safe. Errors: SN_ERR_IO (cannot open/read),
 * SN_ERR_FORMAT (not PNG/JPEG, corrupt, truncated, too large). */
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

/* ---- synth: the embedded synthetic data set (src/data/synth.c) -------------
 * Scenes of textured objects on a smooth background, built so that the
 * architecture matters: fine-scale texture separates most classes, but two
 * classes share a texture and differ only by SHAPE (disc vs square) and two
 * share a texture and differ only by CONTEXT (dots inside a large checker
 * region vs dots elsewhere). See docs/synth.md. Every sample is a pure
 * function of (seed, index): any thread may make any sample in any order. */
enum { SN_SYNTH_CLASSES = 8 };
/* The validation split uses indices offset by this, disjoint from train. */
#define SN_SYNTH_VAL_OFFSET ((int64_t)1 << 40)

typedef struct sn_synth_config {
    uint64_t seed;
    int height, width;   /* default 64x64 (docs/synth.md says why) */
    int64_t train_count; /* default 2000 */
    int64_t val_count;   /* default 500 */
    float noise_std;     /* Gaussian pixel noise, 8-bit units; default 6 */
} sn_synth_config;

void sn_synth_config_default(sn_synth_config *c);
/* Class names ("background", "hstripes", ...) and palette (256 entries). */
const char *const *sn_synth_class_names(void);
const uint8_t (*sn_synth_palette(void))[3];
/* Makes sample `index` (any int64 >= 0): img RGB height x width, label c = 1
 * with values < SN_SYNTH_CLASSES. img/label must be zeroed or hold images
 * from sn_image_alloc; their memory is reused when the size already fits. */
int sn_synth_generate(const sn_synth_config *c, int64_t index, sn_image *img, sn_image *label,
                      char *err, size_t errlen);
/* A data set backed by the generator: split "train" (indices 0..train_count-1)
 * or "val" (SN_SYNTH_VAL_OFFSET + 0..val_count-1). Close with
 * sn_dataset_close or ds->destroy. */
int sn_synth_dataset_open(sn_dataset **out, const sn_synth_config *c, const char *split, char *err,
                          size_t errlen);

/* ---- augmentation (src/data/augment.c) -------------------------------------
 * Training: random scale, horizontal flip, random crop with padding,
 * normalisation to float NHWC. The image is resized bilinearly (half-pixel
 * centres), the label ONLY by nearest neighbour, so labels never get values
 * that were not in the source. Random draws come from (seed, epoch, index)
 * alone, never from a shared stream, so results do not depend on threads. */
typedef struct sn_augment_config {
    float scale_min, scale_max; /* default 0.5, 2.0; 1, 1 disables scaling */
    bool flip;                  /* horizontal flip with probability 1/2; default true */
    int crop_h, crop_w;         /* output size; default 321 x 321 */
    float mean[3], std[3];      /* on [0,1] pixels; default ImageNet */
    uint8_t ignore_label;       /* label padding; default 255 */
} sn_augment_config;

/* The random choices for one sample. Padding: the scaled image sits at the
 * top-left of a canvas max(scaled, crop) filled with the mean (image) and
 * ignore_label (label); the crop is taken from that canvas. */
typedef struct sn_augment_params {
    int scaled_h, scaled_w; /* size after scaling */
    int crop_y, crop_x;     /* top-left of the crop in the scaled image */
    bool flip;
} sn_augment_params;

void sn_augment_config_default(sn_augment_config *c);
int sn_augment_check(const sn_augment_config *c, char *err, size_t errlen);
void sn_augment_draw(const sn_augment_config *c, uint64_t seed, int64_t epoch, int64_t index, int src_h,
                     int src_w, sn_augment_params *p);
/* Writes crop_h*crop_w*3 floats (HWC) into `out` and crop_h*crop_w labels
 * into `out_label` (may be NULL). label may be NULL (no label output). */
int sn_augment_apply(const sn_augment_config *c, const sn_augment_params *p, const sn_image *img,
                     const sn_image *label, float *out, uint8_t *out_label, char *err, size_t errlen);
/* draw + apply. */
int sn_augment_sample(const sn_augment_config *c, uint64_t seed, int64_t epoch, int64_t index,
                      const sn_image *img, const sn_image *label, float *out, uint8_t *out_label,
                      char *err, size_t errlen);
/* Evaluation: the image resized bilinearly to out_h x out_w and normalised
 * into `out` (out_h*out_w*3 floats); the label stays at its original size
 * (predictions are resized back to it). Same size = normalisation only. */
int sn_image_to_float(const sn_image *img, int out_h, int out_w, const float mean[3], const float std[3],
                      float *out, char *err, size_t errlen);

/* ---- threaded loader (src/data/loader.c) -----------------------------------
 * pthreads (not OpenMP: it runs beside the training step's OpenMP pool)
 * prefetch a ring of augmented batches. Batch g of the stream is epoch
 * g / batches_per_epoch; each epoch visits the index list once (reshuffled
 * from (seed, epoch) when shuffle). Batch content depends only on the seed,
 * never on n_threads or scheduling. */
typedef struct sn_loader sn_loader;

typedef struct sn_loader_config {
    int batch;          /* samples per batch; default 2 */
    int n_threads;      /* worker threads; default 1 */
    int prefetch;       /* ring of batches; default 4 */
    uint64_t seed;      /* default 0 */
    bool shuffle;       /* default true */
    bool drop_last;     /* drop a short last batch of each epoch; default true */
    bool skip_bad;      /* a sample that fails to load is dropped and counted
                         * instead of failing sn_loader_next; default false */
    int64_t max_epochs; /* 0 = endless stream; else next() ends after them */
    sn_augment_config aug;
} sn_loader_config;

typedef struct sn_batch {
    int n;                  /* samples (< batch for a short or skipped batch; 0 = end) */
    int h, w;               /* crop size */
    float *images;          /* n*h*w*3, NHWC, normalised */
    uint8_t *labels;        /* n*h*w class ids, 255 = ignore */
    const int64_t *indices; /* data set index of each sample */
    int64_t epoch;          /* 0-based */
    int64_t step;           /* batch number within the epoch */
    int64_t global_step;    /* batch number since the start */
} sn_batch;

void sn_loader_config_default(sn_loader_config *c);
/* `indices` (copied) are data set sample numbers, each in [0, ds->count). */
int sn_loader_create(sn_loader **out, const sn_dataset *ds, const int64_t *indices, int64_t n_indices,
                     const sn_loader_config *c, char *err, size_t errlen);
/* Blocks until the next batch is ready (only if it is not ready yet). The
 * batch's memory stays valid until the next call. A failed sample makes
 * this return its status and message (the batch is then skipped; calling
 * again continues with the next one). At the end (max_epochs) b->n == 0. */
int sn_loader_next(sn_loader *l, sn_batch *b, char *err, size_t errlen);
int64_t sn_loader_batches_per_epoch(const sn_loader *l);
int64_t sn_loader_skipped(const sn_loader *l); /* samples dropped by skip_bad */
/* Stops and joins the workers (never hangs, wherever the consumer stopped). */
void sn_loader_destroy(sn_loader *l);

/* ---- train splits (src/data/split.c) ---------------------------------------
 * Bi-level search (Auto-DeepLab Sec. 3.3) trains weights on trainA and
 * architecture parameters on trainB: two disjoint halves of the list, chosen
 * by a seeded permutation. a gets (n+1)/2 entries, b gets n/2, each sorted
 * ascending. */
void sn_split_halves(const int64_t *indices, int64_t n, uint64_t seed, int64_t *a, int64_t *b);

#ifdef __cplusplus
}
#endif
#endif
