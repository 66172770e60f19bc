#!/usr/bin/env python3
"""Independent Philox4x32-10 (written from the Salmon et al. SC'11 description) used to check
cigl's committed random-mask test vector: seed 0, step 0, indices 0..7, purpose 1."""
import sys

M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox(ctr, key):
    c, k = list(ctr), list(key)
    for _ in range(10):
        p0, p1 = M0 * c[0], M1 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & MASK, p1 & MASK,
             ((p0 >> 32) ^ c[3] ^ k[1]) & MASK, p0 & MASK]
        k = [(k[0] + W0) & MASK, (k[1] + W1) & MASK]
    return c


def z_word(seed, step, i, purpose=1):
    out = philox((i // 4, step & MASK, step >> 32, purpose), (seed & MASK, seed >> 32))
    return out[i % 4]


if __name__ == "__main__":
    words = [z_word(0, 0, i) for i in range(8)]
    print(" ".join("%08x" % w for w in words))
    expected = sys.argv[1:]
    if expected:
        sys.exit(0 if expected == ["%08x" % w for w in words] else 1)
