/* Checkpoint files (include/cigl/checkpoint.h): writing, validated reading, and the checksum
 * that catches what HDF5 would not (a flipped bit in a weight, a stale copy, a torn file). */
#include "cigl/checkpoint.h"

#include "cigl/checksum.h"
#include "cigl/error.h"
#include "cigl/h5io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FORMAT_NAME "cigl-checkpoint"
#define CONFIG_MAX ((size_t)1 << 20)
#define NAME_LEN 48
/* Sizes beyond these are refused before allocating (a corrupt header must not ask for
 * terabytes). */
#define MAX_PARAMS ((long long)1 << 34)
#define MAX_SNAPSHOTS 100000

/* The state's buffers, either the live ones (writing) or freshly read ones (reading). */
typedef struct {
    float *params, *velocity, *bn, *avg, *snapshots, *snapshot_bn, *held;
    uint8_t *mask, *active, *ever;
    long *counts;
    long long n_params, n_bn, n_tensors, n_snapshots; /* n_snapshots: stored (--no-averaging) */
    long long n_averaged;   /* snapshots in the running mean */
    long long updates_done, dense_grad_steps;
    double replaced_sum;
    int has_avg;
    int has_held;           /* --z-timing authors' held updates (absent in older files: 0) */
} Buffers;

static int bad_checkpoint(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad_checkpoint(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int rc = cigl_failv(CIGL_ERR_USAGE, "checkpoint '%1$s' refused: %2$s; resume from "
                              "another checkpoint (--resume PATH) or start the run afresh "
                              "(--overwrite)", path, fmt, ap);
    va_end(ap);
    return rc;
}

/* FNV-1a over the progress, the identity and every buffer, in a fixed order. */
static uint64_t state_checksum(const CheckpointInfo *in, const char *config, const Buffers *b)
{
    const long long ints[] = {in->step, in->epoch, in->in_epoch, in->epoch_seen,
                              in->skipped_steps, in->epoch_skipped, in->ranks,
                              in->accumulate, b->n_params, b->n_bn, b->n_tensors,
                              b->n_snapshots, b->n_averaged, b->updates_done,
                              b->dense_grad_steps, b->has_avg};
    const double reals[] = {in->epoch_loss, in->epoch_hits, in->train_seconds, b->replaced_sum};
    uint64_t h = checksum_bytes(CIGL_CHECKSUM_SEED, ints, sizeof ints);
    h = checksum_bytes(h, reals, sizeof reals);
    h = checksum_bytes(h, &in->dataset_hash, sizeof in->dataset_hash);
    h = checksum_bytes(h, in->model, strlen(in->model) + 1);
    h = checksum_bytes(h, in->method, strlen(in->method) + 1);
    h = checksum_bytes(h, in->kernels, strlen(in->kernels) + 1);
    /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): read_info set it or failed */
    h = checksum_bytes(h, config, strlen(config) + 1);
    const size_t np = (size_t)b->n_params;
    h = checksum_bytes(h, b->params, sizeof(float) * np);
    h = checksum_bytes(h, b->velocity, sizeof(float) * np);
    h = checksum_bytes(h, b->bn, sizeof(float) * (size_t)b->n_bn);
    h = checksum_bytes(h, b->mask, np);
    h = checksum_bytes(h, b->active, np);
    h = checksum_bytes(h, b->ever, np);
    h = checksum_bytes(h, b->counts, sizeof(long) * (size_t)b->n_tensors);
    if (b->has_avg) h = checksum_bytes(h, b->avg, sizeof(float) * np);
    if (b->has_held) h = checksum_bytes(h, b->held, sizeof(float) * np);
    if (b->n_snapshots) {
        h = checksum_bytes(h, b->snapshots, sizeof(float) * np * (size_t)b->n_snapshots);
        h = checksum_bytes(h, b->snapshot_bn,
                           sizeof(float) * ((size_t)b->n_bn + 1) * (size_t)b->n_snapshots);
    }
    return h;
}

