/* `synth`: the embedded synthetic segmentation data set (docs/synth.md).
 *
 * What a scene holds, and why (the set exists to compare architectures, so
 * it must reward both fine local features and large receptive fields):
 *   0 background  smooth two-colour linear gradient, no texture
 *   1 hstripes    near-horizontal stripes (+-20 deg), period 3.5-5 px
 *   2 dstripes    diagonal stripes (+-45 +-10 deg, both signs so that a
 *                 horizontal flip maps the class onto itself), period 6-8 px
 *   3 checker     checkerboard, 2.5-4 px cells, rotated up to +-15 deg
 *   4 dots        dot lattice, period 4.5-6 px, NOT near any checker region
 *   5 disc        2 px block "grain" noise in a DISC
 *   6 square      the same grain in a (rotated) SQUARE
 *   7 island      the dots texture INSIDE a large checker region
 * Classes 1-4 differ by texture alone (a 3x3..7x7 receptive field is enough).
 * 5/6 have identical texture statistics: only the outline tells them apart,
 * so a pixel in the middle of a 30 px square needs a receptive field that
 * reaches its corners. 4/7 have identical texture: only the surrounding
 * checker tells them apart (context heads such as ASPP image pooling, PPM,
 * non-local blocks should help). The generator enforces the context rule:
 * free dots never come within a margin of any checker object.
 * Scenes hold 8-14 planned objects; sizes range from 4 px (8 px for
 * disc/square, whose shape must be visible) to half the shorter side (half
 * of them log-uniform, half in the upper 60 %), drawn in painter's order
 * (larger first, jittered) so they occlude each other; checker containers
 * with their islands go last so that the defining context stays visible.
 * Object colours are random two-colour pairs with a minimum contrast
 * (colour carries no class information), and a per-image colour jitter
 * (gain, bias per channel) and Gaussian pixel noise follow.
 *
 * Determinism: a sample is a pure function of (seed, index): the RNG is
 * seeded from a hash of both, no state is shared. Identical bytes for one
 * build; different compilers may round sin/cos/FMA differently and move a
 * boundary pixel (the data set written by `segnas data synth` is the
 * reference for cross-build comparisons). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/data.h"

enum { C_BG, C_HSTRIPES, C_DSTRIPES, C_CHECKER, C_DOTS, C_DISC, C_SQUARE, C_ISLAND };
enum { SH_ELLIPSE, SH_RECT, SH_BLOB, SH_DISC };
enum { MAX_OBJ = 24 };

static const char *const class_names[SN_SYNTH_CLASSES] = {
    "background", "hstripes", "dstripes", "checker", "dots", "disc", "square", "island"};

static const uint8_t palette[256][3] = {
    {0, 0, 0},      {230, 25, 75},  {60, 180, 75},   {255, 225, 25}, {0, 130, 200},
    {245, 130, 48}, {145, 30, 180}, {70, 240, 240}, [255] = {255, 255, 255}};

const char *const *sn_synth_class_names(void) { return class_names; }
const uint8_t (*sn_synth_palette(void))[3] { return palette; }

void sn_synth_config_default(sn_synth_config *c)
{
    /* 64x64: the coarsest Auto-DeepLab level (/32) is still 2x2, a supernet
     * step on 2 cores stays affordable, and the PyTorch peer's timings in
     * DESIGN.md were taken at 64x64 crops, so numbers compare directly. */
    *c = (sn_synth_config){.seed = 0, .height = 64, .width = 64, .train_count = 2000, .val_count = 500,
                           .noise_std = 6.0f};
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float uni(sn_rng *r, float lo, float hi) { return lo + (hi - lo) * (float)sn_rng_uniform(r); }
/* Between lo and hi: half the objects log-uniform (many small ones), half
 * uniform over the upper 60 % (so that objects, not background, cover most
 * of the image). */
static float size_draw(sn_rng *r, float lo, float hi)
{
    if (sn_rng_below(r, 2)) return lo * expf(logf(hi / lo) * (float)sn_rng_uniform(r));
    return uni(r, fmaxf(lo, 0.4f * hi), hi);
}

/* ---- objects: an outline and a two-colour texture ------------------------ */
typedef struct obj {
    int cls, shape;
    float cx, cy, r, aspect; /* half-size r; the second axis is r * aspect */
    float rc, rs;            /* outline rotation (cos, sin) */
    float blob_a, blob_k, blob_ph;
    float period, tc, ts, ph_u, ph_v; /* texture scale, rotation, phase */
    uint64_t grain_seed;
    uint8_t col[2][3];
    int layer;   /* painter's order: layer (free 0, containers 1), */
    float key;   /* then larger key first (size, jittered), */
    int group;   /* then plan order, */
    int sub;     /* an island right after its container */
    int x0, y0, x1, y1; /* bounding box, inclusive-exclusive, unclipped */
} obj;

