/* Saving and restoring a training run of a discrete network: tensors as
 * safetensors, the model configuration, options and progress in a JSON
 * sidecar (the same split as search_checkpoint.c), so that `segnas eval`
 * and `segnas predict` rebuild the network from the sidecar alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "segnas/train.h"
#include "tensor/internal.h"
#include "train/sidecar.h"

#define SIDECAR_FORMAT "segnas-train"

/* weights, buffers, then (with an optimiser) its state tensors. */
static int collect(const sn_model *m, const sn_optim *opt, sn_tensor ***out)
{
    int n_state = opt ? sn_optim_state_tensors(opt, NULL, 0) : 0;
    int n = m->weights.n + m->buffers.n + n_state;
    sn_tensor **t = malloc(sizeof *t * (size_t)(n ? n : 1));
    if (!t) return -1;
    int k = 0;
    for (int i = 0; i < m->weights.n; i++) t[k++] = m->weights.items[i];
    for (int i = 0; i < m->buffers.n; i++) t[k++] = m->buffers.items[i];
    if (opt) k += sn_optim_state_tensors(opt, t + k, n_state);
    *out = t;
    return k;
}

static cJSON *model_json(const sn_model_config *c)
{
    cJSON *o = cJSON_CreateObject();
    char *geno = sn_genotype_to_json(&c->genotype);
    cJSON_AddItemToObject(o, "genotype", geno ? cJSON_Parse(geno) : cJSON_CreateNull());
    free(geno);
    cJSON_AddStringToObject(o, "head", sn_head_name(c->head));
    cJSON_AddNumberToObject(o, "F", c->genotype.filter_multiplier);
    cJSON_AddNumberToObject(o, "classes", c->n_classes);
    cJSON_AddNumberToObject(o, "stem_channels", c->stem_channels);
    cJSON_AddNumberToObject(o, "aspp_channels", c->aspp_channels);
    cJSON_AddNumberToObject(o, "decoder_low_channels", c->decoder_low_channels);
    cJSON_AddNumberToObject(o, "decoder_channels", c->decoder_channels);
    cJSON_AddBoolToObject(o, "decoder", c->decoder);
    cJSON_AddNumberToObject(o, "aspp_dropout", c->aspp_dropout);
    cJSON_AddNumberToObject(o, "drop_path_keep_prob", c->drop_path_keep_prob);
    cJSON_AddNumberToObject(o, "total_steps", (double)c->total_steps);
    return o;
}

static cJSON *options_json(const sn_train_options *o, int n_classes)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "power", o->power);
    cJSON_AddNumberToObject(j, "momentum", o->momentum);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "total_steps", (double)o->total_steps);
    if (o->class_weighted) {
        cJSON *w = cJSON_AddArrayToObject(j, "class_weights");
        for (int k = 0; k < n_classes; k++) cJSON_AddItemToArray(w, cJSON_CreateNumber(o->class_weights[k]));
    }
    return j;
}

int sn_trainer_save(const sn_trainer *t, const char *path, const char *extra_json, char *err, size_t errlen)
{
    sn_tensor **ts = NULL;
    int n = collect(&t->model, t->optim, &ts);
    if (n < 0) return sn_errf(err, errlen, SN_ERR_NOMEM, "out of memory saving %s", path);
    int rc = sn_checkpoint_save(path, ts, n, NULL, err, errlen);
    free(ts);
    if (rc) return rc;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", SIDECAR_FORMAT);
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddItemToObject(root, "model", model_json(&t->model.cfg));
    cJSON_AddItemToObject(root, "options", options_json(&t->opt, t->model.cfg.n_classes));
    cJSON *p = cJSON_AddObjectToObject(root, "progress");
    cJSON_AddNumberToObject(p, "step", (double)t->step);
    cJSON_AddNumberToObject(p, "optim_steps", (double)sn_optim_get_step(t->optim, t->group_decay));
    cJSON *rng = cJSON_AddArrayToObject(p, "rng");
    for (int i = 0; i < 4; i++) {
        char word[24];
        snprintf(word, sizeof word, "%016llx", (unsigned long long)t->rng.s[i]);
        cJSON_AddItemToArray(rng, cJSON_CreateString(word));
    }
    return sidecar_write(root, extra_json, path, err, errlen);
}



static int model_from_json(const cJSON *m, const char *path, sn_model_config *c, char *err, size_t errlen)
{
    const cJSON *geno = cJSON_GetObjectItemCaseSensitive(m, "genotype");
    char *text = geno ? cJSON_PrintUnformatted(geno) : NULL;
    sn_genotype g;
    char name[4200];
    snprintf(name, sizeof name, "%s.json (model.genotype)", path);
    int rc = text ? sn_genotype_from_json(text, name, &g, err, errlen)
                  : sn_errf(err, errlen, SN_ERR_FORMAT, "%s.json: missing field \"model.genotype\"", path);
    free(text);
    if (rc) return rc;
    sn_model_config_default(c, &g);
    const char *bad = NULL;
    c->genotype.filter_multiplier = (int)sidecar_num(m, "F", 1, 4096, &bad);
    c->n_classes = (int)sidecar_num(m, "classes", 2, 255, &bad);
    c->stem_channels = (int)sidecar_num(m, "stem_channels", 1, 1 << 16, &bad);
    c->aspp_channels = (int)sidecar_num(m, "aspp_channels", 1, 1 << 16, &bad);
    c->decoder_low_channels = (int)sidecar_num(m, "decoder_low_channels", 1, 1 << 16, &bad);
    c->decoder_channels = (int)sidecar_num(m, "decoder_channels", 1, 1 << 16, &bad);
    c->aspp_dropout = (float)sidecar_num(m, "aspp_dropout", 0, 0.999, &bad);
    c->drop_path_keep_prob = (float)sidecar_num(m, "drop_path_keep_prob", 1e-6, 1, &bad);
    c->total_steps = (int64_t)sidecar_num(m, "total_steps", 1, 1e15, &bad);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(m, "decoder");
    if (!cJSON_IsBool(dec) && !bad) bad = "decoder";
    c->decoder = cJSON_IsTrue(dec);
    const cJSON *head = cJSON_GetObjectItemCaseSensitive(m, "head");
    c->head = cJSON_IsString(head) ? sn_head_parse(head->valuestring) : -1;
    if (c->head < 0 && !bad) bad = "head";
    if (bad) return sn_errf(err, errlen, SN_ERR_FORMAT, "%s.json: missing or bad field \"model.%s\"", path, bad);
    return SN_OK;
}

