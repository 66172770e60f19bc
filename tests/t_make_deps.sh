#!/bin/sh
# The Makefile's header tracking (-MMD -MP): in a private copy of the sources, built into its own
# BUILD directory, touching a header rebuilds exactly the objects that include it. The private
# header src/data/data_internal.h is read by the data_* sources only; include/cigl/rng.h by
# core/rng.c but not core/json.c. Removing a header the .d files still name must not stop make.
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp -r Makefile include src datasets mpi tests "$T"/ 2>/dev/null
# Sources older than any object, so that only a touched header can make one out of date.
find "$T" -type f -exec touch -d '2 hours ago' {} +
B=$T/b
OBJ="$B/obj/src/data/data_read.o $B/obj/src/data/data_stream.o $B/obj/src/data/image_resize.o \
$B/obj/src/core/rng.o $B/obj/src/core/json.o"
# BUILD is absolute, so the objects' names are what the .d files name.
mk() { make --no-print-directory -C "$T" BUILD="$B" $OBJ 2>&1; }
# compiled NAME: did the last make output compile src/.../NAME.c?
compiled() { echo "$out" | grep -q -- "-c [^ ]*/$1\.c "; }
age() { touch -d '1 hour ago' $OBJ; }

out=$(mk); rc=$?
check first_build "[ $rc -eq 0 ] && compiled data_read && compiled json"
check writes_dep_files "[ -f $B/obj/src/data/data_read.o.d ] && \
    grep -q 'src/data/data_internal.h' $B/obj/src/data/data_read.o.d"
out=$(mk); rc=$?
check nothing_to_redo "[ $rc -eq 0 ] && ! compiled data_read && ! compiled rng && ! compiled json"

age; touch "$T/src/data/data_internal.h"; out=$(mk)
check private_header_rebuilds_dependents "compiled data_read && compiled data_stream"
check private_header_spares_others "! compiled image_resize && ! compiled rng && ! compiled json"

age; touch "$T/include/cigl/rng.h"; out=$(mk)
check public_header_rebuilds_dependents "compiled rng"
check public_header_spares_others "! compiled json && ! compiled image_resize"

# -MP: a header that disappears (and no longer is included) is no error for make.
printf '#define CIGL_T_MAKE_DEPS 1\n' >"$T/src/core/t_gone.h"
sed -i '1i #include "t_gone.h"' "$T/src/core/json.c"
out=$(mk); rc1=$?
rm "$T/src/core/t_gone.h"; sed -i '1d' "$T/src/core/json.c"
out=$(mk); rc2=$?
check removed_header_no_error "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && compiled json"
summary
