#!/bin/bash
# make static and jobs/bundle.sh: the static binary needs only glibc and libmpi; the bundle stays
# under 60 MiB; with the system's Open MPI, PMIx, hwloc, libevent, OpenBLAS and HDF5 hidden (a
# private mount namespace, when unshare is allowed) every library of cigl, mpirun and the Open
# MPI plugins resolves inside the bundle, and ./run.sh 2 trains 20 steps on 2 ranks.
. tests/lib.sh
T=$(mktemp -d /tmp/cigl-bundle-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

BUILD=$BUILD jobs/bundle.sh "$T/b" >"$T/bundle.log" 2>&1
brc=$?
check "bundle_built" "[ $brc -eq 0 ] && [ -f '$T/b/bin/cigl.gz' ] && [ -x '$T/b/run.sh' ] && [ -x '$T/b/mpi/usr/bin/orterun' ]"
tail -n 3 "$T/bundle.log" | sed 's/^/  /'
needed=$(readelf -d "$BUILD/cigl-static" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
echo "  cigl-static needs: $needed"
check "static_binary_needs_only_glibc_and_libmpi" "[ '$needed' = 'ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libmpi.so.40 ' ]"
mib=$(du -sm "$T/b" | cut -f1)
echo "  bundle size: $mib MiB"
check "bundle_at_most_60_MiB" "[ $mib -le 60 ]"

# hide the system's libraries; without unshare (no CAP_SYS_ADMIN) LD_LIBRARY_PATH alone is checked
cat >"$T/hide.sh" <<'EOF'
L=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
E=$(mktemp -d)
for d in $L/openmpi $L/pmix2 $L/openblas-openmp $L/hdf5 $L/blas $L/lapack /etc/openmpi /usr/share/openmpi; do
    [ -d "$d" ] && mount --bind "$E" "$d"
done
for f in $L/libmpi* $L/libopen-rte* $L/libopen-pal* $L/libhwloc* $L/libevent* $L/libpmix* $L/libhdf5* \
         $L/libopenblas* $L/libgfortran* $L/libgomp* $L/libsz* $L/libaec* $L/libjpeg* $L/libpng* \
         /usr/bin/orterun /usr/bin/orted /usr/bin/mpirun.openmpi; do
    [ -f "$f" ] && [ ! -L "$f" ] && mount --bind /dev/null "$f"
done
exec "$@"
EOF
if unshare -m true 2>/dev/null; then
    HIDE="unshare -m bash $T/hide.sh"; echo "  system Open MPI, OpenBLAS and HDF5 hidden (mount namespace)"
else
    HIDE=""; echo "  unshare not allowed here: checking with LD_LIBRARY_PATH only"
fi
$HIDE bash -c ". '$T/b/env.sh'; B='$T/b'; for f in \$CIGL \$B/mpi/usr/bin/orterun \$B/mpi/usr/bin/orted \$B/mpi/usr/lib/*/openmpi/lib/openmpi3/*.so \$B/mpi/usr/lib/*/pmix2/lib/pmix/*.so; do
    ldd \$f | awk -v f=\$f '/=>/ && \$3 !~ \"^'\$B'\" && \$1 !~ /^(libc|libm|libdl|libpthread|librt|ld-linux)/ {print f\": \"\$0}'
    ldd \$f | grep -q 'not found' && echo \"\$f: not found\"
done" >"$T/ldd.txt" 2>&1
check "every_library_resolves_inside_the_bundle" "[ ! -s '$T/ldd.txt' ]"
head -n 5 "$T/ldd.txt"

$HIDE bash -c "cd '$T' && timeout 120 '$T/b/run.sh' 2 --model mlp --method cigl --sparsity 0.9 --max-steps 20 \
    --update-end 0 --average-start 0 --average-every 5 --out '$T/run'" >"$T/run.log" 2>&1
check "bundle_run_two_ranks_20_steps" "grep -q '\"ranks\": 2' '$T/run/final.json' 2>/dev/null && grep -q '20 steps' '$T/run.log'"
check "bundle_run_without_mpi_warnings" "! grep -q -e 'Sorry' -e 'WARNING' -e 'No such file' '$T/run.log'"
check "bundle_run_recorded_machine" "grep -q '\"launcher\": \"mpirun\"' '$T/run/launches.jsonl'"
[ -f "$T/run/final.json" ] || tail -n 15 "$T/run.log"
summary