static void random_colours(sn_rng *r, uint8_t col[2][3])
{
    /* Colours are random so that only texture and geometry carry the class;
     * a minimum contrast keeps the texture visible under noise. */
    for (int tries = 0;; tries++) {
        for (int k = 0; k < 3; k++) col[0][k] = (uint8_t)sn_rng_below(r, 256), col[1][k] = (uint8_t)sn_rng_below(r, 256);
        int d = 0;
        for (int k = 0; k < 3; k++) d += abs((int)col[0][k] - (int)col[1][k]);
        if (d >= 150 || tries >= 16) {
            if (d < 150)
                for (int k = 0; k < 3; k++) col[1][k] = (uint8_t)(255 - col[0][k]);
            return;
        }
    }
}

static void set_bbox(obj *o)
{
    float ext = o->r * fmaxf(1.0f, o->aspect) * (1.0f + o->blob_a) * 1.4143f + 1.0f;
    o->x0 = (int)floorf(o->cx - ext), o->x1 = (int)ceilf(o->cx + ext) + 1;
    o->y0 = (int)floorf(o->cy - ext), o->y1 = (int)ceilf(o->cy + ext) + 1;
}

/* Texture parameters drawn per class (see the table at the top). */
static void random_texture(sn_rng *r, obj *o)
{
    float deg = 0;
    switch (o->cls) {
    case C_HSTRIPES: deg = 90.0f + uni(r, -20, 20), o->period = uni(r, 3.5f, 5.0f); break;
    case C_DSTRIPES:
        deg = (sn_rng_below(r, 2) ? 45.0f : -45.0f) + uni(r, -10, 10), o->period = uni(r, 6.0f, 8.0f);
        break;
    case C_CHECKER: deg = uni(r, -15, 15), o->period = uni(r, 2.5f, 4.0f); break;
    case C_DOTS:
    case C_ISLAND: deg = uni(r, -15, 15), o->period = uni(r, 4.5f, 6.0f); break;
    default: o->period = 2.0f; break; /* grain cell */
    }
    float a = deg * (float)M_PI / 180.0f;
    o->tc = cosf(a), o->ts = sinf(a);
    o->ph_u = uni(r, 0, o->period), o->ph_v = uni(r, 0, o->period);
    o->grain_seed = sn_rng_next(r);
    random_colours(r, o->col);
}

/* Outline: the shape classes get theirs; others any of ellipse, rectangle,
 * blob (disc- and square-like outlines included, so that shape alone never
 * identifies a texture class). */
static void random_shape(sn_rng *r, obj *o, float diameter)
{
    o->r = 0.5f * diameter;
    o->aspect = 1.0f, o->blob_a = 0.0f, o->blob_k = 0.0f, o->blob_ph = 0.0f;
    float a = uni(r, 0, (float)M_PI);
    o->rc = cosf(a), o->rs = sinf(a);
    if (o->cls == C_DISC) {
        o->shape = SH_DISC;
    } else if (o->cls == C_SQUARE) {
        o->shape = SH_RECT;
    } else {
        o->shape = (int)sn_rng_below(r, 3);
        o->aspect = uni(r, 0.5f, 1.0f);
        if (o->shape == SH_BLOB) {
            o->aspect = 1.0f;
            o->blob_a = uni(r, 0.12f, 0.3f), o->blob_k = (float)(3 + sn_rng_below(r, 3));
            o->blob_ph = uni(r, 0, 2 * (float)M_PI);
        }
    }
}

static bool inside(const obj *o, float x, float y)
{
    float dx = x - o->cx, dy = y - o->cy;
    if (o->shape == SH_DISC) return dx * dx + dy * dy <= o->r * o->r;
    float u = o->rc * dx + o->rs * dy, v = -o->rs * dx + o->rc * dy;
    float rv = o->r * o->aspect;
    switch (o->shape) {
    case SH_ELLIPSE: return (u * u) / (o->r * o->r) + (v * v) / (rv * rv) <= 1.0f;
    case SH_RECT: return fabsf(u) <= o->r && fabsf(v) <= rv;
    default: {
        float rho2 = dx * dx + dy * dy;
        float lim = o->r * (1.0f + o->blob_a * sinf(o->blob_k * atan2f(dy, dx) + o->blob_ph));
        return rho2 <= lim * lim;
    }
    }
}

