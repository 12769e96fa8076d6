/* GENERATED FILE, do not edit: written by scripts/build-crc64-native.ts from BigInt
   polynomial arithmetic over GF(2) with P(x) = x^64 + x^4 + x^3 + x + 1 (CRC-64/ISO).
   FOLD_<D>_HIGH = x^(D+63) mod P, FOLD_<D>_LOW = x^(D-1) mod P, BARRETT_MU = floor(x^127 / P),
   BARRETT_POLY = floor(P / x); all bit-reversed (bit i stands for x^(63-i)). */
#pragma once
#define CRC64_FOLD_128_HIGH 0x6b70000000000001ull
#define CRC64_FOLD_128_LOW 0xf500000000000001ull
#define CRC64_FOLD_256_HIGH 0x1b1ab00000000001ull
#define CRC64_FOLD_256_LOW 0xa011000000000001ull
#define CRC64_FOLD_384_HIGH 0x76db6c7000000001ull
#define CRC64_FOLD_384_LOW 0xe145150000000001ull
#define CRC64_FOLD_512_HIGH 0x01b001b1b0000001ull
#define CRC64_FOLD_512_LOW 0xb100010100000001ull
#define CRC64_FOLD_640_HIGH 0x6aab71daab700001ull
#define CRC64_FOLD_640_LOW 0xf445014445000001ull
#define CRC64_FOLD_768_HIGH 0x1ab1ab1ab1aab001ull
#define CRC64_FOLD_768_LOW 0xa101101101110001ull
#define CRC64_FOLD_896_HIGH 0x771db6db6db71c71ull
#define CRC64_FOLD_896_LOW 0xe014514514501501ull
#define CRC64_FOLD_1024_HIGH 0xf501b0000001b000ull
#define CRC64_FOLD_1024_LOW 0xb001000000010000ull
#define CRC64_BARRETT_MU 0xb000000000000001ull
#define CRC64_BARRETT_POLY 0xb000000000000001ull
