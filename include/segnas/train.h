/* segnas layer 6: optimisers, learning-rate schedules, checkpoints.
 *
 * Errors: the optimiser works on a context and reports through
 * sn_ctx_fail (status returned, message on the context). Files have no
 * context: file functions return 0 or an sn_status and write a message
 * naming the file and the tensor or field into `err` (errlen bytes, may be
 * NULL), like the data layer. */
#ifndef SEGNAS_TRAIN_H
#define SEGNAS_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segnas/models.h"
#include "segnas/search.h"
#include "segnas/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- optimisers (src/train/optim.c) ------------------------------------- */
typedef enum sn_optim_kind { SN_OPTIM_SGD, SN_OPTIM_ADAM } sn_optim_kind;

/* One parameter group's hyper-parameters. The update rules are exactly
 * torch.optim.SGD (dampening 0) and torch.optim.Adam (amsgrad off, L2 weight
 * decay added to the gradient, i.e. not AdamW). Every field is taken
 * literally; start from sn_optim_sgd_config / sn_optim_adam_config. */
typedef struct sn_optim_group_config {
    sn_optim_kind kind;
    double lr;
    double weight_decay;
    double momentum;      /* SGD; 0 = plain SGD, no state */
    bool nesterov;        /* SGD; needs momentum > 0 */
    /* SGD with momentum, no Nesterov: each parameter's gradient buffer is
     * also its momentum buffer, which saves one parameter-sized buffer per
     * parameter (352 MB for the F=8 supernet). sn_optim_zero_grad then
     * scales the buffer by the momentum instead of zeroing it, backward adds
     * the gradient into it, and sn_optim_step adds the weight decay and
     * updates: torch.optim.SGD's rule, in another order. The gradient alone
     * is never available (no clipping, no gradient norms). */
    bool fused_momentum;
    double beta1, beta2;  /* Adam */
    double eps;           /* Adam */
    const char *name;     /* e.g. "weights", "arch"; NULL = the group index */
} sn_optim_group_config;

sn_optim_group_config sn_optim_sgd_config(double lr, double momentum, double weight_decay,
                                          bool nesterov);
/* beta1 0.9, beta2 0.999, eps 1e-8 (PyTorch's defaults). */
sn_optim_group_config sn_optim_adam_config(double lr, double weight_decay);

typedef struct sn_optim sn_optim;

/* NULL (SN_ERR_NOMEM on ctx) when out of memory. */
sn_optim *sn_optim_create(sn_ctx *ctx);
/* Frees the optimiser; its state lives in the persistent arena and goes with
 * the context. */
void sn_optim_destroy(sn_optim *opt);

/* Adds a group of `n` parameters and allocates its state (momentum buffers,
 * Adam moments) once, in the persistent arena. Returns the group index, or
 * -1 with the error on ctx (bad hyper-parameter, a parameter already in a
 * group, out of memory). */
int sn_optim_add_group(sn_optim *opt, const sn_optim_group_config *cfg, sn_tensor *const *params,
                       int n);
int sn_optim_num_groups(const sn_optim *opt);

/* One update of every parameter of `group` from its gradient (gradients are
 * not zeroed). Parameters whose grad is NULL are skipped, as PyTorch skips
 * grad None. A non-finite gradient fails with SN_ERR_NUMERIC naming the
 * parameter, before any parameter of the group changes. */
int sn_optim_step(sn_optim *opt, int group);
void sn_optim_zero_grad(sn_optim *opt, int group);

void sn_optim_set_lr(sn_optim *opt, int group, double lr);
double sn_optim_get_lr(const sn_optim *opt, int group);
/* Updates taken by the group (Adam's bias correction depends on it);
 * set_step restores it from a checkpoint. */
int64_t sn_optim_get_step(const sn_optim *opt, int group);
void sn_optim_set_step(sn_optim *opt, int group, int64_t step);

/* The optimiser's state as named persistent tensors, for checkpoints:
 * "optim.<group>.<param>.buf" (SGD momentum), ".m" and ".v" (Adam), where
 * <group> is the group's name (or index) and <param> the parameter's name
 * (or "p<index>"). Writes up to `max` pointers; returns how many exist. */
int sn_optim_state_tensors(const sn_optim *opt, sn_tensor **out, int max);

/* torch.nn.utils.clip_grad_norm_: scales the gradients of `params` so that
 * their joint L2 norm is at most max_norm (coefficient max_norm/(norm+1e-6)).
 * Returns the norm before clipping (NaN/Inf when a gradient is not finite;
 * nothing is scaled then). */
double sn_clip_grad_norm(sn_tensor *const *params, int n, double max_norm);

