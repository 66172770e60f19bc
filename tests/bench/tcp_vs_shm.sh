#!/bin/bash
# Training throughput of 2 ranks over TCP between two namespace "nodes" (tests/netns_lib.sh:
# veth, own hostnames and /tmp; 1 rank per node) against 2 ranks on one node (shared memory),
# for resnet20 dense and CigL at 95% sparsity. Prints one line per run: images/s, the time the
# ranks waited for the gradient allreduce (final.json's communication_wait_seconds) per step,
# and the gradient bytes each step sends (4 bytes per active weight; every update-interval-th
# step is dense). Root and ip netns needed. Both "nodes" share this machine's cores, so TCP
# here costs kernel copies, not wire time: the figures bound software overhead only.
#
#   tests/bench/tcp_vs_shm.sh [STEPS] [BATCH]      (default 40 steps of 64 images)
set -u
STEPS=${1:-40}; BATCH=${2:-64}
BUILD=${BUILD:-build}
CIGL=$(cd "$(dirname "$BUILD/cigl")" && pwd)/cigl
PY=/usr/bin/python3
T=$(mktemp -d /var/tmp/cgs-bench.XXXXXX)
. tests/netns_lib.sh
trap 'netns_down; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
NN_PREFIX=cgs NN_NET=10.78
netns_up "$T" || { echo "tcp_vs_shm: skipped: $NN_WHY"; exit 0; }
disown -a   # no "Killed" lines from the node holders at teardown
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
DATA=$BUILD/data/fashion-mnist.h5
[ -f "$DATA" ] || "$CIGL" convert fashion-mnist /usr/share/datasets/fashion-mnist "$DATA" >/dev/null
"$PY" tests/make_subset.py "$DATA" "$T/sub.h5" $(( STEPS * BATCH + 100 )) 100 || exit 1
common=(--data "$T/sub.h5" --model resnet20 --batch-size "$BATCH" --max-steps "$STEPS"
        --val-size 100 --threads 1 --check-every 0)
shm=(mpirun -np 2 --bind-to none --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
tcp=(mpirun -np 2 --host "$(nn_name 1):1,$(nn_name 2):1" --bind-to none
     --mca plm_rsh_agent "$NN_AGENT" --mca btl self,tcp
     --mca btl_tcp_if_include "$NN_IF" --mca oob_tcp_if_include "$NN_IF")
active_bytes() { # final.h5: 4 x the active weights (all weights without masks)
    "$PY" - "$1" <<'P'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    total = sum(v.size for v in f["weights"].values()) if "weights" in f else 0
    if "masks" in f and len(f["masks"]):
        masked = sum(v.size for v in f["masks"].values())
        ones = sum(int(np.count_nonzero(v[()])) for v in f["masks"].values())
        total = total - masked + ones
    print(4 * total)
P
}
printf '%-14s %-4s %8s %8s %12s %12s\n' run link img/s steps "wait/step ms" "bytes/step"
for cfg in "dense:--method dense" "cigl95:--method cigl --sparsity 0.95 --average-every 5"; do
    name=${cfg%%:*}; read -r -a m <<<"${cfg#*:}"
    for link in shm tcp; do
        out=$T/$name-$link
        if [ $link = shm ]; then launch=("${shm[@]}"); else launch=("${tcp[@]}"); fi
        nn_exec 1 "${launch[@]}" "$CIGL" train "${common[@]}" "${m[@]}" --out "$out" \
            >"$out.log" 2>&1 || { echo "$name $link failed:"; tail -n 5 "$out.log"; continue; }
        "$PY" - "$out/final.json" "$name" "$link" "$(active_bytes "$out/final.h5")" <<'P'
import json, sys
d = json.load(open(sys.argv[1]))
w = 1000 * d["communication_wait_seconds"] / d["steps"]
print("%-14s %-4s %8.1f %8d %12.2f %12s" % (sys.argv[2], sys.argv[3],
      d["train_images_per_second"], d["steps"], w, sys.argv[4]))
P
    done
done
