#!/bin/bash
# Assemble a self-contained folder that trains with cigl on an x86-64 Linux machine without
# Open MPI, HDF5 or OpenBLAS (glibc >= 2.34 is all it needs):
#   bin/cigl.gz       build/cigl-static (make static), stripped and gzipped (unpacked on first use)
#   mpi/              Open MPI's Debian packages (openmpi-bin, libopenmpi3, openmpi-common) and the
#                     libraries they and cigl load (found with ldd), extracted from the .debs
#   data/             the Fashion-MNIST IDX files (converted to HDF5 on first use)
#   jobs/             cigl.sbatch, local.sh, plan.sh, sweep.sbatch: the same scripts as here
#   env.sh            sets PATH, LD_LIBRARY_PATH, OPAL_PREFIX, PMIx's plugin path, CIGL,
#                     CIGL_MPIRUN_ARGS
#   run.sh            RANKS [cigl train options]: one run with mpirun (bundled Fashion-MNIST by default)
#   MANIFEST          versions, sizes and the machine that built it
# Usage: jobs/bundle.sh [OUT_DIR]   (default: $BUILD/cigl-bundle; BUILD defaults to build)
# Network fabrics (UCX, libfabric, verbs, PSM) are left out with the Open MPI plugins that need
# them: one node uses shared memory (vader), several nodes TCP.
set -eu
BUILD=${BUILD:-build}
OUT=${1:-$BUILD/cigl-bundle}
ARCH=$(gcc -print-multiarch)
L=/usr/lib/$ARCH
die() { echo "bundle.sh: $*" >&2; exit 1; }

make --no-print-directory BUILD="$BUILD" static >/dev/null || die "make static failed; run it to see why"
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/data/fashion-mnist" "$OUT/jobs" "$OUT/mpi"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

strip -o "$TMP/cigl" "$BUILD/cigl-static"
gzip -9 -c "$TMP/cigl" >"$OUT/bin/cigl.gz"

# --- Open MPI and what it loads: packages owning every library ldd finds ---
skip='^(libc6|libgcc-s1|libucx0|libfabric1|libibverbs1|ibverbs-providers|librdmacm1|libpsm2-2|libpsm-infinipath1|libnl-3-200|libnl-route-3-200|libmunge2)$'
owner() { dpkg -S "$1" 2>/dev/null | head -n 1 | cut -d: -f1 ||
          dpkg -S "${1#/usr}" 2>/dev/null | head -n 1 | cut -d: -f1; }
elves="$BUILD/cigl-static $(readlink -f /usr/bin/mpirun) /usr/bin/orted $L/openmpi/lib/openmpi3/*.so $L/pmix2/lib/pmix/*.so"
pkgs="openmpi-bin libopenmpi3 openmpi-common libpmix2"
for lib in $(ldd $elves 2>/dev/null | awk '/=>/ {print $3}' | sort -u); do
    p=$(owner "$(readlink -f "$lib")")
    [ -n "$p" ] || p=$(owner "$lib")
    [ -n "$p" ] && ! echo "$p" | grep -qE "$skip" && pkgs="$pkgs $p"