static Buffers live_buffers(const Model *m, const Sgd *opt, const MethodState *ms)
{
    Buffers b;
    memset(&b, 0, sizeof(b));
    b.params = m->params;
    b.velocity = opt->velocity;
    b.bn = m->bn_stats;
    b.mask = ms->mask;
    b.active = ms->active;
    b.ever = ms->ever;
    b.counts = ms->counts;
    b.avg = ms->avg;
    b.has_avg = ms->avg != NULL;
    b.held = ms->held;
    b.has_held = ms->held != NULL;
    b.n_params = (long long)m->n_params;
    b.n_bn = (long long)m->n_bn_stats;
    b.n_tensors = m->n_tensors;
    b.n_snapshots = ms->cfg.no_averaging ? ms->n_snapshots : 0; /* only then kept */
    b.n_averaged = ms->n_snapshots;
    b.snapshots = ms->snapshots;
    b.snapshot_bn = ms->snapshot_bn;
    b.updates_done = ms->updates_done;
    b.dense_grad_steps = ms->dense_grad_steps;
    b.replaced_sum = ms->replaced_sum;
    return b;
}

static void buffers_free(Buffers *b)
{
    free(b->params);
    free(b->velocity);
    free(b->bn);
    free(b->avg);
    free(b->held);
    free(b->snapshots);
    free(b->snapshot_bn);
    free(b->mask);
    free(b->active);
    free(b->ever);
    free(b->counts);
    memset(b, 0, sizeof(*b));
}

void checkpoint_name(char *buf, size_t cap, long step)
{
    snprintf(buf, cap, "step-%09ld.h5", step);
}

/* ---------------------------------------------------------------- writing */

static int write_layout(hid_t file, const Model *m)
{
    hid_t g = H5Gcreate2(file, "layout", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cigl_fail(CIGL_ERR_RUNTIME, "cannot create HDF5 group 'layout'");
    const size_t n = (size_t)m->n_tensors;
    char *names = calloc(n ? n : 1, NAME_LEN);
    long long *off = calloc(n ? n : 1, sizeof(long long));
    long long *len = calloc(n ? n : 1, sizeof(long long));
    int rc = names && off && len ? CIGL_OK : cigl_fail(CIGL_ERR_RUNTIME, "out of memory");
    for (size_t t = 0; t < n && !rc; t++) {
        snprintf(names + t * NAME_LEN, NAME_LEN, "%s", m->tensors[t].name);
        off[t] = (long long)m->tensors[t].off;
        len[t] = (long long)m->tensors[t].len;
    }
    hsize_t dims = n;
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, NAME_LEN);
    if (!rc) rc = h5_write(g, "names", str, names, 1, &dims);
    if (!rc) rc = h5_write(g, "offsets", H5T_NATIVE_LLONG, off, 1, &dims);
    if (!rc) rc = h5_write(g, "lengths", H5T_NATIVE_LLONG, len, 1, &dims);
    H5Tclose(str);
    H5Gclose(g);
    free(names);
    free(off);
    free(len);
    return rc;
}

static int write_attrs(hid_t f, const CheckpointInfo *in, const char *config, const Buffers *b)
{
    char when[32];
    const time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    int rc = h5_attr_string(f, "format", FORMAT_NAME);
    if (!rc) rc = h5_attr_int(f, "format_version", CHECKPOINT_FORMAT_VERSION);
    if (!rc) rc = h5_attr_string(f, "model", in->model);
    if (!rc) rc = h5_attr_string(f, "method", in->method);
    if (!rc) rc = h5_attr_string(f, "kernels", in->kernels);
    if (!rc) rc = h5_attr_string(f, "config", config);
    if (!rc) rc = h5_attr_u64(f, "dataset_hash", in->dataset_hash);
    if (!rc) rc = h5_attr_int(f, "step", in->step);
    if (!rc) rc = h5_attr_int(f, "epoch", in->epoch);
    if (!rc) rc = h5_attr_int(f, "in_epoch", in->in_epoch);
    if (!rc) rc = h5_attr_int(f, "epoch_seen", in->epoch_seen);
    if (!rc) rc = h5_attr_int(f, "skipped_steps", in->skipped_steps);
    if (!rc) rc = h5_attr_int(f, "epoch_skipped", in->epoch_skipped);
    if (!rc) rc = h5_attr_double(f, "epoch_loss", in->epoch_loss);
    if (!rc) rc = h5_attr_double(f, "epoch_hits", in->epoch_hits);
    if (!rc) rc = h5_attr_int(f, "ranks", in->ranks);
    if (!rc) rc = h5_attr_int(f, "accumulate", in->accumulate);
    if (!rc) rc = h5_attr_double(f, "train_seconds", in->train_seconds);
    if (!rc) rc = h5_attr_int(f, "n_params", b->n_params);
    if (!rc) rc = h5_attr_int(f, "n_bn_stats", b->n_bn);
    if (!rc) rc = h5_attr_int(f, "n_tensors", b->n_tensors);
    if (!rc) rc = h5_attr_int(f, "n_snapshots", b->n_snapshots);
    if (!rc) rc = h5_attr_int(f, "n_averaged", b->n_averaged);
    if (!rc) rc = h5_attr_int(f, "has_avg", b->has_avg);
    if (!rc && b->has_held) rc = h5_attr_int(f, "has_held", 1);
    if (!rc) rc = h5_attr_int(f, "updates_done", b->updates_done);
    if (!rc) rc = h5_attr_int(f, "dense_grad_steps", b->dense_grad_steps);
    if (!rc) rc = h5_attr_double(f, "replaced_sum", b->replaced_sum);
    if (!rc) rc = h5_attr_string(f, "created", when);
    if (!rc) rc = h5_attr_u64(f, "checksum", state_checksum(in, config, b));
    return rc;
}

