#!/bin/sh
# ImageNet scale: resnet50 at 3x224x224 with 1000 classes. Training img/s (median of reps) and
# peak RSS per process for cigl dense (each conv backend), RigL and CigL at each sparsity on
# the sparse kernels (--kernels auto, the CLI's conv backend), and PyTorch dense at the same
# batch and threads; then the data path: a synthetic JPEG image folder, `cigl convert
# imagefolder` (decode + resize throughput), the reader alone (bench_data --read, memory and
# stream) and `cigl train` a few steps in memory and streamed. Prints a markdown table, writes
# it to $BUILD/bench/imagenet.md and appends it to $BUILD/bench/latest.md; raw "BENCH {json}"
# lines go to $BUILD/bench/imagenet_raw.log. Builds nothing (`make bench` builds the programs).
#
# Environment: BENCH_IMAGENET=0 skips it; BENCH_IMAGENET_BATCH (16), BENCH_IMAGENET_REPS (3),
# BENCH_IMAGENET_MODEL (resnet50; tests/t_bench_imagenet.sh runs resnet20 to be quick),
# BENCH_IMAGENET_IMAGE (3x224x224), BENCH_IMAGENET_CLASSES (1000), BENCH_IMAGENET_SPARSITIES
# ("0.9 0.95"), BENCH_IMAGENET_BACKENDS ("own onednn"; onednn is left out of a build without
# it), BENCH_IMAGENET_STEPS (4: cigl train steps per data-path run), BENCH_IMAGENET_SOURCE
# (400x320: the JPEGs' size, about ImageNet's average), BENCH_THREADS (2), BENCH_PYTHON
# (/usr/bin/python3), TORCH_WAIT (GOMP_SPINCOUNT=20000: PyTorch's faster setting for
# convolutions, tests/bench/README.md), BENCH_IMAGENET_OUT ($BUILD/bench: where imagenet.md,
# imagenet_raw.log and latest.md are written). cigl runs with OMP_WAIT_POLICY=PASSIVE as its
# CLI does.
# Timings only: nothing here fails on a slow machine; a program that fails makes the exit
# status 1 and its row n/a.
BUILD=${BUILD:-build}
if [ "${BENCH_IMAGENET:-1}" = 0 ]; then
    echo "skipped: BENCH_IMAGENET=0"
    exit 0
fi
THREADS=${BENCH_THREADS:-2}
BATCH=${BENCH_IMAGENET_BATCH:-16}
REPS=${BENCH_IMAGENET_REPS:-3}
MODEL=${BENCH_IMAGENET_MODEL:-resnet50}
IMAGE=${BENCH_IMAGENET_IMAGE:-3x224x224}
CLASSES=${BENCH_IMAGENET_CLASSES:-1000}
SPARSITIES=${BENCH_IMAGENET_SPARSITIES:-"0.9 0.95"}
BACKENDS=${BENCH_IMAGENET_BACKENDS:-"own onednn"}
STEPS=${BENCH_IMAGENET_STEPS:-4}
SOURCE=${BENCH_IMAGENET_SOURCE:-400x320}
PY=${BENCH_PYTHON:-/usr/bin/python3}
TORCH_WAIT=${TORCH_WAIT:-GOMP_SPINCOUNT=20000}
if [ -z "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ]; then OMP_WAIT_POLICY=PASSIVE; export OMP_WAIT_POLICY; fi

here=$(dirname "$0")
out=$BUILD/bench
bin=$out/bench_train
data=$out/bench_data
dest=${BENCH_IMAGENET_OUT:-$out}
raw=$dest/imagenet_raw.log
md=$dest/imagenet.md
for b in "$bin" "$data" "$BUILD/cigl"; do
    [ -x "$b" ] || { echo "bench_imagenet: $b missing; run 'make bench'" >&2; exit 1; }
done
crop=$(echo "$IMAGE" | cut -dx -f2)
# the training split is stored at crop x 256/224 (ImageNet's 256 for 224), as convert's default
store=$(( (crop * 256 + 112) / 224 ))
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
: >"$raw" || exit 1
status=0

# run LABEL CMD...: shows the human lines, keeps the BENCH lines in raw.log.
run() {
    label=$1
    shift
    "$@" >"$T/out" 2>&1
    rc=$?
    grep -v '^BENCH ' "$T/out"
    sed "s/^BENCH {/BENCH {\"label\":\"$label\",/" "$T/out" | grep '^BENCH ' >>"$raw"
    if [ "$rc" -ne 0 ]; then
        echo "bench_imagenet: $label failed (exit $rc)" >&2
        status=1
    fi
}

# Runs a command; prints its peak RSS in KiB, read by a parent that runs only it (-1: it
# failed, 0: no Python to read it).
peak_kib() {
    if [ ! -x "$PY" ]; then
        "$@" >/dev/null 2>&1 && echo 0 || echo -1
        return
    fi
    "$PY" -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)
' "$@" 2>/dev/null
}
now() { date +%s.%N; }

