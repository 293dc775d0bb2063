#include "cli/svg_chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segnas/tensor.h"

const char *svg_chart_colour(int i)
{
    static const char *tab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    return tab10[(i % 10 + 10) % 10];
}

/* ---- axis ranges and ticks ------------------------------------------------- */
typedef struct axis {
    double lo, hi, step; /* ticks at lo, lo+step, ..., hi */
} axis;

/* The "nice number" of Heckbert (Graphics Gems, 1990): 1, 2, 5 or 10 times a
 * power of ten, rounded or taken as the ceiling. */
static double nice_number(double v, bool round_it)
{
    double e = floor(log10(v)), f = v / pow(10, e), n;
    if (round_it) n = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return n * pow(10, e);
}

/* lo..hi (finite, lo <= hi) widened to whole ticks, about 6 of them. */
static axis make_axis(double lo, double hi)
{
    if (!(hi > lo)) {
        double pad = fabs(lo) > 1e-12 ? fabs(lo) * 0.1 : 1;
        lo -= pad, hi += pad;
    }
    double step = nice_number(nice_number(hi - lo, false) / 5, true);
    axis a = {floor(lo / step) * step, ceil(hi / step) * step, step};
    /* Float ceil/floor may put lo or hi an epsilon past a tick. */
    if (a.lo > lo) a.lo -= step;
    if (a.hi < hi) a.hi += step;
    return a;
}

/* A tick label with as many decimals as the step needs ("0.25", "1200"),
 * exponent notation only for very large or small values. */
static void format_tick(double v, double step, char *buf, size_t len)
{
    if (fabs(v) < step * 1e-9) v = 0; /* no "-0" nor "1e-17" at zero */
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) >= 1e7 || decimals > 6) snprintf(buf, len, "%.3g", v);
    else snprintf(buf, len, "%.*f", decimals, v);
}

static bool finite_point(const svg_series *s, int64_t i)
{
    return isfinite(s->x[i]) && isfinite(s->y[i]);
}

/* The range of the finite values; false when there are none. */
static bool data_range(const svg_chart *c, bool want_x, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int k = 0; k < c->n_series; k++)
        for (int64_t i = 0; i < c->series[k].n; i++) {
            if (!finite_point(&c->series[k], i)) continue;
            double v = want_x ? c->series[k].x[i] : c->series[k].y[i];
            *lo = v < *lo ? v : *lo, *hi = v > *hi ? v : *hi;
        }
    return *lo <= *hi;
}

/* ---- drawing ----------------------------------------------------------------- */
typedef struct frame {
    double x0, y0, w, h; /* the plot area in px */
    axis ax, ay;
} frame;

static double px(const frame *f, double x) { return f->x0 + (x - f->ax.lo) / (f->ax.hi - f->ax.lo) * f->w; }
static double py(const frame *f, double y) { return f->y0 + f->h - (y - f->ay.lo) / (f->ay.hi - f->ay.lo) * f->h; }

static void put_escaped(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '\'': fputs("&apos;", out); break;
        case '"': fputs("&quot;", out); break;
        default:
            /* Control characters are not allowed in XML 1.0. */
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, out);
        }
    }
}

