#include "train/sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/tensor.h"
#include "tensor/internal.h"

int sidecar_write(cJSON *root, const char *extra_json, const char *path, char *err, size_t errlen)
{
    if (extra_json) {
        cJSON *extra = cJSON_Parse(extra_json);
        if (extra) cJSON_AddItemToObject(root, "extra", extra);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return sn_errf(err, errlen, SN_ERR_NOMEM, "out of memory saving %s", path);
    char side[4096];
    snprintf(side, sizeof side, "%s.json", path);
    int rc = sn_write_file_atomic(side, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

int sidecar_read(const char *path, const char *format, const char *what, size_t max_bytes, cJSON **root, char *err,
                 size_t errlen)
{
    char side[4096], *text = NULL;
    size_t len;
    snprintf(side, sizeof side, "%s.json", path);
    int rc = sn_read_file(side, max_bytes, &text, &len, err, errlen);
    if (rc) return rc;
    *root = cJSON_Parse(text);
    free(text);
    const cJSON *fmt = *root ? cJSON_GetObjectItemCaseSensitive(*root, "format") : NULL;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, format)) {
        cJSON_Delete(*root);
        *root = NULL;
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: not a segnas %s checkpoint sidecar", side, what);
    }
    return SN_OK;
}

double sidecar_num(const cJSON *obj, const char *key, double lo, double hi, const char **bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi) {
        if (!*bad) *bad = key;
        return lo;
    }
    return v->valuedouble;
}
