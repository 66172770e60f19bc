/* Small helpers shared by cigl's SVG writers (reliability diagram, report plots). */
#ifndef CIGL_SVG_H
#define CIGL_SVG_H
#include <stdio.h>

/* Writes `s` as XML character data (escaped; control characters XML 1.0 forbids dropped). */
void svg_text(FILE *f, const char *s);

#endif
