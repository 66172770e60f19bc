/* 64-bit FNV-1a, the one checksum of cigl: dataset hashes (datasets/README.md), checkpoint
 * integrity and the cross-rank agreement checks all chain checksum_bytes from the same seed. */
#ifndef CIGL_CHECKSUM_H
#define CIGL_CHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/* FNV-1a's 64-bit offset basis: the starting value of every checksum. */
#define CIGL_CHECKSUM_SEED 0xcbf29ce484222325ull

/* h updated with n bytes at p. */
uint64_t checksum_bytes(uint64_t h, const void *p, size_t n);

#endif
