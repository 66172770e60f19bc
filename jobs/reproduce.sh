#!/bin/bash
# `make reproduce`: the evidence grid (jobs/results/PLAN.md) as resumable jobs. Writes one plan
# per part (jobs/plan.sh), runs it with jobs/local.sh, or with --slurm submits it as a job array
# (jobs/sweep.sbatch), then collects every finished run's final.json, config.json,
# metrics.jsonl and launches.jsonl into jobs/results/runs/PART/ and rebuilds the results page
# (jobs/results_page.sh). Finished runs are skipped and interrupted ones resume from their
# newest checkpoint, so the same command continues where it stopped, here or on a bigger
# machine.
#
#   jobs/reproduce.sh [--part reference|breadth|wrn|long|paired|resnet20-long|all] [-P SLOTS]
#                     [-c THREADS]
#                     [--root DIR] [--data FILE] [--slurm] [--collect-only] [--seeds "0 1 2"]
#                     [--skip-committed]
#
# --skip-committed: a run whose files are already committed under jobs/results/runs/ counts as
# finished (its files are copied into the run root first), so a fresh clone continues a study
# instead of rerunning it.
#
# Defaults: --part reference, -P 1, -c 2 (this 2-core machine), --root runs/reproduce,
# --data ROOT/data/fashion-mnist.h5 (converted from /usr/share/datasets/fashion-mnist, or from
# the bundle's data/ when run from jobs/bundle.sh's folder).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
part=reference; slots=1; threads=2; root=runs/reproduce; data=""; slurm=0; collect_only=0
skip_committed=0
seeds="0 1 2"
while [ $# -gt 0 ]; do
    case "$1" in
        --part) part=$2; shift 2 ;;
        -P) slots=$2; shift 2 ;;
        -c) threads=$2; shift 2 ;;
        --root) root=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --slurm) slurm=1; shift ;;
        --collect-only) collect_only=1; shift ;;
        --skip-committed) skip_committed=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "reproduce.sh: unknown option '$1'; see jobs/reproduce.sh --help" >&2; exit 2 ;;
    esac
done
case "$part" in reference|breadth|wrn|long|paired|resnet20-long|all) ;; *)
    echo "reproduce.sh: --part must be reference, breadth, wrn, long, paired, resnet20-long or all, not '$part'" >&2; exit 2 ;;
esac
CIGL=${CIGL:-$repo/build/cigl}
[ -x "$CIGL" ] || { echo "reproduce.sh: $CIGL not found; run make (or set CIGL)" >&2; exit 2; }
export CIGL
results=$repo/jobs/results
mkdir -p "$root" "$results/plans" "$results/runs"

if [ -z "$data" ]; then
    data=$root/data/fashion-mnist.h5
    if [ ! -f "$data" ]; then
        src=/usr/share/datasets/fashion-mnist
        [ -d "$repo/data/fashion-mnist" ] && src=$repo/data/fashion-mnist # inside a bundle
        mkdir -p "$(dirname "$data")"
        "$CIGL" convert fashion-mnist "$src" "$data" || exit 2
    fi
fi

# The recipe of the reference subset (PLAN.md), shared by every part: SGD Nesterov 0.9, weight
# decay 5e-4, lr 0.1 x0.1 at 50% and 75%, batch 128, 8 epochs, no augmentation, ERK, masks
# updated every 100 steps until 75% with drop fraction 0.3, random mask rate 0.01, averaging
# from 80% every 100 steps, 5000 validation samples for temperature scaling. None of it was
# tuned: these are the CigL authors' defaults (docs/method.md), fixed before any run. The breadth
# part adds CigL at the random mask rate of the paper's text (0.1, label cigl-p0.1) next to the
# authors' code's 0.01: both are in docs/method.md, neither chosen by looking at results.
recipe="--data $data --epochs 8 --batch-size 128 --lr 0.1 --nesterov --momentum 0.9
        --weight-decay 5e-4 --schedule multistep --milestones 0.5,0.75 --val-size 5000
        --checkpoint-minutes 10 --keep 1"
# Runs made before cigl's defaults were chosen by the paired study (docs/method.md, "Choosing
# the defaults") pin the values they ran with: --mechanics legacy, so that these plans still
# reproduce the committed runs.
legacy="--mechanics legacy"
avg="--average-start 0.8 --average-every 100"

# Seed-major order: every method's seed 0 first, so a stopped grid still has complete seeds.
plan_part() { # name model methods sparsities [--with LABEL ARGS]...
    local name=$1 model=$2 methods=$3 sparsities=$4
    shift 4
    for seed in $seeds; do
        "$here/plan.sh" --root "$root/$name" --methods "$methods" --sparsities "$sparsities" \
            --seeds "$seed" "$@" -- $recipe ${mechanics_pin-$legacy} ${extra:-} --model "$model"
    done | grep -v '^#'
}

