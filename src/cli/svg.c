#include "cli/svg.h"

#include <errno.h>
#include <string.h>

static const char *level_names[] = {"/4", "/8", "/16", "/32", "/64", "/128"};

/* Trellis: x = layer, y = level (finer on top); grey nodes, the path in red. */
static void draw_trellis(FILE *f, const sn_genotype *g, int x0, int y0)
{
    const int dx = 44, dy = 56;
    fprintf(f, "<text x='%d' y='%d' class='h'>network level: downsample per layer</text>\n", x0 - 30, y0 - 24);
    for (int s = 0; s < g->n_levels; s++)
        fprintf(f, "<text x='%d' y='%d' class='t' text-anchor='end'>%s</text>\n", x0 - 8, y0 + s * dy + 4,
                level_names[s]);
    for (int l = 0; l < g->n_layers; l++) {
        fprintf(f, "<text x='%d' y='%d' class='t' text-anchor='middle'>%d</text>\n", x0 + 20 + l * dx,
                y0 + g->n_levels * dy - 10, l + 1);
        for (int s = 0; s < g->n_levels; s++)
            fprintf(f, "<circle cx='%d' cy='%d' r='5' fill='#ddd'/>\n", x0 + 20 + l * dx, y0 + s * dy);
    }
    fprintf(f, "<polyline fill='none' stroke='#d62728' stroke-width='3' points='");
    for (int l = 0; l < g->n_layers; l++) fprintf(f, "%d,%d ", x0 + 20 + l * dx, y0 + g->path[l] * dy);
    fprintf(f, "'/>\n");
    for (int l = 0; l < g->n_layers; l++)
        fprintf(f, "<circle cx='%d' cy='%d' r='7' fill='#d62728'/>\n", x0 + 20 + l * dx, y0 + g->path[l] * dy);
}

static const char *op_colour(int op)
{
    switch (op) {
    case SN_CELL_SEP_CONV_3X3:
    case SN_CELL_SEP_CONV_5X5: return "#1f77b4";
    case SN_CELL_ATROUS_3X3:
    case SN_CELL_ATROUS_5X5: return "#2ca02c";
    case SN_CELL_MAX_POOL_3X3:
    case SN_CELL_AVG_POOL_3X3: return "#9467bd";
    default: return "#7f7f7f";
    }
}

/* Cell: inputs on the left, blocks in a column, the concatenation on the
 * right; one labelled curve per (input, op) pair. */
static void draw_cell(FILE *f, const sn_genotype *g, int x0, int y0)
{
    const sn_cell_genotype *c = &g->cell;
    const int bx = x0 + 260, dy = 64;
    int ny[SN_MAX_BLOCKS + 2], nx[SN_MAX_BLOCKS + 2];
    nx[0] = nx[1] = x0 + 40;
    ny[0] = y0 + 40, ny[1] = y0 + 40 + 2 * dy;
    for (int b = 0; b < c->n_blocks; b++) nx[b + 2] = bx + (b % 2) * 90, ny[b + 2] = y0 + b * dy;
    fprintf(f, "<text x='%d' y='%d' class='h'>cell (B=%d)</text>\n", x0, y0 - 24, c->n_blocks);
    for (int b = 0; b < c->n_blocks; b++)
        for (int k = 0; k < 2; k++) {
            int in = c->input[b][k], x1 = nx[in] + 34, y1 = ny[in], x2 = nx[b + 2] - 34, y2 = ny[b + 2];
            if (in >= 2) x1 = nx[in], y1 = ny[in] + 14, x2 = nx[b + 2], y2 = ny[b + 2] - 14;
            const char *col = op_colour(c->op[b][k]);
            fprintf(f, "<path d='M%d,%d C%d,%d %d,%d %d,%d' fill='none' stroke='%s' stroke-width='2' "
                       "marker-end='url(#arrow)'/>\n",
                    x1, y1, (x1 + x2) / 2, y1, (x1 + x2) / 2, y2, x2, y2, col);
            fprintf(f, "<text x='%d' y='%d' class='op' fill='%s'>%s</text>\n", (x1 + x2) / 2 - 30,
                    (y1 + y2) / 2 - 4 + k * 12, col, sn_cell_op_name(c->op[b][k]));
        }
    const char *in_names[2] = {"H(l-2)", "H(l-1)"};
    for (int i = 0; i < c->n_blocks + 2; i++) {
        fprintf(f, "<rect x='%d' y='%d' width='68' height='28' rx='6' fill='%s' stroke='#333'/>\n", nx[i] - 34,
                ny[i] - 14, i < 2 ? "#fff3c4" : "#e8f0fe");
        if (i < 2) fprintf(f, "<text x='%d' y='%d' class='t' text-anchor='middle'>%s</text>\n", nx[i], ny[i] + 4, in_names[i]);
        else fprintf(f, "<text x='%d' y='%d' class='t' text-anchor='middle'>block %d</text>\n", nx[i], ny[i] + 4, i - 2);
    }
    int ox = bx + 230, oy = y0 + (c->n_blocks - 1) * dy / 2;
    for (int b = 0; b < c->n_blocks; b++)
        fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#bbb' stroke-dasharray='4 3'/>\n", nx[b + 2] + 34,
                ny[b + 2], ox - 34, oy);
    fprintf(f, "<rect x='%d' y='%d' width='68' height='28' rx='6' fill='#e6f4ea' stroke='#333'/>\n", ox - 34, oy - 14);
    fprintf(f, "<text x='%d' y='%d' class='t' text-anchor='middle'>H(l)=concat</text>\n", ox, oy + 4);
}

int svg_write_genotype(const char *path, const sn_genotype *g, const char *title)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "segnas: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    int trellis_w = 60 + g->n_layers * 44 > 340 ? 60 + g->n_layers * 44 : 340, height = 120 + (g->cell.n_blocks > 4 ? g->cell.n_blocks : 4) * 64;
    int width = trellis_w + 620;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d'>\n", width, height,
            width, height);
    fprintf(f, "<style>.h{font:bold 14px sans-serif}.t{font:12px sans-serif}.op{font:11px monospace}</style>\n"
               "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='6' markerHeight='6' "
               "orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#555'/></marker></defs>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(f, "<text x='16' y='22' class='h'>%s (F=%d)</text>\n", title, g->filter_multiplier);
    draw_trellis(f, g, 50, 80);
    draw_cell(f, g, trellis_w + 40, 80);
    fprintf(f, "</svg>\n");
    if (fclose(f)) {
        fprintf(stderr, "segnas: cannot write %s\n", path);
        return 1;
    }
    return 0;
}
