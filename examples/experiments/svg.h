/* A minimal SVG figure writer for the experiment examples: a grid of panels (heat maps,
 * histograms, line plots), written as one self-contained .svg file that any browser shows.
 * No dependency beyond libc; example code only (the library itself never writes files).
 *
 *   svg_figure *f = svg_figure_create(2, 1, "Experiment 1");   // 2 columns, 1 row
 *   svg_heatmap(f, 0, "L1 SAE", cos, n_true, n_latents, n_latents, -1, 1, "latent", "feature");
 *   svg_histogram(f, 1, "decoder cosines", series, 2, 40, -1, 1, "cosine", 0);
 *   int rc = svg_figure_save(f, "fig.svg");                  // also frees f
 *
 * Every call returns 0 on success and -1 on bad arguments or out of memory; after an error
 * the figure remembers it and svg_figure_save returns -1 without writing. */
#ifndef SAE_EXAMPLES_SVG_H
#define SAE_EXAMPLES_SVG_H

#include <stddef.h>

typedef struct svg_figure svg_figure;

/** One series of values for svg_histogram, or of (x, y) points for svg_lines. */
typedef struct svg_series {
    const char *label;  /**< legend text (may be NULL) */
    const double *x;    /**< x values (svg_lines only; NULL means 0, 1, 2, ...) */
    const double *y;    /**< the values (histogram) or the y values (lines) */
    int n;              /**< number of values / points */
} svg_series;

/** A figure of cols x rows panels of a fixed size with a title above them. */
svg_figure *svg_figure_create(int cols, int rows, const char *title);

/** Heat map of a rows x cols row-major float matrix (leading dimension ld), colours from
 *  blue (vmin) through white to red (vmax). Large matrices are drawn cell by cell, so keep
 *  them below a few hundred rows and columns. */
int svg_heatmap(svg_figure *f, int panel, const char *title, const float *m, int rows,
                int cols, int ld, double vmin, double vmax, const char *xlabel,
                const char *ylabel);

/** Overlaid histograms (outlines) of several series over [lo, hi] with n_bins bins;
 *  log_y != 0 draws counts on a log10(1 + count) axis. Values outside are clamped. */
int svg_histogram(svg_figure *f, int panel, const char *title, const svg_series *series,
                  int n_series, int n_bins, double lo, double hi, const char *xlabel,
                  int log_y);

/** Line plots of several series with markers; log_x != 0 uses a log10 x axis (x > 0).
 *  A vertical dashed marker is drawn at x = vline unless vline is NaN. */
int svg_lines(svg_figure *f, int panel, const char *title, const svg_series *series,
              int n_series, const char *xlabel, const char *ylabel, int log_x, double vline);

/** Writes the figure to path and frees it (also on error). Returns 0 or -1. */
int svg_figure_save(svg_figure *f, const char *path);

/** Frees a figure without writing it. NULL is a no-op. */
void svg_figure_free(svg_figure *f);

#endif