/* ---- learning-rate schedules (src/train/schedule.c) --------------------- */
typedef enum sn_schedule_kind {
    SN_SCHEDULE_CONSTANT,
    SN_SCHEDULE_COSINE, /* lr_min + (lr0 - lr_min) * (1 + cos(pi t / T)) / 2 */
    SN_SCHEDULE_POLY    /* lr_min + (lr0 - lr_min) * (1 - t / T)^power (DeepLab) */
} sn_schedule_kind;

/* With warmup W > 0 the lr rises linearly from warmup_start_lr (at step 0)
 * towards lr0 (reached at step W), and the decay then runs over
 * t = step - W, T = total_steps - W. Past the end, t is held at T. */
typedef struct sn_schedule {
    sn_schedule_kind kind;
    double lr0;
    double lr_min;
    double power; /* poly; 0 = 0.9 */
    int64_t total_steps;
    int64_t warmup_steps;
    double warmup_start_lr;
} sn_schedule;

sn_schedule sn_schedule_cosine(double lr0, double lr_min, int64_t total_steps);
sn_schedule sn_schedule_poly(double lr0, double power, int64_t total_steps);
/* 0, or SN_ERR_ARG with a message naming the bad field. */
int sn_schedule_check(const sn_schedule *s, char *err, size_t errlen);
double sn_schedule_lr(const sn_schedule *s, int64_t step);

/* ---- files (src/train/checkpoint.c) ------------------------------------- */
/* Saves named tensors as safetensors (F32, little-endian), atomically.
 * `metadata_json`: NULL or a JSON object stored as "__metadata__"; string
 * values are kept, other values are stored as their JSON text (safetensors
 * metadata is string -> string). Every tensor needs a unique name. The JSON
 * sidecar (configuration, epoch, RNG state) is the caller's to write with
 * sn_write_file_atomic("<path>.json"). */
int sn_checkpoint_save(const char *path, sn_tensor *const *tensors, int n,
                       const char *metadata_json, char *err, size_t errlen);

/* Fills each tensor whose name is in the file (shapes must match exactly).
 * require_all: a tensor missing from the file is an error (otherwise it is
 * left as is). The whole file is validated first (header length, JSON,
 * dtype F32, shapes, offsets in range, contiguous, no overlap) and every
 * requested name and shape checked before any tensor is written.
 * metadata_out: if not NULL, receives the "__metadata__" object as
 * malloc'ed JSON text ("{}" when absent; free() it). */
int sn_checkpoint_load(const char *path, sn_tensor *const *tensors, int n, bool require_all,
                       char **metadata_out, char *err, size_t errlen);

/* ---- bi-level first-order optimisation (section 4.2) ------------------------
 * Weights w: SGD (momentum 0.9, cosine 0.025 -> 0.001, weight decay 3e-4) on
 * trainA batches; architecture alpha, beta: Adam (3e-3, weight decay 1e-3) on
 * trainB batches, from arch_start_epoch on. First order: the arch gradient is
 * taken at the current w (no unrolled step). */
typedef struct sn_search_options {
    int epochs;              /* 40 */
    int arch_start_epoch;    /* -1 = epochs / 2 */
    int64_t steps_per_epoch; /* weight steps per epoch (set by the caller from the data) */
    double w_lr, w_lr_min, w_momentum, w_weight_decay;
    double a_lr, a_weight_decay;
} sn_search_options;

void sn_search_options_default(sn_search_options *o);

typedef struct sn_searcher {
    sn_ctx *ctx;
    sn_supernet net;
    sn_search_options opt;
    sn_optim *optim;
    int group_w, group_a;
    int64_t weight_steps; /* taken so far (drives the cosine schedule) */
    int64_t arch_steps;
    int64_t epoch;         /* completed epochs */
    int64_t step_in_epoch; /* weight steps taken in the current epoch */
} sn_searcher;

int sn_searcher_init(sn_searcher *s, sn_ctx *ctx, const sn_supernet_config *cfg, const sn_search_options *o,
                     uint64_t seed);
void sn_searcher_free(sn_searcher *s);
/* One SGD step of the weights on a batch (images n*h*w*3 NHWC floats,
 * labels n*h*w); the arch parameters get no gradient. *loss = batch loss. */
int sn_search_weight_step(sn_searcher *s, const float *images, const uint8_t *labels, int n, int h, int w,
                          double *loss);
/* One Adam step of alpha and beta on a batch; the weights get no gradient
 * (their backward-weights kernels are skipped). */
int sn_search_arch_step(sn_searcher *s, const float *images, const uint8_t *labels, int n, int h, int w,
                        double *loss);