start=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
common="--threads $THREADS --batch $BATCH --reps $REPS --warmup 1 --min-time 0 --no-peak \
--no-layers --models $MODEL --image $IMAGE --classes $CLASSES"

# ---- training steps, one process per row (each one's peak RSS is its own)
for be in $BACKENDS; do
    if [ "$be" = onednn ] && ! "$bin" --conv-backend onednn --peak-only --peak-sizes 16 \
        --reps 1 >/dev/null 2>&1; then
        echo "== cigl dense, conv backend onednn: not built in (make ONEDNN=0); skipped"
        continue
    fi
    echo "== cigl dense, conv backend $be"
    run "cigl dense ($be)" "$bin" $common --method dense --kernels dense --conv-backend "$be"
done
echo "== PyTorch dense ($TORCH_WAIT)"
if [ -x "$PY" ]; then
    run "torch dense" env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$TORCH_WAIT" "$PY" \
        "$here/torch_bench.py" --models "$MODEL" --image "$IMAGE" --classes "$CLASSES" \
        --threads "$THREADS" --batch "$BATCH" --reps "$REPS" --warmup 1 --min-time 0
else
    echo "skipped: $PY not found; PyTorch n/a"
fi
for method in rigl cigl; do
    for s in $SPARSITIES; do
        name=$(awk -v m="$method" -v s="$s" \
            'BEGIN { printf "cigl %s %g%%", (m == "rigl" ? "RigL" : "CigL"), 100 * s }')
        echo "== $name, --kernels auto"
        run "$name" "$bin" $common --method "$method" --sparsity "$s" --kernels auto \
            --conv-backend auto
    done
done

# ---- the data path: JPEG folder -> cigl convert imagefolder -> reader -> training
echo "== data path: $((BATCH * STEPS)) training + $BATCH validation JPEGs of $SOURCE," \
    "stored at ${store}, crop $crop"
run "jpeg folder" "$data" --write-folder "$T/folder" --train $((BATCH * STEPS)) --val "$BATCH" \
    --classes 4 --size "$SOURCE"
t0=$(now)
"$BUILD/cigl" convert imagefolder "$T/folder" "$T/folder.h5" --store-size "$store" \
    --crop-size "$crop" --threads "$THREADS" >"$T/convert.log" 2>&1 || status=1
t1=$(now)
cat "$T/convert.log"
awk -v a="$t0" -v b="$t1" -v n=$((BATCH * STEPS + BATCH)) -v th="$THREADS" 'BEGIN {
    printf "BENCH {\"label\":\"convert\",\"kind\":\"convert\",\"images\":%d,\"threads\":%d,", n, th
    printf "\"seconds\":%.3f,\"img_per_s\":%.1f}\n", b - a, n / (b - a) }' >>"$raw"
for mode in memory stream; do
    run "reader $mode" "$data" --read "$T/folder.h5" --mode "$mode" --batch "$BATCH" \
        --batches $((STEPS * 5)) --threads "$THREADS"
done
for mode in memory stream; do
    echo "== cigl train $MODEL, --data-mode $mode, $STEPS steps"
    kib=$(peak_kib "$BUILD/cigl" train --data "$T/folder.h5" --data-mode "$mode" --model "$MODEL" \
        --batch-size "$BATCH" --epochs 1 --val-size 0 --lr 0.01 --threads "$THREADS" \
        --out "$T/train_$mode")
    ips=$(sed -n 's/^  "train_images_per_second": *\([0-9.eE+-]*\).*/\1/p' "$T/train_$mode/final.json" 2>/dev/null)
    if [ "$kib" -lt 0 ] || [ -z "$ips" ]; then
        echo "bench_imagenet: cigl train --data-mode $mode failed" >&2
        status=1
        continue
    fi
    rss=""
    [ "$kib" -gt 0 ] && rss=",\"peak_rss_mib\":$((kib / 1024))"
    awk -v i="$ips" -v k="$kib" 'BEGIN { printf "  %.2f img/s, peak RSS %.0f MiB\n", i, k / 1024 }'
    echo "BENCH {\"label\":\"train $mode\",\"kind\":\"train\",\"mode\":\"$mode\",\"steps\":$STEPS,\"img_per_s\":$ips$rss}" >>"$raw"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
secs=$(( $(date +%s) - start ))

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
ncpu=$(nproc 2>/dev/null || echo '?')
if commit=$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null); then
    git -C "$here" diff --quiet HEAD 2>/dev/null || commit="$commit (uncommitted changes)"
else
    commit=$("$BUILD/cigl" --version | cut -d' ' -f2)
