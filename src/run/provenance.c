#include "cigl/provenance.h"
#include "cigl/version.h"

#include <cblas.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) break;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, len, "%s", colon);
        break;
    }
    fclose(f);
}

void provenance_machine(char *buf, size_t len)
{
    char host[256] = "unknown", cpu[256];
    gethostname(host, sizeof(host) - 1);
    cpu_model(cpu, sizeof(cpu));
    snprintf(buf, len, "%s (%s, %ld cores)", host, cpu, sysconf(_SC_NPROCESSORS_ONLN));
}

void provenance_write_json(JsonWriter *w, int argc, char **argv, const char *mpi, int ranks)
{
    json_object_begin(w, "provenance");
    char cmd[4096] = "";
    for (int i = 0; i < argc; i++) {
        size_t used = strlen(cmd);
        snprintf(cmd + used, sizeof(cmd) - used, "%s%s", i ? " " : "", argv[i]);
    }
    json_string(w, "command_line", cmd);
    json_string(w, "git_commit", CIGL_GIT_COMMIT);
    json_string(w, "build_flags", CIGL_BUILD_FLAGS);
    json_string(w, "compiler", __VERSION__);
    json_string(w, "openblas_core", openblas_get_corename());
    json_string(w, "openblas_config", openblas_get_config());
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    char v[64];
    snprintf(v, sizeof(v), "%u.%u.%u", maj, min, rel);
    json_string(w, "hdf5_version", v);
    json_string(w, "mpi_version", mpi ? mpi : "none (single process)");
    json_int(w, "ranks", ranks);
    char machine[512];
    provenance_machine(machine, sizeof(machine));
    json_string(w, "machine", machine);
    const char *slurm[] = {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                           "SLURM_RESTART_COUNT"};
    for (int i = 0; i < 4; i++) {
        const char *val = getenv(slurm[i]);
        if (val) json_string(w, slurm[i], val);
    }
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    json_string(w, "started", when);
    json_object_end(w);
}
