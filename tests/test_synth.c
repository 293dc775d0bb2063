/* synth: determinism from (seed, index), sizes, label range, every class
 * present, the context rule (free dots never touch checker), the data set
 * splits, and the error paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/data.h"
#include "support/check.h"

static bool same_image(const sn_image *a, const sn_image *b)
{
    return a->w == b->w && a->h == b->h && a->c == b->c &&
           !memcmp(a->data, b->data, (size_t)a->w * a->h * a->c);
}

static void test_determinism(void)
{
    sn_synth_config c;
    sn_synth_config_default(&c);
    c.seed = 42;
    sn_image a = {0}, al = {0}, b = {0}, bl = {0};
    CHECK(sn_synth_generate(&c, 17, &a, &al, NULL, 0) == 0, "generate 17");
    /* Generating other samples in between (and reusing b's memory) must not
     * change sample 17. */
    CHECK(sn_synth_generate(&c, 3, &b, &bl, NULL, 0) == 0, "generate 3");
    CHECK(!same_image(&a, &b), "samples 17 and 3 differ");
    CHECK(sn_synth_generate(&c, 17, &b, &bl, NULL, 0) == 0, "generate 17 again");
    CHECK(same_image(&a, &b) && same_image(&al, &bl), "same (seed, index) gives identical bytes");
    c.seed = 43;
    CHECK(sn_synth_generate(&c, 17, &b, &bl, NULL, 0) == 0, "generate seed 43");
    CHECK(!same_image(&a, &b), "a different seed gives a different image");
    CHECK(a.w == 64 && a.h == 64 && a.c == 3 && al.c == 1 && al.w == 64 && al.h == 64, "default size 64x64");
    /* Non-square sizes: the label matches the image. */
    c.height = 40, c.width = 72;
    CHECK(sn_synth_generate(&c, (int64_t)1 << 41, &b, &bl, NULL, 0) == 0, "generate 40x72, huge index");
    CHECK(b.h == 40 && b.w == 72 && b.c == 3 && bl.h == 40 && bl.w == 72 && bl.c == 1, "size 40x72: got %dx%d",
          b.h, b.w);
    sn_image_free(&a), sn_image_free(&al), sn_image_free(&b), sn_image_free(&bl);
}

/* Over 50 samples: labels < 8, every class present with a sane share, and
 * no dots pixel (class 4) 4-adjacent to a checker pixel (class 3). */
static void test_classes(void)
{
    sn_synth_config c;
    sn_synth_config_default(&c);
    c.seed = 1;
    int64_t count[256] = {0}, touches = 0, total = 0;
    int images_with[SN_SYNTH_CLASSES] = {0};
    sn_image img = {0}, lab = {0};
    for (int64_t i = 0; i < 50; i++) {
        if (sn_synth_generate(&c, i, &img, &lab, NULL, 0)) break;
        bool seen[256] = {false};
        for (int y = 0; y < lab.h; y++)
            for (int x = 0; x < lab.w; x++) {
                uint8_t v = lab.data[y * lab.w + x];
                count[v]++, total++, seen[v] = true;
                if (v == 4) {
                    if (x > 0 && lab.data[y * lab.w + x - 1] == 3) touches++;
                    if (x + 1 < lab.w && lab.data[y * lab.w + x + 1] == 3) touches++;
                    if (y > 0 && lab.data[(y - 1) * lab.w + x] == 3) touches++;
                    if (y + 1 < lab.h && lab.data[(y + 1) * lab.w + x] == 3) touches++;
                }
            }
        for (int k = 0; k < SN_SYNTH_CLASSES; k++) images_with[k] += seen[k];
    }
    int64_t above = 0;
    for (int v = SN_SYNTH_CLASSES; v < 256; v++) above += count[v];
    CHECK(total == 50 * 64 * 64, "50 samples generated");
    CHECK(above == 0, "label values < %d (%lld pixels above)", SN_SYNTH_CLASSES, (long long)above);
    for (int k = 0; k < SN_SYNTH_CLASSES; k++) {
        double share = (double)count[k] / (double)total;
        CHECK(share > 0.005 && share < 0.8, "class %d (%s): %.2f%% of pixels, in %d of 50 images", k,
              sn_synth_class_names()[k], 100 * share, images_with[k]);
        CHECK(images_with[k] >= 3, "class %d appears in %d of 50 images", k, images_with[k]);
    }
    CHECK(touches == 0, "free dots never touch checker (%lld contacts)", (long long)touches);
    sn_image_free(&img), sn_image_free(&lab);
}

static void test_dataset(void)
{
    sn_synth_config c;
    sn_synth_config_default(&c);
    c.seed = 9, c.train_count = 10, c.val_count = 4, c.height = 32, c.width = 48;
    sn_dataset *tr = NULL, *va = NULL, *bad = NULL;
    char err[256] = "";
    CHECK(sn_synth_dataset_open(&tr, &c, "train", err, sizeof err) == 0, "open train: %s", err);
    CHECK(sn_synth_dataset_open(&va, &c, "val", err, sizeof err) == 0, "open val: %s", err);
    if (!tr || !va) return;
    CHECK(tr->count == 10 && va->count == 4, "split counts");
    CHECK(tr->n_classes == SN_SYNTH_CLASSES && tr->format == SN_DATA_SYNTH, "metadata");
    CHECK(!strcmp(tr->class_names[5], "disc") && !strcmp(tr->class_names[6], "square"), "class names");
    CHECK(tr->palette[255][0] == 255 && tr->palette[1][0] != tr->palette[2][0], "palette");
    sn_image a = {0}, al = {0}, b = {0}, bl = {0};
    CHECK(va->load(va, 2, &a, &al, err, sizeof err) == 0, "val load: %s", err);
    CHECK(sn_synth_generate(&c, SN_SYNTH_VAL_OFFSET + 2, &b, &bl, NULL, 0) == 0, "generate val 2");
    CHECK(same_image(&a, &b) && same_image(&al, &bl), "val sample 2 is index 2^40 + 2");
    CHECK(tr->load(tr, 2, &b, &bl, err, sizeof err) == 0 && !same_image(&a, &b), "train 2 differs from val 2");
    CHECK(b.h == 32 && b.w == 48, "configured size");
    CHECK(tr->load(tr, 10, &b, &bl, err, sizeof err) == SN_ERR_ARG && strstr(err, "10"), "out of range: %s", err);
    CHECK(!strcmp(tr->sample_name(tr, 7), "synth/train/000007"), "sample name %s", tr->sample_name(tr, 7));
    CHECK(sn_synth_dataset_open(&bad, &c, "test", err, sizeof err) == SN_ERR_ARG && strstr(err, "test") && !bad,
          "unknown split: %s", err);
    c.height = 4;
    CHECK(sn_synth_dataset_open(&bad, &c, "train", err, sizeof err) == SN_ERR_ARG && strstr(err, "4x48"),
          "bad size: %s", err);
    CHECK(sn_synth_generate(&c, 0, &b, &bl, err, sizeof err) == SN_ERR_ARG, "generate with bad size");
    sn_image_free(&a), sn_image_free(&al), sn_image_free(&b), sn_image_free(&bl);
    sn_dataset_close(tr);
    va->destroy(va);
}

int main(void)
{
    test_determinism();
    test_classes();
    test_dataset();
    return check_summary("synth");
}
