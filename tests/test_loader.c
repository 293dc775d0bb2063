/* The threaded loader and the train splits: batches identical for 1 and 3
 * threads, each index once per epoch, placement against a direct
 * load + augment, errors and skip_bad, early destroy, config errors; the
 * trainA/trainB halves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "segnas/data.h"
#include "support/check.h"

enum { CROP = 24, N_TRAIN = 23 };

static sn_dataset *open_synth(void)
{
    sn_synth_config c;
    sn_synth_config_default(&c);
    c.seed = 3, c.height = 32, c.width = 40, c.train_count = N_TRAIN;
    sn_dataset *ds = NULL;
    char err[200];
    if (sn_synth_dataset_open(&ds, &c, "train", err, sizeof err)) CHECK(false, "open synth: %s", err);
    return ds;
}

static sn_loader_config config(int threads, bool shuffle, bool drop_last)
{
    sn_loader_config c;
    sn_loader_config_default(&c);
    c.batch = 4, c.n_threads = threads, c.seed = 7, c.shuffle = shuffle, c.drop_last = drop_last;
    c.aug.crop_h = c.aug.crop_w = CROP;
    return c;
}

static int64_t *range(int64_t n)
{
    int64_t *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = i;
    return v;
}

/* 12 batches (over two epochs: 5 per epoch with drop_last) for 1 and 3
 * threads must be byte-identical. */
static void test_thread_independence(sn_dataset *ds, int64_t *idx)
{
    enum { NB = 12 };
    size_t img_n = 4 * CROP * CROP * 3, lab_n = 4 * CROP * CROP;
    float *imgs[2];
    uint8_t *labs[2];
    int64_t ids[2][NB * 4];
    for (int r = 0; r < 2; r++) {
        imgs[r] = malloc(NB * img_n * sizeof(float)), labs[r] = malloc(NB * lab_n);
        sn_loader_config c = config(r == 0 ? 1 : 3, true, true);
        sn_loader *l = NULL;
        char err[320] = "";
        CHECK(sn_loader_create(&l, ds, idx, N_TRAIN, &c, err, sizeof err) == 0, "create: %s", err);
        if (!l) return;
        CHECK(sn_loader_batches_per_epoch(l) == 5, "23 samples, batch 4, drop_last: 5 per epoch");
        for (int g = 0; g < NB; g++) {
            sn_batch b;
            int rc = sn_loader_next(l, &b, err, sizeof err);
            CHECK(rc == 0 && b.n == 4 && b.h == CROP && b.w == CROP, "batch %d: rc %d n %d %s", g, rc, b.n, err);
            CHECK(b.global_step == g && b.epoch == g / 5 && b.step == g % 5, "batch %d numbering", g);
            memcpy(imgs[r] + g * img_n, b.images, img_n * sizeof(float));
            memcpy(labs[r] + g * lab_n, b.labels, lab_n);
            memcpy(ids[r] + g * 4, b.indices, 4 * sizeof(int64_t));
        }
        sn_loader_destroy(l);
    }
    CHECK(!memcmp(ids[0], ids[1], sizeof ids[0]), "same indices with 1 and 3 threads");
    CHECK(!memcmp(imgs[0], imgs[1], NB * img_n * sizeof(float)), "same images with 1 and 3 threads");
    CHECK(!memcmp(labs[0], labs[1], NB * lab_n), "same labels with 1 and 3 threads");
    /* The first sample equals a direct load + augment of its index. */
    sn_image img = {0}, lab = {0};
    float *want = malloc(CROP * CROP * 3 * sizeof *want);
    uint8_t want_l[CROP * CROP];
    sn_loader_config c = config(1, true, true);
    int64_t j = 5; /* batch 1, sample 1 */
    ds->load(ds, ids[0][j], &img, &lab, NULL, 0);
    sn_augment_sample(&c.aug, c.seed, 0, ids[0][j], &img, &lab, want, want_l, NULL, 0);
    CHECK(!memcmp(want, imgs[0] + j * CROP * CROP * 3, CROP * CROP * 3 * sizeof(float)) &&
              !memcmp(want_l, labs[0] + j * CROP * CROP, CROP * CROP),
          "a batch sample is load + augment(seed, epoch, index)");
    int differ = 0;
    for (int i = 0; i < 4; i++) differ += ids[0][i] != ids[0][20 + i];
    CHECK(differ > 0, "epoch 1 is shuffled differently from epoch 0");
    sn_image_free(&img), sn_image_free(&lab);
    free(want);
    for (int r = 0; r < 2; r++) free(imgs[r]), free(labs[r]);
}

