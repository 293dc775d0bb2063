/* segnas stats: parameters and multiply-adds of a discrete network, counted
 * analytically (src/models/cost.c) for one image of the given size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "segnas/models.h"

static int parse_size(const char *s, int64_t *h, int64_t *w)
{
    char *end;
    long long a = strtoll(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X')) return -1;
    const char *t = end + 1;
    long long b = strtoll(t, &end, 10);
    if (end == t || *end || a < 1 || b < 1 || a > 1 << 20 || b > 1 << 20) return -1;
    *h = a, *w = b;
    return 0;
}

static int load_genotype(const char *arch, sn_genotype *g)
{
    if (!strcmp(arch, "autodeeplab")) {
        sn_genotype_autodeeplab(g);
        return 0;
    }
    char err[512];
    if (sn_genotype_read_json(arch, g, err, sizeof err)) {
        fprintf(stderr, "segnas: %s\n", err);
        return 1;
    }
    return 0;
}

static void print_row(const char *name, const sn_part_cost *p)
{
    printf("%-8s %10.2f %12.2f %12.2f %10.2f %10.2f %10.2f\n", name, p->params / 1e6, p->madds / 1e9,
           p->conv_madds / 1e9, p->bn_elems / 1e9, 4 * p->resize_elems / 1e9, (p->pool_elems + p->add_elems) / 1e9);
}

static void print_table(const sn_model_config *c, int64_t h, int64_t w, const sn_model_costs *cost)
{
    const sn_genotype *g = &c->genotype;
    printf("architecture: %d cells, path", g->n_layers);
    for (int l = 0; l < g->n_layers; l++) printf(" %d", g->path[l]);
    printf(", B = %d, F = %d, %d classes, input %lldx%lld (batch 1)\n", g->cell.n_blocks, g->filter_multiplier,
           c->n_classes, (long long)h, (long long)w);
    printf("%-8s %10s %12s %12s %10s %10s %10s\n", "part", "params(M)", "MultiAdds(B)", "conv(B)", "BN(B)",
           "resize(B)", "pool+add(B)");
    for (int i = 0; i < SN_PART_COUNT; i++) print_row(sn_model_part_name(i), &cost->part[i]);
    print_row("total", &cost->total);
    printf("Multi-Adds count convolutions (dense, depthwise, 1x1); BN = one multiply-add per normalised element,\n"
           "resize = 4 per bilinear output element, pool+add = one per pooled output or block-sum element.\n");
}

int cmd_stats(int argc, char **argv)
{
    const char *arch = NULL, *size = "1024x2048", *variant = NULL;
    int filters = 0, classes = 19;
    bool no_decoder = false;
    const arg_spec specs[] = {
        {"arch", ARG_STRING, &arch, "'autodeeplab' (the paper's network) or a genotype JSON"},
        {"F", ARG_INT, &filters, "filter multiplier F (0 = the genotype's)"},
        {"variant", ARG_STRING, &variant, "S, M or L: F = 20, 32 or 48 (Table 2 of the paper)"},
        {"size", ARG_STRING, &size, "input HxW"},
        {"classes", ARG_INT, &classes, "number of classes"},
        {"no-decoder", ARG_BOOL, &no_decoder, "logits from ASPP directly (no DeepLabv3+ decoder)"},
    };
    int rc = args_parse("segnas stats --arch autodeeplab|GENOTYPE.json [-F N | --variant S|M|L] [--size HxW]",
                        specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (!arch) {
        fprintf(stderr, "segnas: stats needs --arch (autodeeplab or a genotype JSON)\n");
        return 2;
    }
    int64_t h, w;
    if (parse_size(size, &h, &w)) {
        fprintf(stderr, "segnas: --size '%s': expected HxW, e.g. 1024x2048\n", size);
        return 2;
    }
    if (variant) {
        int f = strlen(variant) == 1 ? sn_model_variant_filters(variant[0]) : 0;
        if (!f) {
            fprintf(stderr, "segnas: --variant '%s': expected S, M or L\n", variant);
            return 2;
        }
        if (filters && filters != f) {
            fprintf(stderr, "segnas: -F %d contradicts --variant %s (F = %d)\n", filters, variant, f);
            return 2;
        }
        filters = f;
    }
    if (filters < 0) {
        fprintf(stderr, "segnas: -F %d: must be positive\n", filters);
        return 2;
    }
    sn_genotype g;
    if (load_genotype(arch, &g)) return 1;
    if (filters) g.filter_multiplier = filters;
    sn_model_config cfg;
    sn_model_config_default(&cfg, &g);
    cfg.n_classes = classes;
    cfg.decoder = !no_decoder;
    sn_ctx *ctx = sn_ctx_create(NULL);
    if (!ctx) return 1;
    sn_model_costs cost;
    rc = sn_model_cost(ctx, &cfg, h, w, &cost);
    if (rc) fprintf(stderr, "segnas: %s\n", sn_ctx_error(ctx));
    else print_table(&cfg, h, w, &cost);
    sn_ctx_destroy(ctx);
    return rc ? (rc == SN_ERR_ARG ? 2 : 1) : 0;
}
