/* SVG figure writer for the experiment examples (see svg.h). The figure is built in a
 * growing text buffer and written in one go, so a failed figure leaves no partial file. */
#include "svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL_W = 440, PANEL_H = 330, TITLE_H = 36 };
/* Plot area inside a panel: margins for tick labels, axis labels and the panel title. */
enum { MARGIN_L = 62, MARGIN_R = 16, MARGIN_T = 30, MARGIN_B = 46 };

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
enum { N_COLOURS = sizeof palette / sizeof palette[0] };

struct svg_figure {
    char *buf;
    size_t len, cap;
    int cols, rows;
    int failed;
};

/* Plot-area geometry of one panel. */
typedef struct area {
    double x0, y0, w, h;
} area;

static void put(svg_figure *f, const char *fmt, ...)
{
    if (f->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(f->buf + f->len, f->cap - f->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            f->failed = 1;
            return;
        }
        if ((size_t)n < f->cap - f->len) {
            f->len += (size_t)n;
            return;
        }
        size_t cap = f->cap * 2 + (size_t)n + 1;
        char *grown = realloc(f->buf, cap);
        if (grown == NULL) {
            f->failed = 1;
            return;
        }
        f->buf = grown;
        f->cap = cap;
    }
}

/* Text with the XML special characters escaped. */
static void put_text(svg_figure *f, double x, double y, int size, const char *anchor,
                     const char *extra, const char *text)
{
    put(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\"%s>", x, y, size,
        anchor, extra != NULL ? extra : "");
    for (const char *c = text != NULL ? text : ""; *c != '\0'; c++) {
        switch (*c) {
        case '<': put(f, "&lt;"); break;
        case '>': put(f, "&gt;"); break;
        case '&': put(f, "&amp;"); break;
        case '"': put(f, "&quot;"); break;
        default: put(f, "%c", *c);
        }
    }
    put(f, "</text>\n");
}

svg_figure *svg_figure_create(int cols, int rows, const char *title)
{
    if (cols <= 0 || rows <= 0 || cols > 16 || rows > 16)
        return NULL;
    svg_figure *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->cap = 1 << 16;
    f->buf = malloc(f->cap);
    if (f->buf == NULL) {
        free(f);
        return NULL;
    }
    f->buf[0] = '\0';
    f->cols = cols;
    f->rows = rows;
    int w = cols * PANEL_W, h = rows * PANEL_H + TITLE_H;
    put(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
           "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n", w, h, w, h);
    put(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    put_text(f, w / 2.0, 24, 16, "middle", " font-weight=\"bold\"", title);
    return f;
}

void svg_figure_free(svg_figure *f)
{
    if (f == NULL)
        return;
    free(f->buf);
    free(f);
}

int svg_figure_save(svg_figure *f, const char *path)
{
    if (f == NULL)
        return -1;
    put(f, "</svg>\n");
    int rc = -1;
    if (!f->failed && path != NULL) {
        FILE *out = fopen(path, "wb");
        if (out != NULL) {
            size_t written = fwrite(f->buf, 1, f->len, out);
            rc = (fclose(out) == 0 && written == f->len) ? 0 : -1;
        }
    }
    svg_figure_free(f);
    return rc;
}

/* Plot area of a panel, with its title and axis labels drawn; fails for a bad index. */
static int begin_panel(svg_figure *f, int panel, const char *title, const char *xlabel,
                       const char *ylabel, area *a)
{
    if (f == NULL)
        return -1;
    if (panel < 0 || panel >= f->cols * f->rows) {
        f->failed = 1;
        return -1;
    }
    double px = (panel % f->cols) * PANEL_W, py = TITLE_H + (panel / f->cols) * PANEL_H;
    a->x0 = px + MARGIN_L;
    a->y0 = py + MARGIN_T;
    a->w = PANEL_W - MARGIN_L - MARGIN_R;
    a->h = PANEL_H - MARGIN_T - MARGIN_B;
    put_text(f, px + PANEL_W / 2.0, py + 18, 13, "middle", NULL, title);
    put_text(f, a->x0 + a->w / 2, a->y0 + a->h + 38, 11, "middle", NULL, xlabel);
    char rotate[96];
    snprintf(rotate, sizeof rotate, " transform=\"rotate(-90 %.1f %.1f)\"", px + 14,
             a->y0 + a->h / 2);
    put_text(f, px + 14, a->y0 + a->h / 2, 11, "middle", rotate, ylabel);
    return f->failed ? -1 : 0;
}

static void frame(svg_figure *f, const area *a)
{
    put(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
           "stroke=\"black\" stroke-width=\"0.8\"/>\n", a->x0, a->y0, a->w, a->h);
}

/* Five ticks with labels along the x (horizontal) or y axis for the range [lo, hi]. */
static void ticks(svg_figure *f, const area *a, double lo, double hi, int vertical,
                  int log_scale)
{
    for (int i = 0; i <= 4; i++) {
        double t = i / 4.0, v = lo + t * (hi - lo);
        char label[32];
        snprintf(label, sizeof label, "%.3g", log_scale ? pow(10, v) : v);
        if (vertical) {
            double y = a->y0 + a->h * (1 - t);
            put(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                a->x0 - 4, y, a->x0, y);
            put_text(f, a->x0 - 6, y + 4, 10, "end", NULL, label);
        } else {
            double x = a->x0 + a->w * t;
            put(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                x, a->y0 + a->h, x, a->y0 + a->h + 4);
            put_text(f, x, a->y0 + a->h + 16, 10, "middle", NULL, label);
        }
    }
}

static void legend(svg_figure *f, const area *a, const svg_series *series, int n_series)
{
    for (int s = 0; s < n_series; s++) {
        if (series[s].label == NULL)
            continue;
        double y = a->y0 + 14 + 14 * s;
        put(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"3\" fill=\"%s\"/>\n",
            a->x0 + a->w - 150, y - 4, palette[s % N_COLOURS]);
        put_text(f, a->x0 + a->w - 134, y, 10, "start", NULL, series[s].label);
    }
}

/* Diverging blue-white-red colour for t in [0, 1]. */
static void diverging(double t, int rgb[3])
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const int blue[3] = {33, 102, 172}, red[3] = {178, 24, 43};
    const int *end = t < 0.5 ? blue : red;
    double w = t < 0.5 ? 1 - 2 * t : 2 * t - 1;
    for (int c = 0; c < 3; c++)
        rgb[c] = (int)lround(255 * (1 - w) + end[c] * w);
}