/* shuffle, drop_last false, two epochs: each index exactly once per epoch,
 * a short last batch, then the end (n == 0). */
static void test_epochs(sn_dataset *ds, int64_t *idx)
{
    sn_loader_config c = config(2, true, false);
    c.max_epochs = 2;
    sn_loader *l = NULL;
    char err[320] = "";
    CHECK(sn_loader_create(&l, ds, idx, N_TRAIN, &c, err, sizeof err) == 0, "create: %s", err);
    if (!l) return;
    CHECK(sn_loader_batches_per_epoch(l) == 6, "6 batches per epoch without drop_last");
    for (int e = 0; e < 2; e++) {
        int seen[N_TRAIN] = {0}, total = 0, last_n = 0;
        for (int s = 0; s < 6; s++) {
            sn_batch b;
            CHECK(sn_loader_next(l, &b, err, sizeof err) == 0 && b.epoch == e, "epoch %d batch %d: %s", e, s, err);
            for (int i = 0; i < b.n; i++) seen[b.indices[i]]++;
            total += b.n, last_n = b.n;
        }
        int once = 0;
        for (int i = 0; i < N_TRAIN; i++) once += seen[i] == 1;
        CHECK(once == N_TRAIN && total == N_TRAIN, "epoch %d: every index once (%d of %d, total %d)", e, once,
              N_TRAIN, total);
        CHECK(last_n == 3, "short last batch of 3 (got %d)", last_n);
    }
    sn_batch b;
    CHECK(sn_loader_next(l, &b, err, sizeof err) == 0 && b.n == 0, "end after max_epochs");
    CHECK(sn_loader_next(l, &b, err, sizeof err) == 0 && b.n == 0, "still the end");
    sn_loader_destroy(l);
}

/* A data set whose sample 5 fails, wrapping synth. */
static const sn_dataset *inner;
static int broken_load(const sn_dataset *ds, int64_t i, sn_image *img, sn_image *label, char *err, size_t errlen)
{
    (void)ds;
    if (i == 5) {
        snprintf(err, errlen, "broken file");
        return SN_ERR_FORMAT;
    }
    return inner->load(inner, i, img, label, err, errlen);
}

static void test_bad_samples(sn_dataset *ds, int64_t *idx)
{
    sn_dataset broken = *ds;
    broken.load = broken_load;
    inner = ds;
    char err[320] = "";
    sn_loader_config c = config(2, false, false);
    c.max_epochs = 1;
    sn_loader *l = NULL;
    CHECK(sn_loader_create(&l, &broken, idx, N_TRAIN, &c, err, sizeof err) == 0, "create: %s", err);
    if (!l) return;
    sn_batch b;
    CHECK(sn_loader_next(l, &b, err, sizeof err) == 0 && b.n == 4, "batch 0 fine");
    int rc = sn_loader_next(l, &b, err, sizeof err);
    CHECK(rc == SN_ERR_FORMAT && strstr(err, "broken file") && strstr(err, "sample 5"), "error propagates: %d %s",
          rc, err);
    CHECK(sn_loader_next(l, &b, err, sizeof err) == 0 && b.n == 4 && b.indices[0] == 8, "continues after it");
    sn_loader_destroy(l);

    c.skip_bad = true;
    CHECK(sn_loader_create(&l, &broken, idx, N_TRAIN, &c, err, sizeof err) == 0, "create skip_bad: %s", err);
    if (!l) return;
    int total = 0, has5 = 0;
    for (;;) {
        if (sn_loader_next(l, &b, err, sizeof err) || b.n == 0) break;
        total += b.n;
        for (int i = 0; i < b.n; i++) has5 += b.indices[i] == 5;
        if (b.step == 1)
            CHECK(b.n == 3 && b.indices[0] == 4 && b.indices[1] == 6 && b.indices[2] == 7, "compacted batch");
    }
    CHECK(total == N_TRAIN - 1 && !has5 && sn_loader_skipped(l) == 1, "skip_bad: %d samples, skipped %lld", total,
          (long long)sn_loader_skipped(l));
    sn_loader_destroy(l);
}

