/* Saving and resuming a search: tensors as safetensors, everything else
 * (configuration, options, progress) in a JSON sidecar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "segnas/train.h"
#include "tensor/atomic.h"
#include "tensor/internal.h"
#include "train/sidecar.h"

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
    return sidecar_write(root, extra_json, path, err, errlen);
}



int sn_searcher_read_config(const char *path, sn_supernet_config *c, sn_search_options *o, char **extra_json,
                            char *err, size_t errlen)
{
    cJSON *root = NULL;
    int rc = sidecar_read(path, SIDECAR_FORMAT, "search", 1 << 20, &root, err, errlen);
    if (rc) return rc;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(root, "options");
    const char *bad = NULL;
    sn_supernet_config_default(c);
    sn_search_options_default(o);
    c->n_layers = (int)sidecar_num(cfg, "layers", 1, SN_MAX_LAYERS, &bad);
    c->n_levels = (int)sidecar_num(cfg, "levels", 1, SN_MAX_LEVELS, &bad);
    c->n_blocks = (int)sidecar_num(cfg, "blocks", 1, SN_MAX_BLOCKS, &bad);
    c->filter_multiplier = (int)sidecar_num(cfg, "F", 1, 4096, &bad);
    c->n_classes = (int)sidecar_num(cfg, "classes", 2, 255, &bad);
    c->stem_channels = (int)sidecar_num(cfg, "stem_channels", 1, 4096, &bad);
    c->aspp_channels = (int)sidecar_num(cfg, "aspp_channels", 0, 4096, &bad);
    c->affine = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "affine"));
    o->epochs = (int)sidecar_num(opt, "epochs", 1, 1e6, &bad);
    o->arch_start_epoch = (int)sidecar_num(opt, "arch_start_epoch", 0, 1e6, &bad);
    o->steps_per_epoch = (int64_t)sidecar_num(opt, "steps_per_epoch", 1, 1e15, &bad);
    o->w_lr = sidecar_num(opt, "lr", 0, 1e3, &bad);
    o->w_lr_min = sidecar_num(opt, "lr_min", 0, 1e3, &bad);
    o->w_momentum = sidecar_num(opt, "momentum", 0, 1, &bad);
    o->w_weight_decay = sidecar_num(opt, "weight_decay", 0, 1e3, &bad);
    o->a_lr = sidecar_num(opt, "arch_lr", 0, 1e3, &bad);
    o->a_weight_decay = sidecar_num(opt, "arch_weight_decay", 0, 1e3, &bad);
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
    int rc = sidecar_read(path, SIDECAR_FORMAT, "search", 1 << 20, &root, err, errlen);
    if (rc) return rc;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "progress");
    const char *bad = NULL;
    int64_t epoch = (int64_t)sidecar_num(p, "epoch", 0, 1e15, &bad), step = (int64_t)sidecar_num(p, "step_in_epoch", 0, 1e15, &bad);
    int64_t ws = (int64_t)sidecar_num(p, "weight_steps", 0, 1e15, &bad), as = (int64_t)sidecar_num(p, "arch_steps", 0, 1e15, &bad);
    int64_t ow = (int64_t)sidecar_num(p, "optim_steps_weights", 0, 1e15, &bad);
    int64_t oa = (int64_t)sidecar_num(p, "optim_steps_arch", 0, 1e15, &bad);
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
