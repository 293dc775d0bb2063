/* The plain layout for a user's own data (and what `segnas data synth`
 * writes):
 *   <root>/images/<stem>.{png,jpg,jpeg}   <root>/masks/<stem>.png
 *   <root>/classes.txt                    one class name per line, class i on line i+1
 *   <root>/<split>.txt                    optional: the stems of the split, one a line
 * Without <split>.txt the split is every image. Colours are the VOC colour
 * map, so masks written as palette PNGs by other tools still look familiar. */
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

typedef struct folder_meta {
    sn_name_list classes;
    uint8_t palette[256][3];
} folder_meta;

static void meta_free(void *p)
{
    folder_meta *m = p;
    if (!m) return;
    sn_name_list_free(&m->classes);
    free(m);
}

static const char *const image_suffixes[] = {".png", ".jpg", ".jpeg", NULL};

static int read_names(const char *path, bool classes, sn_name_list *out, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc = sn_read_text_file(path, &buf, &len, err, errlen);
    if (rc) return rc;
    rc = classes ? sn_parse_class_names(buf, len, path, out, err, errlen) : sn_parse_id_list(buf, len, path, out, err, errlen);
    free(buf);
    return rc;
}

static size_t stem_len(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? (size_t)(dot - name) : strlen(name);
}

/* Image files indexed by stem ("a" for "a.jpg"), sorted by stem. */
typedef struct stem_entry {
    const char *file;
    size_t n; /* stem length */
} stem_entry;

static int cmp_stem(const void *pa, const void *pb)
{
    const stem_entry *a = pa, *b = pb;
    int c = memcmp(a->file, b->file, a->n < b->n ? a->n : b->n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* Two images with the same stem ("a.jpg", "a.png") would share masks/a.png. */
static int index_stems(const char *dir, const sn_name_list *files, stem_entry **out, char *err, size_t errlen)
{
    stem_entry *e = malloc((size_t)(files->n ? files->n : 1) * sizeof *e);
    if (!e) return sn_errf(err, errlen, SN_ERR_NOMEM, "folder: out of memory");
    for (int64_t i = 0; i < files->n; i++) e[i] = (stem_entry){files->items[i], stem_len(files->items[i])};
    qsort(e, (size_t)files->n, sizeof *e, cmp_stem);
    for (int64_t i = 0; i + 1 < files->n; i++)
        if (!cmp_stem(&e[i], &e[i + 1])) {
            int rc = sn_errf(err, errlen, SN_ERR_FORMAT, "folder: %s/%s and %s/%s have the same stem", dir,
                                  e[i].file, dir, e[i + 1].file);
            free(e);
            return rc;
        }
    *out = e;
    return SN_OK;
}

static const char *find_stem(const stem_entry *index, int64_t n, const char *stem)
{
    stem_entry key = {stem, strlen(stem)};
    const stem_entry *hit = bsearch(&key, index, (size_t)n, sizeof *index, cmp_stem);
    return hit ? hit->file : NULL;
}

/* The split's file names: the stems listed in <split>.txt, or every image. */
static int split_files(const char *root, const char *split, const sn_name_list *files, const stem_entry *index,
                       sn_name_list *chosen, char *err, size_t errlen)
{
    char *list = sn_pathf("%s/%s.txt", root, split);
    if (!list) return sn_errf(err, errlen, SN_ERR_NOMEM, "folder: out of memory");
    int rc = SN_OK;
    if (!sn_is_file(list)) {
        for (int64_t i = 0; !rc && i < files->n; i++)
            if (sn_name_list_push(chosen, files->items[i], -1)) rc = sn_errf(err, errlen, SN_ERR_NOMEM, "folder: out of memory");
    } else {
        sn_name_list stems = {0};
        rc = read_names(list, false, &stems, err, errlen);
        if (!rc && stems.n == 0) rc = sn_errf(err, errlen, SN_ERR_FORMAT, "folder: split list %s is empty", list);
        for (int64_t i = 0; !rc && i < stems.n; i++) {
            const char *f = find_stem(index, files->n, stems.items[i]);
            if (!f)
                rc = sn_errf(err, errlen, SN_ERR_IO, "folder: %s names '%s' but %s/images has no %s.png/.jpg/.jpeg",
                                  list, stems.items[i], root, stems.items[i]);
            else if (sn_name_list_push(chosen, f, -1))
                rc = sn_errf(err, errlen, SN_ERR_NOMEM, "folder: out of memory");
        }
        sn_name_list_free(&stems);
    }
    free(list);
    return rc;
}

static int pair_files(const char *root, const sn_name_list *chosen, sn_name_list *images, sn_name_list *labels,
                      char *err, size_t errlen)
{
    for (int64_t i = 0; i < chosen->n; i++) {
        const char *f = chosen->items[i];
        if (sn_name_list_take(images, sn_pathf("%s/images/%s", root, f)) ||
            sn_name_list_take(labels, sn_pathf("%s/masks/%.*s.png", root, (int)stem_len(f), f)))
            return sn_errf(err, errlen, SN_ERR_NOMEM, "folder: out of memory");
    }
    return SN_OK;
}

int sn_folder_open(sn_dataset **out, const char *root, const char *split, char *err, size_t errlen)
{
    char *img_dir = sn_pathf("%s/images", root), *classes = sn_pathf("%s/classes.txt", root);
    sn_name_list files = {0}, chosen = {0}, images = {0}, labels = {0};
    stem_entry *index = NULL;
    folder_meta *meta = calloc(1, sizeof *meta);
    int rc = img_dir && classes && meta ? SN_OK : sn_errf(err, errlen, SN_ERR_NOMEM, "folder: out of memory");
    if (!rc && !sn_is_dir(img_dir))
        rc = sn_errf(err, errlen, SN_ERR_IO, "folder: no folder %s (expected <root>/images and <root>/masks)", img_dir);
    if (!rc && !sn_is_file(classes))
        rc = sn_errf(err, errlen, SN_ERR_IO, "folder: no class list %s (one class name per line)", classes);
    if (!rc) rc = read_names(classes, true, &meta->classes, err, errlen);
    if (!rc) rc = sn_list_files(img_dir, image_suffixes, 0, &files, err, errlen);
    if (!rc) rc = index_stems(img_dir, &files, &index, err, errlen);
    if (!rc) rc = split_files(root, split, &files, index, &chosen, err, errlen);
    if (!rc && chosen.n == 0)
        rc = sn_errf(err, errlen, SN_ERR_FORMAT, "folder: split '%s' is empty: no .png/.jpg/.jpeg images in %s", split,
                          img_dir);
    if (!rc) rc = pair_files(root, &chosen, &images, &labels, err, errlen);
    free(img_dir), free(classes);
    free(index);
    sn_name_list_free(&files), sn_name_list_free(&chosen);
    if (rc) {
        sn_name_list_free(&images), sn_name_list_free(&labels), meta_free(meta);
        return rc;
    }
    sn_voc_colormap(meta->palette);
    sn_reader_spec spec = {SN_DATA_FOLDER, (int)meta->classes.n, (const char *const *)meta->classes.items,
                           (const uint8_t(*)[3])meta->palette, NULL};
    return sn_file_dataset_create(out, &spec, &images, &labels, NULL, meta, meta_free, err, errlen);
}
