/* The threaded loader: pthreads workers fill a ring of `prefetch` batches
 * while the training step runs on its own OpenMP pool.
 *
 * The stream is a sequence of batches g = 0, 1, 2, ...; batch g belongs to
 * epoch g / per_epoch and holds positions [b*B, b*B + n) of that epoch's
 * order (the index list, shuffled from (seed, epoch)). Work is handed out
 * one SAMPLE at a time (so two threads share a batch of two), and every
 * sample lands at a fixed place in its slot with augmentation drawn from
 * (seed, epoch, index): the bytes of a batch never depend on which thread
 * made which sample, nor when.
 *
 * Ring protocol (all under `mu`): slot g % K may be written once
 * g < released + K; the consumer holds the batch it was last given until its
 * next call, which releases it. Workers wait on `work_cv`, the consumer on
 * `ready_cv`; `stop` ends everything, and a worker only ever waits after
 * checking it, so destroy never hangs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/data.h"

enum { MSG_LEN = 320 };

typedef struct slot {
    int64_t g;        /* batch number it holds or is being filled with; -1 none */
    int n, done;      /* samples planned, samples finished */
    int status;       /* first failure (0 = none) */
    char msg[MSG_LEN];
    bool *ok;         /* per sample: loaded and augmented */
    float *images;    /* B * h * w * 3 */
    uint8_t *labels;  /* B * h * w */
    int64_t *indices; /* B */
} slot;

struct sn_loader {
    const sn_dataset *ds;
    sn_loader_config cfg;
    int64_t *list, n_list;
    int64_t per_epoch, end_g;
    int K;
    slot *slots;
    int64_t *perm, perm_epoch; /* the order of the epoch being handed out */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    int64_t released;       /* batches 0..released-1 are free again */
    int64_t next_g, next_j; /* next sample job */
    int64_t consumer_g;     /* next batch to return */
    bool holding, stop;
    int64_t skipped;
    pthread_t *threads;
    int n_threads;
};

void sn_loader_config_default(sn_loader_config *c)
{
    *c = (sn_loader_config){.batch = 2, .n_threads = 1, .prefetch = 4, .seed = 0, .shuffle = true,
                            .drop_last = true, .skip_bad = false, .max_epochs = 0};
    sn_augment_config_default(&c->aug);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The order of epoch e: the list itself, or a Fisher-Yates shuffle seeded
 * from (seed, e) alone (recomputed, never advanced from a previous epoch). */
static void epoch_order(sn_loader *l, int64_t e)
{
    if (l->perm_epoch == e) return;
    memcpy(l->perm, l->list, (size_t)l->n_list * sizeof *l->perm);
    if (l->cfg.shuffle) {
        sn_rng r;
        sn_rng_seed(&r, mix64(mix64(l->cfg.seed ^ 0x10ade4ULL) ^ (uint64_t)e));
        for (int64_t i = l->n_list - 1; i > 0; i--) {
            int64_t j = (int64_t)sn_rng_below(&r, (uint64_t)i + 1), t = l->perm[i];
            l->perm[i] = l->perm[j], l->perm[j] = t;
        }
    }
    l->perm_epoch = e;
}

static int batch_size(const sn_loader *l, int64_t g)
{
    int64_t first = (g % l->per_epoch) * l->cfg.batch, left = l->n_list - first;
    return (int)(left < l->cfg.batch ? left : l->cfg.batch);
}

static void start_slot(sn_loader *l, slot *s, int64_t g)
{
    s->g = g, s->n = batch_size(l, g), s->done = 0, s->status = 0, s->msg[0] = 0;
    epoch_order(l, g / l->per_epoch);
    int64_t first = (g % l->per_epoch) * l->cfg.batch;
    for (int j = 0; j < s->n; j++) s->indices[j] = l->perm[first + j], s->ok[j] = false;
}

/* Loads and augments one sample into its place; runs without the lock.
 * img/lab belong to the worker and are reused from sample to sample (a
 * data set's load accepts images that already hold memory). */
static int make_sample(sn_loader *l, int64_t epoch, int64_t idx, sn_image *img, sn_image *lab, float *out,
                       uint8_t *out_label, char *msg)
{
    char why[MSG_LEN - 64];
    why[0] = 0;
    int rc = l->ds->load(l->ds, idx, img, lab, why, sizeof why);
    if (!rc)
        rc = sn_augment_sample(&l->cfg.aug, l->cfg.seed, epoch, idx, img, lab, out, out_label, why, sizeof why);
    if (rc) {
        const char *name = l->ds->sample_name ? l->ds->sample_name(l->ds, idx) : NULL;
        snprintf(msg, MSG_LEN, "sample %lld (%s): %s", (long long)idx, name ? name : "?", why);
        /* A failed load may leave the images half made: start afresh. */
        sn_image_free(img), sn_image_free(lab);
        *img = (sn_image){0}, *lab = (sn_image){0};
    }
    return rc;
}

static void *worker(void *arg)
{
    sn_loader *l = arg;
    size_t hw = (size_t)l->cfg.aug.crop_h * l->cfg.aug.crop_w;
    sn_image img = {0}, lab = {0};
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (l->next_g >= l->end_g || l->next_g >= l->released + l->K) {
            pthread_cond_wait(&l->work_cv, &l->mu);
            continue;
        }
        slot *s = &l->slots[l->next_g % l->K];
        if (l->next_j == 0) start_slot(l, s, l->next_g);
        int j = (int)l->next_j;
        int64_t epoch = l->next_g / l->per_epoch, idx = s->indices[j];
        if (++l->next_j == s->n) l->next_g++, l->next_j = 0;
        pthread_mutex_unlock(&l->mu);

        char msg[MSG_LEN];
        int rc = make_sample(l, epoch, idx, &img, &lab, s->images + j * hw * 3, s->labels + j * hw, msg);

        pthread_mutex_lock(&l->mu);
        s->ok[j] = rc == 0;
        if (rc && !s->status) s->status = rc, memcpy(s->msg, msg, MSG_LEN);
        if (++s->done == s->n) pthread_cond_broadcast(&l->ready_cv);
    }
    pthread_mutex_unlock(&l->mu);
    sn_image_free(&img);
    sn_image_free(&lab);
    return NULL;
}

