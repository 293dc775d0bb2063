/* Flag parsing shared by every subcommand: `--name value` or `--name=value`,
 * `--flag` for booleans, positionals collected in order. Defaults are the
 * values the destinations hold before parsing, so --help prints them. */
#ifndef SEGNAS_CLI_ARGS_H
#define SEGNAS_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum arg_kind { ARG_INT, ARG_INT64, ARG_FLOAT, ARG_DOUBLE, ARG_STRING, ARG_BOOL } arg_kind;

typedef struct arg_spec {
    const char *name;  /* without the leading dashes, e.g. "threads" */
    arg_kind kind;
    void *dest;        /* int*, int64_t*, float*, double*, const char**, bool* */
    const char *help;
} arg_spec;

enum { ARGS_OK = 0, ARGS_HELP = 1, ARGS_BAD = 2 };

/* Parses argv. On ARGS_HELP the help was printed (exit 0); on ARGS_BAD one
 * line naming the flag or value was printed to stderr (exit 2). `usage` is
 * the first help line, e.g. "segnas data synth --out DIR [options]". */
int args_parse(const char *usage, const arg_spec *specs, int n_specs, int argc, char **argv,
               const char **positional, int *n_positional, int max_positional);

#define ARG_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
