/* segnas: one binary, one subcommand per file of src/cli. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"demo", cmd_demo, "the whole pipeline on the embedded synthetic data: search, decode, train, eval, plot"},
    {"data", cmd_data, "data sets: synth (generate), inspect (statistics, bad files)"},
    {"bench", cmd_bench, "measurements: search-step (supernet step, peak memory), infer (inference ms per image)"},
    {"decode", cmd_decode, "search checkpoint -> genotype JSON + SVG (top-2 cell, Viterbi path)"},
    {"search", cmd_search, "Auto-DeepLab hierarchical search (supernet, bi-level optimisation)"},
    {"stats", cmd_stats, "params and Multi-Adds of a network (autodeeplab or a genotype JSON), per part"},
    {"train", cmd_train, "train a discrete network (autodeeplab or a genotype JSON, any context head)"},
    {"eval", cmd_eval, "evaluate a trained network: per-class IoU, mIoU (multi-scale, flip, sliding window)"},
    {"predict", cmd_predict, "colourised masks and overlays of images with a trained network"},
    {"plot", cmd_plot, "re-render the SVG curves of a run folder from its log.jsonl"},
    {"sample-arch", cmd_sample_arch, "a random architecture of the search space (the baseline of a search)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: segnas <command> [options]   (segnas <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("segnas 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "segnas: unknown command '%s' (segnas --help lists them)\n", argv[1]);
    return 2;
}