static int fail(char *err, size_t errlen, int status, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "loader: %s", msg);
    return status;
}

static void free_loader(sn_loader *l)
{
    if (l->slots)
        for (int k = 0; k < l->K; k++) {
            free(l->slots[k].ok), free(l->slots[k].images);
            free(l->slots[k].labels), free(l->slots[k].indices);
        }
    free(l->slots), free(l->list), free(l->perm), free(l->threads);
    free(l);
}

static int check_config(const sn_dataset *ds, const int64_t *indices, int64_t n, const sn_loader_config *c,
                        char *err, size_t errlen)
{
    char msg[200];
    int rc = sn_augment_check(&c->aug, msg, sizeof msg);
    if (rc) return fail(err, errlen, rc, msg);
    if (!ds || !ds->load) return fail(err, errlen, SN_ERR_ARG, "no data set");
    if (c->batch < 1 || c->batch > 4096 || c->n_threads < 1 || c->n_threads > 256 || c->prefetch < 1 ||
        c->prefetch > 64 || c->max_epochs < 0) {
        snprintf(msg, sizeof msg, "batch %d, threads %d, prefetch %d, max_epochs %lld: out of range", c->batch,
                 c->n_threads, c->prefetch, (long long)c->max_epochs);
        return fail(err, errlen, SN_ERR_ARG, msg);
    }
    if (n < 1 || (c->drop_last && n < c->batch)) {
        snprintf(msg, sizeof msg, "%lld samples make no %sbatch of %d", (long long)n, c->drop_last ? "full " : "",
                 c->batch);
        return fail(err, errlen, SN_ERR_ARG, msg);
    }
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= ds->count) {
            snprintf(msg, sizeof msg, "index %lld at position %lld is outside the data set (0..%lld)",
                     (long long)indices[i], (long long)i, (long long)ds->count - 1);
            return fail(err, errlen, SN_ERR_ARG, msg);
        }
    return 0;
}

static int alloc_slots(sn_loader *l)
{
    size_t B = (size_t)l->cfg.batch, hw = (size_t)l->cfg.aug.crop_h * l->cfg.aug.crop_w;
    l->slots = calloc((size_t)l->K, sizeof *l->slots);
    if (!l->slots) return SN_ERR_NOMEM;
    for (int k = 0; k < l->K; k++) {
        slot *s = &l->slots[k];
        s->g = -1;
        s->ok = calloc(B, sizeof *s->ok);
        s->indices = calloc(B, sizeof *s->indices);
        /* calloc touches nothing yet; memset pre-faults the pages now, not
         * inside a training step (page faults cost ~10 us each here). */
        s->images = malloc(B * hw * 3 * sizeof *s->images);
        s->labels = malloc(B * hw);
        if (!s->ok || !s->indices || !s->images || !s->labels) return SN_ERR_NOMEM;
        memset(s->images, 0, B * hw * 3 * sizeof *s->images);
        memset(s->labels, 0, B * hw);
    }
    return 0;
}