static int write_buffers(hid_t f, const Buffers *b)
{
    hsize_t np = (hsize_t)b->n_params, nb = (hsize_t)b->n_bn, nt = (hsize_t)b->n_tensors;
    int rc = h5_write(f, "params", H5T_NATIVE_FLOAT, b->params, 1, &np);
    if (!rc) rc = h5_write(f, "velocity", H5T_NATIVE_FLOAT, b->velocity, 1, &np);
    if (!rc) rc = h5_write(f, "bn_stats", H5T_NATIVE_FLOAT, b->bn, 1, &nb);
    hid_t g = rc ? H5I_INVALID_HID : H5Gcreate2(f, "method", H5P_DEFAULT, H5P_DEFAULT,
                                                 H5P_DEFAULT);
    if (!rc && g < 0) rc = cigl_fail(CIGL_ERR_RUNTIME, "cannot create HDF5 group 'method'");
    if (!rc) rc = h5_write(g, "mask", H5T_NATIVE_UINT8, b->mask, 1, &np);
    if (!rc) rc = h5_write(g, "active", H5T_NATIVE_UINT8, b->active, 1, &np);
    if (!rc) rc = h5_write(g, "ever", H5T_NATIVE_UINT8, b->ever, 1, &np);
    if (!rc) rc = h5_write(g, "counts", H5T_NATIVE_LONG, b->counts, 1, &nt);
    if (!rc && b->has_avg) rc = h5_write(g, "avg", H5T_NATIVE_FLOAT, b->avg, 1, &np);
    if (!rc && b->has_held) rc = h5_write(g, "held", H5T_NATIVE_FLOAT, b->held, 1, &np);
    if (!rc && b->n_snapshots) {
        hsize_t sd[2] = {(hsize_t)b->n_snapshots, np}, bd[2] = {(hsize_t)b->n_snapshots, nb + 1};
        rc = h5_write(g, "snapshots", H5T_NATIVE_FLOAT, b->snapshots, 2, sd);
        if (!rc) rc = h5_write(g, "snapshot_bn", H5T_NATIVE_FLOAT, b->snapshot_bn, 2, bd);
    }
    if (g >= 0) H5Gclose(g);
    return rc;
}

/* Test hook for the fault tests: seconds to sleep half-way through a write, so that a test
 * can kill the process while the temporary file is incomplete. */
static void test_stall(void)
{
    const char *s = getenv("CIGL_TEST_CHECKPOINT_STALL");
    if (!s) return;
    struct timespec ts = {(time_t)strtol(s, NULL, 10), 0};
    while (nanosleep(&ts, &ts) != 0) continue; /* signals do not cut it short */
}

int checkpoint_write(const char *path, const CheckpointInfo *info, const char *config_json,
                     const Model *m, const Sgd *opt, const MethodState *ms)
{
    const Buffers b = live_buffers(m, opt, ms);
    H5Atomic a;
    int rc = h5_atomic_create(&a, path);
    if (rc) return rc;
    rc = write_attrs(a.file, info, config_json, &b);
    if (!rc) rc = write_layout(a.file, m);
    if (!rc) {
        H5Fflush(a.file, H5F_SCOPE_GLOBAL);
        test_stall();
    }
    if (!rc) rc = write_buffers(a.file, &b);
    if (rc) {
        h5_atomic_abort(&a);
        return cigl_fail(CIGL_ERR_RUNTIME, "checkpoint '%s' not written; the previous "
                         "checkpoint, if any, is unchanged", path);
    }
    return h5_atomic_commit(&a);
}