fi
awk -v date="$(date -u '+%Y-%m-%d %H:%M UTC')" -v cpu="$cpu" -v ncpu="$ncpu" -v commit="$commit" \
    -v threads="$THREADS" -v batch="$BATCH" -v reps="$REPS" -v image="$IMAGE" -v classes="$CLASSES" \
    -v secs="$secs" -v load0="$load0" -v load1="$load1" -v steps="$STEPS" -v source="$SOURCE" \
    -v store="$store" -v crop="$crop" -v torch_wait="$TORCH_WAIT" -v model="$MODEL" "$(cat "$here/bench_fields.awk")"'
function ratio(a, b) { return (a != "" && b != "" && b > 0) ? sprintf("%.2f", a / b) : "n/a" }
/^BENCH / {
    s = substr($0, 7); label = field(s, "label"); kind = field(s, "kind")
    if (kind == "env" && field(s, "impl") == "torch") torchv = field(s, "torch_version")
    if (kind == "env" && field(s, "impl") == "cigl") blas = field(s, "openblas_core")
    if (kind == "step") {
        n++; row[n] = label; ips[label] = field(s, "img_per_s"); ms[label] = field(s, "median_ms")
        rss[label] = field(s, "peak_rss_mib"); be[label] = field(s, "conv_backend")
        sl[label] = field(s, "sparse_layers") "/" field(s, "prunable_layers")
        if (field(s, "impl") == "torch") { be[label] = "PyTorch (" field(s, "model_source") ")"; sl[label] = "-"; torch = label }
        if (label ~ /^cigl dense/ && (dense == "" || ips[label] > ips[dense])) dense = label
    }
    if (kind == "jpeg_folder") jpeg_kb = field(s, "mean_kb")
    if (kind == "convert") { conv_ips = field(s, "img_per_s"); conv_n = field(s, "images") }
    if (kind == "reader") { rd[field(s, "mode")] = field(s, "img_per_s"); rdrss[field(s, "mode")] = field(s, "peak_rss_mib") }
    if (kind == "train") { tr[field(s, "mode")] = field(s, "img_per_s"); trrss[field(s, "mode")] = field(s, "peak_rss_mib") }
}
END {
    printf "## ImageNet scale: %s at %s, %d classes\n\n", model, image, classes
    printf "%s; commit %s; CPU: %s (%s logical CPUs); OpenBLAS %s; PyTorch %s; %s threads, batch %s, median of %s reps (1 warm-up step); cigl OpenMP wait PASSIVE, PyTorch %s; took %s s; /proc/loadavg before: %s, after: %s.\n\n", \
        date, commit, cpu, ncpu, blas, (torchv == "" ? "n/a" : torchv), threads, batch, reps, torch_wait, secs, load0, load1
    printf "| run | conv backend | layers on sparse kernels | img/s | step ms | vs best cigl dense | vs PyTorch | peak RSS MiB | RSS vs PyTorch |\n"
    printf "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= n; i++) {
        l = row[i]
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", l, be[l], sl[l], num(ips[l], "%.2f"), \
            num(ms[l], "%.0f"), ratio(ips[l], ips[dense]), ratio(ips[l], ips[torch]), num(rss[l], "%.0f"), ratio(rss[l], rss[torch])
    }
    printf "\nimg/s = batch / median step time; a step is forward, loss, backward and SGD (cigl: method_train_step, as `cigl train` runs it, no mask update among the timed steps). Peak RSS: the whole process (ru_maxrss), one process per row, at batch %s.\n\n", batch
    printf "### Data path (%s training + %s validation JPEGs of %s, %s KB each; stored %sx%s, crop %s)\n\n", \
        conv_n - batch, batch, source, jpeg_kb, store, store, crop
    printf "| stage | img/s | peak RSS MiB |\n|---|---:|---:|\n"
    printf "| cigl convert imagefolder (JPEG decode + resize, %s threads) | %s | |\n", threads, num(conv_ips, "%.1f")
    printf "| reader alone, in memory (random resized crop, flip, normalise) | %s | %s |\n", num(rd["memory"], "%.0f"), num(rdrss["memory"], "%.0f")
    printf "| reader alone, streamed from the file | %s | %s |\n", num(rd["stream"], "%.0f"), num(rdrss["stream"], "%.0f")
    printf "| cigl train %s, --data-mode memory, %s steps | %s | %s |\n", model, steps, num(tr["memory"], "%.2f"), num(trrss["memory"], "%.0f")
    printf "| cigl train %s, --data-mode stream, %s steps | %s | %s |\n", model, steps, num(tr["stream"], "%.2f"), num(trrss["stream"], "%.0f")
    printf "\ncigl train img/s = steps x batch / train_seconds of final.json (includes the first step'\''s warm-up and the data). "
    printf "Streamed/in-memory training: %s; reader alone (streamed) / training compute (best cigl dense): %s.\n", \
        ratio(tr["stream"], tr["memory"]), num(ips[dense] > 0 && rd["stream"] != "" ? rd["stream"] / ips[dense] : "", "%.0f")
}' "$raw" >"$md" || status=1
echo
cat "$md"
{ echo; cat "$md"; } >>"$dest/latest.md"
exit $status
