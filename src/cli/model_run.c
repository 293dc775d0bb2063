#include "cli/model_run.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/train.h"

int cli_load_genotype(const char *arch, sn_genotype *g)
{
    if (!strcmp(arch, "autodeeplab")) {
        sn_genotype_autodeeplab(g);
        return 0;
    }
    char err[512];
    if (sn_genotype_read_json(arch, g, err, sizeof err)) {
        fprintf(stderr, "segnas: %s\n", err);
        return 1;
    }
    return 0;
}

int cli_resolve_filters(const char *variant, int *filters)
{
    if (variant) {
        int f = strlen(variant) == 1 ? sn_model_variant_filters(variant[0]) : 0;
        if (!f) {
            fprintf(stderr, "segnas: --variant '%s': expected S, M or L\n", variant);
            return 2;
        }
        if (*filters && *filters != f) {
            fprintf(stderr, "segnas: -F %d contradicts --variant %s (F = %d)\n", *filters, variant, f);
            return 2;
        }
        *filters = f;
    }
    if (*filters < 0 || *filters > 4096) {
        fprintf(stderr, "segnas: -F %d: must be in 1..4096\n", *filters);
        return 2;
    }
    return 0;
}

int cli_read_cooccurrence(const char *path, int n_classes, float **out)
{
    char err[512], *text = NULL;
    size_t len;
    *out = NULL;
    if (sn_read_file(path, 1 << 24, &text, &len, err, sizeof err)) {
        fprintf(stderr, "segnas: --cooccurrence: %s\n", err);
        return 1;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "matrix");
    float *a = malloc(sizeof(float) * (size_t)n_classes * n_classes);
    int ok = a && cJSON_IsArray(m) && cJSON_GetArraySize(m) == n_classes;
    for (int i = 0; ok && i < n_classes; i++) {
        const cJSON *row = cJSON_GetArrayItem(m, i);
        ok = cJSON_IsArray(row) && cJSON_GetArraySize(row) == n_classes;
        for (int j = 0; ok && j < n_classes; j++) {
            const cJSON *v = cJSON_GetArrayItem(row, j);
            ok = cJSON_IsNumber(v) && v->valuedouble >= 0;
            if (ok) a[(size_t)i * n_classes + j] = (float)v->valuedouble;
        }
    }
    cJSON_Delete(root);
    if (!ok) {
        free(a);
        fprintf(stderr, "segnas: --cooccurrence %s: expected \"matrix\", %d x %d non-negative numbers (from segnas "
                "data inspect --cooccurrence on the same data)\n", path, n_classes, n_classes);
        return 1;
    }
    *out = a;
    return 0;
}

char *cli_data_extra_json(const sn_dataset *ds, const char *more)
{
    cJSON *o = more ? NULL : cJSON_CreateObject();
    if (more) {
        size_t n = strlen(more) + 3;
        char *wrapped = malloc(n);
        if (!wrapped) return NULL;
        snprintf(wrapped, n, "{%s}", more);
        o = cJSON_Parse(wrapped);
        free(wrapped);
        if (!o) o = cJSON_CreateObject();
    }
    cJSON_AddStringToObject(o, "data_format", sn_data_format_name(ds->format));
    cJSON *names = cJSON_AddArrayToObject(o, "class_names"), *pal = cJSON_AddArrayToObject(o, "palette");
    for (int k = 0; k < ds->n_classes; k++) {
        cJSON_AddItemToArray(names, cJSON_CreateString(ds->class_names[k]));
        cJSON *rgb = cJSON_CreateArray();
        for (int c = 0; c < 3; c++) cJSON_AddItemToArray(rgb, cJSON_CreateNumber(ds->palette[k][c]));
        cJSON_AddItemToArray(pal, rgb);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* Class names and palette from the sidecar's extra; the synthetic set's
 * palette and "class<k>" names where it has none. */
static void read_metadata(const char *extra, cli_trained *t)
{
    cJSON *o = extra ? cJSON_Parse(extra) : NULL;
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(o, "class_names");
    const cJSON *pal = cJSON_GetObjectItemCaseSensitive(o, "palette");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "data_format");
    snprintf(t->data_format, sizeof t->data_format, "%s", cJSON_IsString(fmt) ? fmt->valuestring : "synth");
    memcpy(t->palette, sn_synth_palette(), sizeof t->palette);
    for (int k = 0; k < t->model.cfg.n_classes; k++) {
        const cJSON *nm = cJSON_GetArrayItem(names, k), *rgb = cJSON_GetArrayItem(pal, k);
        char buf[32];
        snprintf(buf, sizeof buf, "class%d", k);
        t->class_names[k] = strdup(cJSON_IsString(nm) ? nm->valuestring : buf);
        if (cJSON_IsArray(rgb) && cJSON_GetArraySize(rgb) == 3)
            for (int c = 0; c < 3; c++) {
                const cJSON *v = cJSON_GetArrayItem(rgb, c);
                if (cJSON_IsNumber(v)) t->palette[k][c] = (uint8_t)v->valueint;
            }
    }
    cJSON_Delete(o);
}

int cli_trained_open(sn_ctx *ctx, const char *checkpoint, cli_trained *t)
{
    memset(t, 0, sizeof *t);
    char err[1024], *extra = NULL;
    sn_model_config cfg;
    if (sn_train_read_config(checkpoint, &cfg, NULL, &extra, err, sizeof err)) {
        fprintf(stderr, "segnas: %s\n", err);
        return 1;
    }
    if (sn_model_init(ctx, &t->model, &cfg, 0)) {
        fprintf(stderr, "segnas: %s: %s\n", checkpoint, sn_ctx_error(ctx));
        sn_model_free(&t->model);
        free(extra);
        return 1;
    }
    read_metadata(extra, t);
    free(extra);
    if (sn_model_load(&t->model, checkpoint, err, sizeof err)) {
        fprintf(stderr, "segnas: %s\n", err);
        cli_trained_close(t);
        return 1;
    }
    return 0;
}

void cli_trained_close(cli_trained *t)
{
    for (int k = 0; k < 256; k++) free(t->class_names[k]);
    sn_model_free(&t->model);
    memset(t, 0, sizeof *t);
}
