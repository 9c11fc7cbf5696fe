/* Matmuls and dequantization over GGUF weights kept in their block formats (x86-64 AVX2 + FMA + F16C).
 *
 * Decode-time matmuls read the weights once per token, so reading 4.5-bit blocks instead of fp32
 * moves ~7x fewer bytes. Each group of 32 weights is unpacked once into int16 and multiplied with
 * activations rounded to int16 per 32 values (exact integer dot products), the block scales being
 * applied to the partial sums. Dequantization uses the same decoders with ggml's exact arithmetic
 * (bit-identical to gguf-py) and feeds BLAS during prefill.
 */
#include <omp.h>

#include "blocks.h"

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
        float mx = hmax(amax), d = mx / 32767.0f;
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
    {T_F32, 32, matmul_f32, dequant_f32, NULL},     {T_F16, 32, matmul_f16, dequant_f16, NULL},
    {T_BF16, 32, matmul_bf16, dequant_bf16, NULL},  {T_Q4_0, 32, matmul_q4_0, dequant_q4_0, matmul8_q4_0},
    {T_Q4_1, 32, matmul_q4_1, dequant_q4_1, matmul8_q4_1},  {T_Q5_0, 32, matmul_q5_0, dequant_q5_0, matmul8_q5_0},
    {T_Q5_1, 32, matmul_q5_1, dequant_q5_1, matmul8_q5_1},  {T_Q8_0, 32, matmul_q8_0, dequant_q8_0, matmul8_q8_0},
    {T_Q2_K, 256, matmul_q2_k, dequant_q2_k, NULL}, {T_Q3_K, 256, matmul_q3_k, dequant_q3_k, NULL},
    {T_Q4_K, 256, matmul_q4_k, dequant_q4_k, matmul8_q4_k}, {T_Q5_K, 256, matmul_q5_k, dequant_q5_k, NULL},
    {T_Q6_K, 256, matmul_q6_k, dequant_q6_k, matmul8_q6_k},
};

const int N_KERNELS = sizeof(KERNELS) / sizeof(KERNELS[0]);
