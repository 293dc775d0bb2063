/* What several subcommands share: opening the data (the synthetic default
 * when no --data is given), the progress line, the JSON-lines log, Ctrl-C. */
#ifndef SEGNAS_CLI_COMMON_H
#define SEGNAS_CLI_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "segnas/data.h"

/* Flags every data-reading command accepts. */
typedef struct cli_data_flags {
    const char *root;   /* --data DIR; NULL = the embedded synthetic set */
    const char *format; /* --data-format; default "folder" when --data is a folder */
    int synth_size;     /* --synth-size (synthetic default only) */
    int64_t synth_train, synth_val;
    int64_t synth_seed;
} cli_data_flags;

void cli_data_flags_default(cli_data_flags *f);
/* Opens `split` ("train", "val", ...). Prints the error and returns nonzero
 * on failure. */
int cli_open_data(const cli_data_flags *f, const char *split, sn_dataset **out);

/* sn_loader_next that prints the loader's error. */
int cli_next_batch(sn_loader *l, sn_batch *b);

/* Creates the folder (and parents) if missing; prints the error. */
int cli_mkdir_p(const char *path);

/* Progress line on stderr when it is a terminal: "label [=====   ] 40% 12/30
 * <extra> ETA 1m02s". Quiet otherwise (the JSON log has everything). */
typedef struct cli_progress {
    const char *label;
    int64_t total, done;
    double start;
    bool tty;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, int64_t total);
void cli_progress_update(cli_progress *p, int64_t done, const char *extra);
void cli_progress_end(cli_progress *p);
double cli_now(void);

/* Ctrl-C: the first SIGINT/SIGTERM sets a flag the loops poll (they save a
 * checkpoint and stop); a second one exits at once. */
void cli_install_interrupt(void);
bool cli_interrupted(void);

/* Appends one JSON object (already formatted, no newline) to the log. */
int cli_log_line(FILE *log, const char *json);

#endif
