#ifndef FTQ_SHA256_H
#define FTQ_SHA256_H
#include <stddef.h>
#include <stdint.h>

/// SHA-256 (FIPS 180-4) with the x86 SHA extensions, for one byte stream or two at once
/// (formats/manifest.md, "Hashing"). Callers check ftq_sha256_accelerated() first and use
/// another implementation where it returns 0.
typedef struct {
    uint32_t h[8];
    uint64_t total;
    uint8_t pending[64];
    uint32_t used;
} ftq_sha256_ctx;

/// 1 when this CPU has the SHA extensions (and SSSE3 / SSE4.1) that these functions need.
int ftq_sha256_accelerated(void);
void ftq_sha256_init(ftq_sha256_ctx *ctx);
void ftq_sha256_update(ftq_sha256_ctx *ctx, const void *data, size_t count);
/// Feeds the same bytes to both digests, hashing the two streams' blocks interleaved.
void ftq_sha256_update2(ftq_sha256_ctx *a, ftq_sha256_ctx *b, const void *data, size_t count);
void ftq_sha256_final(ftq_sha256_ctx *ctx, uint8_t digest[32]);

#endif