/* ---------------------------------------------------------------- reading */

static hid_t open_checkpoint(const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (access(path, R_OK) != 0) return H5I_INVALID_HID;
    return H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
}

static int read_info(hid_t f, const char *path, CheckpointInfo *in, char **config)
{
    char format[64];
    long long version = 0, v[8];
    if (h5_read_attr_string(f, "format", format, sizeof format) || strcmp(format, FORMAT_NAME))
        return bad_checkpoint(path, "not a cigl checkpoint (attribute format is not '%s')",
                              FORMAT_NAME);
    if (h5_read_attr_ll(f, "format_version", &version))
        return bad_checkpoint(path, "no format_version attribute");
    if (version != CHECKPOINT_FORMAT_VERSION)
        return bad_checkpoint(path, "format version %lld, this cigl reads version %d%s",
                              version, CHECKPOINT_FORMAT_VERSION,
                              version > CHECKPOINT_FORMAT_VERSION ? " (written by a newer cigl)"
                                                                  : "");
    memset(in, 0, sizeof(*in));
    const char *const ints[] = {"step", "epoch", "in_epoch", "epoch_seen", "ranks", "accumulate",
                                "skipped_steps", "epoch_skipped"};
    for (int i = 0; i < 8; i++)
        if (h5_read_attr_ll(f, ints[i], &v[i]) || v[i] < 0 || v[i] > ((long long)1 << 50))
            return bad_checkpoint(path, "attribute '%s' missing or out of range", ints[i]);
    in->step = (long)v[0];
    in->epoch = (int)v[1];
    in->in_epoch = (long)v[2];
    in->epoch_seen = (long)v[3];
    in->ranks = (int)v[4];
    in->accumulate = (int)v[5];
    in->skipped_steps = (long)v[6];
    in->epoch_skipped = (long)v[7];
    if (in->ranks < 1 || in->accumulate < 1)
        return bad_checkpoint(path, "attribute ranks or accumulate below 1");
    if (h5_read_attr_double(f, "epoch_loss", &in->epoch_loss) ||
        h5_read_attr_double(f, "epoch_hits", &in->epoch_hits) ||
        h5_read_attr_double(f, "train_seconds", &in->train_seconds) ||
        h5_read_attr_u64(f, "dataset_hash", &in->dataset_hash) ||
        h5_read_attr_string(f, "model", in->model, sizeof in->model) ||
        h5_read_attr_string(f, "method", in->method, sizeof in->method))
        return bad_checkpoint(path, "header attributes missing or malformed");
    /* files from before sparse kernels carry no choice: they ran dense */
    if (h5_read_attr_string(f, "kernels", in->kernels, sizeof in->kernels))
        snprintf(in->kernels, sizeof in->kernels, "dense");
    if (!config) return CIGL_OK;
    *config = malloc(CONFIG_MAX);
    if (!*config) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory reading '%s'", path);
    if (h5_read_attr_string(f, "config", *config, CONFIG_MAX)) {
        free(*config);
        *config = NULL;
        return bad_checkpoint(path, "attribute 'config' missing or malformed");
    }
    return CIGL_OK;
}

int checkpoint_read_info(const char *path, CheckpointInfo *info, char **config_json)
{
    hid_t f = open_checkpoint(path);
    if (f < 0)
        return bad_checkpoint(path, "cannot open it as HDF5 (missing, truncated or not HDF5)");
    int rc = read_info(f, path, info, config_json);
    H5Fclose(f);
    return rc;
}

static int read_array(hid_t loc, const char *path, const char *name, hid_t type, void *buf,
                      int ndim, const hsize_t *dims)
{
    if (h5_read_exact(loc, name, type, buf, ndim, dims))
        return bad_checkpoint(path, "dataset '%s' missing, of the wrong shape or unreadable",
                              name);
    return CIGL_OK;
}

