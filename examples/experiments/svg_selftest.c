/* Draws one panel of each kind, so the SVG writer is exercised by the build and ctest. */
#include "svg.h"

#include <math.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "svg_selftest.svg";
    float m[6 * 8];
    double a[200], b[200], xs[5] = {1, 2, 4, 8, 16}, ys[5] = {0.2, 0.5, 0.9, 0.7, 0.4};
    for (int i = 0; i < 48; i++)
        m[i] = (float)sin(i * 0.3);
    for (int i = 0; i < 200; i++)
        a[i] = sin(i * 0.1), b[i] = cos(i * 0.07) * 0.5;
    svg_series hist[2] = {{"sin", NULL, a, 200}, {"cos/2", NULL, b, 200}};
    svg_series line[1] = {{"curve <&>", xs, ys, 5}};
    svg_figure *f = svg_figure_create(3, 1, "svg writer self-test");
    int rc = f == NULL;
    rc |= svg_heatmap(f, 0, "heat map", m, 6, 8, 8, -1, 1, "column", "row") != 0;
    rc |= svg_histogram(f, 1, "histogram", hist, 2, 20, -1, 1, "value", 1) != 0;
    rc |= svg_lines(f, 2, "lines", line, 1, "x", "y", 1, 4.0) != 0;
    rc |= svg_heatmap(f, 9, "out of range", m, 6, 8, 8, -1, 1, "", "") != -1; /* refused */
    rc |= svg_figure_save(f, path) != -1; /* the refused panel marks the figure failed */
    f = svg_figure_create(3, 1, "svg writer self-test");
    rc |= svg_heatmap(f, 0, "heat map", m, 6, 8, 8, -1, 1, "column", "row") != 0;
    rc |= svg_histogram(f, 1, "histogram", hist, 2, 20, -1, 1, "value", 1) != 0;
    rc |= svg_lines(f, 2, "lines", line, 1, "x", "y", 1, 4.0) != 0;
    rc |= svg_figure_save(f, path) != 0;
    if (rc)
        fprintf(stderr, "svg_selftest: failed\n");
    return rc;
}
