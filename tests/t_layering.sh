#!/bin/sh
# make test runs the layering check of make check too (tests/check/layering.sh): it is cheap,
# and an include against the layers should fail where it is written.
exec sh tests/check/layering.sh