/* Texture value in {0, 1} (which of the two colours) at pixel (x, y). */
static int texture(const obj *o, int x, int y)
{
    float u = o->tc * (float)x + o->ts * (float)y + o->ph_u;
    float v = -o->ts * (float)x + o->tc * (float)y + o->ph_v;
    float p = o->period;
    switch (o->cls) {
    case C_HSTRIPES:
    case C_DSTRIPES: return u - p * floorf(u / p) < 0.5f * p;
    case C_CHECKER: return ((int)floorf(u / p) + (int)floorf(v / p)) & 1;
    case C_DOTS:
    case C_ISLAND: {
        float fu = u - p * floorf(u / p) - 0.5f * p, fv = v - p * floorf(v / p) - 0.5f * p;
        return fu * fu + fv * fv <= 0.09f * p * p; /* dot radius 0.3 period */
    }
    default: {
        uint64_t cx = (uint64_t)(uint32_t)(x >> 1), cy = (uint64_t)(uint32_t)(y >> 1);
        return (int)(mix64(o->grain_seed ^ (cx << 32 | cy)) & 1);
    }
    }
}

static bool boxes_near(const obj *a, const obj *b, int margin)
{
    return a->x0 - margin < b->x1 && b->x0 - margin < a->x1 && a->y0 - margin < b->y1 && b->y0 - margin < a->y1;
}

/* The context rule: free dots keep a margin from every checker region
 * (containers included) of 3 px between boxes, so dots inside or next to
 * checker are always class 7. */
static bool conflicts(const obj *objs, int n, const obj *o)
{
    for (int i = 0; i < n; i++) {
        const obj *p = &objs[i];
        const obj *dots = o->cls == C_DOTS ? o : p->cls == C_DOTS ? p : NULL;
        const obj *chk = o->cls == C_CHECKER ? o : p->cls == C_CHECKER ? p : NULL;
        if (!dots || !chk || dots == chk) continue;
        if (boxes_near(dots, chk, 3)) return true;
    }
    return false;
}

static void place(sn_rng *r, obj *o, int h, int w)
{
    /* Centres may fall a little outside so that objects get cut by the
     * image border too. */
    float m = 0.25f * o->r;
    o->cx = uni(r, -m, (float)w + m), o->cy = uni(r, -m, (float)h + m);
    set_bbox(o);
}

/* Draws one object (free, or a container with its island) into objs. */
static int plan_object(sn_rng *r, obj *objs, int n, int h, int w)
{
    float smax = 0.5f * (float)(h < w ? h : w);
    /* Islands are planned twice as often: they are small (inside their
     * container) and would otherwise be the rarest class by far. */
    int cls = 1 + (int)sn_rng_below(r, SN_SYNTH_CLASSES);
    if (cls == SN_SYNTH_CLASSES) cls = C_ISLAND;
    float key;
    if (cls == C_ISLAND) {
        if (n + 2 > MAX_OBJ) return n;
        obj *c = &objs[n], *is = &objs[n + 1];
        *c = (obj){.cls = C_CHECKER};
        random_texture(r, c);
        random_shape(r, c, uni(r, 0.6f, 0.9f) * smax);
        if (c->shape == SH_ELLIPSE) c->aspect = fmaxf(c->aspect, 0.8f);
        if (c->shape == SH_RECT) c->aspect = fmaxf(c->aspect, 0.8f);
        *is = (obj){.cls = C_ISLAND};
        random_texture(r, is);
        random_shape(r, is, uni(r, 0.4f, 0.55f) * 2.0f * c->r * fminf(c->aspect, 1.0f - c->blob_a));
        for (int t = 0; t < 8; t++) {
            place(r, c, h, w);
            if (!conflicts(objs, n, c)) break;
            if (t == 7) return n;
        }
        float off = 0.1f * c->r;
        is->cx = c->cx + uni(r, -off, off), is->cy = c->cy + uni(r, -off, off);
        set_bbox(is);
        /* Containers go on top of the free objects so that an island stays
         * surrounded by its checker: the context that defines it must be
         * visible. */
        key = 2.0f * c->r * uni(r, 0.7f, 1.3f);
        c->layer = is->layer = 1, c->key = is->key = key, c->group = is->group = n, c->sub = 0, is->sub = 1;
        return n + 2;
    }
    if (n + 1 > MAX_OBJ) return n;
    obj *o = &objs[n];
    *o = (obj){.cls = cls};
    random_texture(r, o);
    float dmin = (cls == C_DISC || cls == C_SQUARE) ? 8.0f : 4.0f;
    random_shape(r, o, size_draw(r, fminf(dmin, smax), smax));
    for (int t = 0; t < 16; t++) {
        place(r, o, h, w);
        if (!conflicts(objs, n, o)) break;
        if (t == 15) return n;
    }
    o->layer = 0, o->key = 2.0f * o->r * uni(r, 0.7f, 1.3f), o->group = n, o->sub = 0;
    return n + 1;
}

