/* GGML block formats decoded into AVX2 registers, 32 weights at a time; shared by the int16
 * kernels (quant_matmul.c) and the int8 ones (int8_matmul.c). */
#ifndef MTP_CPU_BLOCKS_H
#define MTP_CPU_BLOCKS_H

#include "common.h"

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
       T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30 };

/* 32 weights of a block-quantized type: their small integers (one byte each, signed or not by
 * type) and the scales that make them weights, w[i] = d[h] * q[i] + m[h] for half h = i / 16
 * (ggml's order of operations; types without an offset have no m). */
typedef struct { __m256i q; float d[2], m[2]; } qgroup;
/* 32 weights of a float type (F32, F16, BF16) as floats */
typedef struct { __m256 v[4]; } fgroup;

INLINE __m256 u8_to_f32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
INLINE __m256 i8_to_f32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

INLINE qgroup qg(__m256i q, float d0, float d1, float m0, float m1) {
    qgroup g = {q, {d0, d1}, {m0, m1}};
    return g;
}
/* 32 bytes -> 4 x 8 floats, in order */
INLINE fgroup bytes_to_f32(__m256i q, int is_signed) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    fgroup g;
    for (int i = 0; i < 4; i++) g.v[i] = is_signed ? i8_to_f32(parts[i]) : u8_to_f32(parts[i]);
    return g;
}
/* 16 packed bytes -> 32 nibbles: the 16 low nibbles, then the 16 high ones */
INLINE __m256i nibbles16(const uint8_t *p) {
    __m128i q = _mm_loadu_si128((const __m128i *)p), m4 = _mm_set1_epi8(15);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}
/* bit i of a little-endian uint32 -> byte i (0 or 1) */
INLINE __m256i bits32(const uint8_t *p) {
    uint32_t x; memcpy(&x, p, 4);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x),
        _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(1));
}

/* ---- decoders: group gi (of 32 weights) of a row ------------------------------------------ */

INLINE fgroup dec_f32(const uint8_t *row, int gi) {
    const float *p = (const float *)row + gi * 32;
    fgroup g = {{_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _mm256_loadu_ps(p + 16), _mm256_loadu_ps(p + 24)}};
    return g;
}
INLINE fgroup dec_f16(const uint8_t *row, int gi) {
    const __m128i *p = (const __m128i *)(row + gi * 64);
    fgroup g = {{_mm256_cvtph_ps(_mm_loadu_si128(p)), _mm256_cvtph_ps(_mm_loadu_si128(p + 1)),
                 _mm256_cvtph_ps(_mm_loadu_si128(p + 2)), _mm256_cvtph_ps(_mm_loadu_si128(p + 3))}};
    return g;
}
INLINE fgroup dec_bf16(const uint8_t *row, int gi) {
    const __m128i *p = (const __m128i *)(row + gi * 64);
    fgroup g;
    for (int i = 0; i < 4; i++)
        g.v[i] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p + i)), 16));
    return g;
}
INLINE qgroup dec_q4_0(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 18;
    float d = f16(b);
    return qg(_mm256_sub_epi8(nibbles16(b + 2), _mm256_set1_epi8(8)), d, d, 0.0f, 0.0f);
}
INLINE qgroup dec_q4_1(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 20;
    float d = f16(b), m = f16(b + 2);
    return qg(nibbles16(b + 4), d, d, m, m);
}
INLINE qgroup dec_q5_0(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 22;
    __m256i q = _mm256_or_si256(nibbles16(b + 6), _mm256_slli_epi16(bits32(b + 2), 4));
    float d = f16(b);
    return qg(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), d, d, 0.0f, 0.0f);
}
INLINE qgroup dec_q5_1(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 24;
    __m256i q = _mm256_or_si256(nibbles16(b + 8), _mm256_slli_epi16(bits32(b + 4), 4));
    float d = f16(b), m = f16(b + 2);
    return qg(q, d, d, m, m);
}
INLINE qgroup dec_q8_0(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 34;
    float d = f16(b);
    return qg(_mm256_loadu_si256((const __m256i *)(b + 2)), d, d, 0.0f, 0.0f);
}
/* K-quants: 256 weights per block, so group gi is sub-group g of block gi/8. Offsets are stored
 * negated (w = dl*q - ml == dl*q + (-ml) exactly). */
INLINE qgroup dec_q2_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 84; int g = gi % 8;
    const uint8_t *sc = b, *qs = b + 16;
    float d = f16(b + 80), dmin = f16(b + 82);
    return qg(shr_mask(qs + (g / 4) * 32, 2 * (g % 4), 3), d * (float)(sc[2 * g] & 15), d * (float)(sc[2 * g + 1] & 15),
              -(dmin * (float)(sc[2 * g] >> 4)), -(dmin * (float)(sc[2 * g + 1] >> 4)));
}
INLINE float q3_k_scale(const uint8_t *s, int sb) {
    int low = sb < 8 ? (s[sb] & 15) : (s[sb - 8] >> 4);
    int high = (s[8 + sb % 4] >> (2 * (sb / 4))) & 3;
    return (float)((int8_t)(low | (high << 4)) - 32);
}
INLINE qgroup dec_q3_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 110; int g = gi % 8;
    const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    float d = f16(b + 108);
    __m256i ql = shr_mask(qs + (g / 4) * 32, 2 * (g % 4), 3);
    __m256i hb = shr_mask(hmask, g, 1);  /* set bit: no -4 offset */
    __m256i q = _mm256_sub_epi8(ql, _mm256_slli_epi16(_mm256_xor_si256(hb, _mm256_set1_epi8(1)), 2));
    return qg(q, d * q3_k_scale(sc, 2 * g), d * q3_k_scale(sc, 2 * g + 1), 0.0f, 0.0f);
}
INLINE void k_scale_min(const uint8_t *s, int g, float *sc, float *mn) {
    if (g < 4) { *sc = (float)(s[g] & 63); *mn = (float)(s[g + 4] & 63); }
    else {
        *sc = (float)((s[g + 4] & 15) | ((s[g - 4] >> 6) << 4));
        *mn = (float)((s[g + 4] >> 4) | ((s[g] >> 6) << 4));
    }
}
INLINE qgroup dec_q4_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 144; int g = gi % 8;
    float sc, mn; k_scale_min(b + 4, g, &sc, &mn);
    float dl = f16(b) * sc, ml = -(f16(b + 2) * mn);
    return qg(shr_mask(b + 16 + (g / 2) * 32, 4 * (g % 2), 15), dl, dl, ml, ml);
}
INLINE qgroup dec_q5_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 176; int g = gi % 8;
    float sc, mn; k_scale_min(b + 4, g, &sc, &mn);
    __m256i q = _mm256_or_si256(shr_mask(b + 48 + (g / 2) * 32, 4 * (g % 2), 15),
                                _mm256_slli_epi16(shr_mask(b + 16, g, 1), 4));
    float dl = f16(b) * sc, ml = -(f16(b + 2) * mn);
    return qg(q, dl, dl, ml, ml);
}
INLINE qgroup dec_q6_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 210; int g = gi % 8;
    const uint8_t *ql = b, *qh = b + 128; const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16(b + 208);
    int c = g / 4;
    __m256i lo = shr_mask(ql + c * 64 + (g % 2) * 32, 4 * ((g % 4) / 2), 15);
    __m256i hi = shr_mask(qh + c * 32, 2 * (g % 4), 3);
    __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
    return qg(q, d * (float)sc[2 * g], d * (float)sc[2 * g + 1], 0.0f, 0.0f);
}

#endif
