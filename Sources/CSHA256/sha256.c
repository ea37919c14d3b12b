// SHA-256 with the x86 SHA extensions: one stream, or two streams whose block compressions
// are interleaved so that each one's round latency hides behind the other's
// (formats/manifest.md, "Hashing").
#include "ftq_sha256.h"
#include <string.h>

static const uint32_t initial[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

void ftq_sha256_init(ftq_sha256_ctx *ctx) {
    memcpy(ctx->h, initial, sizeof initial);
    ctx->total = 0;
    ctx->used = 0;
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

int ftq_sha256_accelerated(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int sha = (b >> 29) & 1;
    return ssse3 && sse41 && sha;
}

// The 64 round constants (FIPS 180-4, 4.2.2).
static const uint32_t K[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

// Compresses `blocks` 64-byte blocks of each of `lanes` streams (state h[l], data p[l]).
// The SHA extensions keep the state as two vectors, (a, b, e, f) and (c, d, g, h); each
// sha256rnds2 does two rounds, and sha256msg1 / sha256msg2 extend the message schedule four
// words at a time.
static inline __attribute__((always_inline)) SHA_TARGET
void compress(uint32_t *h[], const uint8_t *p[], size_t blocks, const int lanes) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i abef[2], cdgh[2];
    for (int l = 0; l < lanes; l++) {
        __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[l][0]), 0xB1);
        __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[l][4]), 0x1B);
        abef[l] = _mm_alignr_epi8(dcba, hgfe, 8);
        cdgh[l] = _mm_blend_epi16(hgfe, dcba, 0xF0);
    }
    for (size_t b = 0; b < blocks; b++) {
        __m128i w[2][4], abef0[2], cdgh0[2];
        for (int l = 0; l < lanes; l++) {
            const uint8_t *q = p[l] + 64 * b;
            for (int i = 0; i < 4; i++) w[l][i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(q + 16 * i)), swap);
            abef0[l] = abef[l];
            cdgh0[l] = cdgh[l];
        }
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < 16; r++) {
            for (int l = 0; l < lanes; l++) {
                __m128i kw = _mm_add_epi32(w[l][r & 3], _mm_load_si128((const __m128i *)&K[4 * r]));
                cdgh[l] = _mm_sha256rnds2_epu32(cdgh[l], abef[l], kw);
                abef[l] = _mm_sha256rnds2_epu32(abef[l], cdgh[l], _mm_shuffle_epi32(kw, 0x0E));
                if (r < 12) {
                    // Words 4(r+4) .. 4(r+4)+3 from groups r .. r+3.
                    __m128i t = _mm_sha256msg1_epu32(w[l][r & 3], w[l][(r + 1) & 3]);
                    t = _mm_add_epi32(t, _mm_alignr_epi8(w[l][(r + 3) & 3], w[l][(r + 2) & 3], 4));
                    w[l][r & 3] = _mm_sha256msg2_epu32(t, w[l][(r + 3) & 3]);
                }
            }
        }
        for (int l = 0; l < lanes; l++) {
            abef[l] = _mm_add_epi32(abef[l], abef0[l]);
            cdgh[l] = _mm_add_epi32(cdgh[l], cdgh0[l]);
        }
    }
    for (int l = 0; l < lanes; l++) {
        __m128i feba = _mm_shuffle_epi32(abef[l], 0x1B);
        __m128i dchg = _mm_shuffle_epi32(cdgh[l], 0xB1);
        _mm_storeu_si128((__m128i *)&h[l][0], _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128((__m128i *)&h[l][4], _mm_alignr_epi8(dchg, feba, 8));
    }
}

static SHA_TARGET void compress1(uint32_t *h, const uint8_t *p, size_t blocks) {
    uint32_t *hs[1] = {h};
    const uint8_t *ps[1] = {p};
    compress(hs, ps, blocks, 1);
}

static SHA_TARGET void compress2(uint32_t *ha, const uint8_t *pa, uint32_t *hb, const uint8_t *pb, size_t blocks) {
    uint32_t *hs[2] = {ha, hb};
    const uint8_t *ps[2] = {pa, pb};
    compress(hs, ps, blocks, 2);
}
#else
int ftq_sha256_accelerated(void) { return 0; }
static void compress1(uint32_t *h, const uint8_t *p, size_t blocks) { (void)h; (void)p; (void)blocks; __builtin_trap(); }
static void compress2(uint32_t *ha, const uint8_t *pa, uint32_t *hb, const uint8_t *pb, size_t blocks) {
    (void)ha; (void)pa; (void)hb; (void)pb; (void)blocks; __builtin_trap();
}
#endif

// Completes a partly filled block from the front of the data; returns the bytes taken.
static size_t fill(ftq_sha256_ctx *ctx, const uint8_t *p, size_t n) {
    if (ctx->used == 0) return 0;
    size_t take = 64 - ctx->used;
    if (take > n) take = n;
    memcpy(ctx->pending + ctx->used, p, take);
    ctx->used += (uint32_t)take;
    if (ctx->used == 64) {
        compress1(ctx->h, ctx->pending, 1);
        ctx->used = 0;
    }
    return take;
}

// Keeps the bytes after the last whole block (fewer than 64) for later.
static void keep(ftq_sha256_ctx *ctx, const uint8_t *p, size_t n) {
    memcpy(ctx->pending + ctx->used, p, n);
    ctx->used += (uint32_t)n;
}

void ftq_sha256_update(ftq_sha256_ctx *ctx, const void *data, size_t count) {
    const uint8_t *p = data;
    ctx->total += count;
    size_t off = fill(ctx, p, count);
    if (ctx->used != 0) return;
    size_t blocks = (count - off) / 64;
    if (blocks) compress1(ctx->h, p + off, blocks);
    off += 64 * blocks;
    keep(ctx, p + off, count - off);
}

void ftq_sha256_update2(ftq_sha256_ctx *a, ftq_sha256_ctx *b, const void *data, size_t count) {
    const uint8_t *p = data;
    a->total += count;
    b->total += count;
    // Each stream first completes its own pending block; their blocks then start at
    // different offsets of the data, and whole blocks of both are compressed together.
    size_t oa = fill(a, p, count), ob = fill(b, p, count);
    size_t na = a->used ? 0 : (count - oa) / 64;
    size_t nb = b->used ? 0 : (count - ob) / 64;
    size_t both = na < nb ? na : nb;
    if (both) compress2(a->h, p + oa, b->h, p + ob, both);
    if (na > both) compress1(a->h, p + oa + 64 * both, na - both);
    if (nb > both) compress1(b->h, p + ob + 64 * both, nb - both);
    if (a->used == 0) keep(a, p + oa + 64 * na, count - oa - 64 * na);
    if (b->used == 0) keep(b, p + ob + 64 * nb, count - ob - 64 * nb);
}

void ftq_sha256_final(ftq_sha256_ctx *ctx, uint8_t digest[32]) {
    // Padding (FIPS 180-4, 5.1.1): a 1 bit, zeros, and the length in bits, big-endian.
    uint64_t bits = ctx->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padLen = (ctx->used < 56 ? 56 : 120) - ctx->used;
    for (int i = 0; i < 8; i++) pad[padLen + i] = (uint8_t)(bits >> (56 - 8 * i));
    ftq_sha256_update(ctx, pad, padLen + 8);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(ctx->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)ctx->h[i];
    }
}