int svg_heatmap(svg_figure *f, int panel, const char *title, const float *m, int rows,
                int cols, int ld, double vmin, double vmax, const char *xlabel,
                const char *ylabel)
{
    area a;
    if (f == NULL || m == NULL || rows <= 0 || cols <= 0 || ld < cols || !(vmax > vmin)) {
        if (f != NULL)
            f->failed = 1;
        return -1;
    }
    if (begin_panel(f, panel, title, xlabel, ylabel, &a) != 0)
        return -1;
    a.w -= 40; /* room for the colour bar */
    double cw = a.w / cols, ch = a.h / rows;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            int rgb[3];
            diverging((m[(size_t)r * ld + c] - vmin) / (vmax - vmin), rgb);
            if (rgb[0] >= 250 && rgb[1] >= 250 && rgb[2] >= 250)
                continue; /* white on the white background: keeps files small */
            put(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                   "fill=\"rgb(%d,%d,%d)\"/>\n", a.x0 + c * cw, a.y0 + r * ch, cw + 0.05,
                ch + 0.05, rgb[0], rgb[1], rgb[2]);
        }
    frame(f, &a);
    char label[32];
    snprintf(label, sizeof label, "%d", cols - 1); /* first and last index of each axis */
    put_text(f, a.x0 + cw / 2, a.y0 + a.h + 14, 10, "middle", NULL, "0");
    put_text(f, a.x0 + a.w - cw / 2, a.y0 + a.h + 14, 10, "middle", NULL, label);
    snprintf(label, sizeof label, "%d", rows - 1);
    put_text(f, a.x0 - 4, a.y0 + ch / 2 + 4, 10, "end", NULL, "0");
    put_text(f, a.x0 - 4, a.y0 + a.h - ch / 2 + 4, 10, "end", NULL, label);
    for (int i = 0; i < 20; i++) { /* colour bar, vmax at the top */
        int rgb[3];
        diverging(1 - (i + 0.5) / 20, rgb);
        put(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"%.2f\" "
               "fill=\"rgb(%d,%d,%d)\"/>\n", a.x0 + a.w + 8, a.y0 + i * a.h / 20,
            a.h / 20 + 0.05, rgb[0], rgb[1], rgb[2]);
    }
    snprintf(label, sizeof label, "%.3g", vmax);
    put_text(f, a.x0 + a.w + 20, a.y0 + 8, 9, "start", NULL, label);
    snprintf(label, sizeof label, "%.3g", vmin);
    put_text(f, a.x0 + a.w + 20, a.y0 + a.h, 9, "start", NULL, label);
    return f->failed ? -1 : 0;
}

/* Checks a list of series: at least one, each with values (and x when required). */
static int series_ok(const svg_series *series, int n_series)
{
    if (series == NULL || n_series <= 0)
        return 0;
    for (int s = 0; s < n_series; s++)
        if (series[s].y == NULL || series[s].n < 0)
            return 0;
    return 1;
}