static void draw_axes(FILE *out, const svg_chart *c, const frame *f)
{
    char label[64];
    /* Ticks by index: summing the step would drift (0.1 + 0.2 != 0.3). */
    long ny = lround((f->ay.hi - f->ay.lo) / f->ay.step), nx = lround((f->ax.hi - f->ax.lo) / f->ax.step);
    for (long i = 0; i <= ny; i++) {
        double t = f->ay.lo + (double)i * f->ay.step, y = py(f, t);
        fprintf(out, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>\n", f->x0, y, f->x0 + f->w, y);
        format_tick(t, f->ay.step, label, sizeof label);
        fprintf(out, "<text x='%.1f' y='%.1f' class='tick' text-anchor='end'>%s</text>\n", f->x0 - 6, y + 4, label);
    }
    for (long i = 0; i <= nx; i++) {
        double t = f->ax.lo + (double)i * f->ax.step, x = px(f, t);
        fprintf(out, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>\n", x, f->y0, x, f->y0 + f->h);
        format_tick(t, f->ax.step, label, sizeof label);
        fprintf(out, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>%s</text>\n", x, f->y0 + f->h + 16,
                label);
    }
    fprintf(out, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#333'/>\n", f->x0, f->y0,
            f->w, f->h);
    fprintf(out, "<text x='%.1f' y='%.1f' class='label' text-anchor='middle'>", f->x0 + f->w / 2, f->y0 + f->h + 38);
    put_escaped(out, c->x_label);
    fprintf(out, "</text>\n<text x='16' y='%.1f' class='label' text-anchor='middle' transform='rotate(-90 16 %.1f)'>",
            f->y0 + f->h / 2, f->y0 + f->h / 2);
    put_escaped(out, c->y_label);
    fprintf(out, "</text>\n");
}

static void stroke_style(FILE *out, const svg_series *s, const char *colour)
{
    fprintf(out, "fill='none' stroke='%s' stroke-width='%.2g' stroke-linejoin='round'", colour,
            s->width > 0 ? s->width : 2.0);
    if (s->opacity > 0 && s->opacity < 1) fprintf(out, " stroke-opacity='%.2g'", s->opacity);
    if (s->dashed) fprintf(out, " stroke-dasharray='6 4'");
}

/* Points of one finite run [a, b). Thousands of steps would give a
 * megabyte polyline no viewer needs: above 4 points per pixel column, each
 * column keeps its first, lowest, highest and last point, so spikes (a
 * diverging loss) stay visible. */
static void put_points(FILE *out, const frame *f, const svg_series *s, int64_t a, int64_t b)
{
    double cols = f->w;
    if ((double)(b - a) <= 4 * cols) {
        for (int64_t i = a; i < b; i++) fprintf(out, "%.1f,%.1f ", px(f, s->x[i]), py(f, s->y[i]));
        return;
    }
    int64_t i = a;
    while (i < b) {
        long col = lround(px(f, s->x[i]));
        int64_t j = i, lo = i, hi = i;
        while (j < b && lround(px(f, s->x[j])) == col) {
            if (s->y[j] < s->y[lo]) lo = j;
            if (s->y[j] > s->y[hi]) hi = j;
            j++;
        }
        int64_t keep[4] = {i, lo < hi ? lo : hi, lo < hi ? hi : lo, j - 1};
        for (int k = 0; k < 4; k++)
            if (k == 0 || keep[k] != keep[k - 1]) fprintf(out, "%.1f,%.1f ", px(f, s->x[keep[k]]), py(f, s->y[keep[k]]));
        i = j;
    }
}

static void draw_series(FILE *out, const frame *f, const svg_series *s, const char *colour)
{
    int64_t i = 0;
    while (i < s->n) {
        while (i < s->n && !finite_point(s, i)) i++;
        int64_t j = i;
        while (j < s->n && finite_point(s, j)) j++;
        if (j - i == 1 && !s->markers) /* an isolated point: a polyline of one point is invisible */
            fprintf(out, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='%s'/>\n", px(f, s->x[i]), py(f, s->y[i]), colour);
        else if (j - i > 1) {
            fprintf(out, "<polyline ");
            stroke_style(out, s, colour);
            fprintf(out, " points='");
            put_points(out, f, s, i, j);
            fprintf(out, "'/>\n");
        }
        i = j;
    }
    if (s->markers)
        for (int64_t k = 0; k < s->n; k++)
            if (finite_point(s, k))
                fprintf(out, "<circle cx='%.1f' cy='%.1f' r='3.5' fill='%s'/>\n", px(f, s->x[k]), py(f, s->y[k]), colour);
}

static void draw_legend(FILE *out, const svg_chart *c, double x, double y)
{
    for (int k = 0; k < c->n_series; k++) {
        const svg_series *s = &c->series[k];
        if (!s->name) continue;
        const char *colour = s->colour ? s->colour : svg_chart_colour(k);
        fprintf(out, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' ", x, y, x + 24, y);
        stroke_style(out, s, colour);
        fprintf(out, "/>\n<text x='%.1f' y='%.1f' class='legend'>", x + 30, y + 4);
        put_escaped(out, s->name);
        fprintf(out, "</text>\n");
        y += 18;
    }
}

static bool has_legend(const svg_chart *c)
{
    for (int k = 0; k < c->n_series; k++)
        if (c->series[k].name) return true;
    return false;
}

static void draw_chart(FILE *out, const svg_chart *c)
{
    int width = c->width > 0 ? c->width : 720, height = c->height > 0 ? c->height : 420;
    double legend_w = has_legend(c) ? 170 : 0;
    frame f = {.x0 = 72, .y0 = 44, .w = width - 72 - 20 - legend_w, .h = height - 44 - 56};
    double xlo, xhi, ylo, yhi;
    bool any = data_range(c, true, &xlo, &xhi) && data_range(c, false, &ylo, &yhi);
    if (!any) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
    if (c->y_min < c->y_max) ylo = c->y_min, yhi = c->y_max;
    if (c->y_from_zero) ylo = ylo < 0 ? ylo : 0, yhi = yhi > 0 ? yhi : 0;
    f.ax = make_axis(xlo, xhi), f.ay = make_axis(ylo, yhi);
    if (c->y_min < c->y_max) f.ay.lo = c->y_min, f.ay.hi = c->y_max; /* exactly the range asked for */

    fprintf(out, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d'>\n", width,
            height, width, height);
    fprintf(out, "<style>.title{font:bold 15px sans-serif}.label{font:13px sans-serif}.tick{font:11px sans-serif;"
                 "fill:#444}.legend{font:12px sans-serif}.grid{stroke:#e4e4e4;stroke-width:1}</style>\n");
    fprintf(out, "<defs><clipPath id='plot-area'><rect x='%.1f' y='%.1f' width='%.1f' height='%.1f'/></clipPath></defs>\n",
            f.x0, f.y0 - 4, f.w, f.h + 8);
    fprintf(out, "<rect width='100%%' height='100%%' fill='white'/>\n<text x='%.1f' y='24' class='title' "
                 "text-anchor='middle'>", f.x0 + f.w / 2);
    put_escaped(out, c->title);
    fprintf(out, "</text>\n");
    draw_axes(out, c, &f);
    fprintf(out, "<g clip-path='url(#plot-area)'>\n");
    for (int k = 0; k < c->n_series; k++)
        draw_series(out, &f, &c->series[k], c->series[k].colour ? c->series[k].colour : svg_chart_colour(k));
    fprintf(out, "</g>\n");
    if (!any)
        fprintf(out, "<text x='%.1f' y='%.1f' class='label' text-anchor='middle' fill='#888'>no data</text>\n",
                f.x0 + f.w / 2, f.y0 + f.h / 2);
    draw_legend(out, c, f.x0 + f.w + 16, f.y0 + 10);
    fprintf(out, "</svg>\n");
}

int svg_chart_write(const char *path, const svg_chart *c)
{
    char *text = NULL, err[512];
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        fprintf(stderr, "segnas: cannot write %s: out of memory\n", path);
        return 1;
    }
    draw_chart(out, c);
    bool ok = !ferror(out);
    ok = !fclose(out) && ok;
    int rc = ok ? sn_write_file_atomic(path, text, len, err, sizeof err) : 1;
    if (rc) fprintf(stderr, "segnas: %s\n", ok ? err : "cannot write a chart: out of memory");
    free(text);
    return rc ? 1 : 0;
}