/* The learning rate of the weights at the current step. */
double sn_search_weight_lr(const sn_searcher *s);
/* Inference in evaluation mode (running BN statistics), no tape: writes
 * the argmax class of each pixel into pred (n*h*w). */
int sn_search_predict(sn_searcher *s, const float *images, int n, int h, int w, uint8_t *pred);
/* Decodes the current alpha and beta into a genotype (F of the search). */
void sn_search_decode(const sn_searcher *s, sn_genotype *g);

/* Checkpoint of a search: every weight, BN statistic, alpha, beta and
 * optimiser state as safetensors at `path`, and a JSON sidecar path.json
 * with the supernet configuration, the options, the progress counters and
 * `extra_json` (an object, or NULL) under "extra". Both written atomically. */
int sn_searcher_save(const sn_searcher *s, const char *path, const char *extra_json, char *err, size_t errlen);
/* Reads the sidecar's configuration (to build the searcher with). */
int sn_searcher_read_config(const char *path, sn_supernet_config *cfg, sn_search_options *opt, char **extra_json,
                            char *err, size_t errlen);
/* Restores tensors and counters into a searcher built with that config. */
int sn_searcher_load(sn_searcher *s, const char *path, char *err, size_t errlen);

/* ---- training a discrete network (src/train/trainer.c) --------------------
 * DeepLab's recipe (deeplab/train.py, utils/train_utils.py): SGD with
 * momentum 0.9, poly learning rate lr0 (1 - t/T)^0.9, L2 weight decay on
 * convolution kernels and other weight matrices (tensors of 2 or more
 * axes) but not on biases or batch-norm scale and shift (slim's arg_scope
 * regularises only kernels); BN in training mode, ASPP dropout and the
 * model's scheduled drop path (sn_model_drop_path_keep). */
typedef struct sn_train_options {
    double lr;           /* 0.05 */
    double power;        /* 0.9 */
    double momentum;     /* 0.9 */
    double weight_decay; /* 1e-4 (DeepLab's value for its backbones) */
    int64_t total_steps; /* the poly schedule's T */
    bool class_weighted; /* weighted cross-entropy with class_weights */
    float class_weights[255];
} sn_train_options;

void sn_train_options_default(sn_train_options *o);

typedef struct sn_trainer {
    sn_ctx *ctx;
    sn_model model;
    sn_train_options opt;
    sn_optim *optim;
    int group_decay, group_no_decay;
    int64_t step; /* updates taken */
    sn_rng rng;   /* dropout and drop path */
} sn_trainer;

int sn_trainer_init(sn_trainer *t, sn_ctx *ctx, const sn_model_config *cfg, const sn_train_options *o,
                    uint64_t seed);
void sn_trainer_free(sn_trainer *t);
double sn_trainer_lr(const sn_trainer *t);
/* Forward (training mode), loss, backward and one SGD update on a batch
 * (images n*h*w*3 NHWC floats, labels n*h*w, 255 ignored). */
int sn_train_step(sn_trainer *t, const float *images, const uint8_t *labels, int n, int h, int w, double *loss);

/* Median-frequency balancing (Eigen & Fergus, ICCV 2015): freq_c = pixels
 * of class c / pixels of the images where c appears, w_c = median(freq) /
 * freq_c over the classes that appear; 0 for classes that never do. */
void sn_median_frequency_weights(const int64_t *class_pixels, const int64_t *image_pixels, int n_classes,
                                 float *weights);

/* Checkpoint of a training run (src/train/train_checkpoint.c): weights, BN
 * statistics (and the SGR adjacency) and momentum buffers as safetensors at
 * `path`; a sidecar path.json ("segnas-train", version 1) with the model
 * configuration (the genotype as its JSON object, head, F, classes, widths),
 * the options, the step and `extra_json` (an object or NULL) under "extra".
 * Both written atomically. */
int sn_trainer_save(const sn_trainer *t, const char *path, const char *extra_json, char *err, size_t errlen);
/* Reads the sidecar: the model configuration (sgr_adjacency NULL: the
 * adjacency is restored with the buffers), the options (o may be NULL) and
 * "extra" (malloc'ed JSON text or NULL; extra_json may be NULL). */
int sn_train_read_config(const char *path, sn_model_config *cfg, sn_train_options *o, char **extra_json,
                         char *err, size_t errlen);
/* Restores every tensor and the step into a trainer built from that config. */
int sn_trainer_load(sn_trainer *t, const char *path, char *err, size_t errlen);
/* Restores weights and buffers only (inference). */
int sn_model_load(sn_model *m, const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
