/* A small SVG line-chart writer: axes with "nice" ticks, a title, axis
 * labels, a legend and one polyline per series. Non-finite points (NaN,
 * inf: a diverged loss, a failed evaluation) break a line rather than
 * poison the axis range; a chart without any finite point still draws its
 * frame with a "no data" note. */
#ifndef SEGNAS_CLI_SVG_CHART_H
#define SEGNAS_CLI_SVG_CHART_H

#include <stdbool.h>
#include <stdint.h>

typedef struct svg_series {
    const char *name;    /* legend label; NULL = not in the legend */
    const double *x, *y; /* n points, x ascending */
    int64_t n;
    const char *colour;  /* "#rrggbb"; NULL = svg_chart_colour(index of the series) */
    double width;        /* stroke width in px; 0 = 2 */
    double opacity;      /* 0 = opaque */
    bool markers;        /* a dot at each point (short series: one point per epoch) */
    bool dashed;
} svg_series;

typedef struct svg_chart {
    const char *title, *x_label, *y_label;
    int width, height;   /* 0 = 720 x 420 (the legend column included) */
    bool y_from_zero;    /* stretch the y range to include 0 */
    double y_min, y_max; /* a fixed y range when y_min < y_max (e.g. 0..1 for probabilities) */
    const svg_series *series;
    int n_series;
} svg_chart;

/* The i-th colour of a 10-colour qualitative palette (Tableau 10: tells
 * lines apart, also in print). */
const char *svg_chart_colour(int i);

/* Writes the chart to `path` atomically. Returns 0, or prints one error
 * line naming the file and returns 1. */
int svg_chart_write(const char *path, const svg_chart *c);

#endif
