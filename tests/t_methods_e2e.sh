#!/bin/sh
# End-to-end: RigL and CigL on real Fashion-MNIST (tests/bench/README.md's quick check), cigl eval
# reproducing final.json, every metric of predictions.h5 recomputed by the independent numpy
# reference, reproducible sparse runs, and eval's bad-input refusals.
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
json_num() { sed -n "s/^  \"$2\": *\([-0-9.eE+]*\).*/\1/p" "$1" | head -n 1; }

need_data
COMMON="--data $DATA --model mlp --sparsity 0.9 --epochs 3 --update-end 0.4 --nesterov --threads 2"

# The quick check: both reach >= 84% test accuracy.
"$CIGL" train $COMMON --method rigl --out "$T/rigl" >"$T/rigl.log" 2>&1
"$CIGL" train $COMMON --method cigl --average-start 0.5 --average-every 100 --out "$T/cigl" >"$T/cigl.log" 2>&1
cat "$T/rigl.log" "$T/cigl.log" | grep 'test accuracy' | sed 's/^/  /'
for m in rigl cigl; do
    acc=$(json_num "$T/$m/final.json" test_accuracy)
    check "${m}_mlp_90pct_sparse_reaches_84_percent" "awk 'BEGIN{exit !($acc >= 0.84)}'"
done
check "sparsity_measured_is_target" "grep -q '\"sparsity_measured\": 0.90000000000000002' '$T/cigl/final.json'"
check "cigl_averaged_snapshots" "grep -q '\"snapshots\": [2-9]' '$T/cigl/final.json'"
check "reliability_svg_written" "grep -q '<svg' '$T/cigl/reliability.svg'"

# cigl eval reproduces the training run's test metrics bit for bit (same batch size, so the
# same GEMM shapes and threads) and writes predictions.h5.
"$CIGL" eval --model "$T/cigl/final.h5" --data "$DATA" --out "$T/eval" --temperature-scaling --batch-size 128 --threads 2 >"$T/eval.log" 2>&1
e_ece=$(sed -n 's/^    "ece": *\([-0-9.eE+]*\).*/\1/p' "$T/eval/metrics.json" | head -n 1)
t_ece=$(json_num "$T/cigl/final.json" test_ece)
check "eval_reproduces_training_ece" "[ -n '$e_ece' ] && [ '$e_ece' = '$t_ece' ]"
check "eval_reports_temperature" "grep -q '\"temperature\"' '$T/eval/metrics.json'"
# every metric from predictions.h5, independently
"$PY" tests/metrics_reference.py "$T/eval/predictions.h5" >"$T/ref.json" 2>"$T/ref.err"
check "independent_reference_agrees_1e-9" "$PY - '$T/eval/metrics.json' '$T/ref.json' <<'PYEOF'
import json, sys
got = json.load(open(sys.argv[1]))['metrics']; ref = json.load(open(sys.argv[2]))
keys = ['accuracy', 'nll', 'brier', 'ece', 'ece10', 'mce', 'adaptive_ece', 'classwise_ece', 'aurc']
bad = [k for k in keys if abs(got[k] - ref[k]) > 1e-9 * max(1, abs(ref[k]))]
print('  compared', len(keys), 'metrics; differing:', bad)
sys.exit(1 if bad else 0)
PYEOF"

# Reproducible: the same seed gives identical weights, masks and BN statistics.
"$CIGL" train --data "$DATA" --model lenet5 --method cigl --sparsity 0.8 --max-steps 30 --epochs 1 \
    --update-interval 10 --update-end 0.75 --average-start 0.8 --average-every 50 --val-size 1000 \
    --threads 2 --out "$T/det_a" >/dev/null 2>"$T/det_a.err"
det_a_rc=$?
"$CIGL" train --data "$DATA" --model lenet5 --method rigl --sparsity 0.8 --max-steps 30 --epochs 1 \
    --update-interval 10 --val-size 1000 --threads 2 --out "$T/det_b" >/dev/null 2>&1
"$CIGL" train --data "$DATA" --model lenet5 --method rigl --sparsity 0.8 --max-steps 30 --epochs 1 \
    --update-interval 10 --val-size 1000 --threads 2 --out "$T/det_c" >/dev/null 2>&1
check "rigl_same_seed_identical_weights_and_masks" "h5diff '$T/det_b/final.h5' '$T/det_c/final.h5' /weights /weights && h5diff '$T/det_b/final.h5' '$T/det_c/final.h5' /masks /masks"
# --max-steps stops before the second snapshot: exit 2, one error line naming the fix (after
# the epoch's progress line), no final model
check "cigl_max_steps_without_two_snapshots_refused" "[ $det_a_rc -eq 2 ] && [ \$(grep -c '^cigl:' '$T/det_a.err') -eq 1 ] && tail -n 1 '$T/det_a.err' | grep -q '^cigl: .*averaging needs at least 2: use --average-every' && [ -f '$T/det_a/config.json' ] && [ ! -f '$T/det_a/final.json' ]"
# CigL's random mask drawn ahead on a helper thread or on the training thread: the same bits
# (sparse kernels, mask updates in between, averaging).
for da in on off; do
    "$CIGL" train --data "$DATA" --model lenet5 --method cigl --sparsity 0.8 --epochs 1 \
        --val-size 52000 --update-interval 10 --update-end 0.5 --average-start 0.6 \
        --average-every 10 --kernels sparse --draw-ahead $da --out "$T/ahead_$da" >/dev/null 2>&1
