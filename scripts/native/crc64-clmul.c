/*
 * CRC-64/ISO with PCLMULQDQ, as Go's hash/crc64 with crc64.MakeTable(crc64.ISO):
 * reflected polynomial 0xD800000000000000 (P(x) = x^64 + x^4 + x^3 + x + 1),
 * pre- and post-inverted inside the update, so
 * update(update(0, a), b) == update(0, a ++ b) and update(0, "123456789") ==
 * 0xb90956c775a41001.
 *
 * Compiled by scripts/build-crc64-native.ts into one position-independent
 * blob (.text and .rodata together) that src/Crc64Native.ts copies into an
 * executable anonymous mapping. So this file is freestanding: no libc, no
 * globals written, no stack protector, no PLT or GOT; the constants are read
 * RIP-relative from the blob itself.
 *
 * The method is Intel's "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ Instruction" (Gopal et al., 2009), reflected variant, worked out
 * here as follows. Bit i of a reflected 64-bit word stands for x^(63-i), bit k
 * of a 128-bit register (loaded little-endian) for x^(127-k): the first byte
 * of the message is the highest degree. A carry-less product of two reflected
 * words a, b is then the 128-bit register of a(x)b(x)x (one degree short),
 * which every constant below absorbs by being one degree lower.
 *
 * - Folding: a 128-bit block X = H x^64 + L that D bits of message still
 *   follow is worth X x^D = H x^(D+64) + L x^D (mod P), i.e. the XOR of
 *   clmul(H, x^(D+63) mod P) and clmul(L, x^(D-1) mod P), a 128-bit value
 *   added to the block D bits on. The main loop keeps 8 blocks in flight
 *   (D = 1024) and then folds them into one (D = 896 ... 128).
 * - Reduction: the CRC register of what one block X holds is X x^64 mod P.
 *   First Y = H x^128 + L x^64 = clmul(H, x^127 mod P) ^ (L in the high-degree
 *   half), 128 bits, then Barrett: q = floor(Y_high(x) mu / x^64) with
 *   mu = floor(x^128 / P); the register trick makes this the high-degree half
 *   of clmul(Y_high, floor(x^127 / P)) (mu's top bit and the missing degree
 *   cancel), and Y mod P = Y + qP, where clmul(q, floor(P / x)) = qP + q
 *   (P's constant term is 1), so the CRC is the low-degree half of
 *   Y ^ clmul(q, floor(P / x)), XOR q.
 * - Words: 8 bytes m update the register c as (c ^ m) x^64 mod P: Barrett on
 *   Y = (c ^ m) x^64 alone; a last 1..7 bytes (n of them) as
 *   (u >> 8n) ^ reduce((u << (64 - 8n))) with u = c ^ m.
 * So short inputs and tails need no table either.
 *
 * The constants come from crc64-clmul-constants.h, which
 * scripts/build-crc64-native.ts computes with BigInt polynomial arithmetic
 * over GF(2) (x^n mod P by shift-and-XOR, floor(x^127 / P) by long division,
 * then bit-reversed into the reflected form) and writes next to this file.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "crc64-clmul-constants.h"

/* Entry points: global (nm finds them) but hidden, so calls between them are direct, not through a GOT. */
#define EXPORT __attribute__((used))

typedef __m128i v128;
typedef uint64_t unaligned_u64 __attribute__((aligned(1), may_alias));
typedef uint32_t unaligned_u32 __attribute__((aligned(1), may_alias));
typedef uint16_t unaligned_u16 __attribute__((aligned(1), may_alias));

/* Pairs for _mm_clmulepi64_si128: the low qword multiplies a block's
   high-degree (first) half, the high qword its low-degree half. */
static const uint64_t fold_constants[8][2] __attribute__((aligned(16))) = {
  { CRC64_FOLD_128_HIGH, CRC64_FOLD_128_LOW },
  { CRC64_FOLD_256_HIGH, CRC64_FOLD_256_LOW },
  { CRC64_FOLD_384_HIGH, CRC64_FOLD_384_LOW },
  { CRC64_FOLD_512_HIGH, CRC64_FOLD_512_LOW },
  { CRC64_FOLD_640_HIGH, CRC64_FOLD_640_LOW },
  { CRC64_FOLD_768_HIGH, CRC64_FOLD_768_LOW },
  { CRC64_FOLD_896_HIGH, CRC64_FOLD_896_LOW },
  { CRC64_FOLD_1024_HIGH, CRC64_FOLD_1024_LOW },
};
/* Barrett: floor(x^127 / P) and floor(P / x), reflected. */
static const uint64_t barrett_constants[2] __attribute__((aligned(16))) = { CRC64_BARRETT_MU, CRC64_BARRETT_POLY };

static inline v128 fold_constant(int blocks) {
  return _mm_load_si128((const v128 *)fold_constants[blocks - 1]);
}

static inline v128 load(const uint8_t *p) {
  return _mm_loadu_si128((const v128 *)p);
}

