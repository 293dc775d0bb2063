/* Saving and resuming a search: tensors as safetensors, everything else
 * (configuration, options, progress) in a JSON sidecar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "segnas/train.h"
#include "tensor/atomic.h"
#include "tensor/internal.h"

#define SIDECAR_FORMAT "segnas-search"
#define MAX_STATE 65536

static int collect(const sn_searcher *s, sn_tensor ***out)
{
    int n_state = sn_optim_state_tensors(s->optim, NULL, 0);
    int n = s->net.weights.n + s->net.buffers.n + s->net.arch.n + n_state;
    sn_tensor **t = malloc(sizeof *t * (size_t)(n ? n : 1));
    if (!t) return -1;
    int k = 0;
    const sn_param_set *sets[3] = {&s->net.weights, &s->net.buffers, &s->net.arch};
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < sets[j]->n; i++) t[k++] = sets[j]->items[i];
    k += sn_optim_state_tensors(s->optim, t + k, n_state);
    *out = t;
    return k;
}

static cJSON *config_json(const sn_supernet_config *c, const sn_search_options *o)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    cJSON_AddNumberToObject(cfg, "layers", c->n_layers);
    cJSON_AddNumberToObject(cfg, "levels", c->n_levels);
    cJSON_AddNumberToObject(cfg, "blocks", c->n_blocks);
    cJSON_AddNumberToObject(cfg, "F", c->filter_multiplier);
    cJSON_AddNumberToObject(cfg, "classes", c->n_classes);
    cJSON_AddNumberToObject(cfg, "stem_channels", c->stem_channels);
    cJSON_AddNumberToObject(cfg, "aspp_channels", c->aspp_channels);
    cJSON_AddBoolToObject(cfg, "affine", c->affine);
    cJSON *opt = cJSON_AddObjectToObject(root, "options");
    cJSON_AddNumberToObject(opt, "epochs", o->epochs);
    cJSON_AddNumberToObject(opt, "arch_start_epoch", o->arch_start_epoch);
    cJSON_AddNumberToObject(opt, "steps_per_epoch", (double)o->steps_per_epoch);
    cJSON_AddNumberToObject(opt, "lr", o->w_lr);
    cJSON_AddNumberToObject(opt, "lr_min", o->w_lr_min);
    cJSON_AddNumberToObject(opt, "momentum", o->w_momentum);
    cJSON_AddNumberToObject(opt, "weight_decay", o->w_weight_decay);
    cJSON_AddNumberToObject(opt, "arch_lr", o->a_lr);
    cJSON_AddNumberToObject(opt, "arch_weight_decay", o->a_weight_decay);
    return root;
}

int sn_searcher_save(const sn_searcher *s, const char *path, const char *extra_json, char *err, size_t errlen)
{
    sn_tensor **t = NULL;
    int n = collect(s, &t);
    if (n < 0) return sn_errf(err, errlen, SN_ERR_NOMEM, "out of memory saving %s", path);
    int rc = sn_checkpoint_save(path, t, n, NULL, err, errlen);
    free(t);
    if (rc) return rc;
    cJSON *root = config_json(&s->net.cfg, &s->opt);
    cJSON_AddStringToObject(root, "format", SIDECAR_FORMAT);
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON *p = cJSON_AddObjectToObject(root, "progress");
    cJSON_AddNumberToObject(p, "epoch", (double)s->epoch);
    cJSON_AddNumberToObject(p, "step_in_epoch", (double)s->step_in_epoch);
    cJSON_AddNumberToObject(p, "weight_steps", (double)s->weight_steps);
    cJSON_AddNumberToObject(p, "arch_steps", (double)s->arch_steps);
    cJSON_AddNumberToObject(p, "optim_steps_weights", (double)sn_optim_get_step(s->optim, s->group_w));
    cJSON_AddNumberToObject(p, "optim_steps_arch", (double)sn_optim_get_step(s->optim, s->group_a));
    if (extra_json) {
        cJSON *extra = cJSON_Parse(extra_json);
        if (extra) cJSON_AddItemToObject(root, "extra", extra);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return sn_errf(err, errlen, SN_ERR_NOMEM, "out of memory saving %s", path);
    char side[4096];
    snprintf(side, sizeof side, "%s.json", path);
    rc = sn_write_file_atomic(side, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

static int read_sidecar(const char *path, cJSON **root, char *err, size_t errlen)
{
    char side[4096], *text = NULL;
    size_t len;
    snprintf(side, sizeof side, "%s.json", path);
    int rc = sn_read_file(side, 1 << 20, &text, &len, err, errlen);
    if (rc) return rc;
    *root = cJSON_Parse(text);
    free(text);
    const cJSON *fmt = *root ? cJSON_GetObjectItemCaseSensitive(*root, "format") : NULL;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, SIDECAR_FORMAT)) {
        cJSON_Delete(*root);
        *root = NULL;
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: not a segnas search checkpoint sidecar", side);
    }
    return SN_OK;
}

/* A number field in [lo, hi]; sets *bad on failure. */
static double num(const cJSON *obj, const char *key, double lo, double hi, const char **bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi) {
        if (!*bad) *bad = key;
        return lo;
    }
    return v->valuedouble;
}

