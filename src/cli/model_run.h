/* What train, eval and predict share: the architecture flag, the SGR
 * co-occurrence prior, and rebuilding a trained network from its
 * checkpoint sidecar (configuration, class names, palette). */
#ifndef SEGNAS_CLI_MODEL_RUN_H
#define SEGNAS_CLI_MODEL_RUN_H

#include <stdint.h>

#include "segnas/data.h"
#include "segnas/models.h"

/* "autodeeplab" (the paper's network) or a genotype JSON file; prints the
 * error. */
int cli_load_genotype(const char *arch, sn_genotype *g);
/* -F / --variant into *filters (0 = keep the genotype's); 2 on bad usage. */
int cli_resolve_filters(const char *variant, int *filters);

/* Reads "matrix" (n x n) of a `segnas data inspect --cooccurrence` file
 * into a malloc'ed row-major array; prints the error. */
int cli_read_cooccurrence(const char *path, int n_classes, float **out);

/* A trained network rebuilt from RUN/train.safetensors(.json). */
typedef struct cli_trained {
    sn_model model;
    char *class_names[256]; /* n_classes entries (malloc'ed; "class<k>" when the sidecar has none) */
    uint8_t palette[256][3];
    char data_format[32];
} cli_trained;

/* Builds the model in ctx from the sidecar and loads the weights; prints
 * the error. */
int cli_trained_open(sn_ctx *ctx, const char *checkpoint, cli_trained *t);
void cli_trained_close(cli_trained *t);

/* The extra JSON the trainer stores for eval and predict: data format,
 * class names and palette of `ds`, plus `more` (an object's members as
 * text without braces, or NULL). malloc'ed. */
char *cli_data_extra_json(const sn_dataset *ds, const char *more);

#endif
