/* Cityscapes (Cordts et al., CVPR 2016), fine annotations:
 *   <root>/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png
 *   <root>/gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png   (preferred)
 *                                  <stem>_gtFine_labelIds.png        (mapped)
 * The 19 evaluation classes and their colours are those of the official
 * cityscapesScripts labels.py; labelIds are mapped with its id -> trainId
 * table, every id that is not evaluated becoming 255 (ignore). */
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

enum { N_CLASSES = 19 };

static const char *const class_names[N_CLASSES] = {
    "road",  "sidewalk", "building", "wall",   "fence", "pole",  "traffic light", "traffic sign", "vegetation", "terrain",
    "sky",   "person",   "rider",    "car",    "truck", "bus",   "train",         "motorcycle",   "bicycle",
};

static const uint8_t palette[256][3] = {
    {128, 64, 128}, {244, 35, 232}, {70, 70, 70},   {102, 102, 156}, {190, 153, 153}, {153, 153, 153}, {250, 170, 30},
    {220, 220, 0},  {107, 142, 35}, {152, 251, 152}, {70, 130, 180},  {220, 20, 60},   {255, 0, 0},     {0, 0, 142},
    {0, 0, 70},     {0, 60, 100},   {0, 80, 100},   {0, 0, 230},     {119, 11, 32},
    /* 19..255: black (255 = ignore) */
};

/* labels.py: id -> trainId. ids 0-6 (unlabeled, ego vehicle, rectification
 * border, out of roi, static, dynamic, ground), 9 parking, 10 rail track,
 * 14 guard rail, 15 bridge, 16 tunnel, 18 polegroup, 29 caravan and
 * 30 trailer are not evaluated; ids >= 34 do not exist. */
#define X 255
const uint8_t sn_cityscapes_train_id[256] = {
    X, X, X, X, X, X, X, 0, 1, X, X, 2, 3, 4, X, X, X, 5, X, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, X, X, 16, 17, 18,
    /* 34..255 */
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X,
};
#undef X

static const char *const image_suffix[] = {"_leftImg8bit.png", NULL};

/* Chooses each sample's label file: labelTrainIds when present (no
 * mapping), else labelIds (mapped). A sample with neither keeps the
 * labelIds path, so loading it fails with a message naming that file (and
 * `data inspect --skip-bad` can count it) instead of failing the open. */
static int pair_labels(const char *gt_dir, const sn_name_list *rel, sn_name_list *labels, uint8_t *use_lut,
                       char *err, size_t errlen)
{
    size_t sl = strlen(image_suffix[0]);
    for (int64_t i = 0; i < rel->n; i++) {
        const char *r = rel->items[i];
        int stem = (int)(strlen(r) - sl);
        char *train_ids = sn_pathf("%s/%.*s_gtFine_labelTrainIds.png", gt_dir, stem, r);
        char *ids = sn_pathf("%s/%.*s_gtFine_labelIds.png", gt_dir, stem, r);
        bool have_train_ids = sn_is_file(train_ids);
        use_lut[i] = !have_train_ids;
        int rc = sn_name_list_take(labels, have_train_ids ? train_ids : ids);
        free(have_train_ids ? ids : train_ids);
        if (rc) return sn_errf(err, errlen, SN_ERR_NOMEM, "cityscapes: out of memory");
    }
    return SN_OK;
}

int sn_cityscapes_open(sn_dataset **out, const char *root, const char *split, char *err, size_t errlen)
{
    char *img_dir = sn_pathf("%s/leftImg8bit/%s", root, split), *gt_dir = sn_pathf("%s/gtFine/%s", root, split);
    sn_name_list rel = {0}, images = {0}, labels = {0};
    uint8_t *use_lut = NULL;
    int rc = SN_OK;
    if (!img_dir || !gt_dir) rc = sn_errf(err, errlen, SN_ERR_NOMEM, "cityscapes: out of memory");
    else if (!sn_is_dir(img_dir))
        rc = sn_errf(err, errlen, SN_ERR_IO,
                          "cityscapes: no folder %s (expected <root>/leftImg8bit/<split>/<city>/*_leftImg8bit.png)",
                          img_dir);
    if (!rc) rc = sn_list_files(img_dir, image_suffix, 1, &rel, err, errlen);
    if (!rc && rel.n == 0)
        rc = sn_errf(err, errlen, SN_ERR_FORMAT, "cityscapes: split '%s' is empty: no *_leftImg8bit.png under %s",
                          split, img_dir);
    if (!rc && !(use_lut = calloc((size_t)rel.n, 1))) rc = sn_errf(err, errlen, SN_ERR_NOMEM, "cityscapes: out of memory");
    for (int64_t i = 0; !rc && i < rel.n; i++)
        if (sn_name_list_take(&images, sn_pathf("%s/%s", img_dir, rel.items[i])))
            rc = sn_errf(err, errlen, SN_ERR_NOMEM, "cityscapes: out of memory");
    if (!rc) rc = pair_labels(gt_dir, &rel, &labels, use_lut, err, errlen);
    sn_name_list_free(&rel);
    free(img_dir), free(gt_dir);
    if (rc) {
        sn_name_list_free(&images), sn_name_list_free(&labels), free(use_lut);
        return rc;
    }
    static const sn_reader_spec spec = {SN_DATA_CITYSCAPES, N_CLASSES, class_names, palette, sn_cityscapes_train_id};
    return sn_file_dataset_create(out, &spec, &images, &labels, use_lut, NULL, NULL, err, errlen);
}