write_plans() {
    plan_part reference resnet20 "dense rigl cigl" "0.9 0.95" --with cigl "$avg" \
        >"$results/plans/reference.txt"
    local breadth_methods="dense rigl cigl rigl-wdp rigl-mcdp rigl-ls=rigl rigl-mixup=rigl"
    breadth_methods+=" cigl-nomask=cigl cigl-noavg=cigl cigl-p0.1=cigl"
    for model in mlp lenet5; do
        plan_part "breadth/$model" "$model" "$breadth_methods" "0.8 0.9 0.95 0.99" \
            --with cigl "$avg" --with rigl-ls "--label-smoothing 0.1" \
            --with rigl-mixup "--mixup 0.2" --with cigl-nomask "$avg --random-mask-rate 0" \
            --with cigl-noavg "$avg --no-averaging" --with cigl-p0.1 "$avg --random-mask-rate 0.1"
    done >"$results/plans/breadth.txt"
    seeds=0 plan_part wrn wrn-22-2 "rigl cigl" "0.95" --with cigl "$avg" >"$results/plans/wrn.txt"
    # 5x the epochs on the mlp: does over-confidence (and CigL's effect) appear once the model
    # fits the training set? (8 epochs left every model under-confident or nearly calibrated)
    # (lenet5 only at 80/90%: at 95% and above it collapsed in the 8-epoch breadth runs)
    { extra="--epochs 40" plan_part long/mlp mlp "dense rigl cigl cigl-p0.1=cigl" "0.9 0.95" \
          --with cigl "$avg" --with cigl-p0.1 "$avg --random-mask-rate 0.1"
      extra="--epochs 40" plan_part long/lenet5 lenet5 "dense rigl cigl cigl-p0.1=cigl" "0.8 0.9" \
          --with cigl "$avg" --with cigl-p0.1 "$avg --random-mask-rate 0.1"
    } >"$results/plans/long.txt"
    write_paired_plan >"$results/plans/paired.txt"
    # The over-confident regime on resnet20, step 1: RigL at 90% on the reference recipe at 16,
    # 24 and 32 epochs (seed 0), to find the shortest schedule whose test ECE is at least twice
    # the 8-epoch value (0.0105) with a positive confidence-accuracy gap. Measured epoch time at
    # 1 thread with two runs sharing the cores: 3.5 min (paired runs, 2026-12-06), so 16/24/32
    # epochs take ~1.0/1.4/1.9 h. Longest first: with -P 2 -c 1 the 32-epoch run holds one core
    # while the 24- and 16-epoch runs follow each other on the other, about 2.3 h in all.
    # Step 2 (dense, RigL, CigL at 90% and 95%, 3 seeds, at the chosen length) is sized from it.
    for e in 32 24 16; do
        seeds=0 extra="--epochs $e" plan_part "resnet20-long/e$e" resnet20 "rigl" "0.9"
    done >"$results/plans/resnet20-long.txt"
    # Step 2, with cigl's defaults (chosen by the paired study; no pin): RigL and CigL at 90%
    # and 95%, and dense, seeds 0-2, at 24 epochs, the shortest length step 1 found
    # over-confident (e24: ECE 2.3x the 8-epoch value, gap +0.023; e16 1.4x). RigL +
    # temperature scaling comes from each RigL run's validation-fitted temperature. Sized from
    # e24 (about 60 min at 1 thread with two runs sharing the cores): 12 sparse runs at ~60 min
    # and 3 dense at ~90 min, about 16 core-hours, 8 hours on the 2 cores (-P 2 -c 1); RigL
    # and CigL first in each seed, so pairs complete early.
    seeds="0 1 2" mechanics_pin="" extra="--epochs ${long_epochs:-24}" \
        plan_part "resnet20-long/step2" resnet20 "rigl cigl dense" "0.9 0.95" \
        >>"$results/plans/resnet20-long.txt"
}

# The paired study of CigL against RigL on the recipe the authors' code was run on
# (jobs/results/README.md, "Paired study"): resnet20 at 90% ERK, 8 epochs, weight
# decay on every parameter, no hold-out, 1 thread, 5 seeds, every arm on the same seeds. Its
# first runs predate the oneDNN backend, so every arm keeps cigl's own conv kernels. The
# arms that differ from cigl's defaults in one mechanism only come after the main four, seed by
# seed, so a study stopped part-way still holds complete pairs.
write_paired_plan() {
    local precipe="--data $data --model resnet20 --epochs 8 --batch-size 128 --lr 0.1 --nesterov
        --momentum 0.9 --weight-decay 5e-4 --decay-all --schedule multistep --milestones 0.5,0.75
        --val-size 0 --threads 1 --checkpoint-minutes 10 --keep 1 --conv-backend own"
    local s
    { paired_arms; } | grep -v '^#'
}