int sn_searcher_read_config(const char *path, sn_supernet_config *c, sn_search_options *o, char **extra_json,
                            char *err, size_t errlen)
{
    cJSON *root = NULL;
    int rc = read_sidecar(path, &root, err, errlen);
    if (rc) return rc;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(root, "options");
    const char *bad = NULL;
    sn_supernet_config_default(c);
    sn_search_options_default(o);
    c->n_layers = (int)num(cfg, "layers", 1, SN_MAX_LAYERS, &bad);
    c->n_levels = (int)num(cfg, "levels", 1, SN_MAX_LEVELS, &bad);
    c->n_blocks = (int)num(cfg, "blocks", 1, SN_MAX_BLOCKS, &bad);
    c->filter_multiplier = (int)num(cfg, "F", 1, 4096, &bad);
    c->n_classes = (int)num(cfg, "classes", 2, 255, &bad);
    c->stem_channels = (int)num(cfg, "stem_channels", 1, 4096, &bad);
    c->aspp_channels = (int)num(cfg, "aspp_channels", 0, 4096, &bad);
    c->affine = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "affine"));
    o->epochs = (int)num(opt, "epochs", 1, 1e6, &bad);
    o->arch_start_epoch = (int)num(opt, "arch_start_epoch", 0, 1e6, &bad);
    o->steps_per_epoch = (int64_t)num(opt, "steps_per_epoch", 1, 1e15, &bad);
    o->w_lr = num(opt, "lr", 0, 1e3, &bad);
    o->w_lr_min = num(opt, "lr_min", 0, 1e3, &bad);
    o->w_momentum = num(opt, "momentum", 0, 1, &bad);
    o->w_weight_decay = num(opt, "weight_decay", 0, 1e3, &bad);
    o->a_lr = num(opt, "arch_lr", 0, 1e3, &bad);
    o->a_weight_decay = num(opt, "arch_weight_decay", 0, 1e3, &bad);
    if (bad) rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s.json: missing or bad field \"%s\"", path, bad);
    if (!rc && extra_json) {
        const cJSON *extra = cJSON_GetObjectItemCaseSensitive(root, "extra");
        *extra_json = extra ? cJSON_PrintUnformatted(extra) : NULL;
    }
    cJSON_Delete(root);
    return rc;
}

int sn_searcher_load(sn_searcher *s, const char *path, char *err, size_t errlen)
{
    cJSON *root = NULL;
    int rc = read_sidecar(path, &root, err, errlen);
    if (rc) return rc;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "progress");
    const char *bad = NULL;
    int64_t epoch = (int64_t)num(p, "epoch", 0, 1e15, &bad), step = (int64_t)num(p, "step_in_epoch", 0, 1e15, &bad);
    int64_t ws = (int64_t)num(p, "weight_steps", 0, 1e15, &bad), as = (int64_t)num(p, "arch_steps", 0, 1e15, &bad);
    int64_t ow = (int64_t)num(p, "optim_steps_weights", 0, 1e15, &bad);
    int64_t oa = (int64_t)num(p, "optim_steps_arch", 0, 1e15, &bad);
    cJSON_Delete(root);
    if (bad) return sn_errf(err, errlen, SN_ERR_FORMAT, "%s.json: missing or bad field \"%s\"", path, bad);
    sn_tensor **t = NULL;
    int n = collect(s, &t);
    if (n < 0) return sn_errf(err, errlen, SN_ERR_NOMEM, "out of memory loading %s", path);
    rc = sn_checkpoint_load(path, t, n, true, NULL, err, errlen);
    free(t);
    if (rc) return rc;
    s->epoch = epoch, s->step_in_epoch = step, s->weight_steps = ws, s->arch_steps = as;
    sn_optim_set_step(s->optim, s->group_w, ow);
    sn_optim_set_step(s->optim, s->group_a, oa);
    return SN_OK;
}
