/* segnas decode: from a search checkpoint to a genotype (section 4.3):
 * cell by top-2 inputs + argmax operator, path by Viterbi over beta. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/svg.h"
#include "segnas/train.h"

/* Only alpha and beta are read: no supernet is built. */
static int load_arch(const char *ckpt, sn_genotype *g)
{
    char err[512];
    sn_supernet_config cfg;
    sn_search_options opt;
    if (sn_searcher_read_config(ckpt, &cfg, &opt, NULL, err, sizeof err)) {
        fprintf(stderr, "segnas: %s\n", err);
        return 1;
    }
    sn_ctx *ctx = sn_ctx_create(NULL);
    if (!ctx) return 1;
    int64_t alpha_shape[2] = {sn_cell_edge_count(cfg.n_blocks), SN_CELL_OP_COUNT};
    int64_t n_beta = (int64_t)(cfg.n_layers > 1 ? cfg.n_layers - 1 : 1) * cfg.n_levels * 3;
    sn_tensor *t[2] = {sn_param_new(ctx, "alpha", 2, alpha_shape), sn_param_new(ctx, "beta", 1, &n_beta)};
    int rc = !t[0] || !t[1] || sn_checkpoint_load(ckpt, t, 2, true, NULL, err, sizeof err);
    if (rc) fprintf(stderr, "segnas: %s\n", t[0] && t[1] ? err : sn_ctx_error(ctx));
    if (!rc) {
        memset(g, 0, sizeof *g);
        g->n_layers = cfg.n_layers, g->n_levels = cfg.n_levels, g->filter_multiplier = cfg.filter_multiplier;
        sn_viterbi_decode(t[1]->data, cfg.n_layers, cfg.n_levels, g->path);
        sn_cell_decode(t[0]->data, cfg.n_blocks, SN_CELL_OP_COUNT, &g->cell);
    }
    sn_ctx_destroy(ctx);
    return rc;
}

int cmd_decode(int argc, char **argv)
{
    const char *out = "genotype.json", *svg = NULL, *pos[1];
    int n_pos = 0;
    const arg_spec specs[] = {
        {"o", ARG_STRING, &out, "genotype JSON to write"},
        {"svg", ARG_STRING, &svg, "also draw the trellis path and the cell (default: <o>.svg)"},
    };
    int rc = args_parse("segnas decode CHECKPOINT [-o genotype.json] [--svg picture.svg]", specs, ARG_COUNT(specs),
                        argc, argv, pos, &n_pos, 1);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (n_pos != 1) {
        fprintf(stderr, "segnas: decode needs the search checkpoint (e.g. run/search/search.safetensors)\n");
        return 2;
    }
    sn_genotype g;
    if (load_arch(pos[0], &g)) return 1;
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
    if (svg_write_genotype(svg_path, &g, "decoded architecture")) return 1;
    char *text = sn_genotype_to_json(&g);
    printf("%s\nwrote %s and %s\n", text ? text : "", out, svg_path);
    free(text);
    return 0;
}
