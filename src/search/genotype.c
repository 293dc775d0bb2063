/* Genotype JSON: the architecture a search produced, read back by train,
 * stats and eval. Files are untrusted: every field is checked and the
 * message names it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "segnas/search.h"
#include "segnas/tensor.h"
#include "tensor/internal.h"

#define GENOTYPE_FORMAT "segnas-genotype"
#define GENOTYPE_VERSION 1

void sn_genotype_autodeeplab(sn_genotype *g)
{
    /* tensorflow/models research/deeplab/core (hnasnet), DESIGN.md; inputs
     * 0 = H^{l-2}, 1 = H^{l-1}, 2+j = block j. */
    static const int path[12] = {0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1};
    static const int cell[5][2][2] = {
        {{0, SN_CELL_ATROUS_5X5}, {1, SN_CELL_SEP_CONV_3X3}},
        {{0, SN_CELL_SEP_CONV_3X3}, {1, SN_CELL_ATROUS_3X3}},
        {{3, SN_CELL_SEP_CONV_3X3}, {0, SN_CELL_SEP_CONV_3X3}},
        {{4, SN_CELL_SEP_CONV_5X5}, {2, SN_CELL_SEP_CONV_5X5}},
        {{3, SN_CELL_SEP_CONV_5X5}, {5, SN_CELL_ATROUS_5X5}},
    };
    memset(g, 0, sizeof *g);
    g->n_layers = 12;
    g->n_levels = 4;
    g->filter_multiplier = 20;
    memcpy(g->path, path, sizeof path);
    g->cell.n_blocks = 5;
    for (int b = 0; b < 5; b++)
        for (int k = 0; k < 2; k++) g->cell.input[b][k] = cell[b][k][0], g->cell.op[b][k] = cell[b][k][1];
}

char *sn_genotype_to_json(const sn_genotype *g)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", GENOTYPE_FORMAT);
    cJSON_AddNumberToObject(root, "version", GENOTYPE_VERSION);
    cJSON_AddNumberToObject(root, "F", g->filter_multiplier);
    cJSON_AddNumberToObject(root, "levels", g->n_levels);
    cJSON *path = cJSON_AddArrayToObject(root, "path");
    for (int l = 0; l < g->n_layers; l++) cJSON_AddItemToArray(path, cJSON_CreateNumber(g->path[l]));
    cJSON *cell = cJSON_AddArrayToObject(root, "cell");
    for (int b = 0; b < g->cell.n_blocks; b++) {
        cJSON *block = cJSON_CreateArray();
        for (int k = 0; k < 2; k++) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(g->cell.input[b][k]));
            cJSON_AddItemToArray(pair, cJSON_CreateString(sn_cell_op_name(g->cell.op[b][k])));
            cJSON_AddItemToArray(block, pair);
        }
        cJSON_AddItemToArray(cell, block);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

