/* ADE20K, the SceneParsing challenge release (Zhou et al., CVPR 2017):
 *   ADEChallengeData2016/images/{training,validation}/<stem>.jpg
 *   ADEChallengeData2016/annotations/{training,validation}/<stem>.png
 * Annotations hold 0 = "other" (not one of the 150 classes) and k = class
 * k-1, so they are read with reduce-zero-label: 0 -> 255, k -> k-1. Class
 * names (first name of each entry of objectInfo150) and colours follow the
 * common benchmark tables (e.g. MMSegmentation's ade.py). root may be the
 * ADEChallengeData2016 folder or the folder containing it. */
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

enum { N_CLASSES = 150 };

static const char *const class_names[N_CLASSES] = {
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
    "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture",
    "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
};

static const uint8_t palette[256][3] = {
    {120, 120, 120}, {180, 120, 120}, {6, 230, 230},   {80, 50, 50},    {4, 200, 3},     {120, 120, 80},
    {140, 140, 140}, {204, 5, 255},   {230, 230, 230}, {4, 250, 7},     {224, 5, 255},   {235, 255, 7},
    {150, 5, 61},    {120, 120, 70},  {8, 255, 51},    {255, 6, 82},    {143, 255, 140}, {204, 255, 4},
    {255, 51, 7},    {204, 70, 3},    {0, 102, 200},   {61, 230, 250},  {255, 6, 51},    {11, 102, 255},
    {255, 7, 71},    {255, 9, 224},   {9, 7, 230},     {220, 220, 220}, {255, 9, 92},    {112, 9, 255},
    {8, 255, 214},   {7, 255, 224},   {255, 184, 6},   {10, 255, 71},   {255, 41, 10},   {7, 255, 255},
    {224, 255, 8},   {102, 8, 255},   {255, 61, 6},    {255, 194, 7},   {255, 122, 8},   {0, 255, 20},
    {255, 8, 41},    {255, 5, 153},   {6, 51, 255},    {235, 12, 255},  {160, 150, 20},  {0, 163, 255},
    {140, 140, 140}, {250, 10, 15},   {20, 255, 0},    {31, 255, 0},    {255, 31, 0},    {255, 224, 0},
    {153, 255, 0},   {0, 0, 255},     {255, 71, 0},    {0, 235, 255},   {0, 173, 255},   {31, 0, 255},
    {11, 200, 200},  {255, 82, 0},    {0, 255, 245},   {0, 61, 255},    {0, 255, 112},   {0, 255, 133},
    {255, 0, 0},     {255, 163, 0},   {255, 102, 0},   {194, 255, 0},   {0, 143, 255},   {51, 255, 0},
    {0, 82, 255},    {0, 255, 41},    {0, 255, 173},   {10, 0, 255},    {173, 255, 0},   {0, 255, 153},
    {255, 92, 0},    {255, 0, 255},   {255, 0, 245},   {255, 0, 102},   {255, 173, 0},   {255, 0, 20},
    {255, 184, 184}, {0, 31, 255},    {0, 255, 61},    {0, 71, 255},    {255, 0, 204},   {0, 255, 194},
    {0, 255, 82},    {0, 10, 255},    {0, 112, 255},   {51, 0, 255},    {0, 194, 255},   {0, 122, 255},
    {0, 255, 163},   {255, 153, 0},   {0, 255, 10},    {255, 112, 0},   {143, 255, 0},   {82, 0, 255},
    {163, 255, 0},   {255, 235, 0},   {8, 184, 170},   {133, 0, 255},   {0, 255, 92},    {184, 0, 255},
    {255, 0, 31},    {0, 184, 255},   {0, 214, 255},   {255, 0, 112},   {92, 255, 0},    {0, 224, 255},
    {112, 224, 255}, {70, 184, 160},  {163, 0, 255},   {153, 0, 255},   {71, 255, 0},    {255, 0, 163},
    {255, 204, 0},   {255, 0, 143},   {0, 255, 235},   {133, 255, 0},   {255, 0, 235},   {245, 0, 255},
    {255, 0, 122},   {255, 245, 0},   {10, 190, 212},  {214, 255, 0},   {0, 204, 255},   {20, 0, 255},
    {255, 255, 0},   {0, 153, 255},   {0, 41, 255},    {0, 255, 204},   {41, 0, 255},    {41, 255, 0},
    {173, 0, 255},   {0, 245, 255},   {71, 0, 255},    {122, 0, 255},   {0, 255, 184},   {0, 92, 255},
    {184, 255, 0},   {0, 133, 255},   {255, 214, 0},   {25, 194, 194},  {102, 255, 0},   {92, 0, 255},
    /* 150..255: black (255 = ignore) */
};

/* Reduce-zero-label: 0 -> 255 and k -> k - 1 (so 255 -> 254, which is
 * then rejected as "not a class" like every value above 150). */
typedef struct ade_meta {
    uint8_t lut[256];
} ade_meta;

static const char *const image_suffix[] = {".jpg", NULL};

int sn_ade20k_open(sn_dataset **out, const char *root, const char *split, char *err, size_t errlen)
{
    const char *sub = !strcmp(split, "train") ? "training" : !strcmp(split, "val") ? "validation" : split;
    char *probe = sn_pathf("%s/images", root);
    char *base = sn_is_dir(probe) ? strdup(root) : sn_pathf("%s/ADEChallengeData2016", root);
    char *img_dir = base ? sn_pathf("%s/images/%s", base, sub) : NULL;
    char *ann_dir = base ? sn_pathf("%s/annotations/%s", base, sub) : NULL;
    sn_name_list rel = {0}, images = {0}, labels = {0};
    ade_meta *meta = calloc(1, sizeof *meta);
    int rc = probe && img_dir && ann_dir && meta ? SN_OK : sn_errf(err, errlen, SN_ERR_NOMEM, "ade20k: out of memory");
    if (!rc && !sn_is_dir(img_dir))
        rc = sn_errf(err, errlen, SN_ERR_IO,
                          "ade20k: no folder %s (expected [<root>/]ADEChallengeData2016/images/{training,validation})",
                          img_dir);
    if (!rc) rc = sn_list_files(img_dir, image_suffix, 0, &rel, err, errlen);
    if (!rc && rel.n == 0) rc = sn_errf(err, errlen, SN_ERR_FORMAT, "ade20k: split '%s' is empty: no *.jpg in %s", split, img_dir);
    for (int64_t i = 0; !rc && i < rel.n; i++) {
        const char *r = rel.items[i];
        if (sn_name_list_take(&images, sn_pathf("%s/%s", img_dir, r)) ||
            sn_name_list_take(&labels, sn_pathf("%s/%.*s.png", ann_dir, (int)strlen(r) - 4, r)))
            rc = sn_errf(err, errlen, SN_ERR_NOMEM, "ade20k: out of memory");
    }
    free(probe), free(base), free(img_dir), free(ann_dir);
    sn_name_list_free(&rel);
    if (rc) {
        sn_name_list_free(&images), sn_name_list_free(&labels), free(meta);
        return rc;
    }
    for (int v = 0; v < 256; v++) meta->lut[v] = (uint8_t)(v == 0 ? 255 : v - 1);
    sn_reader_spec spec = {SN_DATA_ADE20K, N_CLASSES, class_names, palette, meta->lut};
    return sn_file_dataset_create(out, &spec, &images, &labels, NULL, meta, free, err, errlen);
}
