/* Where a result came from: command line, code version, build, libraries, machine, job. */
#ifndef CIGL_PROVENANCE_H
#define CIGL_PROVENANCE_H
#include "cigl/json.h"

/* mpi: the MPI library's version string, or NULL without MPI. */
void provenance_write_json(JsonWriter *w, int argc, char **argv, const char *mpi, int ranks);
/* "host/cpu model" as a short string, for logs and final.json. */
void provenance_machine(char *buf, size_t len);

#endif
