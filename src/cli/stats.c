/* segnas stats: parameters and multiply-adds of a discrete network, counted
 * analytically (src/models/cost.c) for one image of the given size.
 *
 *   segnas stats --arch A [--head H] [--size HxW] [--json]
 *     the network with context head H (default aspp), split by part.
 *   segnas stats --arch A --heads [--size HxW,HxW,...] [--json]
 *     every head on the same backbone (issue 6): the head's parameters and
 *     Multi-Adds at each input size, the whole network's, and the non-local
 *     / A^2 ratio, where the seed's cost formulas show as H*W grows: A^2 is
 *     O(HW C K) (linear in the pixels), non-local O((HW)^2 (C + K)). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "segnas/models.h"

#define MAX_SIZES 8

typedef struct size_hw {
    int64_t h, w;
} size_hw;

static int parse_size(const char *s, const char **end_out, size_hw *out)
{
    char *end;
    long long a = strtoll(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X')) return -1;
    const char *t = end + 1;
    long long b = strtoll(t, &end, 10);
    if (end == t || a < 1 || b < 1 || a > 1 << 20 || b > 1 << 20) return -1;
    out->h = a, out->w = b;
    *end_out = end;
    return 0;
}

/* "HxW" or, with max > 1, "HxW,HxW,...". */
static int parse_sizes(const char *s, size_hw *sizes, int max, int *n)
{
    *n = 0;
    for (;;) {
        const char *end;
        if (*n == max || parse_size(s, &end, &sizes[*n])) return -1;
        (*n)++;
        if (!*end) return 0;
        if (*end != ',') return -1;
        s = end + 1;
    }
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

static void print_arch(const sn_model_config *c)
{
    const sn_genotype *g = &c->genotype;
    printf("architecture: %d cells, path", g->n_layers);
    for (int l = 0; l < g->n_layers; l++) printf(" %d", g->path[l]);
    printf(", B = %d, F = %d, %d classes", g->cell.n_blocks, g->filter_multiplier, c->n_classes);
}

/* ---- one network ------------------------------------------------------------ */
static void print_row(const char *name, const sn_part_cost *p)
{
    printf("%-8s %10.2f %12.2f %12.2f %10.2f %10.2f %10.2f %12.2f\n", name, p->params / 1e6, p->madds / 1e9,
           p->conv_madds / 1e9, p->bn_elems / 1e9, 4 * p->resize_elems / 1e9, (p->pool_elems + p->add_elems) / 1e9,
           p->tf_madds / 1e9);
}

static void print_table(const sn_model_config *c, size_hw s, const sn_model_costs *cost)
{
    print_arch(c);
    printf(", head %s, input %lldx%lld (batch 1)\n", sn_head_name(c->head), (long long)s.h, (long long)s.w);
    printf("%-8s %10s %12s %12s %10s %10s %10s %12s\n", "part", "params(M)", "MultiAdds(B)", "conv(B)", "BN(B)",
           "resize(B)", "pool+add(B)", "TF-count(B)");
    for (int i = 0; i < SN_PART_COUNT; i++) print_row(sn_model_part_name(i), &cost->part[i]);
    print_row("total", &cost->total);
    printf("Multi-Adds count convolutions (dense, depthwise, 1x1) and, in a head other than aspp, its matrix\n"
           "products; BN = one multiply-add per normalised element, resize = 4 per bilinear output element,\n"
           "pool+add = one per pooled output or block-sum element. TF-count = the convolutions as TensorFlow 1.x\n"
           "counts them: it pads a dilated convolution's input to a multiple of the rate. The paper's Table 2\n"
           "compares with TF-count at DeepLab's evaluation size for Cityscapes, --size 1025x2049.\n");
}

static void print_json(const sn_model_config *c, size_hw s, const sn_model_costs *cost)
{
    const sn_part_cost *h = &cost->part[SN_PART_HEAD];
    printf("{\"head\":\"%s\",\"F\":%d,\"classes\":%d,\"height\":%lld,\"width\":%lld,\"params\":%lld,"
           "\"madds\":%.0f,\"tf_madds\":%.0f,\"head_params\":%lld,\"head_madds\":%.0f}\n",
           sn_head_name(c->head), c->genotype.filter_multiplier, c->n_classes, (long long)s.h, (long long)s.w,
           (long long)cost->total.params, cost->total.madds, cost->total.tf_madds, (long long)h->params, h->madds);
}

/* ---- every head ---------------------------------------------------------------- */
/* The side of the map the head sees: the stem and each level halve it
 * ('SAME', odd sizes round up), as cost.c's geometry. */
static int64_t head_side(int64_t side, int top_level)
{
    for (int i = 0; i < 2 + top_level; i++) side = (side + 1) / 2;
    return side;
}

static int all_heads(sn_ctx *ctx, sn_model_config *c, const size_hw *sizes, int n, bool json)
{
    static sn_model_costs cost[SN_HEAD_COUNT][MAX_SIZES];
    for (int k = 0; k < SN_HEAD_COUNT; k++)
        for (int i = 0; i < n; i++) {
            c->head = k;
            int rc = sn_model_cost(ctx, c, sizes[i].h, sizes[i].w, &cost[k][i]);
            if (rc) return rc;
        }
    if (json) {
        for (int k = 0; k < SN_HEAD_COUNT; k++)
            for (int i = 0; i < n; i++) c->head = k, print_json(c, sizes[i], &cost[k][i]);
        return SN_OK;
    }
    const sn_genotype *g = &c->genotype;
    int top = g->path[g->n_layers - 1];
    print_arch(c);
    printf("\nevery context head on this backbone: c_in %d -> %d channels at output stride %d (batch 1)\n",
           g->cell.n_blocks * g->filter_multiplier << top, c->aspp_channels, 4 << top);
    printf("\nhead Multi-Adds (B) by network input size\n%-9s %9s", "", "");
    for (int i = 0; i < n; i++) {
        char s[72];
        snprintf(s, sizeof s, "%lldx%lld", (long long)sizes[i].h, (long long)sizes[i].w);
        printf(" %14s", s);
    }
    printf("\n%-9s %9s", "", "head in:");
    for (int i = 0; i < n; i++) {
        char s[72];
        int64_t hh = head_side(sizes[i].h, top), hw = head_side(sizes[i].w, top);
        snprintf(s, sizeof s, "%lldx%lld=%lld", (long long)hh, (long long)hw, (long long)(hh * hw));
        printf(" %14s", s);
    }
    printf("\n%-9s %9s\n", "head", "params(M)");
    for (int k = 0; k < SN_HEAD_COUNT; k++) {
        printf("%-9s %9.4f", sn_head_name(k), cost[k][0].part[SN_PART_HEAD].params / 1e6);
        for (int i = 0; i < n; i++) printf(" %14.4f", cost[k][i].part[SN_PART_HEAD].madds / 1e9);
        printf("\n");
    }
    printf("%-19s", "nonlocal / a2");
    for (int i = 0; i < n; i++)
        printf(" %13.2fx", cost[SN_HEAD_NONLOCAL][i].part[SN_PART_HEAD].madds / cost[SN_HEAD_A2][i].part[SN_PART_HEAD].madds);
    printf("\n\nwhole network (backbone + head + decoder): Multi-Adds (B) by input size\n%-9s %9s", "head",
           "params(M)");
    for (int i = 0; i < n; i++) {
        char s[72];
        snprintf(s, sizeof s, "%lldx%lld", (long long)sizes[i].h, (long long)sizes[i].w);
        printf(" %14s", s);
    }
    printf("\n");
    for (int k = 0; k < SN_HEAD_COUNT; k++) {
        printf("%-9s %9.3f", sn_head_name(k), cost[k][0].total.params / 1e6);
        for (int i = 0; i < n; i++) printf(" %14.2f", cost[k][i].total.madds / 1e9);
        printf("\n");
    }
    printf("\nHead Multi-Adds count its convolutions and matrix products (softmax, normalisation, pooling and\n"
           "resizing not counted). A2 gathers and distributes in O(HW C K): it grows with the pixels HW;\n"
           "non-local builds the HW x HW affinity, O((HW)^2 (C + K)): it grows with (HW)^2, so the ratio grows\n"
           "with HW (x4 pixels, x~4 ratio once the affinity dominates).\n");
    return SN_OK;
}

/* ---- the command ------------------------------------------------------------------- */
typedef struct stats_flags {
    const char *arch, *size, *variant, *head;
    int filters, classes;
    bool no_decoder, heads, json;
} stats_flags;

static int resolve_filters(stats_flags *f)
{
    if (f->variant) {
        int v = strlen(f->variant) == 1 ? sn_model_variant_filters(f->variant[0]) : 0;
        if (!v) {
            fprintf(stderr, "segnas: --variant '%s': expected S, M or L\n", f->variant);
            return 2;
        }
        if (f->filters && f->filters != v) {
            fprintf(stderr, "segnas: -F %d contradicts --variant %s (F = %d)\n", f->filters, f->variant, v);
            return 2;
        }
        f->filters = v;
    }
    if (f->filters < 0) {
        fprintf(stderr, "segnas: -F %d: must be positive\n", f->filters);
        return 2;
    }
    return 0;
}

int cmd_stats(int argc, char **argv)
{
    stats_flags f = {.head = "aspp", .classes = 19};
    const arg_spec specs[] = {
        {"arch", ARG_STRING, &f.arch, "'autodeeplab' (the paper's network) or a genotype JSON"},
        {"F", ARG_INT, &f.filters, "filter multiplier F (0 = the genotype's)"},
        {"variant", ARG_STRING, &f.variant, "S, M or L: F = 20, 32 or 48 (Table 2 of the paper)"},
        {"size", ARG_STRING, &f.size,
         "input HxW (default 1024x2048); with --heads a comma-separated list (default 256x512,512x1024,1024x2048)"},
        {"classes", ARG_INT, &f.classes, "number of classes"},
        {"no-decoder", ARG_BOOL, &f.no_decoder, "logits from the head directly (no DeepLabv3+ decoder)"},
        {"head", ARG_STRING, &f.head, "context head: aspp, ppm, glore, a2, gcu, sgr, nonlocal"},
        {"heads", ARG_BOOL, &f.heads, "every head on this backbone: head and network cost at each --size"},
        {"json", ARG_BOOL, &f.json, "one JSON object per line (network and head params, Multi-Adds)"},
    };
    int rc = args_parse("segnas stats --arch autodeeplab|GENOTYPE.json [-F N | --variant S|M|L] [--size HxW] "
                        "[--head H | --heads] [--json]", specs, ARG_COUNT(specs), argc, argv, NULL, NULL, 0);
    if (rc) return rc == ARGS_HELP ? 0 : 2;
    if (!f.arch) {
        fprintf(stderr, "segnas: stats needs --arch (autodeeplab or a genotype JSON)\n");
        return 2;
    }
    int head = sn_head_parse(f.head);
    if (head < 0) {
        fprintf(stderr, "segnas: --head %s: expected aspp, ppm, glore, a2, gcu, sgr or nonlocal\n", f.head);
        return 2;
    }
    if (f.classes < 1 || f.classes > 255) {
        fprintf(stderr, "segnas: --classes %d: must be in 1..255\n", f.classes);
        return 2;
    }
    size_hw sizes[MAX_SIZES];
    int n_sizes;
    const char *size = f.size ? f.size : f.heads ? "256x512,512x1024,1024x2048" : "1024x2048";
    if (parse_sizes(size, sizes, f.heads ? MAX_SIZES : 1, &n_sizes)) {
        fprintf(stderr, "segnas: --size '%s': expected HxW, e.g. 1024x2048%s\n", size,
                f.heads ? ", or up to 8 of them separated by commas" : "");
        return 2;
    }
    if ((rc = resolve_filters(&f))) return rc;
    sn_genotype g;
    if (load_genotype(f.arch, &g)) return 1;
    if (f.filters) g.filter_multiplier = f.filters;
    sn_model_config cfg;
    sn_model_config_default(&cfg, &g);
    cfg.n_classes = f.classes;
    cfg.decoder = !f.no_decoder;
    cfg.head = head;
    sn_ctx *ctx = sn_ctx_create(NULL);
    if (!ctx) return 1;
    if (f.heads) {
        rc = all_heads(ctx, &cfg, sizes, n_sizes, f.json);
    } else {
        sn_model_costs cost;
        rc = sn_model_cost(ctx, &cfg, sizes[0].h, sizes[0].w, &cost);
        if (!rc) f.json ? print_json(&cfg, sizes[0], &cost) : print_table(&cfg, sizes[0], &cost);
    }
    if (rc) fprintf(stderr, "segnas: %s\n", sn_ctx_error(ctx));
    sn_ctx_destroy(ctx);
    return rc ? (rc == SN_ERR_ARG ? 2 : 1) : 0;
}
