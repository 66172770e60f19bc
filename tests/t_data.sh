#!/bin/sh
# Datasets end to end: `cigl convert` exit statuses and --verify, training from a streamed file
# gives the weights of training from memory (1 rank and 2 MPI ranks), an image folder of PNGs
# converted, trained on with the random resized crop and evaluated.
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_WAIT_POLICY=PASSIVE

# ---- convert: statuses, no output on failure, --verify
"$CIGL" convert synthetic "$T/syn.h5" --train 3000 --test 300 --shape 1,28,28 --classes 10 \
    --seed 3 >/dev/null 2>"$T/err.txt"
check "synthetic_convert_and_verify" "'$CIGL' convert --verify '$T/syn.h5' | grep -q ': ok, content hash'"
usage_no_output() { # name, args... : status 2, one line, no $T/out.h5
    name=$1; shift
    "$CIGL" convert "$@" >/dev/null 2>"$T/err.txt"; rc=$?
    if [ "$rc" -eq 2 ] && [ "$(wc -l < "$T/err.txt")" -eq 1 ] && [ ! -e "$T/out.h5" ]; then ok "$name"
    else bad "$name (exit $rc)"; cat "$T/err.txt"; fi
}
mkdir -p "$T/empty"
usage_no_output "cifar10_missing_files_exit_2" cifar10 "$T/empty" "$T/out.h5"
usage_no_output "cifar100_missing_files_exit_2" cifar100 "$T/empty" "$T/out.h5"
usage_no_output "imagefolder_missing_train_exit_2" imagefolder "$T/empty" "$T/out.h5"
usage_no_output "imagefolder_crop_larger_than_store_exit_2" imagefolder "$T/empty" "$T/out.h5" --store-size 200 --crop-size 224
usage_no_output "unknown_format_exit_2" cifar11 "$T/empty" "$T/out.h5"

# ---- streamed training = in-memory training, bit for bit
COMMON="--data $T/syn.h5 --model mlp --epochs 2 --batch-size 64 --val-size 200 --threads 1 --seed 4 --flip --crop-pad 2"
"$CIGL" train $COMMON --data-mode memory --out "$T/mem" >"$T/mem.log" 2>&1
"$CIGL" train $COMMON --data-mode stream --out "$T/str" >"$T/str.log" 2>&1
check "stream_equals_memory_1_rank" "h5diff '$T/mem/final.h5' '$T/str/final.h5' /weights /weights"
check "bad_data_mode_refused" "! '$CIGL' train $COMMON --data-mode disk --out '$T/bad' 2>/dev/null && [ ! -e '$T/bad' ]"
if ! command -v mpirun >/dev/null; then
    skip stream_equals_memory_2_ranks "mpirun not installed (apt-get install openmpi-bin)"
else
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    MPI="mpirun --bind-to none --mca btl_vader_single_copy_mechanism none -np 2"
    $MPI "$CIGL" train $COMMON --data-mode memory --out "$T/mem2" >"$T/mem2.log" 2>&1
    $MPI "$CIGL" train $COMMON --data-mode stream --out "$T/str2" >"$T/str2.log" 2>&1
    check "stream_equals_memory_2_ranks" "h5diff '$T/mem2/final.h5' '$T/str2/final.h5' /weights /weights"
fi

# ---- an image folder (PNGs written with Python's zlib: no imaging library needed)
/usr/bin/python3 - "$T/folder" <<'EOF'
import os, struct, sys, zlib
import numpy as np
def png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
rng = np.random.default_rng(0)
for split, n in (("train", 40), ("val", 10)):
    for k, cls in enumerate(("circle", "square")):
        os.makedirs(f"{sys.argv[1]}/{split}/{cls}", exist_ok=True)
        for i in range(n):
            h, w = rng.integers(40, 80, 2)
            yy, xx = np.mgrid[0:h, 0:w]
            inside = (abs(yy - h / 2) < h / 4) & (abs(xx - w / 2) < w / 4) if k else \
                     (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2
            img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
            img[inside] = 200
            png(f"{sys.argv[1]}/{split}/{cls}/{i:03d}.png", img)
EOF
"$CIGL" convert imagefolder "$T/folder" "$T/folder.h5" --store-size 36 --crop-size 32 --threads 2 >"$T/conv.log" 2>&1
check "imagefolder_converts" "grep -q '80 training images at 36x36, 20 test images at 32x32, 2 classes' '$T/conv.log'"
check "imagefolder_schema_h5py" "/usr/bin/python3 -c \"
import h5py; f = h5py.File('$T/folder.h5', 'r')
assert f.attrs['format_version'] == 2 and f.attrs['augment'] == 'random-resized-crop'
assert f.attrs['height'] == 32 and f['train/images'].shape == (80, 3, 36, 36)
assert f['test/images'].shape == (20, 3, 32, 32) and f['train'].attrs['height'] == 36
assert list(f.attrs['class_names']) == ['circle', 'square']\""
FOLDER="--data $T/folder.h5 --model lenet5 --epochs 3 --batch-size 16 --val-size 10 --lr 0.05 --threads 2"
"$CIGL" train $FOLDER --data-mode memory --out "$T/fm" >"$T/fm.log" 2>&1
"$CIGL" train $FOLDER --data-mode stream --out "$T/fs" >"$T/fs.log" 2>&1
check "imagefolder_trains" "[ -f '$T/fm/final.json' ]"
check "imagefolder_stream_equals_memory" "h5diff '$T/fm/final.h5' '$T/fs/final.h5' /weights /weights"
"$CIGL" eval --model "$T/fm/final.h5" --data "$T/folder.h5" --out "$T/fe" >"$T/fe.log" 2>&1
train_acc=$(sed -n 's/.*test accuracy \([0-9.]*%\).*/accuracy \1/p' "$T/fm.log")
check "imagefolder_eval_reproduces_training" "[ -n '$train_acc' ] && grep -qF '$train_acc' '$T/fe.log'"
check "imagefolder_refuses_crop_pad" "! '$CIGL' train $FOLDER --crop-pad 4 --out '$T/bad' 2>'$T/err.txt' && grep -q 'random resized crop' '$T/err.txt'"
summary