int svg_histogram(svg_figure *f, int panel, const char *title, const svg_series *series,
                  int n_series, int n_bins, double lo, double hi, const char *xlabel,
                  int log_y)
{
    area a;
    if (f == NULL || !series_ok(series, n_series) || n_bins <= 0 || n_bins > 10000 ||
        !(hi > lo)) {
        if (f != NULL)
            f->failed = 1;
        return -1;
    }
    double *counts = calloc((size_t)n_series * (size_t)n_bins, sizeof *counts);
    if (counts == NULL) {
        f->failed = 1;
        return -1;
    }
    double top = 0;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double v = series[s].y[i];
            if (isnan(v))
                continue;
            int b = (int)floor((v - lo) / (hi - lo) * n_bins);
            b = b < 0 ? 0 : b >= n_bins ? n_bins - 1 : b;
            double *c = &counts[(size_t)s * n_bins + b];
            *c += 1;
        }
    for (size_t i = 0; i < (size_t)n_series * n_bins; i++) {
        if (log_y)
            counts[i] = log10(1 + counts[i]);
        top = counts[i] > top ? counts[i] : top;
    }
    top = top > 0 ? top : 1;
    if (begin_panel(f, panel, title, xlabel, log_y ? "log10(1 + count)" : "count", &a) == 0) {
        for (int s = 0; s < n_series; s++) {
            put(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.4\" points=\"",
                palette[s % N_COLOURS]);
            for (int b = 0; b < n_bins; b++) {
                double y = a.y0 + a.h * (1 - counts[(size_t)s * n_bins + b] / top);
                put(f, "%.1f,%.1f %.1f,%.1f ", a.x0 + a.w * b / n_bins, y,
                    a.x0 + a.w * (b + 1) / n_bins, y);
            }
            put(f, "\"/>\n");
        }
        frame(f, &a);
        ticks(f, &a, lo, hi, 0, 0);
        ticks(f, &a, 0, top, 1, 0);
        legend(f, &a, series, n_series);
    }
    free(counts);
    return f->failed ? -1 : 0;
}

static double x_of(const svg_series *s, int i, int log_x)
{
    double x = s->x != NULL ? s->x[i] : i;
    return log_x ? log10(x) : x;
}

/* Range of the finite x and y values of every series; 0 if there is none. */
static int data_range(const svg_series *series, int n_series, int log_x, double r[4])
{
    r[0] = r[2] = INFINITY;
    r[1] = r[3] = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = x_of(&series[s], i, log_x), y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y))
                continue;
            r[0] = fmin(r[0], x), r[1] = fmax(r[1], x);
            r[2] = fmin(r[2], y), r[3] = fmax(r[3], y);
        }
    if (!(r[1] >= r[0]))
        return 0;
    for (int k = 0; k < 4; k += 2) { /* widen empty ranges; pad y by 5% */
        if (r[k + 1] - r[k] < 1e-12)
            r[k] -= 0.5, r[k + 1] += 0.5;
    }
    double pad = 0.05 * (r[3] - r[2]);
    r[2] -= pad, r[3] += pad;
    return 1;
}

int svg_lines(svg_figure *f, int panel, const char *title, const svg_series *series,
              int n_series, const char *xlabel, const char *ylabel, int log_x, double vline)
{
    area a;
    double r[4];
    if (f == NULL || !series_ok(series, n_series) || !data_range(series, n_series, log_x, r)) {
        if (f != NULL)
            f->failed = 1;
        return -1;
    }
    if (begin_panel(f, panel, title, xlabel, ylabel, &a) != 0)
        return -1;
#define PX(x) (a.x0 + a.w * ((x) - r[0]) / (r[1] - r[0]))
#define PY(y) (a.y0 + a.h * (1 - ((y) - r[2]) / (r[3] - r[2])))
    for (int s = 0; s < n_series; s++) {
        const char *colour = palette[s % N_COLOURS];
        put(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", colour);
        for (int i = 0; i < series[s].n; i++) {
            double x = x_of(&series[s], i, log_x), y = series[s].y[i];
            if (isfinite(x) && isfinite(y))
                put(f, "%.1f,%.1f ", PX(x), PY(y));
        }
        put(f, "\"/>\n");
        for (int i = 0; i < series[s].n; i++) {
            double x = x_of(&series[s], i, log_x), y = series[s].y[i];
            if (isfinite(x) && isfinite(y))
                put(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\"/>\n", PX(x),
                    PY(y), colour);
        }
    }
    double vx = log_x && vline > 0 ? log10(vline) : vline;
    if (isfinite(vx) && vx >= r[0] && vx <= r[1])
        put(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"gray\" "
               "stroke-dasharray=\"5,4\"/>\n", PX(vx), a.y0, PX(vx), a.y0 + a.h);
#undef PX
#undef PY
    frame(f, &a);
    ticks(f, &a, r[0], r[1], 0, log_x);
    ticks(f, &a, r[2], r[3], 1, 0);
    legend(f, &a, series, n_series);
    return f->failed ? -1 : 0;
}
