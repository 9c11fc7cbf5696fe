/* Shared by the CPU kernels: AVX2 helpers. */
#ifndef MTP_CPU_COMMON_H
#define MTP_CPU_COMMON_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_hadd_ps(s, s); s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
}

INLINE float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

INLINE float f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }

/* 32 bytes >> shift, masked */
INLINE __m256i shr_mask(const uint8_t *p, int shift, int mask) {
    __m256i q = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8((char)mask));
}

/* exp(x) for x <= ~88, Cephes' polynomial: ~1e-7 relative error; inputs below -87.3 give ~0 */
INLINE __m256 exp_ps(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

/* quant_matmul.c: GGML block formats */
typedef int (*matmul_fn)(const float *, const uint8_t *, float *, int, int, int, size_t);
typedef void (*dequant_fn)(const uint8_t *, float *, int, int, size_t);
/* matmul8: the same product with activations rounded to 8 bits (NULL where the type has none) */
typedef struct { int qtype; int block; matmul_fn matmul; dequant_fn dequant; matmul_fn matmul8; } kernel_entry;
extern const kernel_entry KERNELS[];
extern const int N_KERNELS;

/* int8_matmul.c: matmuls against 8-bit activations */
#define DECLARE_MATMUL8(NAME) int matmul8_##NAME(const float *x, const uint8_t *w, float *y, int M, int N, int K, size_t rb);
DECLARE_MATMUL8(q4_k) DECLARE_MATMUL8(q6_k) DECLARE_MATMUL8(q4_0) DECLARE_MATMUL8(q4_1) DECLARE_MATMUL8(q5_0)
DECLARE_MATMUL8(q5_1) DECLARE_MATMUL8(q8_0)

/* decode_ops.c: the elementwise and attention steps of a decoder layer */
void rms_norm_rows(float *x, const float *residual, const float *w, float *out, int rows, int dim, float eps);
void silu_mul_rows(const float *gate_up, float *out, int rows, int dim);
typedef struct { void *k, *v; uint16_t *k_scale, *v_scale; int qb, max_tokens; } kv_layer;  /* scales NULL: float32 */
int attention_rows(float *qkv, int rows, int H, int Hkv, int D, int rot, const float *inv_freq, float mscale,
                   const float *qk_norm, float eps, const kv_layer *cache, int start, float *out);

#endif
