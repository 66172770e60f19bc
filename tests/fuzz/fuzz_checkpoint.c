/* Fuzz target: checkpoint validation (src/checkpoint.c: checkpoint_read_info and
 * checkpoint_verify, which reads every array and checks the checksum). As in fuzz_dataset.c
 * the input describes a file (attributes present or not, their types and values, the arrays'
 * types, shapes and contents) that is written as a valid in-memory HDF5 image: libhdf5 only
 * sees valid files, cigl's checks of their contents are fuzzed. A file whose contents do not
 * match its checksum must be refused; nothing may be allocated from the header's sizes alone
 * beyond what the file can hold (libFuzzer's 2 GB allocation limit). */
#include "fuzz_h5.h"

#include "cigl/checkpoint.h"
#include "cigl/error.h"

static void double_attr(FuzzIn *in, hid_t loc, const char *name)
{
    uint8_t form = fuzz_u8(in);
    double v = form & 0x40 ? 1.0 / 0.0 : (double)fuzz_u8(in) / 7.0;
    if (form % 4 == 3) return;
    if (form % 4 == 2) {
        put_string(loc, name, "1.5", 0);
        return;
    }
    put_attr(loc, name, H5T_NATIVE_DOUBLE, 0, &v);
}

static void build(FuzzIn *in, hid_t f)
{
    int np = 1 + fuzz_u8(in) % 8, nb = fuzz_u8(in) % 4, nt = 1 + fuzz_u8(in) % 3;
    int ns = fuzz_u8(in) % 3, has_avg = fuzz_u8(in) & 1;
    string_attr(in, f, "format", "cigl-checkpoint");
    int_attr(in, f, "format_version", 1);
    static const char *const ints[] = {"step", "epoch", "in_epoch", "epoch_seen", "ranks",
                                       "accumulate", "skipped_steps", "epoch_skipped",
                                       "n_averaged", "updates_done", "dense_grad_steps"};
    for (int i = 0; i < 11; i++) int_attr(in, f, ints[i], i == 4 || i == 5 ? 1 : 3);
    int_attr(in, f, "n_params", np);
    int_attr(in, f, "n_bn_stats", nb);
    int_attr(in, f, "n_tensors", nt);
    int_attr(in, f, "n_snapshots", ns);
    int_attr(in, f, "has_avg", has_avg);
    double_attr(in, f, "epoch_loss");
    double_attr(in, f, "epoch_hits");
    double_attr(in, f, "train_seconds");
    double_attr(in, f, "replaced_sum");
    uint64_t u = fuzz_u32(in);
    if (fuzz_u8(in) & 1) put_attr(f, "dataset_hash", H5T_NATIVE_UINT64, 0, &u);
    u = fuzz_u32(in);
    if (fuzz_u8(in) & 1) put_attr(f, "checksum", H5T_NATIVE_UINT64, 0, &u);
    string_attr(in, f, "model", "mlp");
    string_attr(in, f, "method", "rigl");
    string_attr(in, f, "kernels", "dense");
    string_attr(in, f, "config", "{\"model\": \"mlp\"}");
    const hsize_t p1[1] = {(hsize_t)np}, b1[1] = {(hsize_t)nb}, t1[1] = {(hsize_t)nt};
    const hsize_t s2[2] = {(hsize_t)ns, (hsize_t)np}, sb2[2] = {(hsize_t)ns, (hsize_t)nb + 1};
    array(in, f, "params", 1, p1, H5T_NATIVE_FLOAT);
    array(in, f, "velocity", 1, p1, H5T_NATIVE_FLOAT);
    array(in, f, "bn_stats", 1, b1, H5T_NATIVE_FLOAT);
    hid_t g = H5Gcreate2(f, "method", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    array(in, g, "mask", 1, p1, H5T_NATIVE_UINT8);
    array(in, g, "active", 1, p1, H5T_NATIVE_UINT8);
    array(in, g, "ever", 1, p1, H5T_NATIVE_UINT8);
    array(in, g, "counts", 1, t1, H5T_NATIVE_INT64);
    if (has_avg) array(in, g, "avg", 1, p1, H5T_NATIVE_FLOAT);
    if (ns) {
        array(in, g, "snapshots", 2, s2, H5T_NATIVE_FLOAT);
        array(in, g, "snapshot_bn", 2, sb2, H5T_NATIVE_FLOAT);
    }
    H5Gclose(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzIn in = {data, size};
    hid_t f = fuzz_h5_create();
    if (f < 0) return 0;
    build(&in, f);
    char path[128];
    if (fuzz_h5_finish(f, path, sizeof path) < 0) return 0;
    CheckpointInfo info;
    char *config = NULL;
    if (checkpoint_read_info(path, &info, &config) == 0 && !config) __builtin_trap();
    free(config);
    /* the file is in memory: a runtime error can only be an allocation that failed, i.e. one
     * sized by the header rather than by the data (replay runs under a memory limit) */
    if (checkpoint_verify(path) == CIGL_ERR_RUNTIME) __builtin_trap();
    unlink(path);
    return 0;
}