static int options_from_json(const cJSON *j, const char *path, int n_classes, sn_train_options *o, char *err,
                             size_t errlen)
{
    sn_train_options_default(o);
    const char *bad = NULL;
    o->lr = sidecar_num(j, "lr", 0, 1e3, &bad);
    o->power = sidecar_num(j, "power", 0, 1e3, &bad);
    o->momentum = sidecar_num(j, "momentum", 0, 1, &bad);
    o->weight_decay = sidecar_num(j, "weight_decay", 0, 1e3, &bad);
    o->total_steps = (int64_t)sidecar_num(j, "total_steps", 1, 1e15, &bad);
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "class_weights");
    if (w) {
        if (!cJSON_IsArray(w) || cJSON_GetArraySize(w) != n_classes) {
            if (!bad) bad = "class_weights";
        } else {
            o->class_weighted = true;
            for (int k = 0; k < n_classes; k++) {
                const cJSON *v = cJSON_GetArrayItem(w, k);
                if (!cJSON_IsNumber(v) || v->valuedouble < 0) bad = bad ? bad : "class_weights";
                else o->class_weights[k] = (float)v->valuedouble;
            }
        }
    }
    if (bad) return sn_errf(err, errlen, SN_ERR_FORMAT, "%s.json: missing or bad field \"options.%s\"", path, bad);
    return SN_OK;
}

int sn_train_read_config(const char *path, sn_model_config *cfg, sn_train_options *o, char **extra_json,
                         char *err, size_t errlen)
{
    cJSON *root = NULL;
    if (extra_json) *extra_json = NULL;
    int rc = sidecar_read(path, SIDECAR_FORMAT, "training", 1 << 22, &root, err, errlen);
    if (rc) return rc;
    rc = model_from_json(cJSON_GetObjectItemCaseSensitive(root, "model"), path, cfg, err, errlen);
    if (!rc && o)
        rc = options_from_json(cJSON_GetObjectItemCaseSensitive(root, "options"), path, cfg->n_classes, o, err,
                               errlen);
    if (!rc && extra_json) {
        const cJSON *extra = cJSON_GetObjectItemCaseSensitive(root, "extra");
        *extra_json = extra ? cJSON_PrintUnformatted(extra) : NULL;
    }
    cJSON_Delete(root);
    return rc;
}

int sn_trainer_load(sn_trainer *t, const char *path, char *err, size_t errlen)
{
    cJSON *root = NULL;
    int rc = sidecar_read(path, SIDECAR_FORMAT, "training", 1 << 22, &root, err, errlen);
    if (rc) return rc;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "progress");
    const char *bad = NULL;
    int64_t step = (int64_t)sidecar_num(p, "step", 0, 1e15, &bad), ostep = (int64_t)sidecar_num(p, "optim_steps", 0, 1e15, &bad);
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(p, "rng");
    sn_rng state = t->rng;
    if (cJSON_IsArray(rng) && cJSON_GetArraySize(rng) == 4)
        for (int i = 0; i < 4; i++) {
            const cJSON *v = cJSON_GetArrayItem(rng, i);
            if (cJSON_IsString(v)) state.s[i] = strtoull(v->valuestring, NULL, 16);
        }
    cJSON_Delete(root);
    if (bad) return sn_errf(err, errlen, SN_ERR_FORMAT, "%s.json: missing or bad field \"progress.%s\"", path, bad);
    sn_tensor **ts = NULL;
    int n = collect(&t->model, t->optim, &ts);
    if (n < 0) return sn_errf(err, errlen, SN_ERR_NOMEM, "out of memory loading %s", path);
    rc = sn_checkpoint_load(path, ts, n, true, NULL, err, errlen);
    free(ts);
    if (rc) return rc;
    t->step = step;
    t->rng = state;
    sn_optim_set_step(t->optim, t->group_decay, ostep);
    sn_optim_set_step(t->optim, t->group_no_decay, ostep);
    return SN_OK;
}

int sn_model_load(sn_model *m, const char *path, char *err, size_t errlen)
{
    sn_tensor **ts = NULL;
    int n = collect(m, NULL, &ts);
    if (n < 0) return sn_errf(err, errlen, SN_ERR_NOMEM, "out of memory loading %s", path);
    int rc = sn_checkpoint_load(path, ts, n, true, NULL, err, errlen);
    free(ts);
    return rc;
}
