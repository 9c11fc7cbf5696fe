/* Matmuls against activations rounded to 8 bits (the scheme of llama.cpp's CPU backend): one scale
 * per 256 values for the K-quants (Q4_K, Q6_K), per 32 for the 32-weight types (Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0), and the sum of each 16 rounded values.
 *
 * The int16 kernels in quant_matmul.c unpack each group of 32 weights and apply its float scales
 * per group and row, which kept the 1.5B coder's decode compute-bound (10 tok/s where its weights
 * stream at 20+). Here `maddubs` multiplies unsigned weights with signed activations
 * (64 products per instruction pair with `madd`). For a K-quant block of 256 weights the block's
 * integer sub-scales go in with `madd`, and floats appear once per block and row:
 *   sum_i w_i x_i = dx * (d * sum_h s_h * (u_h . q_h) + off * sum_h o_h * (sum of q_h))
 * for half-groups h of 16 weights: u the unsigned weights, q the 8-bit activations, s the
 * sub-scales, o the offset coefficients (Q4_K: the 6-bit mins, off = -dmin; Q6_K: s, off = -32 d).
 * Sums stay inside int16 (maddubs: 2 * 128 * 127 at most) and int32.
 */
#include <omp.h>

#include "blocks.h"

/* Activations in blocks of 32 or 256: int8 values, one scale per block, the sum of each 16. */
typedef struct { int8_t *q; float *d; int16_t *sum16; } q8acts;

static void free_q8(q8acts *a) { free(a->q); free(a->d); free(a->sum16); }

static int quantize_q8(const float *x, int M, int K, int block, q8acts *a) {
    size_t n = (size_t)M * K, nb = n / block;
    a->q = malloc(n);
    a->d = malloc(sizeof(float) * nb);
    a->sum16 = malloc(sizeof(int16_t) * (n / 16));
    if (!a->q || !a->d || !a->sum16) return -1;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  /* undoes the packs' lane interleave */
    for (size_t b = 0; b < nb; b++) {
        const float *xb = x + block * b;
        __m256 amax = _mm256_setzero_ps();
        for (int i = 0; i < block; i += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + i)));
        float mx = hmax(amax);
        __m256 inv = _mm256_set1_ps(mx > 0.0f ? 127.0f / mx : 0.0f);
        int8_t *q = a->q + block * b;
        for (int c = 0; c < block; c += 32) {
            __m256i v[4];
            for (int j = 0; j < 4; j++) v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + c + 8 * j), inv));
            __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            _mm256_storeu_si256((__m256i *)(q + c), _mm256_permutevar8x32_epi32(packed, order));
        }
        for (int h = 0; h < block / 16; h++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q[16 * h + i];
            a->sum16[block / 16 * b + h] = (int16_t)s;
        }
        a->d[b] = mx / 127.0f;
    }
    return 0;
}

/* What a block needs besides its weights: each group's sub-scales as int16 (the first half's in
 * the low 128 bits), the 16 offset coefficients, the scale and the offset's float factor. */
typedef struct { __m256i scale[8], offset; float d, off; } kblock;

INLINE kblock block_q4_k(const uint8_t *b) {
    /* 12 bytes hold eight 6-bit scales and eight 6-bit mins: scales 0-3 and mins 0-3 are the low
     * 6 bits of bytes 0-3 and 4-7; scale/min j >= 4 takes its low 4 bits from byte j+4 (low/high
     * nibble) and its high 2 from the top bits of byte j-4 / j. Four bytes at a time: */
    uint32_t w[3];
    memcpy(w, b + 4, 12);
    const uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, top2 = 0x03030303;
    uint32_t scales[2] = {w[0] & low6, (w[2] & low4) | (((w[0] >> 6) & top2) << 4)};
    uint32_t mins[2] = {w[1] & low6, ((w[2] >> 4) & low4) | (((w[1] >> 6) & top2) << 4)};
    const uint8_t *s = (const uint8_t *)scales;
    kblock k;
    for (int g = 0; g < 8; g++) k.scale[g] = _mm256_set1_epi16(s[g]);
    __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mins));
    k.offset = _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));
    k.d = f16(b);
    k.off = -f16(b + 2);
    return k;
}
INLINE __m256i weights_q4_k(const uint8_t *b, int g) { return shr_mask(b + 16 + (g / 2) * 32, 4 * (g % 2), 15); }