/* X x^D for a block X, D = 128 * blocks bits, as a 128-bit value congruent mod P. */
static inline v128 fold(v128 x, v128 k) {
  return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

/* The register after Y = y_high x^64 + y_low (y_high the register's low qword): Y mod P. */
static inline uint64_t barrett(v128 y) {
  const v128 k = _mm_load_si128((const v128 *)barrett_constants);
  const v128 q = _mm_clmulepi64_si128(y, k, 0x00);
  const v128 r = _mm_xor_si128(y, _mm_clmulepi64_si128(q, k, 0x10));
  return (uint64_t)_mm_extract_epi64(r, 1) ^ (uint64_t)_mm_cvtsi128_si64(q);
}

/* w(x) x^64 mod P. */
static inline uint64_t reduce64(uint64_t w) {
  return barrett(_mm_cvtsi64_si128((long long)w));
}

/* X x^64 mod P for a 128-bit block. */
static inline uint64_t reduce128(v128 x) {
  const v128 y = _mm_xor_si128(_mm_clmulepi64_si128(x, fold_constant(1), 0x10), _mm_srli_si128(x, 8));
  return barrett(y);
}

/* The first n (1..7) bytes at p, little-endian, without reading past them. */
static inline uint64_t load_partial(const uint8_t *p, size_t n) {
  uint64_t m = 0;
  unsigned at = 0;
  if (n & 4) {
    m = *(const unaligned_u32 *)p;
    at = 4;
  }
  if (n & 2) {
    m |= (uint64_t)*(const unaligned_u16 *)(p + at) << (8 * at);
    at += 2;
  }
  if (n & 1) m |= (uint64_t)p[at] << (8 * at);
  return m;
}

/* Go's crc64.Update(crc, MakeTable(ISO), p[0:n]). */
EXPORT uint64_t crc64_iso_update(uint64_t crc, const uint8_t *p, size_t n) {
  uint64_t c = ~crc;
  if (n >= 16) {
    v128 x = _mm_xor_si128(load(p), _mm_cvtsi64_si128((long long)c));
    p += 16;
    n -= 16;
    if (n >= 112) {
      v128 x1 = load(p), x2 = load(p + 16), x3 = load(p + 32), x4 = load(p + 48);
      v128 x5 = load(p + 64), x6 = load(p + 80), x7 = load(p + 96);
      p += 112;
      n -= 112;
      const v128 k = fold_constant(8);
      while (n >= 128) {
        x = _mm_xor_si128(fold(x, k), load(p));
        x1 = _mm_xor_si128(fold(x1, k), load(p + 16));
        x2 = _mm_xor_si128(fold(x2, k), load(p + 32));
        x3 = _mm_xor_si128(fold(x3, k), load(p + 48));
        x4 = _mm_xor_si128(fold(x4, k), load(p + 64));
        x5 = _mm_xor_si128(fold(x5, k), load(p + 80));
        x6 = _mm_xor_si128(fold(x6, k), load(p + 96));
        x7 = _mm_xor_si128(fold(x7, k), load(p + 112));
        p += 128;
        n -= 128;
      }
      /* Block j of the 8 has 7 - j blocks after it. */
      x = _mm_xor_si128(
        _mm_xor_si128(_mm_xor_si128(fold(x, fold_constant(7)), fold(x1, fold_constant(6))),
                      _mm_xor_si128(fold(x2, fold_constant(5)), fold(x3, fold_constant(4)))),
        _mm_xor_si128(_mm_xor_si128(fold(x4, fold_constant(3)), fold(x5, fold_constant(2))),
                      _mm_xor_si128(fold(x6, fold_constant(1)), x7)));
    }
    const v128 k1 = fold_constant(1);
    while (n >= 16) {
      x = _mm_xor_si128(fold(x, k1), load(p));
      p += 16;
      n -= 16;
    }
    c = reduce128(x);
  }
  if (n >= 8) {
    c = reduce64(c ^ *(const unaligned_u64 *)p);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    const uint64_t u = c ^ load_partial(p, n);
    c = (u >> (8 * n)) ^ reduce64(u << (64 - 8 * n));
  }
  return ~c;
}

/*
 * The same as a C library comparator, for Deno: its FFI calls a function
 * pointer through a slow generic path (about 1 us), but a symbol it
 * dlopen()ed through V8's fast calls (about 10 ns), so it calls
 * bsearch(call, data, 1, 1, crc64_iso_update_compare), which calls this once
 * with the one element, and gets the result from `call`. It writes only
 * `crc_out`, so being called again would change nothing.
 */
struct crc64_iso_call {
  uint64_t crc_in;
  uint64_t crc_out;
  uint32_t length_low;
  uint32_t length_high;
};

EXPORT int crc64_iso_update_compare(const void *key, const void *element) {
  struct crc64_iso_call *call = (struct crc64_iso_call *)key;
  const size_t length = (size_t)call->length_high << 32 | call->length_low;
  call->crc_out = crc64_iso_update(call->crc_in, element, length);
  return 0;
}

/* 1 when this CPU has PCLMULQDQ (CPUID.1:ECX bit 1) and SSE4.1 (bit 19), which crc64_iso_update needs. */
EXPORT int crc64_iso_supported(void) {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  return (ecx & bit_PCLMUL) != 0 && (ecx & bit_SSE4_1) != 0;
}