static int by_paint_order(const void *pa, const void *pb)
{
    const obj *a = pa, *b = pb;
    if (a->layer != b->layer) return a->layer - b->layer;
    if (a->key != b->key) return a->key > b->key ? -1 : 1;
    if (a->group != b->group) return a->group - b->group;
    return a->sub - b->sub;
}

/* ---- rendering ------------------------------------------------------------ */
static void draw_background(sn_rng *r, float *rgb, uint8_t *lab, int h, int w)
{
    uint8_t col[2][3];
    random_colours(r, col);
    float a = uni(r, 0, 2 * (float)M_PI), c = cosf(a), s = sinf(a);
    float len = (float)(h > w ? h : w) * uni(r, 0.8f, 2.0f);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float t = 0.5f + (c * ((float)x - 0.5f * (float)w) + s * ((float)y - 0.5f * (float)h)) / len;
            t = fminf(fmaxf(t, 0.0f), 1.0f);
            for (int k = 0; k < 3; k++) rgb[((size_t)y * w + x) * 3 + k] = (1 - t) * col[0][k] + t * col[1][k];
            lab[(size_t)y * w + x] = C_BG;
        }
}

static void draw_object(const obj *o, float *rgb, uint8_t *lab, int h, int w)
{
    int x0 = o->x0 < 0 ? 0 : o->x0, x1 = o->x1 > w ? w : o->x1;
    int y0 = o->y0 < 0 ? 0 : o->y0, y1 = o->y1 > h ? h : o->y1;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            if (!inside(o, (float)x + 0.5f, (float)y + 0.5f)) continue;
            const uint8_t *c = o->col[texture(o, x, y)];
            float *p = &rgb[((size_t)y * w + x) * 3];
            p[0] = c[0], p[1] = c[1], p[2] = c[2];
            lab[(size_t)y * w + x] = (uint8_t)o->cls;
        }
}

/* Colour jitter (gain, bias per channel) and approximately Gaussian noise:
 * the sum of four 16-bit uniforms from one draw (Irwin-Hall, variance 1/3
 * per unit) is cheap enough for megapixel scenes. */
static void finish_pixels(sn_rng *r, const float *rgb, uint8_t *out, size_t n, float noise_std)
{
    float gain[3], bias[3];
    for (int k = 0; k < 3; k++) gain[k] = uni(r, 0.8f, 1.2f), bias[k] = uni(r, -20, 20);
    float ns = noise_std * 1.7320508f / 65536.0f;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++) {
            uint64_t z = sn_rng_next(r);
            float u = (float)((z & 0xffff) + ((z >> 16) & 0xffff) + ((z >> 32) & 0xffff) + (z >> 48)) - 131070.0f;
            float v = gain[k] * rgb[i * 3 + k] + bias[k] + ns * u;
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            out[i * 3 + k] = (uint8_t)lrintf(v);
        }
    }
}

static int check_config(const sn_synth_config *c, char *err, size_t errlen)
{
    char msg[160];
    if (c->height < 8 || c->width < 8 || c->height > 16384 || c->width > 16384) {
        snprintf(msg, sizeof msg, "synth: size %dx%d out of range (8..16384 each)", c->height, c->width);
        set_err(err, errlen, msg);
        return SN_ERR_ARG;
    }
    if (!(c->noise_std >= 0.0f && c->noise_std <= 100.0f)) {
        snprintf(msg, sizeof msg, "synth: noise_std %g out of range (0..100)", (double)c->noise_std);
        set_err(err, errlen, msg);
        return SN_ERR_ARG;
    }
    return 0;
}

