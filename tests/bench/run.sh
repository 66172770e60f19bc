#!/bin/sh
# cigl vs PyTorch training throughput, sgemm peak, and the share of it conv+linear layers reach.
# Builds nothing (`make bench` builds $BUILD/bench/bench_* first). For each model it runs
# bench_train and torch_bench.py back to back, so both see the same machine state, in
# BENCH_ROUNDS rounds, and prints the table, which is also written to $BUILD/bench/latest.md; all raw "BENCH {json}"
# lines go to $BUILD/bench/raw.log. Missing torch prints n/a and does not fail. Last,
# bench_imagenet.sh (resnet50 at 224 and its data path) appends its tables to latest.md.
#
# Environment: BENCH_THREADS (2), BENCH_REPS (7), BENCH_BATCH (128), BENCH_ROUNDS (3),
# BENCH_MODELS (mlp,lenet5,resnet20,wrn-22-2), BENCH_CONV_BACKEND (auto: the conv kernels
# `cigl train` uses by default, oneDNN when built with it), BENCH_PYTHON (/usr/bin/python3),
# TORCH_WAITS. cigl runs
# as its CLI does (src/main.c): OMP_WAIT_POLICY=PASSIVE unless the caller set OMP_WAIT_POLICY or
# GOMP_SPINCOUNT. PyTorch runs under each setting in TORCH_WAITS (passive and a short spin)
# every round, and best-of-rounds keeps its faster one: passive suits its mlp (its BLAS is
# OpenBLAS's pthread build, whose threads spinning OpenMP threads starve), the short spin its
# convolutions.
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
REPS=${BENCH_REPS:-7}
BATCH=${BENCH_BATCH:-128}
MODELS=${BENCH_MODELS:-mlp,lenet5,resnet20,wrn-22-2}
BACKEND=${BENCH_CONV_BACKEND:-auto}
PY=${BENCH_PYTHON:-/usr/bin/python3}
ROUNDS=${BENCH_ROUNDS:-3}
if [ -z "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ]; then OMP_WAIT_POLICY=PASSIVE; export OMP_WAIT_POLICY; fi
TORCH_WAITS=${TORCH_WAITS:-"OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=20000"}

here=$(dirname "$0")
out=$BUILD/bench
bin=$out/bench_train
raw=$out/raw.log
tmp=$out/run.tmp
[ -x "$bin" ] || { echo "bench: $bin missing; run 'make bench'" >&2; exit 1; }
: >"$raw" || exit 1
status=0
common="--threads $THREADS --reps $REPS --batch $BATCH"

# run LABEL CMD...: runs a benchmark, shows its human lines, appends everything to raw.log.
run() {
    label=$1
    shift
    "$@" >"$tmp" 2>&1
    rc=$?
    grep -v '^BENCH ' "$tmp"
    cat "$tmp" >>"$raw"
    if [ "$rc" -ne 0 ]; then
        echo "bench: $label failed (exit $rc)" >&2
        status=1
    fi
}

run_torch() {
    if [ -x "$PY" ]; then
        for wait in $TORCH_WAITS; do
            run "torch_bench $1 ($wait)" env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$wait" \
                "$PY" "$here/torch_bench.py" --models "$1" $common
        done
    else
        echo "skipped: $PY not found; PyTorch comparison n/a"
    fi
}

start=$(date +%s)
load0=$(cut -d' ' -f1-4 /proc/loadavg 2>/dev/null)
echo "== sgemm peak ($THREADS threads, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-})"
run "sgemm peak" "$bin" --peak-only $common
peak=$(sed -n 's/^BENCH {"kind":"peak".*"gflops":\([0-9.]*\).*/\1/p' "$raw" | tail -n 1)
[ -n "$peak" ] || peak=0

# Rounds: the first runs every phase; later ones only time steps again, cigl and torch in
# alternating order. The table takes, per program and model, the best of the rounds' medians:
# other load on the machine only ever slows a round down.
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for model in $(echo "$MODELS" | tr ',' ' '); do
        echo "== $model (round $round of $ROUNDS)"
        extra=""
        [ "$round" -gt 1 ] && extra="--no-layers"
        if [ $((round % 2)) -eq 1 ]; then
            run "bench_train $model" "$bin" --no-peak --peak "$peak" --models "$model" --conv-backend "$BACKEND" $extra $common
            run_torch "$model"
        else
            run_torch "$model"
            run "bench_train $model" "$bin" --no-peak --peak "$peak" --models "$model" --conv-backend "$BACKEND" $extra $common
        fi
    done
    round=$((round + 1))
done
# The peak again: other load only ever lowers a measurement, so the table uses the larger.
echo "== sgemm peak, again"
run "sgemm peak" "$bin" --peak-only $common
peak=$(sed -n 's/^BENCH {"kind":"peak".*"gflops":\([0-9.]*\).*/\1/p' "$raw" | sort -n | tail -n 1)
[ -n "$peak" ] || peak=0
load1=$(cut -d' ' -f1-4 /proc/loadavg 2>/dev/null)
secs=$(( $(date +%s) - start ))

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
fam=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
mod=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
avx512=no
grep -q ' avx512f' /proc/cpuinfo 2>/dev/null && avx512=yes
ncpu=$(nproc 2>/dev/null || echo '?')

awk -v peak="$peak" -v date="$(date -u '+%Y-%m-%d %H:%M UTC')" -v cpu="$cpu" -v fam="$fam" \
    -v mod="$mod" -v avx512="$avx512" -v ncpu="$ncpu" -v wait="${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:+GOMP_SPINCOUNT=$GOMP_SPINCOUNT}" \
    -v secs="$secs" -v models="$MODELS" -v load0="$load0" -v load1="$load1" "$(cat "$here/bench_fields.awk")"'
/^BENCH / {
    s = substr($0, 7); kind = field(s, "kind"); impl = field(s, "impl"); m = field(s, "model")
    if (kind == "env" && impl == "cigl") { core = field(s, "openblas_core"); cfg = field(s, "openblas_config")
        threads = field(s, "threads"); batch = field(s, "batch"); reps = field(s, "reps") }
    if (kind == "env" && impl == "torch") torchv = field(s, "torch_version")
    if (kind == "skipped" && impl == "torch") torchv = "not installed"
    if (kind == "sgemm") sgemm = sgemm (sgemm == "" ? "" : ", ") field(s, "lib") " " field(s, "n") ": " field(s, "gflops")
    if (kind == "step") {
        if (impl == "cigl" && field(s, "conv_backend") != "") convb = field(s, "conv_backend")
        v = field(s, "img_per_s") + 0
        if (!((impl, m) in ips) || v > ips[impl, m]) { ips[impl, m] = v; sms[impl, m] = field(s, "median_ms") }
        sep = ((impl, m) in all) ? ", " : ""
        all[impl, m] = all[impl, m] sep sprintf("%.0f", v)
    }
    if (kind == "gemm_layers") { gfl[m] = field(s, "gflops"); gflop[m] = field(s, "gflop"); gms[m] = field(s, "ms") }
    if (kind == "breakdown") {
        bd[m] = sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", m, field(s, "step_ms"),
            field(s, "sum_ms"), field(s, "conv_ms"), field(s, "linear_ms"), field(s, "bn_ms"),
            field(s, "relu_ms"), field(s, "pool_ms"), field(s, "add_ms"), field(s, "zero_dact_ms"),
            sprintf("%.2f", field(s, "loss_ms") + field(s, "sgd_ms") + field(s, "other_ms")))
    }
    if (kind == "layer" && (field(s, "type") == "conv2d" || field(s, "type") == "linear")) {
        key = m SUBSEP field(s, "layer"); nl[m]++; order[m, nl[m]] = field(s, "layer")
        lshape[key] = field(s, "shape") (field(s, "type") == "conv2d" ? " k" field(s, "k") "/s" field(s, "stride") : "")
        lf[key] = field(s, "fwd_ms"); lb[key] = field(s, "bwd_ms")
        lff[key] = field(s, "fwd_gflop"); lbf[key] = field(s, "bwd_gflop")
    }
    if (kind == "conv_detail") {
        key = m SUBSEP field(s, "layer")
        move[key] = 2 * field(s, "im2col_ms") + field(s, "col2im_ms")
        gemm[key] = field(s, "gemm_fwd_ms") + field(s, "gemm_dw_ms") + field(s, "gemm_dx_ms")
        mnk[key] = field(s, "oc") "x" field(s, "cols") "x" field(s, "kk")
    }
}
END {
    printf "## cigl vs PyTorch training throughput\n\n"
    printf "%s; CPU: %s (family %s model %s, %s logical CPUs, AVX-512 %s); OpenBLAS %s (%s); PyTorch %s; %s threads, batch %s, median of %s reps; cigl OpenMP wait: %s; cigl conv backend: %s; bench took %s s; /proc/loadavg before: %s, after: %s.\n\n", \
        date, cpu, fam, mod, ncpu, avx512, core, cfg, (torchv == "" ? "n/a" : torchv), threads, batch, reps, wait, (convb == "" ? "n/a" : convb), secs, load0, load1
    printf "sgemm peak: **%.1f GFLOP/s** (the best median over sizes and GEMM libraries, OpenBLAS and, when built in, oneDNN, whose AVX-512 kernels its convolutions share; measured before and after the models; medians by library and size: %s)\n\n", peak, sgemm
    printf "| model | cigl img/s | torch img/s | cigl/torch | cigl step ms | torch step ms | conv+linear GFLOP/s | conv+linear %% of sgemm peak | cigl img/s by round | torch img/s by round |\n"
    printf "|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n"
    n = split(models, ms, ",")
    for (i = 1; i <= n; i++) {
        m = ms[i]; c = ips["cigl", m]; t = ips["torch", m]
        ratio = (c != "" && t != "" && t > 0) ? sprintf("%.2f", c / t) : "n/a"
        pct = (gfl[m] != "" && peak > 0) ? sprintf("%.1f%%", 100 * gfl[m] / peak) : "n/a"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", m, num(c, "%.0f"), num(t, "%.0f"), ratio, \
            num(sms["cigl", m], "%.1f"), num(sms["torch", m], "%.1f"), num(gfl[m], "%.1f"), pct, \
            (("cigl", m) in all ? all["cigl", m] : "n/a"), (("torch", m) in all ? all["torch", m] : "n/a")
    }
    printf "\nimg/s: the best over rounds of each round'\''s median step time (batch / step time); cigl/torch = ratio of those. "
    printf "conv+linear %% of peak = GEMM FLOPs of every conv/linear layer (forward, weight and input gradients) / their summed forward+backward time / sgemm peak.\n\n"
    printf "### cigl step breakdown (ms, forward+backward per layer kind, medians of instrumented steps)\n\n"
    printf "| model | step | sum of parts | conv | linear | bn | relu | pool | add | zero dact | loss+sgd+other |\n"
    printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= n; i++) if (ms[i] in bd) print bd[ms[i]]
    printf "\n### cigl conv and linear layers\n\n"
    printf "GEMM ms = the conv layer'\''s three sgemm calls (forward, weight gradient, input gradient) timed alone on the same shapes; MxNxK is the forward GEMM (out channels x N*OH*OW x C*k*k). im2col x2 + col2im ms likewise: im2col runs in forward and again in backward. The rest of fwd+bwd is layout copies and bias.\n\n"
    printf "| model | layer | shape | fwd ms | bwd ms | fwd GFLOP/s | bwd GFLOP/s | GEMM MxNxK | GEMM ms | im2col x2 + col2im ms |\n"
    printf "|---|---|---|---:|---:|---:|---:|---|---:|---:|\n"
    for (i = 1; i <= n; i++) {
        m = ms[i]
        for (j = 1; j <= nl[m]; j++) {
            key = m SUBSEP order[m, j]
            printf "| %s | %s | %s | %.2f | %.2f | %.1f | %.1f | %s | %s | %s |\n", m, order[m, j], lshape[key], \
                lf[key], lb[key], (lf[key] > 0 ? lff[key] / lf[key] * 1e3 : 0), (lb[key] > 0 ? lbf[key] / lb[key] * 1e3 : 0), \
                (key in mnk ? mnk[key] : "-"), (key in gemm ? sprintf("%.2f", gemm[key]) : "-"), (key in move ? sprintf("%.2f", move[key]) : "-")
        }
    }
}' "$raw" >"$out/latest.md" || status=1

