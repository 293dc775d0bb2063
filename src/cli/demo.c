/* segnas demo: the out-of-the-box example. Runs a short Auto-DeepLab search
 * on the embedded synthetic data set (no download, no data argument) and
 * leaves the checkpoint, log and decoded genotype in run/demo. The settings
 * are scaled down so it finishes in minutes on 2 cores; `segnas search`
 * with no flags runs the paper's settings. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"

int cmd_demo(int argc, char **argv)
{
    const char *run_dir = "run/demo";
    int threads = 2, epochs = 6;
    const arg_spec specs[] = {
        {"run", ARG_STRING, &run_dir, "output folder"},
        {"threads", ARG_INT, &threads, "compute threads"},
        {"epochs", ARG_INT, &epochs, "search epochs (architecture updates in the second half)"},
    };
    int rc = args_parse("segnas demo [options]", specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    char threads_s[16], epochs_s[16];
    snprintf(threads_s, sizeof threads_s, "%d", threads);
    snprintf(epochs_s, sizeof epochs_s, "%d", epochs);
    char *search_argv[] = {
        "--run", (char *)run_dir, "--threads", threads_s, "--epochs", epochs_s,
        "--layers", "6", "--filter-multiplier", "4", "--stem-channels", "16",
        "--synth-size", "64", "--synth-train", "800", "--synth-val", "50",
        "--batch", "4", "--steps-per-epoch", "60", "--val-samples", "50", "--checkpoint-every", "100",
    };
    printf("segnas demo: a scaled-down Auto-DeepLab search on the synthetic data set -> %s\n", run_dir);
    return cmd_search((int)(sizeof search_argv / sizeof search_argv[0]), search_argv);
}