static int read_sizes(hid_t f, const char *path, Buffers *b)
{
    long long *fields[] = {&b->n_params, &b->n_bn, &b->n_tensors, &b->n_snapshots,
                           &b->n_averaged, &b->updates_done, &b->dense_grad_steps};
    const char *const names[] = {"n_params", "n_bn_stats", "n_tensors", "n_snapshots",
                                 "n_averaged", "updates_done", "dense_grad_steps"};
    for (int i = 0; i < 7; i++)
        if (h5_read_attr_ll(f, names[i], fields[i]) || *fields[i] < 0)
            return bad_checkpoint(path, "attribute '%s' missing or negative", names[i]);
    long long has_avg = 0;
    if (h5_read_attr_ll(f, "has_avg", &has_avg) ||
        h5_read_attr_double(f, "replaced_sum", &b->replaced_sum))
        return bad_checkpoint(path, "attribute has_avg or replaced_sum missing");
    b->has_avg = has_avg != 0;
    long long has_held = 0;
    b->has_held = !h5_read_attr_ll(f, "has_held", &has_held) && has_held != 0;
    if (b->n_params < 1 || b->n_params > MAX_PARAMS || b->n_bn > MAX_PARAMS ||
        b->n_tensors > 100000 || b->n_snapshots > MAX_SNAPSHOTS)
        return bad_checkpoint(path, "sizes out of range (n_params %lld, n_bn_stats %lld, "
                              "n_tensors %lld, n_snapshots %lld)", b->n_params, b->n_bn,
                              b->n_tensors, b->n_snapshots);
    return CIGL_OK;
}

/* The header's sizes must be backed by data actually stored (arrays are written uncompressed
 * and contiguous, so their storage is exactly their size): found by fuzzing, a few-kB file
 * declaring n_params = 2^34 made alloc_buffers ask for 64 GB before reading anything. */
static int check_stored(hid_t f, const char *path, const Buffers *b)
{
    const hsize_t np = (hsize_t)b->n_params, nb = (hsize_t)b->n_bn, ns = (hsize_t)b->n_snapshots;
    const char *const names[] = {"params", "bn_stats", "method/counts", "method/snapshots",
                                 "method/snapshot_bn"};
    const hsize_t need[] = {4 * np, 4 * nb, 8 * (hsize_t)b->n_tensors, 4 * np * ns,
                            4 * (nb + 1) * ns};
    for (int i = 0; i < 5; i++) {
        if (i >= 3 && !ns) break;
        hid_t d = H5Lexists(f, names[i], H5P_DEFAULT) > 0 ? H5Dopen2(f, names[i], H5P_DEFAULT)
                                                          : H5I_INVALID_HID;
        const hsize_t got = d >= 0 ? H5Dget_storage_size(d) : 0;
        if (d >= 0) H5Dclose(d);
        if (got < need[i])
            return bad_checkpoint(path, "dataset '%s' stores %llu bytes but the header's sizes "
                                  "need %llu (truncated or corrupt)", names[i],
                                  (unsigned long long)got, (unsigned long long)need[i]);
    }
    return CIGL_OK;
}

static int alloc_buffers(Buffers *b, const char *path)
{
    const size_t np = (size_t)b->n_params, nb = (size_t)b->n_bn, ns = (size_t)b->n_snapshots;
    b->params = malloc(sizeof(float) * np);
    b->velocity = malloc(sizeof(float) * np);
    b->bn = malloc(sizeof(float) * (nb + 1));
    b->mask = malloc(np);
    b->active = malloc(np);
    b->ever = malloc(np);
    b->counts = malloc(sizeof(long) * ((size_t)b->n_tensors + 1));
    if (b->has_avg) b->avg = malloc(sizeof(float) * np);
    if (b->has_held) b->held = malloc(sizeof(float) * np);
    if (ns) {
        b->snapshots = malloc(sizeof(float) * np * ns);
        b->snapshot_bn = malloc(sizeof(float) * (nb + 1) * ns);
    }
    if (!b->params || !b->velocity || !b->bn || !b->mask || !b->active || !b->ever ||
        !b->counts || (b->has_avg && !b->avg) || (b->has_held && !b->held) ||
        (ns && (!b->snapshots || !b->snapshot_bn)))
        return cigl_fail(CIGL_ERR_RUNTIME, "out of memory reading checkpoint '%s'", path);
    return CIGL_OK;
}

