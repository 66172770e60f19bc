#!/bin/sh
# The committed random-mask vector in tests/test_rng.c equals an independent Python Philox.
vec=$(sed -n '/static const uint32_t vector\[8\]/,/};/p' tests/test_rng.c | grep -o '0x[0-9a-f]*' | sed 's/0x//' | tr '\n' ' ')
if /usr/bin/python3 tests/philox_reference.py $vec; then echo "1 passed, 0 failed"; else echo "independent Philox disagrees with tests/test_rng.c: $vec"; echo "0 passed, 1 failed"; fi