done
pkgs=$(echo "$pkgs" | tr ' ' '\n' | sed 's/:.*//' | sort -u | tr '\n' ' ')
echo "bundle.sh: packages: $pkgs"
got=installed   # CIGL_BUNDLE_OFFLINE=1: skip the download, use the installed packages' files
[ -n "${CIGL_BUNDLE_OFFLINE:-}" ] || { (cd "$TMP" && apt-get download $pkgs >"$TMP/download.log" 2>&1) && got=debs; }
if [ "$got" = debs ]; then
    for d in "$TMP"/*.deb; do dpkg-deb -x "$d" "$OUT/mpi"; done
else
    # offline: the same files, from the installed packages
    echo "bundle.sh: apt-get download failed (offline?); copying the installed packages' files"
    for p in $pkgs; do
        dpkg -L "$p" | while read -r f; do
            [ -f "$f" ] || [ -L "$f" ] || continue
            mkdir -p "$OUT/mpi$(dirname "$f")" && cp -a "$f" "$OUT/mpi$f"
        done
    done
fi
rm -rf "$OUT/mpi/usr/share/doc" "$OUT/mpi/usr/share/man" "$OUT/mpi/usr/share/lintian" \
       "$OUT/mpi/usr/lib/$ARCH/openmpi/include" "$OUT/mpi/usr/lib/$ARCH/pmix2/include"
# usrmerge: packages may put libraries under /lib; give the loader one directory
if [ -d "$OUT/mpi/lib/$ARCH" ]; then
    mkdir -p "$OUT/mpi/usr/lib/$ARCH"
    cp -a "$OUT/mpi/lib/$ARCH/." "$OUT/mpi/usr/lib/$ARCH/" && rm -rf "$OUT/mpi/lib"
fi
rmdir "$OUT/mpi/lib" 2>/dev/null || true
# Debian names the launcher through alternatives (made at install time, not in the .deb)
[ -e "$OUT/mpi/usr/bin/mpirun" ] || ln -s orterun "$OUT/mpi/usr/bin/mpirun"
LIBS=$OUT/mpi/usr/lib/$ARCH:$OUT/mpi/usr/lib/$ARCH/openmpi/lib
# plugins needing a library from outside the bundle (other than glibc's) would only print
# load errors on the target: remove them
glibc='^(linux-vdso|libc|libm|libdl|libpthread|librt|ld-linux)'
for so in "$OUT"/mpi/usr/lib/"$ARCH"/openmpi/lib/openmpi3/*.so "$OUT"/mpi/usr/lib/"$ARCH"/pmix2/lib/pmix/*.so; do
    if LD_LIBRARY_PATH=$LIBS ldd "$so" 2>/dev/null |
        awk -v b="$OUT/" -v g="$glibc" '$1 !~ g && ($3 == "not" || ($3 ~ /^\// && index($3, b) != 1)) {bad=1} END {exit !bad}'; then
        rm -f "$so" "${so%.so}.la"
    fi
done

cp /usr/share/datasets/fashion-mnist/*-ubyte.gz "$OUT/data/fashion-mnist/"
cp jobs/cigl.sbatch jobs/local.sh jobs/plan.sh jobs/sweep.sbatch "$OUT/jobs/" 2>/dev/null || true
mkdir -p "$OUT/build"   # the jobs scripts look for build/cigl next to jobs/

cat >"$OUT/env.sh" <<'EOF'
# . env.sh: the bundled Open MPI and cigl first on the paths; cigl unpacked on first use.
B=$(cd "$(dirname "${BASH_SOURCE:-$0}")" && pwd)
A=$(ls "$B/mpi/usr/lib" | grep -- '-linux-gnu$' | head -n 1)
if [ ! -x "$B/build/cigl" ]; then
    gzip -dc "$B/bin/cigl.gz" >"$B/build/cigl.tmp.$$" && chmod +x "$B/build/cigl.tmp.$$" &&
        mv "$B/build/cigl.tmp.$$" "$B/build/cigl"
fi
export CIGL=$B/build/cigl CIGL_HOME=$B
export OPAL_PREFIX=$B/mpi/usr
# PMIx (used by mpirun and the ranks) finds its plugins through this, not through OPAL_PREFIX
export PMIX_MCA_mca_base_component_path=$B/mpi/usr/lib/$A/pmix2/lib/pmix
export PATH=$B/mpi/usr/bin:$PATH
export LD_LIBRARY_PATH=$B/mpi/usr/lib/$A:$B/mpi/usr/lib/$A/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OMPI_MCA_mca_base_component_show_load_errors=0
# containers often forbid the cross-memory attach that vader uses for large messages
export CIGL_MPIRUN_ARGS=${CIGL_MPIRUN_ARGS:---bind-to none --mca btl_vader_single_copy_mechanism none -x LD_LIBRARY_PATH -x OPAL_PREFIX -x PMIX_MCA_mca_base_component_path}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
EOF

cat >"$OUT/run.sh" <<'EOF'
#!/bin/bash
# ./run.sh RANKS [cigl train options]: one run on RANKS MPI ranks with the bundled Open MPI;
# --data defaults to the bundled Fashion-MNIST (converted to data/fashion-mnist.h5 once),
# --threads to CIGL_THREADS or 1. Signals (Ctrl-C, SIGTERM, SIGUSR2) make cigl checkpoint;
# rerunning the same command resumes. Example:
#   ./run.sh 2 --model mlp --method cigl --sparsity 0.9 --max-steps 20 --out runs/smoke
set -u
B=$(cd "$(dirname "$0")" && pwd)
. "$B/env.sh"
[ $# -ge 1 ] && [ "$1" -ge 1 ] 2>/dev/null || { echo "usage: ./run.sh RANKS [cigl train options]" >&2; exit 2; }
export CIGL_RANKS=$1; shift
case " $* " in *" --data "*|*" --data="*) ;; *)
    if [ ! -f "$B/data/fashion-mnist.h5" ]; then
        "$CIGL" convert fashion-mnist "$B/data/fashion-mnist" "$B/data/fashion-mnist.h5.tmp" >/dev/null &&
            mv "$B/data/fashion-mnist.h5.tmp" "$B/data/fashion-mnist.h5" || exit 1
    fi
    set -- --data "$B/data/fashion-mnist.h5" "$@" ;;
esac
CIGL_LAUNCHER=${CIGL_LAUNCHER:-mpirun} exec "$B/jobs/cigl.sbatch" "$@"
EOF
chmod +x "$OUT/run.sh"

{
    echo "cigl bundle built $(date -u +%FT%TZ) on $(hostname) from commit $(git rev-parse --short=12 HEAD 2>/dev/null)"
    echo "cigl: $(readelf -d "$BUILD/cigl-static" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')(static: OpenBLAS, HDF5, zlib, png, jpeg, gfortran, gomp)"
    echo "needs: glibc >= $(objdump -T "$BUILD/cigl-static" | grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -n 1 | cut -d_ -f2), x86-64"
    echo "packages ($got):"
    for p in $pkgs; do echo "  $p $(dpkg-query -W -f '${Version}' "$p" 2>/dev/null)"; done
    echo "size: $(du -sm "$OUT" | cut -f1) MiB"
} >"$OUT/MANIFEST"
cat "$OUT/MANIFEST"
