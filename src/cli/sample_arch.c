/* segnas sample-arch: an architecture drawn at random from the search
 * space (sn_genotype_random: path uniform over the trellis walks, cell
 * uniform over the decodable cells), the baseline a search is compared
 * with (scripts/compare_random.sh). Writes the genotype JSON and its
 * picture, which `segnas train --arch FILE` reads like a decoded one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/svg.h"
#include "segnas/search.h"

int cmd_sample_arch(int argc, char **argv)
{
    const char *out = NULL, *svg = NULL;
    int layers = 12, levels = 4, blocks = 5, filters = 8;
    int64_t seed = 1;
    const arg_spec specs[] = {
        {"layers", ARG_INT, &layers, "L: cell layers"},
        {"levels", ARG_INT, &levels, "downsample levels (4 = 4, 8, 16, 32)"},
        {"blocks", ARG_INT, &blocks, "B: blocks per cell"},
        {"F", ARG_INT, &filters, "filter multiplier F of the genotype"},
        {"seed", ARG_INT64, &seed, "random seed (the same seed gives the same architecture)"},
        {"out", ARG_STRING, &out, "genotype JSON to write"},
        {"svg", ARG_STRING, &svg, "picture of the trellis path and the cell (default: <out> with .svg)"},
    };
    int rc = args_parse("segnas sample-arch --out FILE.json [--layers L] [--blocks B] [-F N] [--seed K]", specs,
                        ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (!out) {
        fprintf(stderr, "segnas: sample-arch needs --out FILE.json\n");
        return 2;
    }
    struct { const char *name; int v, lo, hi; } r[] = {
        {"layers", layers, 1, SN_MAX_LAYERS}, {"levels", levels, 1, SN_MAX_LEVELS},
        {"blocks", blocks, 1, SN_MAX_BLOCKS}, {"F", filters, 1, 4096},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].v < r[i].lo || r[i].v > r[i].hi) {
            fprintf(stderr, "segnas: %s%s %d: must be in %d..%d\n", r[i].name[1] ? "--" : "-", r[i].name, r[i].v,
                    r[i].lo, r[i].hi);
            return 2;
        }
    sn_rng rng;
    sn_rng_seed(&rng, (uint64_t)seed);
    sn_genotype g;
    if (sn_genotype_random(&g, layers, levels, blocks, filters, &rng)) return 2; /* ranges checked above */
    char err[512], svg_path[4096];
    if (sn_genotype_write_json(&g, out, err, sizeof err)) {
        fprintf(stderr, "segnas: %s\n", err);
        return 1;
    }
    snprintf(svg_path, sizeof svg_path, "%s", svg ? svg : out);
    if (!svg) {
        char *dot = strrchr(svg_path, '.');
        if (dot && !strcmp(dot, ".json")) *dot = '\0';
        strncat(svg_path, ".svg", sizeof svg_path - strlen(svg_path) - 1);
    }
    char title[64];
    snprintf(title, sizeof title, "random architecture, seed %lld", (long long)seed);
    if (svg_write_genotype(svg_path, &g, title)) return 1;
    char *text = sn_genotype_to_json(&g);
    printf("%s\nwrote %s and %s\n", text ? text : "", out, svg_path);
    free(text);
    return 0;
}