/* An integer-valued number in [lo, hi], or -1 with an error. */
static int int_field(const cJSON *item, int lo, int hi, int *out)
{
    if (!cJSON_IsNumber(item)) return -1;
    double v = item->valuedouble;
    if (v != (double)(int)v || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_path(const cJSON *root, const char *src, sn_genotype *g, char *err, size_t errlen)
{
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(root, "path");
    int n = cJSON_IsArray(path) ? cJSON_GetArraySize(path) : -1;
    if (n < 1 || n > SN_MAX_LAYERS)
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: \"path\" must be an array of 1..%d levels", src, SN_MAX_LAYERS);
    g->n_layers = n;
    for (int l = 0; l < n; l++) {
        if (int_field(cJSON_GetArrayItem(path, l), 0, g->n_levels - 1, &g->path[l]))
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: path[%d] must be a level in 0..%d", src, l, g->n_levels - 1);
        int step = l ? g->path[l] - g->path[l - 1] : g->path[0];
        if (step < -1 || step > 1)
            return sn_errf(err, errlen, SN_ERR_FORMAT,
                        "%s: path[%d] = %d: a path starts at level 0 or 1 and moves by at most one level per layer",
                        src, l, g->path[l]);
    }
    return SN_OK;
}

static int parse_cell(const cJSON *root, const char *src, sn_genotype *g, char *err, size_t errlen)
{
    const cJSON *cell = cJSON_GetObjectItemCaseSensitive(root, "cell");
    int n = cJSON_IsArray(cell) ? cJSON_GetArraySize(cell) : -1;
    if (n < 1 || n > SN_MAX_BLOCKS)
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: \"cell\" must be an array of 1..%d blocks", src, SN_MAX_BLOCKS);
    g->cell.n_blocks = n;
    for (int b = 0; b < n; b++) {
        const cJSON *block = cJSON_GetArrayItem(cell, b);
        if (!cJSON_IsArray(block) || cJSON_GetArraySize(block) != 2)
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: cell[%d] must hold two [input, op] pairs", src, b);
        for (int k = 0; k < 2; k++) {
            const cJSON *pair = cJSON_GetArrayItem(block, k);
            const cJSON *op = cJSON_IsArray(pair) ? cJSON_GetArrayItem(pair, 1) : NULL;
            if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 ||
                int_field(cJSON_GetArrayItem(pair, 0), 0, b + 1, &g->cell.input[b][k]))
                return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: cell[%d][%d] must be [input in 0..%d, \"op\"]", src, b,
                            k, b + 1);
            int o = cJSON_IsString(op) ? sn_cell_op_parse(op->valuestring) : -1;
            if (o <= SN_CELL_NONE)
                return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: cell[%d][%d]: unknown operator %s%s%s", src, b, k,
                            cJSON_IsString(op) ? "\"" : "", cJSON_IsString(op) ? op->valuestring : "(not a string)",
                            cJSON_IsString(op) ? "\"" : "");
            g->cell.op[b][k] = o;
        }
    }
    return SN_OK;
}

int sn_genotype_from_json(const char *text, const char *src, sn_genotype *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    cJSON *root = cJSON_Parse(text);
    if (!root) return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: not valid JSON", src);
    int rc = SN_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    int v = 0;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, GENOTYPE_FORMAT))
        rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s: \"format\" must be \"%s\"", src, GENOTYPE_FORMAT);
    else if (int_field(version, 1, 1000, &v) || v > GENOTYPE_VERSION)
        rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s: unsupported \"version\" (this segnas reads up to %d)", src,
                  GENOTYPE_VERSION);
    else if (int_field(cJSON_GetObjectItemCaseSensitive(root, "F"), 1, 4096, &g->filter_multiplier))
        rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s: \"F\" must be an integer in 1..4096", src);
    else if (int_field(cJSON_GetObjectItemCaseSensitive(root, "levels"), 1, SN_MAX_LEVELS, &g->n_levels))
        rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s: \"levels\" must be an integer in 1..%d", src, SN_MAX_LEVELS);
    if (!rc) rc = parse_path(root, src, g, err, errlen);
    if (!rc) rc = parse_cell(root, src, g, err, errlen);
    cJSON_Delete(root);
    return rc;
}

int sn_genotype_write_json(const sn_genotype *g, const char *path, char *err, size_t errlen)
{
    char *text = sn_genotype_to_json(g);
    if (!text) return sn_errf(err, errlen, SN_ERR_NOMEM, "out of memory writing %s", path);
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the terminator: the file ends with a newline */
    int rc = sn_write_file_atomic(path, text, len + 1, err, errlen);
    free(text);
    return rc;
}

int sn_genotype_read_json(const char *path, sn_genotype *g, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len;
    int rc = sn_read_file(path, 1 << 20, &text, &len, err, errlen);
    if (rc) return rc;
    rc = sn_genotype_from_json(text, path, g, err, errlen);
    free(text);
    return rc;
}
