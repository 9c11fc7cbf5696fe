/* Matmuls and dequantization over GGUF weights kept in their block formats (x86-64 AVX2 + FMA + F16C).
 *
 * Decode-time matmuls read the weights once per token, so reading 4.5-bit blocks instead of fp32
 * moves ~7x fewer bytes. Each group of 32 weights is unpacked once into int16 and multiplied with
 * activations rounded to int16 per 32 values (exact integer dot products), the block scales being
 * applied to the partial sums. Dequantization uses the same decoders with ggml's exact arithmetic
 * (bit-identical to gguf-py) and feeds BLAS during prefill.
 */
#include <omp.h>

#include "common.h"

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
       T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30 };

/* 32 weights of a block-quantized type: their small integers (one byte each, signed or not by
 * type) and the scales that make them weights, w[i] = d[h] * q[i] + m[h] for half h = i / 16
 * (ggml's order of operations; types without an offset have no m). */
typedef struct { __m256i q; float d[2], m[2]; } qgroup;
/* 32 weights of a float type (F32, F16, BF16) as floats */
typedef struct { __m256 v[4]; } fgroup;

INLINE float f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }
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
/* 32 bytes >> shift, masked */
INLINE __m256i shr_mask(const uint8_t *p, int shift, int mask) {
    __m256i q = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8((char)mask));
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

/* ---- kernels built from a decoder ------------------------------------------------------------ */

/* Activations for the integer kernels: each 32 values of a row rounded to int16 with their own
 * scale (error <= 1/65534 of the block's largest magnitude, ~250x finer than bf16), plus the
 * exact float sums of each 16 values for the offset term m * sum(x). */
typedef struct { int16_t *q; float *scale, *half_sum; } qacts;

static int quantize_acts(const float *x, int M, int K, qacts *a) {
    size_t n = (size_t)M * K;
    a->q = malloc(sizeof(int16_t) * n);
    a->scale = malloc(sizeof(float) * (n / 32));
    a->half_sum = malloc(sizeof(float) * (n / 16));
    if (!a->q || !a->scale || !a->half_sum) return -1;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        float mx = _mm_cvtss_f32(m4), d = mx / 32767.0f;
        __m256 inv = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], inv)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], inv));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], inv)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], inv));
        /* packs works within 128-bit lanes; the permute restores element order */
        _mm256_storeu_si256((__m256i *)(a->q + 32 * b), _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8));
        _mm256_storeu_si256((__m256i *)(a->q + 32 * b + 16), _mm256_permute4x64_epi64(_mm256_packs_epi32(i2, i3), 0xD8));
        a->scale[b] = d;
        a->half_sum[2 * b] = hsum(_mm256_add_ps(v[0], v[1]));
        a->half_sum[2 * b + 1] = hsum(_mm256_add_ps(v[2], v[3]));
    }
    return 0;
}

static void free_acts(qacts *a) { free(a->q); free(a->scale); free(a->half_sum); }

/* One weight row against R (<= 4) activation rows. Each group is unpacked once into int16 and
 * reused; per row, vpmaddwd gives exact integer dot products of each half, and the scales are
 * applied to those: sum_i (d*q_i + m) * x_i = d*dx * (q . xq) + m * sum(x).
 * SIGNED: the type's integers are signed; SAME_SCALE: one scale for both halves; OFFSET: has m. */
