#!/bin/sh
# End-to-end on real Fashion-MNIST: learning thresholds, bit-identical reruns, bad input.
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
json_num() { sed -n "s/.*\"$2\": *\([-0-9.eE+]*\).*/\1/p" "$1" | head -n 1; }

need_data || bad convert
COMMON="--data $DATA --batch-size 128 --lr 0.1 --nesterov --momentum 0.9 --weight-decay 5e-4 --threads 2"

# Learning: mlp >= 82% after 1 epoch, lenet5 >= 85% after 2 epochs.
"$CIGL" train $COMMON --model mlp --epochs 1 --out "$T/mlp" >"$T/mlp.log" 2>&1
acc=$(json_num "$T/mlp/final.json" test_accuracy)
echo "  mlp 1 epoch: test accuracy $acc"
check "mlp_learns_82_percent_in_1_epoch" "awk 'BEGIN{exit !($acc >= 0.82)}'"
"$CIGL" train $COMMON --model lenet5 --epochs 2 --out "$T/lenet5" >"$T/lenet5.log" 2>&1
acc=$(json_num "$T/lenet5/final.json" test_accuracy)
echo "  lenet5 2 epochs: test accuracy $acc"
check "lenet5_learns_85_percent_in_2_epochs" "awk 'BEGIN{exit !($acc >= 0.85)}'"
check "metrics_jsonl_has_one_line_per_epoch" "[ \$(wc -l < '$T/lenet5/metrics.jsonl') -eq 2 ]"
check "config_json_records_provenance" "grep -q '\"openblas_core\"' '$T/mlp/config.json' && grep -q '\"git_commit\"' '$T/mlp/config.json' && grep -q '\"command_line\"' '$T/mlp/config.json'"

# Reproducibility: same seed, same threads -> identical weights and BN statistics (on the real
# data cut to 6000 + 1000 samples, so evaluation stays quick).
/usr/bin/python3 tests/make_subset.py "$DATA" "$T/subset.h5" 6000 1000 || bad make_subset
SUBSET=$(echo "$COMMON" | sed "s|--data [^ ]*|--data $T/subset.h5|")
for r in a b; do
    "$CIGL" train $SUBSET --model resnet20 --max-steps 12 --val-size 500 --seed 5 --out "$T/det_$r" >/dev/null 2>&1
done
"$CIGL" train $SUBSET --model resnet20 --max-steps 12 --val-size 500 --seed 6 --out "$T/det_c" >/dev/null 2>&1
check "same_seed_identical_weights" "h5diff '$T/det_a/final.h5' '$T/det_b/final.h5' /weights /weights && h5diff '$T/det_a/final.h5' '$T/det_b/final.h5' /bn /bn"
# h5diff: 0 same, 1 different, 2 an error (a missing file): only 1 passes
check "other_seed_other_weights" "h5diff -q '$T/det_a/final.h5' '$T/det_c/final.h5' /weights /weights; [ \$? -eq 1 ]"

# Bad input: one line on stderr, exit status 2, no run directory created.
expect_usage() { # name, args...
    name=$1; shift
    "$CIGL" "$@" >"$T/err.out" 2>"$T/err.txt"; rc=$?
    lines=$(wc -l < "$T/err.txt")
    if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && [ ! -e "$T/bad" ]; then ok "$name"; else
        bad "$name (exit $rc, $lines lines, dir exists: $([ -e "$T/bad" ] && echo yes || echo no))"; cat "$T/err.txt"; fi
    rm -rf "$T/bad"
}
printf 'not an hdf5 file\n' > "$T/garbage.h5"
expect_usage bad_unknown_model train --data "$DATA" --model resnet99 --out "$T/bad"
expect_usage bad_unknown_flag train --data "$DATA" --model mlp --out "$T/bad" --frobnicate 3
expect_usage bad_negative_lr train --data "$DATA" --model mlp --out "$T/bad" --lr -1
expect_usage bad_not_a_number train --data "$DATA" --model mlp --out "$T/bad" --epochs two
expect_usage bad_missing_dataset train --data "$T/nope.h5" --model mlp --out "$T/bad"
expect_usage bad_malformed_dataset train --data "$T/garbage.h5" --model mlp --out "$T/bad"
expect_usage bad_missing_out train --data "$DATA" --model mlp
expect_usage bad_batch_too_large train --data "$DATA" --model mlp --out "$T/bad" --batch-size 60000
expect_usage bad_milestones train --data "$DATA" --model mlp --out "$T/bad" --milestones 0.8,0.5
expect_usage bad_command frobnicate
expect_usage bad_convert_format convert cifar11 /tmp "$T/bad"
# A directory that already holds a run is refused.
expect_usage bad_out_holds_run train --data "$DATA" --model mlp --out "$T/mlp"

summary
