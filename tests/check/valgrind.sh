#!/bin/sh
# make check, stage 2: end-to-end runs under valgrind memcheck (the normal -O2 -g build in
# $BUILD): `cigl convert synthetic`, a 10-step `cigl train` (CigL: mask updates, the random
# mask, weight averaging) of the mlp on a 700 + 300-sample subset of the real Fashion-MNIST,
# and `cigl eval` of its model. Each must end with zero memcheck errors (invalid reads or
# writes, uses of uninitialised values, bad frees) and zero definitely or indirectly lost
# bytes, apart from Open MPI's own (valgrind.supp).
# OMP_WAIT_POLICY is set so cigl does not re-execute itself (that exec would leave valgrind).
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_WAIT_POLICY=PASSIVE
VG="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --num-callers=40 --suppressions=tests/check/valgrind.supp"
need_data
"$PY" tests/make_subset.py "$DATA" "$T/sub.h5" 700 300 || { echo "subset failed"; echo "0 passed, 1 failed"; exit 1; }
# one run under valgrind: name, then the cigl command line; prints memcheck's verdict
vg() {
    name=$1; shift
    start=$(date +%s)
    $VG "$CIGL" "$@" >"$T/$name.out" 2>"$T/$name.vg"
    rc=$?
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$T/$name.vg" | tail -n 1)
    def=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$T/$name.vg" | tail -n 1)
    ind=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$T/$name.vg" | tail -n 1)
    echo "  $name: exit $rc, $errs memcheck errors, definitely lost ${def:-0} B, indirectly lost ${ind:-0} B ($(( $(date +%s) - start )) s)"
    check "valgrind_${name}_clean" "[ $rc -eq 0 ] && [ '$errs' = 0 ]"
    [ $rc -eq 0 ] || grep -A 25 -E 'Invalid|uninitialised|definitely lost in|indirectly lost in' "$T/$name.vg" | head -n 60
}
vg convert_synthetic convert synthetic "$T/syn.h5" --train 300 --test 100 --shape 1,8,8 --classes 3
vg train_mlp_10_steps train --data "$T/sub.h5" --model mlp --method cigl --sparsity 0.9 \
    --update-interval 4 --update-end 0.5 --average-start 0.6 --average-every 2 \
    --epochs 1 --max-steps 10 --batch-size 64 --val-size 60 --threads 1 --out "$T/run"
check "train_wrote_final_json" "[ -f '$T/run/final.json' ]"
vg eval_model eval --model "$T/run/final.h5" --data "$T/sub.h5" --out "$T/eval" --threads 1
summary
