#include "cigl/checksum.h"

uint64_t checksum_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull; /* FNV's 64-bit prime */
    }
    return h;
}