static void test_early_destroy_and_errors(sn_dataset *ds, int64_t *idx)
{
    char err[320] = "";
    for (int k = 0; k < 3; k++) {
        sn_loader_config c = config(3, true, true);
        c.prefetch = 2 + k;
        sn_loader *l = NULL;
        sn_loader_create(&l, ds, idx, N_TRAIN, &c, err, sizeof err);
        sn_batch b;
        for (int i = 0; i < k; i++) sn_loader_next(l, &b, err, sizeof err);
        sn_loader_destroy(l); /* a hang here is caught by alarm() */
    }
    CHECK(true, "early destroy returns");
    sn_loader *l = NULL;
    sn_loader_config c = config(1, true, true);
    c.batch = 0;
    CHECK(sn_loader_create(&l, ds, idx, N_TRAIN, &c, err, sizeof err) == SN_ERR_ARG && !l && strstr(err, "batch 0"),
          "batch 0 rejected: %s", err);
    c = config(1, true, true);
    c.batch = 2;
    int64_t bad[2] = {1, N_TRAIN};
    CHECK(sn_loader_create(&l, ds, bad, 2, &c, err, sizeof err) == SN_ERR_ARG && strstr(err, "23"),
          "index outside rejected: %s", err);
    c.batch = 4;
    CHECK(sn_loader_create(&l, ds, idx, 3, &c, err, sizeof err) == SN_ERR_ARG, "3 samples, batch 4, drop_last: %s",
          err);
}

static void test_split(void)
{
    int64_t list[11], a[6], b[5], a2[6], b2[5];
    for (int i = 0; i < 11; i++) list[i] = 100 + 3 * i;
    sn_split_halves(list, 11, 1, a, b);
    int count[11] = {0}, sorted = 1;
    for (int i = 0; i < 6; i++) count[(a[i] - 100) / 3]++, sorted &= i == 0 || a[i - 1] < a[i];
    for (int i = 0; i < 5; i++) count[(b[i] - 100) / 3]++, sorted &= i == 0 || b[i - 1] < b[i];
    int once = 0;
    for (int i = 0; i < 11; i++) once += count[i] == 1;
    CHECK(once == 11, "halves are disjoint and cover the list");
    CHECK(sorted, "halves are sorted");
    sn_split_halves(list, 11, 1, a2, b2);
    CHECK(!memcmp(a, a2, sizeof a) && !memcmp(b, b2, sizeof b), "same seed, same split");
    int differ = 0;
    for (uint64_t s = 2; s < 6; s++) {
        sn_split_halves(list, 11, s, a2, b2);
        differ += memcmp(a, a2, sizeof a) != 0;
    }
    CHECK(differ >= 3, "other seeds split differently (%d of 4)", differ);
}

int main(void)
{
    alarm(300); /* a hung join fails the test instead of stalling CI */
    sn_dataset *ds = open_synth();
    if (!ds) return check_summary("loader");
    int64_t *idx = range(N_TRAIN);
    test_thread_independence(ds, idx);
    test_epochs(ds, idx);
    test_bad_samples(ds, idx);
    test_early_destroy_and_errors(ds, idx);
    test_split();
    free(idx);
    ds->destroy(ds);
    return check_summary("loader");
}