static int read_buffers(hid_t f, const char *path, Buffers *b)
{
    const hsize_t np = (hsize_t)b->n_params, nb = (hsize_t)b->n_bn, nt = (hsize_t)b->n_tensors;
    int rc = read_array(f, path, "params", H5T_NATIVE_FLOAT, b->params, 1, &np);
    if (!rc) rc = read_array(f, path, "velocity", H5T_NATIVE_FLOAT, b->velocity, 1, &np);
    if (!rc) rc = read_array(f, path, "bn_stats", H5T_NATIVE_FLOAT, b->bn, 1, &nb);
    if (!rc) rc = read_array(f, path, "method/mask", H5T_NATIVE_UINT8, b->mask, 1, &np);
    if (!rc) rc = read_array(f, path, "method/active", H5T_NATIVE_UINT8, b->active, 1, &np);
    if (!rc) rc = read_array(f, path, "method/ever", H5T_NATIVE_UINT8, b->ever, 1, &np);
    if (!rc) rc = read_array(f, path, "method/counts", H5T_NATIVE_LONG, b->counts, 1, &nt);
    if (!rc && b->has_avg)
        rc = read_array(f, path, "method/avg", H5T_NATIVE_FLOAT, b->avg, 1, &np);
    if (!rc && b->has_held)
        rc = read_array(f, path, "method/held", H5T_NATIVE_FLOAT, b->held, 1, &np);
    if (!rc && b->n_snapshots) {
        const hsize_t sd[2] = {(hsize_t)b->n_snapshots, np};
        const hsize_t bd[2] = {(hsize_t)b->n_snapshots, nb + 1};
        rc = read_array(f, path, "method/snapshots", H5T_NATIVE_FLOAT, b->snapshots, 2, sd);
        if (!rc)
            rc = read_array(f, path, "method/snapshot_bn", H5T_NATIVE_FLOAT, b->snapshot_bn, 2,
                            bd);
    }
    return rc;
}

/* Opens, reads and verifies the whole file into fresh buffers. */
static int load_verified(const char *path, CheckpointInfo *in, char **config, Buffers *b)
{
    memset(b, 0, sizeof(*b));
    *config = NULL;
    hid_t f = open_checkpoint(path);
    if (f < 0)
        return bad_checkpoint(path, "cannot open it as HDF5 (missing, truncated or not HDF5)");
    int rc = read_info(f, path, in, config);
    if (!rc) rc = read_sizes(f, path, b);
    if (!rc) rc = check_stored(f, path, b);
    if (!rc) rc = alloc_buffers(b, path);
    if (!rc) rc = read_buffers(f, path, b);
    uint64_t stored = 0;
    if (!rc && h5_read_attr_u64(f, "checksum", &stored))
        rc = bad_checkpoint(path, "no checksum attribute");
    H5Fclose(f);
    if (!rc && stored != state_checksum(in, *config, b))
        rc = bad_checkpoint(path, "its contents do not match their checksum (corrupted)");
    if (rc) {
        buffers_free(b);
        free(*config);
        *config = NULL;
    }
    return rc;
}

/* The file's tensor layout must be the model's: same names, offsets and lengths. */
static int check_layout(const char *path, const Model *m)
{
    hid_t f = open_checkpoint(path);
    if (f < 0) return bad_checkpoint(path, "cannot reopen it");
    const size_t n = (size_t)m->n_tensors;
    char *names = calloc(n + 1, NAME_LEN);
    long long *off = calloc(n + 1, sizeof(long long)), *len = calloc(n + 1, sizeof(long long));
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, NAME_LEN);
    const hsize_t dims = n;
    int rc = names && off && len ? CIGL_OK : cigl_fail(CIGL_ERR_RUNTIME, "out of memory");
    if (!rc && (h5_read_exact(f, "layout/names", str, names, 1, &dims) ||
                h5_read_exact(f, "layout/offsets", H5T_NATIVE_LLONG, off, 1, &dims) ||
                h5_read_exact(f, "layout/lengths", H5T_NATIVE_LLONG, len, 1, &dims)))
        rc = bad_checkpoint(path, "its tensor layout does not have the model's %zu tensors", n);
    for (size_t t = 0; t < n && !rc; t++) {
        const ParamTensor *pt = &m->tensors[t];
        names[t * NAME_LEN + NAME_LEN - 1] = 0;
        if (strcmp(names + t * NAME_LEN, pt->name) || off[t] != (long long)pt->off ||
            len[t] != (long long)pt->len)
            rc = bad_checkpoint(path, "tensor %zu is '%s' (%lld values), the model's is '%s' "
                                "(%zu values)", t, names + t * NAME_LEN, len[t], pt->name,
                                pt->len);
    }
    H5Tclose(str);
    H5Fclose(f);
    free(names);
    free(off);
    free(len);
    return rc;
}