paired_arms() {
    local s
    # --draw-ahead off: two 1-thread runs share the 2 cores; the bits are the same either way
    for s in ${paired_seeds:-0 1 2 3 4}; do
        "$here/plan.sh" --root "$root/paired" --sparsities 0.9 --seeds "$s" \
            --methods "rigl cigl cigl-snap=cigl" \
            --with rigl "$legacy" --with cigl "$legacy --draw-ahead off" \
            --with cigl-snap "$legacy --draw-ahead off --average-start 0.75" -- $precipe
    done
    # The authors' mechanics (docs/method.md, "Authors' mechanics"), all at once, for both
    for s in ${paired_seeds:-0 1 2 3 4}; do
        "$here/plan.sh" --root "$root/paired" --sparsities 0.9 --seeds "$s" \
            --methods "cigl-authors=cigl rigl-authors=rigl" \
            --with cigl-authors "--draw-ahead off --mechanics authors" \
            --with rigl-authors "--mechanics authors" -- $precipe
    done
    # Each remaining difference alone, 3 seeds (the snapshot window is cigl-snap above)
    local singles="cigl-norescale=cigl cigl-dropmasked=cigl cigl-ztiming=cigl cigl-regrownzero=cigl"
    singles+=" cigl-denseceil=cigl cigl-skipstep=cigl cigl-zeroinit=cigl"
    for s in ${paired_single_seeds:-0 1 2}; do
        "$here/plan.sh" --root "$root/paired" --sparsities 0.9 --seeds "$s" \
            --methods "$singles" \
            --with cigl-norescale "$legacy --draw-ahead off --no-rescale-kept" \
            --with cigl-dropmasked "$legacy --draw-ahead off --drop-score masked" \
            --with cigl-ztiming "$legacy --draw-ahead off --z-timing authors" \
            --with cigl-regrownzero "$legacy --draw-ahead off --regrown zero" \
            --with cigl-denseceil "$legacy --draw-ahead off --dense-layers update --drop-count ceil" \
            --with cigl-skipstep "$legacy --draw-ahead off --update-step skip" \
            --with cigl-zeroinit "$legacy --draw-ahead off --zero-init-residual" -- $precipe
    done
    # CigL with the values the defaults rule picks (results page, "Evidence for cigl's
    # defaults", as of 2026-12-07): the authors' mechanics except the drop score, where cigl's
    # stored-weight score is favoured (NLL), and the Z timing, which keeps cigl's value until
    # its 3 seeds are in. RigL's rule values are all the authors' (rigl-authors above). These
    # are cigl's defaults since 2026-12-07 (docs/method.md, "Choosing the defaults").
    for s in ${paired_seeds:-0 1 2 3 4}; do
        "$here/plan.sh" --root "$root/paired" --sparsities 0.9 --seeds "$s" \
            --methods "cigl-rule=cigl" \
            --with cigl-rule "--draw-ahead off --mechanics authors --drop-score stored --z-timing cigl" \
            -- $precipe
    done
}

# Copies the committed files of every finished run of a plan into the run root, where
# local.sh then finds final.json and skips the run (--skip-committed).
seed_committed() { # plan file
    local out rel n=0
    for out in $(grep -o -- '--out [^ ]*' "$1" | cut -d' ' -f2); do
        rel=${out#"$root"/}
        [ -f "$results/runs/$rel/final.json" ] && [ ! -f "$out/final.json" ] || continue
        mkdir -p "$out" && cp "$results/runs/$rel"/* "$out/" && n=$((n + 1))
    done
    echo "reproduce.sh: $n committed runs of $(basename "$1") count as finished"
}

run_plan() { # plan file
    local plan=$1 n
    [ "$skip_committed" = 1 ] && seed_committed "$plan"
    n=$(grep -c . "$plan")
    if [ "$slurm" = 1 ]; then
        echo "reproduce.sh: submitting $plan ($n runs) as a job array"
        sbatch --array=0-$((n - 1))%"$slots" --cpus-per-task="$threads" "$here/sweep.sbatch" "$plan"
    else
        echo "reproduce.sh: running $plan ($n runs, $slots at a time x $threads threads)"
        "$here/local.sh" -P "$slots" -c "$threads" --logs "$root/logs" "$plan"
    fi
}

# Keeps what the results page needs (small text files) from every finished run.
collect() {
    local n=0
    for f in $(find "$root" -name final.json -path '*seed*' 2>/dev/null | sort); do
        local dir rel dst
        dir=$(dirname "$f")
        rel=${dir#"$root"/}
        dst=$results/runs/$rel
        mkdir -p "$dst"
        for x in final.json config.json metrics.jsonl launches.jsonl reliability.svg; do
            [ -f "$dir/$x" ] && cp "$dir/$x" "$dst/"
        done
        n=$((n + 1))
    done
    echo "reproduce.sh: $n finished runs collected into $results/runs"
}

# Everything runs from main, which bash has read whole before it starts: editing this file
# while a grid runs (for hours) cannot change what the running copy does next.
main() {
    write_plans
    local status=0
    if [ "$collect_only" = 0 ]; then
        case "$part" in
            all) for p in reference breadth wrn long paired; do run_plan "$results/plans/$p.txt" || status=$?; done ;;
            *) run_plan "$results/plans/$part.txt" || status=$? ;;
        esac
    fi
    collect
    "$here/results_page.sh" || status=$?
    exit $status
}
main