int sn_loader_create(sn_loader **out, const sn_dataset *ds, const int64_t *indices, int64_t n_indices,
                     const sn_loader_config *c, char *err, size_t errlen)
{
    *out = NULL;
    int rc = check_config(ds, indices, n_indices, c, err, errlen);
    if (rc) return rc;
    sn_loader *l = calloc(1, sizeof *l);
    if (!l) return fail(err, errlen, SN_ERR_NOMEM, "out of memory");
    l->ds = ds, l->cfg = *c, l->n_list = n_indices, l->K = c->prefetch, l->perm_epoch = -1;
    l->per_epoch = c->drop_last ? n_indices / c->batch : (n_indices + c->batch - 1) / c->batch;
    l->end_g = c->max_epochs > 0 ? c->max_epochs * l->per_epoch : INT64_MAX;
    l->list = malloc((size_t)n_indices * sizeof *l->list);
    l->perm = malloc((size_t)n_indices * sizeof *l->perm);
    l->threads = calloc((size_t)c->n_threads, sizeof *l->threads);
    if (!l->list || !l->perm || !l->threads || alloc_slots(l)) {
        free_loader(l);
        return fail(err, errlen, SN_ERR_NOMEM, "out of memory for the batch ring");
    }
    memcpy(l->list, indices, (size_t)n_indices * sizeof *l->list);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->ready_cv, NULL);
    for (int t = 0; t < c->n_threads; t++) {
        if (pthread_create(&l->threads[t], NULL, worker, l)) {
            l->n_threads = t;
            sn_loader_destroy(l);
            return fail(err, errlen, SN_ERR_BACKEND, "could not start a worker thread");
        }
    }
    l->n_threads = c->n_threads;
    *out = l;
    return 0;
}

/* skip_bad: moves the good samples of a finished slot to its front. */
static int compact(const sn_loader *l, slot *s)
{
    size_t hw = (size_t)l->cfg.aug.crop_h * l->cfg.aug.crop_w;
    int n = 0;
    for (int j = 0; j < s->n; j++) {
        if (!s->ok[j]) continue;
        if (n != j) {
            memmove(s->images + n * hw * 3, s->images + j * hw * 3, hw * 3 * sizeof *s->images);
            memmove(s->labels + n * hw, s->labels + j * hw, hw);
            s->indices[n] = s->indices[j];
        }
        n++;
    }
    return n;
}

static void release_held(sn_loader *l)
{
    if (!l->holding) return;
    l->holding = false;
    l->released++;
    pthread_cond_broadcast(&l->work_cv);
}

int sn_loader_next(sn_loader *l, sn_batch *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_lock(&l->mu);
    release_held(l);
    for (int64_t empty = 0;;) {
        if (l->consumer_g >= l->end_g) break; /* the end: b->n == 0 */
        int64_t g = l->consumer_g;
        slot *s = &l->slots[g % l->K];
        while (!(s->g == g && s->done == s->n)) pthread_cond_wait(&l->ready_cv, &l->mu);
        l->consumer_g++;
        l->holding = true;
        if (s->status && !l->cfg.skip_bad) {
            int rc = s->status;
            if (err && errlen) snprintf(err, errlen, "%s", s->msg);
            pthread_mutex_unlock(&l->mu);
            return rc;
        }
        int n = l->cfg.skip_bad ? compact(l, s) : s->n;
        l->skipped += s->n - n;
        if (n == 0) {
            release_held(l);
            if (++empty > l->per_epoch) {
                if (err && errlen) snprintf(err, errlen, "loader: a whole epoch of samples failed; last: %s", s->msg);
                pthread_mutex_unlock(&l->mu);
                return s->status ? s->status : SN_ERR_IO;
            }
            continue;
        }
        *b = (sn_batch){.n = n, .h = l->cfg.aug.crop_h, .w = l->cfg.aug.crop_w, .images = s->images,
                        .labels = s->labels, .indices = s->indices, .epoch = g / l->per_epoch,
                        .step = g % l->per_epoch, .global_step = g};
        break;
    }
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int64_t sn_loader_batches_per_epoch(const sn_loader *l) { return l->per_epoch; }

int64_t sn_loader_skipped(const sn_loader *l)
{
    pthread_mutex_lock((pthread_mutex_t *)&l->mu);
    int64_t n = l->skipped;
    pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
    return n;
}

void sn_loader_destroy(sn_loader *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->work_cv);
    pthread_cond_broadcast(&l->ready_cv);
    pthread_mutex_unlock(&l->mu);
    for (int t = 0; t < l->n_threads; t++) pthread_join(l->threads[t], NULL);
    pthread_cond_destroy(&l->work_cv);
    pthread_cond_destroy(&l->ready_cv);
    pthread_mutex_destroy(&l->mu);
    free_loader(l);
}
