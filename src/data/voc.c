/* PASCAL VOC 2012 segmentation (Everingham et al., IJCV 2010):
 *   <root>/JPEGImages/<id>.jpg
 *   <root>/SegmentationClass/<id>.png     palette PNG; the palette INDEX is
 *                                         the class, 255 = object boundary
 *   <root>/ImageSets/Segmentation/{train,val,trainval}.txt
 * and the SBD-augmented training set ("train_aug", Hariharan et al. 2011):
 *   <root>/ImageSets/Segmentation/train_aug.txt, <root>/SegmentationClassAug/
 * root may be VOC2012 itself or the VOCdevkit folder holding it. */
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

enum { N_CLASSES = 21 };

static const char *const class_names[N_CLASSES] = {
    "background", "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",   "car",   "cat",   "chair",    "cow",
    "diningtable", "dog",      "horse",   "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
};

/* The devkit's labelcolormap: the index's bits are dealt round-robin to R, G,
 * B (bit 0 -> R, 1 -> G, 2 -> B, 3 -> R, ...), filling each colour from its
 * most significant bit down. Index 255 comes out (224, 224, 192). */
void sn_voc_colormap(uint8_t (*pal)[3])
{
    for (int i = 0; i < 256; i++) {
        int c = i, rgb[3] = {0, 0, 0};
        for (int j = 0; j < 8; j++, c >>= 3)
            for (int k = 0; k < 3; k++) rgb[k] |= ((c >> k) & 1) << (7 - j);
        for (int k = 0; k < 3; k++) pal[i][k] = (uint8_t)rgb[k];
    }
}

typedef struct voc_meta {
    uint8_t palette[256][3];
} voc_meta;

static int read_list(const char *path, sn_name_list *ids, char *err, size_t errlen)
{
    if (!sn_is_file(path))
        return sn_errf(err, errlen, SN_ERR_IO, "voc: no split list %s (one image id per line)", path);
    char *buf;
    size_t len;
    int rc = sn_read_text_file(path, &buf, &len, err, errlen);
    if (rc) return rc;
    rc = sn_parse_id_list(buf, len, path, ids, err, errlen);
    free(buf);
    if (!rc && ids->n == 0) rc = sn_errf(err, errlen, SN_ERR_FORMAT, "voc: split list %s is empty", path);
    return rc;
}

int sn_voc_open(sn_dataset **out, const char *root, const char *split, char *err, size_t errlen)
{
    char *jpeg = sn_pathf("%s/JPEGImages", root);
    char *base = sn_is_dir(jpeg) ? strdup(root) : sn_pathf("%s/VOC2012", root);
    bool aug = !strcmp(split, "train_aug");
    char *list = base ? sn_pathf("%s/ImageSets/Segmentation/%s.txt", base, split) : NULL;
    sn_name_list ids = {0}, images = {0}, labels = {0};
    voc_meta *meta = calloc(1, sizeof *meta);
    int rc = jpeg && base && list && meta ? SN_OK : sn_errf(err, errlen, SN_ERR_NOMEM, "voc: out of memory");
    if (!rc) rc = read_list(list, &ids, err, errlen);
    for (int64_t i = 0; !rc && i < ids.n; i++) {
        const char *id = ids.items[i];
        if (sn_name_list_take(&images, sn_pathf("%s/JPEGImages/%s.jpg", base, id)) ||
            sn_name_list_take(&labels, sn_pathf("%s/%s/%s.png", base, aug ? "SegmentationClassAug" : "SegmentationClass", id)))
            rc = sn_errf(err, errlen, SN_ERR_NOMEM, "voc: out of memory");
    }
    free(jpeg), free(base), free(list);
    sn_name_list_free(&ids);
    if (rc) {
        sn_name_list_free(&images), sn_name_list_free(&labels), free(meta);
        return rc;
    }
    sn_voc_colormap(meta->palette);
    sn_reader_spec spec = {SN_DATA_VOC, N_CLASSES, class_names, (const uint8_t(*)[3])meta->palette, NULL};
    return sn_file_dataset_create(out, &spec, &images, &labels, NULL, meta, free, err, errlen);
}
