/* The JSON sidecar beside a safetensors checkpoint (path + ".json"), shared
 * by the search and training checkpoints. Internal to src/train. */
#ifndef SEGNAS_TRAIN_SIDECAR_H
#define SEGNAS_TRAIN_SIDECAR_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Adds extra_json (an object's text, or NULL) under "extra", then writes
 * root atomically to path.json. Always deletes root. */
int sidecar_write(cJSON *root, const char *extra_json, const char *path, char *err, size_t errlen);
/* Parses path.json (at most max_bytes) into *root and checks that its
 * "format" is `format`; `what` names the kind in the error message. */
int sidecar_read(const char *path, const char *format, const char *what, size_t max_bytes, cJSON **root, char *err,
                 size_t errlen);
/* A number field in [lo, hi]; records the first bad key in *bad and
 * returns lo for it. */
double sidecar_num(const cJSON *obj, const char *key, double lo, double hi, const char **bad);

#endif
