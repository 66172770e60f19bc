#!/bin/sh
# make check, stage 3: clang-tidy (checks in .clang-tidy) and cppcheck over src/, mpi/ and
# datasets/ with the build's include paths and macros. Every finding is a failure: fix it, or
# silence a false positive where it is (NOLINT(check) or cppcheck-suppress with the reason),
# or turn a check off in .clang-tidy / tests/check/cppcheck.supp with the reason.
. tests/lib.sh
MULTIARCH=$(gcc -print-multiarch)
INC="-Iinclude -Isrc -Idatasets -I/usr/include/$MULTIARCH/openblas-openmp -I/usr/include/hdf5/serial"
INC="$INC -I/usr/include/libpng16 $(mpicc --showme:compile 2>/dev/null)"
DEFS='-D_DEFAULT_SOURCE -DCIGL_GIT_COMMIT="x" -DCIGL_BUILD_FLAGS="x"' # quotes kept literally
FILES=$(ls src/*/*.c mpi/*.c datasets/*.c)
out="${BUILD}/analyze"
mkdir -p "$out"

# clang-tidy: one process per file, both cores
start=$(date +%s)
# (stderr only carries clang's "N warnings generated" counts of suppressed warnings)
printf '%s\n' $FILES | xargs -P 2 -I{} clang-tidy --quiet {} -- -std=c11 -fopenmp $DEFS $INC \
    >"$out/clang-tidy.log" 2>/dev/null
n=$(grep -c 'warning:\|error:' "$out/clang-tidy.log")
echo "  clang-tidy: $(echo $FILES | wc -w) files, checks: $(clang-tidy --list-checks 2>/dev/null | grep -c '^    ') enabled, $n findings ($(( $(date +%s) - start )) s)"
check "clang_tidy_zero_findings" "[ $n -eq 0 ]"
[ "$n" -eq 0 ] || grep -A 3 'warning:\|error:' "$out/clang-tidy.log" | head -n 80

# cppcheck: C11, the same macros; system headers are not analysed (--library=posix knows libc)
start=$(date +%s)
cppcheck --quiet --std=c11 --language=c --enable=warning,performance,portability \
    --library=posix --inline-suppr --suppressions-list=tests/check/cppcheck.supp \
    --error-exitcode=1 -j 2 $DEFS -Iinclude -Isrc -Idatasets \
    --template='{file}:{line}: {severity}: {message} [{id}]' $FILES >"$out/cppcheck.log" 2>&1
rc=$?
n=$(grep -c ': \(error\|warning\|performance\|portability\|style\):' "$out/cppcheck.log")
echo "  cppcheck: $(echo $FILES | wc -w) files, --enable=warning,performance,portability, $n findings ($(( $(date +%s) - start )) s)"
check "cppcheck_zero_findings" "[ $rc -eq 0 ] && [ $n -eq 0 ]"
[ "$n" -eq 0 ] || head -n 40 "$out/cppcheck.log"
summary