done
check "cigl_draw_ahead_on_off_identical" "h5diff '$T/ahead_on/final.h5' '$T/ahead_off/final.h5' /weights /weights && h5diff '$T/ahead_on/final.h5' '$T/ahead_off/final.h5' /masks /masks"
check "cigl_draw_ahead_recorded" "grep -q '\"draw_ahead\": true' '$T/ahead_on/final.json' && grep -q '\"draw_ahead\": false' '$T/ahead_off/final.json'"

# eval's bad input: another dataset shape, another dataset for val, NaN weights, missing files.
"$PY" - "$T" <<'PYEOF'
import sys, h5py, numpy as np
d = sys.argv[1]
def make(path, hw):
    with h5py.File(path, 'w') as f:
        f.attrs['format'] = 'cigl-dataset'; f.attrs['format_version'] = 1; f.attrs['name'] = 'tiny'
        f.attrs['classes'] = 10; f.attrs['channels'] = 1; f.attrs['height'] = hw; f.attrs['width'] = hw
        f.attrs['class_names'] = [str(i) for i in range(10)]
        f.attrs['mean'] = np.array([0.5]); f.attrs['std'] = np.array([0.25])
        rng = np.random.default_rng(0)
        for s, n in (('train', 40), ('test', 20)):
            g = f.create_group(s)
            g['images'] = rng.integers(0, 256, (n, 1, hw, hw), dtype=np.uint8)
            g['labels'] = (np.arange(n) % 10).astype(np.int32)
make(d + '/small.h5', 8)
make(d + '/other.h5', 28)
PYEOF
cp "$T/rigl/final.h5" "$T/nan.h5"
"$PY" -c "import h5py,numpy as np; f=h5py.File('$T/nan.h5','r+'); w=f['weights/fc3.bias']; a=w[...]; a[0]=np.nan; w[...]=a"
expect_usage() { name=$1; shift
    "$CIGL" "$@" >/dev/null 2>"$T/err.txt"; rc=$?
    if [ "$rc" -eq 2 ] && [ "$(wc -l < "$T/err.txt")" -eq 1 ]; then ok "$name"; else bad "$name (exit $rc)"; cat "$T/err.txt"; fi; }
expect_usage eval_refuses_other_input_shape eval --model "$T/rigl/final.h5" --data "$T/small.h5" --out "$T/x1"
expect_usage eval_refuses_val_of_other_dataset eval --model "$T/rigl/final.h5" --data "$T/other.h5" --out "$T/x2" --split val
expect_usage eval_refuses_ts_on_other_dataset eval --model "$T/rigl/final.h5" --data "$T/other.h5" --out "$T/x3" --temperature-scaling
expect_usage eval_refuses_nan_logits eval --model "$T/nan.h5" --data "$DATA" --out "$T/x4"
expect_usage eval_refuses_missing_model eval --model "$T/none.h5" --data "$DATA" --out "$T/x5"
expect_usage eval_refuses_dataset_as_model eval --model "$DATA" --data "$DATA" --out "$T/x6"
expect_usage eval_refuses_mc_samples_on_rigl eval --model "$T/rigl/final.h5" --data "$DATA" --out "$T/x7" --mc-samples 4
expect_usage train_refuses_sparsity_1 train $COMMON --method rigl --sparsity 1 --out "$T/x8"
expect_usage train_refuses_average_before_update_end train $COMMON --method cigl --average-start 0.3 --out "$T/x9"
expect_usage train_refuses_inapplicable_option train $COMMON --method rigl --random-mask-rate 0.1 --out "$T/x10"
check "refused_runs_leave_no_directory" "[ ! -e '$T/x8' ] && [ ! -e '$T/x9' ] && [ ! -e '$T/x10' ]"

# cigl's defaults are the values the paired study's cigl-rule arm ran with (docs/method.md,
# "Choosing the defaults"): the resolved options differ in the --mechanics label only
RULE="--data $DATA --model resnet20 --method cigl --sparsity 0.9 --epochs 8 --out $T/dr"
"$CIGL" train $RULE --dry-run >"$T/dr_default.json" 2>&1
"$CIGL" train $RULE --dry-run --mechanics authors --drop-score stored --z-timing cigl \
    >"$T/dr_rule.json" 2>&1
check "defaults_equal_the_rule_arm" "[ \"\$(diff '$T/dr_default.json' '$T/dr_rule.json' | grep -c '^[<>]')\" = 2 ] && grep -q '\"mechanics\": \"authors\"' '$T/dr_rule.json' && grep -q '\"regrown\": \"zero\"' '$T/dr_default.json'"

summary
