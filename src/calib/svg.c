/* Reliability diagram as a small self-contained SVG: per-bin accuracy bars against confidence,
 * the diagonal, the gap between each bar and its bin's mean confidence shaded, the bin counts
 * above the bars, and the confidence histogram below. */
#include "cigl/metrics.h"

#include "cigl/error.h"
#include "cigl/svg.h"

#include <math.h>

#define WIDTH 520
#define HEIGHT 690
#define PX 80.0  /* plot left */
#define PY 80.0  /* plot top */
#define PS 400.0 /* plot size */
#define HY 560.0 /* histogram top */
#define HH 80.0  /* histogram height */

void svg_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if (*p >= 0x20 || *p == '\t') fputc(*p, f); /* XML 1.0 forbids other controls */
        }
    }
}

static double xpos(double c) { return PX + c * PS; }
static double ypos(double a) { return PY + (1.0 - a) * PS; }
static double hpos(double frac, double top) { return HY + (1.0 - frac / top) * HH; }

static void x_axis(FILE *f, double y)
{
    fprintf(f, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
            xpos(0), y, xpos(1), y);
    for (int t = 0; t <= 5; t++) {
        const double x = xpos(t / 5.0);
        fprintf(f, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, y,
                x, y + 5);
        fprintf(f, "<text class=\"tick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.1f</text>\n",
                x, y + 18, t / 5.0);
    }
    fprintf(f, "<text class=\"label\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">Confidence"
            "</text>\n", xpos(0.5), y + 36);
}

static void y_axis(FILE *f, double top, double height, int ticks, double vmax, const char *label)
{
    fprintf(f, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", PX, top,
            PX, top + height);
    for (int t = 0; t <= ticks; t++) {
        const double v = (double)t / ticks, y = top + (1.0 - v) * height;
        fprintf(f, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                PX - 5, y, PX, y);
        fprintf(f, "<text class=\"tick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%.2g</text>\n",
                PX - 8, y + 4, v * vmax);
    }
    fprintf(f, "<text class=\"label\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.2f %.2f)\">%s</text>\n", PX - 45, top + height / 2,
            PX - 45, top + height / 2, label);
}

int reliability_svg(const Metrics *m, FILE *f, const char *title)
{
    const double bw = PS / METRICS_BINS;
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", WIDTH, HEIGHT,
            WIDTH, HEIGHT);
    fputs("<style>.bar,.legend-bar{fill:#4878d0;stroke:#1f3f7a;stroke-width:0.5}"
          ".gap,.legend-gap{fill:#ee854a;fill-opacity:0.5;stroke:#c44e00;stroke-width:0.5}"
          ".hist{fill:#8c8c8c;stroke:#555;stroke-width:0.5}.diag{stroke:#333;"
          "stroke-dasharray:5,4}.axis{stroke:#000}.frame{fill:none;stroke:#000}"
          ".grid{stroke:#e5e5e5}.count{font-size:9px;text-anchor:middle}"
          ".mean-acc{stroke:#1f3f7a;stroke-width:1.5}.mean-conf{stroke:#c44e00;"
          "stroke-width:1.5;stroke-dasharray:4,3}</style>\n", f);
    fputs("<title>", f);
    svg_text(f, title);
    fprintf(f, " (ECE %.4f, %d bins)</title>\n", m->ece, METRICS_BINS);
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", WIDTH / 2);
    svg_text(f, title);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%d\" y=\"44\" text-anchor=\"middle\">ECE %.4f (%d bins), "
            "accuracy %.4f, N = %zu</text>\n", WIDTH / 2, m->ece, METRICS_BINS, m->accuracy,
            m->n);

    /* Reliability diagram. */
    for (int t = 1; t < 5; t++)
        fprintf(f, "<line class=\"grid\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                xpos(0), ypos(t / 5.0), xpos(1), ypos(t / 5.0));
    for (int b = 0; b < METRICS_BINS; b++) {
        if (m->bin_count[b] == 0) continue;
        const double acc = m->bin_accuracy[b], conf = m->bin_confidence[b];
        const double x = xpos((double)b / METRICS_BINS), top = acc > conf ? acc : conf;
        fprintf(f, "<rect class=\"bar\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                x, ypos(acc), bw, acc * PS);
        fprintf(f, "<rect class=\"gap\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                x, ypos(top), bw, fabs(acc - conf) * PS);
        fprintf(f, "<text class=\"count\" x=\"%.2f\" y=\"%.2f\">%zu</text>\n", x + bw / 2,
                ypos(top) - 3, m->bin_count[b]);
    }
    fprintf(f, "<line class=\"diag\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", xpos(0),
            ypos(0), xpos(1), ypos(1));
    fprintf(f, "<rect class=\"frame\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n", PX,
            PY, PS, PS);
    /* Legend: one row between the subtitle and the plot, clear of the bars. */
    const double ly = PY - 22;
    fprintf(f, "<rect class=\"legend-bar\" x=\"%.2f\" y=\"%.2f\" width=\"14\" height=\"10\"/>"
            "<text x=\"%.2f\" y=\"%.2f\">Accuracy</text>\n", PX, ly - 9, PX + 18, ly);
    fprintf(f, "<rect class=\"legend-gap\" x=\"%.2f\" y=\"%.2f\" width=\"14\" height=\"10\"/>"
            "<text x=\"%.2f\" y=\"%.2f\">Gap to mean confidence</text>\n", PX + 90, ly - 9,
            PX + 108, ly);
    fprintf(f, "<line class=\"diag\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>"
            "<text x=\"%.2f\" y=\"%.2f\">Perfect calibration</text>\n", PX + 262, ly - 4,
            PX + 282, ly - 4, PX + 288, ly);
    x_axis(f, PY + PS);
    y_axis(f, PY, PS, 5, 1.0, "Accuracy");

    /* Confidence histogram: fraction of samples per bin (axis up to the next multiple of 0.1
     * above the largest), the mean accuracy and the mean confidence. */
    double mean_conf = 0.0, top = 0.1;
    for (int b = 0; b < METRICS_BINS; b++)
        if (m->n > 0 && (double)m->bin_count[b] / (double)m->n > top)
            top = ceil(10.0 * (double)m->bin_count[b] / (double)m->n - 1e-9) / 10.0;
    for (int b = 0; b < METRICS_BINS; b++) {
        if (m->bin_count[b] == 0 || m->n == 0) continue;
        const double frac = (double)m->bin_count[b] / (double)m->n;
        mean_conf += frac * m->bin_confidence[b];
        fprintf(f, "<rect class=\"hist\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                xpos((double)b / METRICS_BINS), hpos(frac, top), bw, frac / top * HH);
    }
    fprintf(f, "<line class=\"mean-acc\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
            xpos(m->accuracy), HY, xpos(m->accuracy), HY + HH);
    fprintf(f, "<line class=\"mean-conf\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
            xpos(mean_conf), HY, xpos(mean_conf), HY + HH);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">Confidence histogram: accuracy (solid), mean "
            "confidence (dashed)</text>\n", PX, HY - 8);
    fprintf(f, "<rect class=\"frame\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n", PX,
            HY, PS, HH);
    x_axis(f, HY + HH);
    y_axis(f, HY, HH, 2, top, "Fraction");
    fputs("</svg>\n", f);
    if (fflush(f) != 0 || ferror(f))
        return cigl_fail(CIGL_ERR_RUNTIME, "writing the reliability diagram failed (disk "
                         "full?)");
    return CIGL_OK;
}
