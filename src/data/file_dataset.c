/* The data set every file-backed reader returns: a sorted list of
 * (image, label) paths and the class metadata. Loading reads both files,
 * maps label values to train ids, and checks what a training run would
 * otherwise trip over much later: sizes that differ and values that are
 * neither a class nor the ignore label 255. load touches only read-only
 * state, so loader threads may call it concurrently. */
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

typedef struct file_ds {
    sn_reader_spec spec;
    sn_name_list images, labels;
    uint8_t *use_lut; /* per sample, or NULL: spec.lut for all */
    void *owned;
    void (*owned_free)(void *);
} file_ds;

static int check_label(const file_ds *f, int64_t i, const sn_image *img, sn_image *label, char *err, size_t errlen)
{
    const char *ip = f->images.items[i], *lp = f->labels.items[i];
    if (label->w != img->w || label->h != img->h)
        return sn_errf(err, errlen, SN_ERR_SHAPE, "label %s is %dx%d but image %s is %dx%d", lp, label->w,
                            label->h, ip, img->w, img->h);
    const uint8_t *lut = f->use_lut && !f->use_lut[i] ? NULL : f->spec.lut;
    int n_classes = f->spec.n_classes;
    size_t n = (size_t)label->w * label->h;
    uint8_t *d = label->data;
    for (size_t k = 0; k < n; k++) {
        uint8_t v = lut ? lut[d[k]] : d[k];
        if (v >= n_classes && v != 255) {
            int x = (int)(k % (size_t)label->w), y = (int)(k / (size_t)label->w);
            if (lut)
                return sn_errf(err, errlen, SN_ERR_FORMAT,
                                    "%s: label value %d (class %d after mapping) at pixel (x=%d, y=%d) is not a class "
                                    "(0..%d) or 255",
                                    lp, d[k], v, x, y, n_classes - 1);
            return sn_errf(err, errlen, SN_ERR_FORMAT,
                                "%s: label value %d at pixel (x=%d, y=%d) is not a class (0..%d) or 255", lp, v, x, y,
                                n_classes - 1);
        }
        d[k] = v;
    }
    return SN_OK;
}

static int file_load(const sn_dataset *ds, int64_t i, sn_image *img, sn_image *label, char *err, size_t errlen)
{
    const file_ds *f = ds->impl;
    if (i < 0 || i >= ds->count)
        return sn_errf(err, errlen, SN_ERR_ARG, "%s: sample %lld out of range 0..%lld",
                            sn_data_format_name(ds->format), (long long)i, (long long)ds->count - 1);
    int rc = sn_image_read_rgb(f->images.items[i], img, err, errlen);
    if (rc || !label) return rc;
    rc = sn_label_read(f->labels.items[i], label, err, errlen);
    if (!rc) rc = check_label(f, i, img, label, err, errlen);
    return rc;
}

static const char *file_sample_name(const sn_dataset *ds, int64_t i)
{
    const file_ds *f = ds->impl;
    return i >= 0 && i < ds->count ? f->images.items[i] : "(out of range)";
}

static void file_destroy(sn_dataset *ds)
{
    if (!ds) return;
    file_ds *f = ds->impl;
    if (f) {
        sn_name_list_free(&f->images);
        sn_name_list_free(&f->labels);
        free(f->use_lut);
        if (f->owned_free) f->owned_free(f->owned);
        free(f);
    }
    free(ds);
}

int sn_file_dataset_create(sn_dataset **out, const sn_reader_spec *spec, sn_name_list *images,
                           sn_name_list *labels, uint8_t *use_lut, void *owned, void (*owned_free)(void *),
                           char *err, size_t errlen)
{
    *out = NULL;
    sn_dataset *ds = calloc(1, sizeof *ds);
    file_ds *f = calloc(1, sizeof *f);
    int rc = SN_OK;
    if (!ds || !f) rc = sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", sn_data_format_name(spec->format));
    else if (images->n < 1 || images->n != labels->n)
        rc = sn_errf(err, errlen, SN_ERR_ARG, "%s: %lld images but %lld labels", sn_data_format_name(spec->format),
                          (long long)images->n, (long long)labels->n);
    if (rc) {
        free(ds), free(f), free(use_lut);
        sn_name_list_free(images), sn_name_list_free(labels);
        if (owned_free) owned_free(owned);
        return rc;
    }
    *f = (file_ds){.spec = *spec, .images = *images, .labels = *labels, .use_lut = use_lut, .owned = owned,
                   .owned_free = owned_free};
    *images = (sn_name_list){0}, *labels = (sn_name_list){0};
    *ds = (sn_dataset){.format = spec->format, .n_classes = spec->n_classes, .class_names = spec->class_names,
                       .palette = spec->palette, .count = f->images.n, .load = file_load,
                       .sample_name = file_sample_name, .destroy = file_destroy, .impl = f};
    *out = ds;
    return SN_OK;
}