INLINE kblock block_q6_k(const uint8_t *b) {
    const int8_t *sc = (const int8_t *)(b + 192);
    kblock k;
    for (int g = 0; g < 8; g++) k.scale[g] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]), _mm_set1_epi16(sc[2 * g]));
    k.offset = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
    k.d = f16(b + 208);
    k.off = -32.0f * k.d;
    return k;
}
/* the 6-bit weights stored without their -32 (0..63): low 4 bits from ql, high 2 from qh */
INLINE __m256i weights_q6_k(const uint8_t *b, int g) {
    int c = g / 4;
    __m256i lo = shr_mask(b + c * 64 + (g % 2) * 32, 4 * ((g % 4) / 2), 15);
    __m256i hi = shr_mask(b + 128 + c * 32, 2 * (g % 4), 3);
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

/* One weight row against R (<= 4) activation rows; row r's blocks start at block a0 + r * nb. */
#define DEFINE_KQUANT_ROWDOT(NAME, BLOCK_BYTES)                                                         \
    INLINE void rowdot8_##NAME(const uint8_t *row, const q8acts *a, size_t a0, int nb, int R, float *y, int N) { \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
        for (int bi = 0; bi < nb; bi++) {                                                              \
            const uint8_t *b = row + (size_t)bi * BLOCK_BYTES;                                         \
            kblock k = block_##NAME(b);                                                                \
            __m256i sum[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()}; \
            for (int g = 0; g < 8; g++) {                                                              \
                __m256i u = weights_##NAME(b, g);                                                      \
                for (int r = 0; r < R; r++) {                                                          \
                    const int8_t *q = a->q + (a0 + (size_t)r * nb + bi) * 256 + 32 * g;                \
                    __m256i p = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)q));       \
                    sum[r] = _mm256_add_epi32(sum[r], _mm256_madd_epi16(p, k.scale[g]));               \
                }                                                                                      \
            }                                                                                          \
            for (int r = 0; r < R; r++) {                                                              \
                size_t blk = a0 + (size_t)r * nb + bi;                                                 \
                float dx = a->d[blk];                                                                  \
                __m256i o = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(a->sum16 + 16 * blk)), k.offset); \
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[r]), _mm256_set1_ps(k.d * dx), acc[r]);  \
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(o), _mm256_set1_ps(k.off * dx), acc[r]);     \
            }                                                                                          \
        }                                                                                              \
        for (int r = 0; r < R; r++) y[(size_t)r * N] = hsum(acc[r]);                                   \
    }

/* 32-weight types: one scale per group, and an offset m for Q4_1 and Q5_1. Signed weights go in as
 * |w| against x carrying w's sign, since maddubs takes one unsigned operand. */
#define DEFINE_BLOCK32_ROWDOT(NAME, SIGNED, OFFSET)                                                    \
    INLINE void rowdot8_##NAME(const uint8_t *row, const q8acts *a, size_t a0, int nb, int R, float *y, int N) { \
        const __m256i ones = _mm256_set1_epi16(1);                                                     \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
        float off[4] = {0, 0, 0, 0};                                                                   \
        for (int gi = 0; gi < nb; gi++) {                                                              \
            qgroup w = dec_##NAME(row, gi);                                                            \
            __m256i u = SIGNED ? _mm256_sign_epi8(w.q, w.q) : w.q;                                     \
            for (int r = 0; r < R; r++) {                                                              \
                size_t blk = a0 + (size_t)r * nb + gi;                                                 \
                __m256i q = _mm256_loadu_si256((const __m256i *)(a->q + 32 * blk));                    \
                if (SIGNED) q = _mm256_sign_epi8(q, w.q);                                              \
                __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), ones);                       \
                float dx = a->d[blk];                                                                  \
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(w.d[0] * dx), acc[r]);  \
                if (OFFSET) off[r] += w.m[0] * dx * (float)(a->sum16[2 * blk] + a->sum16[2 * blk + 1]); \
            }                                                                                          \
        }                                                                                              \
        for (int r = 0; r < R; r++) y[(size_t)r * N] = hsum(acc[r]) + off[r];                          \
    }

/* The activations rounded once, then each weight row against every 4 of them. */
#define DEFINE_INT8_MATMUL(NAME, BLOCK)                                                                \
    int matmul8_##NAME(const float *x, const uint8_t *w, float *y, int M, int N, int K, size_t rb) {   \
        q8acts a;                                                                                      \
        if (quantize_q8(x, M, K, BLOCK, &a)) { free_q8(&a); return -1; }                               \
        int nb = K / BLOCK;                                                                            \
        _Pragma("omp parallel for schedule(static)")                                                   \
        for (int n = 0; n < N; n++) {                                                                  \
            const uint8_t *row = w + (size_t)n * rb;                                                   \
            for (int m0 = 0; m0 < M; m0 += 4) {                                                        \
                size_t a0 = (size_t)m0 * nb;                                                           \
                float *ym = y + (size_t)m0 * N + n;                                                    \
                switch (M - m0 < 4 ? M - m0 : 4) {                                                     \
                    case 1: rowdot8_##NAME(row, &a, a0, nb, 1, ym, N); break;                          \
                    case 2: rowdot8_##NAME(row, &a, a0, nb, 2, ym, N); break;                          \
                    case 3: rowdot8_##NAME(row, &a, a0, nb, 3, ym, N); break;                          \
                    default: rowdot8_##NAME(row, &a, a0, nb, 4, ym, N); break;                         \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        free_q8(&a);                                                                                   \
        return 0;                                                                                      \
    }

DEFINE_KQUANT_ROWDOT(q4_k, 144)
DEFINE_KQUANT_ROWDOT(q6_k, 210)
DEFINE_BLOCK32_ROWDOT(q4_0, 1, 0)
DEFINE_BLOCK32_ROWDOT(q4_1, 0, 1)
DEFINE_BLOCK32_ROWDOT(q5_0, 1, 0)
DEFINE_BLOCK32_ROWDOT(q5_1, 0, 1)
DEFINE_BLOCK32_ROWDOT(q8_0, 1, 0)
DEFINE_INT8_MATMUL(q4_k, 256)
DEFINE_INT8_MATMUL(q6_k, 256)
DEFINE_INT8_MATMUL(q4_0, 32)
DEFINE_INT8_MATMUL(q4_1, 32)
DEFINE_INT8_MATMUL(q5_0, 32)
DEFINE_INT8_MATMUL(q5_1, 32)
DEFINE_INT8_MATMUL(q8_0, 32)