#define DEFINE_INT_KERNELS(NAME, SIGNED, SAME_SCALE, OFFSET)                                          \
    INLINE void rowdot_##NAME(const uint8_t *row, const qacts *a, size_t a0, int K, int R, float *y, int N) { \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
        float off[4] = {0, 0, 0, 0};                                                                  \
        for (int gi = 0; gi < K / 32; gi++) {                                                         \
            qgroup w = dec_##NAME(row, gi);                                                           \
            __m128i lo = _mm256_castsi256_si128(w.q), hi = _mm256_extracti128_si256(w.q, 1);          \
            __m256i q0 = SIGNED ? _mm256_cvtepi8_epi16(lo) : _mm256_cvtepu8_epi16(lo);                \
            __m256i q1 = SIGNED ? _mm256_cvtepi8_epi16(hi) : _mm256_cvtepu8_epi16(hi);                \
            for (int r = 0; r < R; r++) {                                                             \
                size_t blk = a0 + (size_t)r * (K / 32) + gi;                                          \
                const __m256i *xq = (const __m256i *)(a->q + 32 * blk);                               \
                __m256i p0 = _mm256_madd_epi16(q0, _mm256_loadu_si256(xq));                           \
                __m256i p1 = _mm256_madd_epi16(q1, _mm256_loadu_si256(xq + 1));                       \
                float dx = a->scale[blk];                                                             \
                if (SAME_SCALE) {                                                                     \
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(p0, p1)), _mm256_set1_ps(w.d[0] * dx), acc[r]); \
                } else {                                                                              \
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(w.d[0] * dx), acc[r]); \
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(w.d[1] * dx), acc[r]); \
                }                                                                                     \
                if (OFFSET) off[r] += w.m[0] * a->half_sum[2 * blk] + w.m[1] * a->half_sum[2 * blk + 1]; \
            }                                                                                         \
        }                                                                                             \
        for (int r = 0; r < R; r++) y[(size_t)r * N] = hsum(acc[r]) + off[r];                          \
    }                                                                                                 \
    static int matmul_##NAME(const float *x, const uint8_t *w, float *y, int M, int N, int K, size_t rb) { \
        qacts a;                                                                                      \
        if (quantize_acts(x, M, K, &a)) { free_acts(&a); return -1; }                                 \
        _Pragma("omp parallel for schedule(static)")                                                   \
        for (int n = 0; n < N; n++) {                                                                 \
            const uint8_t *row = w + (size_t)n * rb;                                                  \
            for (int m0 = 0; m0 < M; m0 += 4) {                                                       \
                size_t a0 = (size_t)m0 * (K / 32);                                                    \
                float *ym = y + (size_t)m0 * N + n;                                                   \
                switch (M - m0 < 4 ? M - m0 : 4) {                                                    \
                    case 1: rowdot_##NAME(row, &a, a0, K, 1, ym, N); break;                           \
                    case 2: rowdot_##NAME(row, &a, a0, K, 2, ym, N); break;                           \
                    case 3: rowdot_##NAME(row, &a, a0, K, 3, ym, N); break;                           \
                    default: rowdot_##NAME(row, &a, a0, K, 4, ym, N); break;                          \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
        free_acts(&a);                                                                                \
        return 0;                                                                                     \
    }                                                                                                 \
    static void dequant_##NAME(const uint8_t *w, float *out, int rows, int K, size_t rb) {            \
        _Pragma("omp parallel for schedule(static)")                                                   \
        for (int n = 0; n < rows; n++) {                                                              \
            for (int gi = 0; gi < K / 32; gi++) {                                                     \
                qgroup g = dec_##NAME(w + (size_t)n * rb, gi);                                        \
                fgroup v = bytes_to_f32(g.q, SIGNED);                                                 \
                float *o = out + (size_t)n * K + gi * 32;                                             \
                for (int i = 0; i < 4; i++) {                                                         \
                    __m256 x = _mm256_mul_ps(_mm256_set1_ps(g.d[i / 2]), v.v[i]);                    \
                    if (OFFSET) x = _mm256_add_ps(x, _mm256_set1_ps(g.m[i / 2]));                    \
                    _mm256_storeu_ps(o + 8 * i, x);                                                   \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }

/* Float weights (F32, F16, BF16) against float activations. */
#define DEFINE_FLOAT_KERNELS(NAME)                                                                    \
    INLINE void rowdot_##NAME(const uint8_t *row, const float *x, int K, int R, float *y, int N) {    \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
        for (int gi = 0; gi < K / 32; gi++) {                                                         \
            fgroup w = dec_##NAME(row, gi);                                                           \
            for (int r = 0; r < R; r++) {                                                             \
                const float *xr = x + (size_t)r * K + gi * 32;                                        \
                for (int i = 0; i < 4; i++) acc[r] = _mm256_fmadd_ps(w.v[i], _mm256_loadu_ps(xr + 8 * i), acc[r]); \
            }                                                                                         \
        }                                                                                             \
        for (int r = 0; r < R; r++) y[(size_t)r * N] = hsum(acc[r]);                                   \
    }                                                                                                 \
    static int matmul_##NAME(const float *x, const uint8_t *w, float *y, int M, int N, int K, size_t rb) { \
        _Pragma("omp parallel for schedule(static)")                                                   \
        for (int n = 0; n < N; n++) {                                                                 \
            const uint8_t *row = w + (size_t)n * rb;                                                  \
            for (int m0 = 0; m0 < M; m0 += 4) {                                                       \
                const float *xm = x + (size_t)m0 * K;                                                 \
                float *ym = y + (size_t)m0 * N + n;                                                   \
                switch (M - m0 < 4 ? M - m0 : 4) {                                                    \
                    case 1: rowdot_##NAME(row, xm, K, 1, ym, N); break;                               \
                    case 2: rowdot_##NAME(row, xm, K, 2, ym, N); break;                               \
                    case 3: rowdot_##NAME(row, xm, K, 3, ym, N); break;                               \
                    default: rowdot_##NAME(row, xm, K, 4, ym, N); break;                              \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
        return 0;                                                                                     \
    }                                                                                                 \
    static void dequant_##NAME(const uint8_t *w, float *out, int rows, int K, size_t rb) {            \
        _Pragma("omp parallel for schedule(static)")                                                   \
        for (int n = 0; n < rows; n++)                                                                \
            for (int gi = 0; gi < K / 32; gi++) {                                                     \
                fgroup g = dec_##NAME(w + (size_t)n * rb, gi);                                        \
                for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + (size_t)n * K + gi * 32 + 8 * i, g.v[i]); \
            }                                                                                         \
    }

DEFINE_FLOAT_KERNELS(f32)
DEFINE_FLOAT_KERNELS(f16)
DEFINE_FLOAT_KERNELS(bf16)
DEFINE_INT_KERNELS(q4_0, 1, 1, 0)
DEFINE_INT_KERNELS(q4_1, 0, 1, 1)
DEFINE_INT_KERNELS(q5_0, 1, 1, 0)
DEFINE_INT_KERNELS(q5_1, 0, 1, 1)
DEFINE_INT_KERNELS(q8_0, 1, 1, 0)
DEFINE_INT_KERNELS(q2_k, 0, 0, 1)
DEFINE_INT_KERNELS(q3_k, 1, 0, 0)
DEFINE_INT_KERNELS(q4_k, 0, 1, 1)
DEFINE_INT_KERNELS(q5_k, 0, 1, 1)
DEFINE_INT_KERNELS(q6_k, 1, 0, 0)

const kernel_entry KERNELS[] = {
    {T_F32, 32, matmul_f32, dequant_f32},     {T_F16, 32, matmul_f16, dequant_f16},
    {T_BF16, 32, matmul_bf16, dequant_bf16},  {T_Q4_0, 32, matmul_q4_0, dequant_q4_0},
    {T_Q4_1, 32, matmul_q4_1, dequant_q4_1},  {T_Q5_0, 32, matmul_q5_0, dequant_q5_0},
    {T_Q5_1, 32, matmul_q5_1, dequant_q5_1},  {T_Q8_0, 32, matmul_q8_0, dequant_q8_0},
    {T_Q2_K, 256, matmul_q2_k, dequant_q2_k}, {T_Q3_K, 256, matmul_q3_k, dequant_q3_k},
    {T_Q4_K, 256, matmul_q4_k, dequant_q4_k}, {T_Q5_K, 256, matmul_q5_k, dequant_q5_k},
    {T_Q6_K, 256, matmul_q6_k, dequant_q6_k},
};

const int N_KERNELS = sizeof(KERNELS) / sizeof(KERNELS[0]);