int sn_synth_generate(const sn_synth_config *c, int64_t index, sn_image *img, sn_image *label, char *err,
                      size_t errlen)
{
    int rc = check_config(c, err, errlen);
    if (rc) return rc;
    if (index < 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "synth: sample index %lld is negative", (long long)index);
        set_err(err, errlen, msg);
        return SN_ERR_ARG;
    }
    int h = c->height, w = c->width;
    float *rgb = malloc((size_t)h * w * 3 * sizeof *rgb);
    if (!rgb || sn_image_ensure(img, w, h, 3) || sn_image_ensure(label, w, h, 1)) {
        free(rgb);
        set_err(err, errlen, "synth: out of memory for a sample");
        return SN_ERR_NOMEM;
    }
    sn_rng r;
    sn_rng_seed(&r, mix64(mix64(c->seed + 0x9e3779b97f4a7c15ULL) ^ (uint64_t)index));
    draw_background(&r, rgb, label->data, h, w);
    obj objs[MAX_OBJ];
    int n = 0, want = 8 + (int)sn_rng_below(&r, 7);
    for (int k = 0; k < want; k++) n = plan_object(&r, objs, n, h, w);
    qsort(objs, (size_t)n, sizeof objs[0], by_paint_order);
    for (int i = 0; i < n; i++) draw_object(&objs[i], rgb, label->data, h, w);
    finish_pixels(&r, rgb, img->data, (size_t)h * w, c->noise_std);
    free(rgb);
    return 0;
}

/* ---- the data set ---------------------------------------------------------- */
typedef struct synth_ds {
    sn_synth_config cfg;
    int64_t offset;
    const char *split;
    pthread_mutex_t lock; /* guards the lazily built names */
    char *names;          /* count * NAME_LEN */
} synth_ds;

enum { NAME_LEN = 32 };

static int synth_load(const sn_dataset *ds, int64_t i, sn_image *img, sn_image *label, char *err, size_t errlen)
{
    const synth_ds *s = ds->impl;
    if (i < 0 || i >= ds->count) {
        char msg[96];
        snprintf(msg, sizeof msg, "synth %s: sample %lld out of range 0..%lld", s->split, (long long)i,
                 (long long)ds->count - 1);
        set_err(err, errlen, msg);
        return SN_ERR_ARG;
    }
    return sn_synth_generate(&s->cfg, s->offset + i, img, label, err, errlen);
}

static const char *synth_sample_name(const sn_dataset *ds, int64_t i)
{
    synth_ds *s = ds->impl;
    if (i < 0 || i >= ds->count) return "synth/out-of-range";
    pthread_mutex_lock(&s->lock);
    if (!s->names) {
        s->names = malloc((size_t)ds->count * NAME_LEN);
        for (int64_t k = 0; s->names && k < ds->count; k++)
            snprintf(s->names + k * NAME_LEN, NAME_LEN, "synth/%s/%06lld", s->split, (long long)k);
    }
    pthread_mutex_unlock(&s->lock);
    return s->names ? s->names + i * NAME_LEN : "synth/?";
}

static void synth_destroy(sn_dataset *ds)
{
    if (!ds) return;
    synth_ds *s = ds->impl;
    if (s) {
        pthread_mutex_destroy(&s->lock);
        free(s->names);
        free(s);
    }
    free(ds);
}

int sn_synth_dataset_open(sn_dataset **out, const sn_synth_config *c, const char *split, char *err,
                          size_t errlen)
{
    *out = NULL;
    int rc = check_config(c, err, errlen);
    if (rc) return rc;
    bool train = split && !strcmp(split, "train"), val = split && !strcmp(split, "val");
    int64_t count = train ? c->train_count : c->val_count;
    char msg[160];
    if (!train && !val) {
        snprintf(msg, sizeof msg, "synth: unknown split '%s' (train or val)", split ? split : "(null)");
        set_err(err, errlen, msg);
        return SN_ERR_ARG;
    }
    if (count < 1 || count > SN_SYNTH_VAL_OFFSET) {
        snprintf(msg, sizeof msg, "synth: %s count %lld out of range (1..2^40)", split, (long long)count);
        set_err(err, errlen, msg);
        return SN_ERR_ARG;
    }
    sn_dataset *ds = calloc(1, sizeof *ds);
    synth_ds *s = calloc(1, sizeof *s);
    if (!ds || !s) {
        free(ds), free(s);
        set_err(err, errlen, "synth: out of memory");
        return SN_ERR_NOMEM;
    }
    s->cfg = *c;
    s->offset = train ? 0 : SN_SYNTH_VAL_OFFSET;
    s->split = train ? "train" : "val";
    pthread_mutex_init(&s->lock, NULL);
    ds->format = SN_DATA_SYNTH;
    ds->n_classes = SN_SYNTH_CLASSES;
    ds->class_names = class_names;
    ds->palette = palette;
    ds->count = count;
    ds->load = synth_load;
    ds->sample_name = synth_sample_name;
    ds->destroy = synth_destroy;
    ds->impl = s;
    *out = ds;
    return 0;
}
