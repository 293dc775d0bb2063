/* Internal to src/data: what the file-backed data set readers share (the
 * name lists and their parsers, directory walking, the paired-file data set
 * that loads and checks one image + label). Each format's reader
 * (cityscapes.c, voc.c, ade20k.c, folder.c) only finds its files. */
#ifndef SEGNAS_DATA_READERS_H
#define SEGNAS_DATA_READERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segnas/data.h"
#include "tensor/internal.h"

/* A growable list of malloc'ed strings. */
typedef struct sn_name_list {
    char **items;
    int64_t n, cap;
} sn_name_list;

void sn_name_list_free(sn_name_list *l);
/* Appends a copy of s (len bytes; -1 = strlen). SN_OK or SN_ERR_NOMEM. */
int sn_name_list_push(sn_name_list *l, const char *s, ptrdiff_t len);
/* Appends a malloc'ed string, taking it over (freed on failure). */
int sn_name_list_take(sn_name_list *l, char *s);
void sn_name_list_sort(sn_name_list *l);

/* ---- parsers (lists.c); buffers need not be NUL-terminated ------------------------ */
/* A sample list (VOC ImageSets, a folder's <split>.txt): one id per line,
 * blank lines skipped; a line "path/a.jpg path/b.png" (the SBD train_aug
 * form) gives the stem "a". `what` names the file in messages. */
int sn_parse_id_list(const char *buf, size_t len, const char *what, sn_name_list *out, char *err,
                     size_t errlen);
/* classes.txt: one name per line, 1..255 names (255 is the ignore label),
 * no blank line between names, no duplicates. */
int sn_parse_class_names(const char *buf, size_t len, const char *what, sn_name_list *out, char *err,
                         size_t errlen);
/* Reads a whole text file (at most 64 MiB). */
int sn_read_text_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);

/* ---- files and folders (dirlist.c) ------------------------------------------------------ */
/* malloc'ed printf; NULL when out of memory. */
char *sn_pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool sn_is_dir(const char *path);
bool sn_is_file(const char *path);
/* Files under `dir` whose names end with one of `suffixes` (NULL-ended,
 * compared case-insensitively), as paths relative to dir, sorted bytewise.
 * Descends `depth` levels of subfolders (0 = dir only). Hidden entries
 * (".name") are skipped. */
int sn_list_files(const char *dir, const char *const *suffixes, int depth, sn_name_list *out, char *err,
                  size_t errlen);
/* Split names become path components: letters, digits, '_', '-' only. */
int sn_check_split_name(const char *format, const char *split, char *err, size_t errlen);

/* ---- the paired-file data set (file_dataset.c) ------------------------------------------------ */
typedef struct sn_reader_spec {
    sn_data_format format;
    int n_classes;                  /* 1..255 */
    const char *const *class_names; /* n_classes entries, outlive the data set */
    const uint8_t (*palette)[3];    /* 256 entries, outlive the data set */
    const uint8_t *lut;             /* 256-entry label value map, or NULL */
} sn_reader_spec;

/* Takes over images, labels (same length, >= 1) and use_lut (NULL = the lut,
 * if any, applies to every sample; else per sample 0/1). `owned` is freed
 * by destroy with owned_free (class names and palette that belong to this
 * data set, e.g. the folder reader's). On failure everything given is freed. */
int sn_file_dataset_create(sn_dataset **out, const sn_reader_spec *spec, sn_name_list *images,
                           sn_name_list *labels, uint8_t *use_lut, void *owned, void (*owned_free)(void *),
                           char *err, size_t errlen);

/* ---- readers and shared tables ------------------------------------------------------------------ */
int sn_cityscapes_open(sn_dataset **out, const char *root, const char *split, char *err, size_t errlen);
int sn_voc_open(sn_dataset **out, const char *root, const char *split, char *err, size_t errlen);
int sn_ade20k_open(sn_dataset **out, const char *root, const char *split, char *err, size_t errlen);
int sn_folder_open(sn_dataset **out, const char *root, const char *split, char *err, size_t errlen);
/* The PASCAL VOC colour map (bits of the index interleaved over R, G, B). */
void sn_voc_colormap(uint8_t (*palette)[3]);
/* Cityscapes labelIds (0..33) -> train ids (0..18), all else 255. */
extern const uint8_t sn_cityscapes_train_id[256];


#endif