static int check_fits(const char *path, const CheckpointInfo *in, const Buffers *b,
                      const Model *m, const MethodState *ms)
{
    if (strcmp(in->model, m->name))
        return bad_checkpoint(path, "it holds model '%s', this run trains '%s'", in->model,
                              m->name);
    if (strcmp(in->method, ms->ops->name))
        return bad_checkpoint(path, "it holds method '%s', this run uses '%s'", in->method,
                              ms->ops->name);
    if (b->n_params != (long long)m->n_params || b->n_bn != (long long)m->n_bn_stats ||
        b->n_tensors != m->n_tensors)
        return bad_checkpoint(path, "its sizes (%lld parameters, %lld BN statistics) are not "
                              "the model's (%zu, %zu)", b->n_params, b->n_bn, m->n_params,
                              m->n_bn_stats);
    if (b->has_avg != (ms->avg != NULL))
        return bad_checkpoint(path, "its averaging state does not match method '%s'",
                              ms->ops->name);
    if (b->has_held != (ms->held != NULL))
        return bad_checkpoint(path, "it was written %s --z-timing authors, this run is %s it",
                              b->has_held ? "with" : "without", ms->held ? "with" : "without");
    return check_layout(path, m);
}

int checkpoint_read_state(const char *path, CheckpointInfo *info, Model *m, Sgd *opt,
                          MethodState *ms)
{
    Buffers b;
    char *config = NULL;
    int rc = load_verified(path, info, &config, &b);
    free(config);
    if (rc) return rc;
    rc = check_fits(path, info, &b, m, ms);
    if (!rc && b.n_snapshots > ms->snapshot_cap) {
        /* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI): n_params > 0 (check_fits) */
        float *w = realloc(ms->snapshots, sizeof(float) * m->n_params * (size_t)b.n_snapshots);
        if (w) ms->snapshots = w;
        float *s = realloc(ms->snapshot_bn,
                           sizeof(float) * (m->n_bn_stats + 1) * (size_t)b.n_snapshots);
        if (s) ms->snapshot_bn = s;
        if (!w || !s) rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory restoring snapshots");
        else ms->snapshot_cap = b.n_snapshots;
    }
    if (rc) {
        buffers_free(&b);
        return rc;
    }
    /* verified: now the live state changes, all at once (the helper drawing ahead stopped
     * first: it reads the mask; the next draw clears everything and draws on this thread) */
    method_forget_draws(ms);
    const size_t np = m->n_params;
    /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): alloc_buffers succeeded */
    memcpy(m->params, b.params, sizeof(float) * np);
    memcpy(opt->velocity, b.velocity, sizeof(float) * np);
    memcpy(m->bn_stats, b.bn, sizeof(float) * m->n_bn_stats);
    memcpy(ms->mask, b.mask, np);
    memcpy(ms->active, b.active, np);
    memcpy(ms->ever, b.ever, np);
    memcpy(ms->counts, b.counts, sizeof(long) * (size_t)m->n_tensors);
    if (b.has_avg) memcpy(ms->avg, b.avg, sizeof(float) * np);
    if (b.has_held) memcpy(ms->held, b.held, sizeof(float) * np);
    if (b.n_snapshots) {
        memcpy(ms->snapshots, b.snapshots, sizeof(float) * np * (size_t)b.n_snapshots);
        memcpy(ms->snapshot_bn, b.snapshot_bn,
               sizeof(float) * (m->n_bn_stats + 1) * (size_t)b.n_snapshots);
    }
    ms->n_snapshots = (long)b.n_averaged;
    ms->updates_done = (long)b.updates_done;
    ms->dense_grad_steps = (long)b.dense_grad_steps;
    ms->replaced_sum = b.replaced_sum;
    ms->masks_changed = 1;
    buffers_free(&b);
    return CIGL_OK;
}

int checkpoint_verify(const char *path)
{
    Buffers b;
    CheckpointInfo info;
    char *config = NULL;
    const int rc = load_verified(path, &info, &config, &b);
    if (!rc) buffers_free(&b);
    free(config);
    return rc;
}
