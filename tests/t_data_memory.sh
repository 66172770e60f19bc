#!/bin/sh
# Memory does not grow with the dataset: peak RSS training (streamed) on a generated dataset of
# 1.03 GiB exceeds that on one ten times smaller by less than 32 MiB. The files are random
# pixels from `cigl convert synthetic` (~3 s for the large one), in a temporary directory
# deleted afterwards; skipped with a message when that file system has under 3 GiB free.
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_WAIT_POLICY=PASSIVE

free_kib=$(df -Pk "$T" | awk 'NR == 2 {print $4}')
if [ "${free_kib:-0}" -lt $((3 * 1024 * 1024)) ]; then
    for c in large_file_is_at_least_1_GiB both_runs_finished peak_rss_grows_by_less_than_32_MiB \
        in_memory_run_holds_the_pixels; do
        skip "$c" "$T has $((free_kib / 1024)) MiB free, the memory test needs 3 GiB (set TMPDIR)"
    done
    summary
    exit 0
fi

# 3 x 64 x 64 = 12288 bytes per sample: 90,000 training samples are 1.03 GiB, 9,000 are 105 MiB
"$CIGL" convert synthetic "$T/big.h5" --train 90000 --test 1000 --shape 3,64,64 >/dev/null || bad convert_big
"$CIGL" convert synthetic "$T/small.h5" --train 9000 --test 1000 --shape 3,64,64 >/dev/null || bad convert_small
big_bytes=$(stat -c %s "$T/big.h5")
check "large_file_is_at_least_1_GiB" "[ $big_bytes -ge 1073741824 ]"

# Peak RSS (KiB) of one training run: the child's ru_maxrss, read by a parent that runs only it.
peak_kib() { # data file, mode
    /usr/bin/python3 -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)
' "$CIGL" train --data "$1" --data-mode "$2" --model mlp --max-steps 40 --batch-size 64 \
        --val-size 1000 --threads 2 --out "$T/run_$(basename "$1" .h5)_$2"
}
big=$(peak_kib "$T/big.h5" stream)
small=$(peak_kib "$T/small.h5" stream)
small_mem=$(peak_kib "$T/small.h5" memory)
echo "  peak RSS streamed: $((big / 1024)) MiB on $((big_bytes >> 20)) MiB of data, $((small / 1024)) MiB on the 10x smaller file ($((small_mem / 1024)) MiB with --data-mode memory)"
check "both_runs_finished" "[ $big -gt 0 ] && [ $small -gt 0 ] && [ $small_mem -gt 0 ]"
check "peak_rss_grows_by_less_than_32_MiB" "[ \$(( $big - $small )) -lt 32768 ]"
# the in-memory run holds the ~105 MiB of pixels: the measurement does see data in memory
check "in_memory_run_holds_the_pixels" "[ \$(( $small_mem - $small )) -gt 90000 ]"
summary