# Any other benchmark program make built (tests/bench/bench_*.c) runs after, with no arguments;
# its output is shown and appended to raw.log.
for other in "$out"/bench_*; do
    [ -x "$other" ] && [ "$other" != "$bin" ] || continue
    [ "$(basename "$other")" = bench_data ] && continue # bench_imagenet.sh's helper, below
    echo "== $(basename "$other")"
    case "$(basename "$other")" in
    bench_methods) run bench_methods "$other" --reps 5 ;; # medians of 5 keep make bench short
    bench_conv_backend) run bench_conv_backend "$other" --threads "$THREADS" --batch "$BATCH" ;;
    bench_sparse) BUILD=$BUILD sh "$here/bench_sparse.sh" | tee -a "$raw" || status=1 ;;
    *) run "$(basename "$other")" "$other" ;;
    esac
done
rm -f "$tmp"

# MPI scaling, when mpirun is there (ranks 1 and 2 here; BENCH_MPI_RANKS on bigger nodes)
if command -v mpirun >/dev/null; then
    echo "== bench_mpi.sh"
    BUILD=$BUILD sh "$here/bench_mpi.sh" | tee -a "$raw" || status=1
fi

# ImageNet scale (resnet50 at 224, its data path); appends its tables to latest.md.
# BENCH_IMAGENET=0 skips it.
echo "== bench_imagenet.sh"
BUILD=$BUILD sh "$here/bench_imagenet.sh" || status=1

echo
echo "== summary (also in $out/latest.md; raw lines in $raw)"
sed -n '1,/^img\/s: /p' "$out/latest.md" | grep -v '^img/s: ' | sed '/^$/d;/^##/d'
exit $status
