/* The elementwise and attention steps of a decoder layer for float32 rows on the CPU.
 *
 * They exist because on a small model each torch op costs a few microseconds of dispatch, which at
 * 30 layers x a dozen ops per token rivals the matmuls themselves.
 */
#include <omp.h>

#include "common.h"

void rms_norm_rows(float *x, const float *residual, const float *w, float *out, int rows, int dim, float eps) {
    #pragma omp parallel for schedule(static) if (rows > 8)
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * dim;
        if (residual) for (int i = 0; i < dim; i++) xr[i] += residual[(size_t)r * dim + i];
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float scale = 1.0f / sqrtf((float)(ss / dim) + eps);
        float *o = out + (size_t)r * dim;
        for (int i = 0; i < dim; i++) o[i] = xr[i] * scale * w[i];
    }
}

void silu_mul_rows(const float *gate_up, float *out, int rows, int dim) {
    #pragma omp parallel for schedule(static) if (rows > 8)
    for (int r = 0; r < rows; r++) {
        const float *g = gate_up + (size_t)r * 2 * dim, *u = g + dim;
        float *o = out + (size_t)r * dim;
        int i = 0;
        for (; i + 8 <= dim; i += 8) {  /* silu(g) = g / (1 + exp(-g)); exp_ps clamps -g above 88 */
            __m256 gv = _mm256_loadu_ps(g + i);
            __m256 e = exp_ps(_mm256_min_ps(_mm256_sub_ps(_mm256_setzero_ps(), gv), _mm256_set1_ps(88.0f)));
            __m256 s = _mm256_div_ps(gv, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
            _mm256_storeu_ps(o + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
        }
        for (; i < dim; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

/* ---- attention for a few rows (decode, speculative verify) -----------------------------------
 * qkv: [rows, (H + 2*Hkv) * D] as the fused projection wrote it; row i sits at position start+i.
 * Per row: optional per-head RMSNorm of q and k (qk_norm: [H + Hkv, D] weights), rotary embedding
 * of the first rot_dim features (adjacent pairs, angle = position * inv_freq, scaled by mscale),
 * k and v stored into the layer's cache (float32 or q8, below); then each query head attends to
 * positions 0..start+i of its kv head. Query heads sharing a kv head are done together so K and V
 * are read once per group. out: [rows, H * D]. qkv is modified in place. */

static void norm_rope_head(float *x, int D, int rot, const float *norm_w, float eps, const float *cs) {
    if (norm_w) {
        double ss = 0.0;
        for (int d = 0; d < D; d++) ss += (double)x[d] * x[d];
        float scale = 1.0f / sqrtf((float)(ss / D) + eps);
        for (int d = 0; d < D; d++) x[d] = x[d] * scale * norm_w[d];
    }
    for (int k = 0; k < rot / 2; k++) {
        float a = x[2 * k], b = x[2 * k + 1], c = cs[2 * k], s = cs[2 * k + 1];
        x[2 * k] = a * c - b * s;
        x[2 * k + 1] = a * s + b * c;
    }
}

/* scores[r][j] = scale * q_r . K[j] for the R query heads sharing these keys: eight keys at a
 * time (kept in L1 while each head uses them), reduced with one hadd tree per head */
static void key_scores(const float *q, int R, const float *K, int n, int D, float scale, float *scores) {
    int j = 0;
    for (; j + 8 <= n && D % 8 == 0; j += 8) {
        for (int r = 0; r < R; r++) {
            const float *qr = q + (size_t)r * D;
            __m256 acc[8];
            for (int b = 0; b < 8; b++) acc[b] = _mm256_setzero_ps();
            for (int d = 0; d < D; d += 8) {
                __m256 qv = _mm256_loadu_ps(qr + d);
                for (int b = 0; b < 8; b++) acc[b] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(K + (size_t)(j + b) * D + d), acc[b]);
            }
            __m256 t0 = _mm256_hadd_ps(acc[0], acc[1]), t1 = _mm256_hadd_ps(acc[2], acc[3]);
            __m256 t2 = _mm256_hadd_ps(acc[4], acc[5]), t3 = _mm256_hadd_ps(acc[6], acc[7]);
            __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
            __m256 sums = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
            _mm256_storeu_ps(scores + (size_t)r * n + j, _mm256_mul_ps(sums, _mm256_set1_ps(scale)));
        }
    }
    for (; j < n; j++) {
        for (int r = 0; r < R; r++) {
            float acc = 0.0f;
            for (int d = 0; d < D; d++) acc += q[(size_t)r * D + d] * K[(size_t)j * D + d];
            scores[(size_t)r * n + j] = acc * scale;
        }
    }
}

/* o[r] += sum_j p[r][j] * V[j]: blocks of 64 keys stay in L1 while every head of the group
 * accumulates 64 output features at a time in registers */
static void weighted_values(const float *p, int R, int n, const float *V, int D, float *o) {
    for (int j0 = 0; j0 < n; j0 += 64) {
        int j1 = j0 + 64 < n ? j0 + 64 : n;
        for (int r = 0; r < R; r++) {
            const float *pr = p + (size_t)r * n;
            float *orow = o + (size_t)r * D;
            int d0 = 0;
            for (; d0 + 64 <= D; d0 += 64) {
                __m256 acc[8];
                for (int c = 0; c < 8; c++) acc[c] = _mm256_loadu_ps(orow + d0 + 8 * c);
                for (int j = j0; j < j1; j++) {
                    __m256 pj = _mm256_set1_ps(pr[j]);
                    const float *v = V + (size_t)j * D + d0;
                    for (int c = 0; c < 8; c++) acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8 * c), acc[c]);
                }
                for (int c = 0; c < 8; c++) _mm256_storeu_ps(orow + d0 + 8 * c, acc[c]);
            }
            for (int j = j0; j < j1 && d0 < D; j++)
                for (int d = d0; d < D; d++) orow[d] += pr[j] * V[(size_t)j * D + d];
        }
    }
}

/* exp(s - max) in place; returns the sum */
static float softmax_numerators(float *s, int n) {
    float m = s[0];
    for (int j = 1; j < n; j++) m = s[j] > m ? s[j] : m;
    __m256 mv = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    float total = hsum(sum);
    for (; j < n; j++) { s[j] = expf(s[j] - m); total += s[j]; }
    return total;
}

/* ---- the 8-bit KV cache: blocks of qb values (32, or the head size where 32 does not divide it),
 * each with an fp16 scale (llama.cpp's q8_0 layout), rounded exactly as kv_cache.quantize_q8 does
 * so that a position holds the same bytes whichever path wrote it */

static void quantize_row_q8(const float *x, int D, int qb, int8_t *q, uint16_t *scales) {
    for (int b = 0; b < D / qb; b++) {
        const float *xb = x + (size_t)b * qb;
        float amax = 0.0f;
        for (int i = 0; i < qb; i++) amax = fmaxf(amax, fabsf(xb[i]));
        uint16_t h = _cvtss_sh(fminf(amax / 127.0f, 65504.0f), _MM_FROUND_TO_NEAREST_INT);
        float d = _cvtsh_ss(h);
        scales[b] = h;
        for (int i = 0; i < qb; i++) {
            float v = d > 0.0f ? nearbyintf(xb[i] / d) : 0.0f;
            q[(size_t)b * qb + i] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
        }
    }
}

static void dequantize_row_q8(const int8_t *q, const uint16_t *scales, int D, int qb, float *out) {
    for (int b = 0; b < D / qb; b++) {
        const float d = _cvtsh_ss(scales[b]);
        const int8_t *qv = q + (size_t)b * qb;
        float *o = out + (size_t)b * qb;
        int i = 0;
        for (; i + 8 <= qb; i += 8) {
            __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qv + i))));
            _mm256_storeu_ps(o + i, _mm256_mul_ps(v, _mm256_set1_ps(d)));
        }
        for (; i < qb; i++) o[i] = (float)qv[i] * d;
    }
}

static float dot(const float *a, const float *b, int D) {
    __m256 acc = _mm256_setzero_ps();
    int d = 0;
    for (; d + 8 <= D; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), acc);
    float total = hsum(acc);
    for (; d < D; d++) total += a[d] * b[d];
    return total;
}

/* each key dequantized once into L1, then scored by every query head of the group */
static void key_scores_q8(const float *q, int R, const int8_t *K, const uint16_t *S, int n, int D, int qb, float scale,
                          float *scores, float *scratch) {
    for (int j = 0; j < n; j++) {
        dequantize_row_q8(K + (size_t)j * D, S + (size_t)j * (D / qb), D, qb, scratch);
        for (int r = 0; r < R; r++) scores[(size_t)r * n + j] = dot(q + (size_t)r * D, scratch, D) * scale;
    }
}

static void weighted_values_q8(const float *p, int R, int n, const int8_t *V, const uint16_t *S, int D, int qb, float *o,
                               float *scratch) {
    for (int j = 0; j < n; j++) {
        dequantize_row_q8(V + (size_t)j * D, S + (size_t)j * (D / qb), D, qb, scratch);
        for (int r = 0; r < R; r++) {
            const __m256 pj = _mm256_set1_ps(p[(size_t)r * n + j]);
            float *orow = o + (size_t)r * D;
            int d = 0;
            for (; d + 8 <= D; d += 8)
                _mm256_storeu_ps(orow + d, _mm256_fmadd_ps(pj, _mm256_loadu_ps(scratch + d), _mm256_loadu_ps(orow + d)));
            for (; d < D; d++) orow[d] += p[(size_t)r * n + j] * scratch[d];
        }
    }
}

/* the cache of one layer: float32 [Hkv, max_tokens, D], or with scales (q8) int8 of that shape and
 * fp16 scales [Hkv, max_tokens, D / qb] */
static void store_kv(const kv_layer *c, int g, int pos, int D, const float *k, const float *v) {
    size_t at = ((size_t)g * c->max_tokens + pos) * D;
    if (c->k_scale) {
        size_t s = ((size_t)g * c->max_tokens + pos) * (D / c->qb);
        quantize_row_q8(k, D, c->qb, (int8_t *)c->k + at, c->k_scale + s);
        quantize_row_q8(v, D, c->qb, (int8_t *)c->v + at, c->v_scale + s);
    } else {
        memcpy((float *)c->k + at, k, sizeof(float) * D);
        memcpy((float *)c->v + at, v, sizeof(float) * D);
    }
}

int attention_rows(float *qkv, int rows, int H, int Hkv, int D, int rot, const float *inv_freq, float mscale,
                   const float *qk_norm, float eps, const kv_layer *cache, int start, float *out) {
    const int width = (H + 2 * Hkv) * D, rep = H / Hkv, max_tokens = cache->max_tokens;
    float *cs = malloc(sizeof(float) * (rot > 0 ? rot : 1));
    if (!cs) return -1;
    for (int i = 0; i < rows; i++) {
        float *row = qkv + (size_t)i * width, pos = (float)(start + i);
        for (int k = 0; k < rot / 2; k++) {
            float theta = pos * inv_freq[k];
            cs[2 * k] = cosf(theta) * mscale;
            cs[2 * k + 1] = sinf(theta) * mscale;
        }
        for (int h = 0; h < H + Hkv; h++)
            norm_rope_head(row + (size_t)h * D, D, rot, qk_norm ? qk_norm + (size_t)h * D : NULL, eps, cs);
        for (int g = 0; g < Hkv; g++)
            store_kv(cache, g, start + i, D, row + (size_t)(H + g) * D, row + (size_t)(H + Hkv + g) * D);
    }
    free(cs);
    const float scale = 1.0f / sqrtf((float)D);
    const int quantized = cache->k_scale != NULL, n_scales = quantized ? D / cache->qb : 0;
    int failed = 0;
    #pragma omp parallel for schedule(dynamic) collapse(2) reduction(| : failed)
    for (int i = 0; i < rows; i++) {
        for (int g = 0; g < Hkv; g++) {  /* the query heads of one kv head together: K, V read once */
            const int n_keys = start + i + 1;
            float *p = malloc(sizeof(float) * ((size_t)rep * n_keys + D)), inv_sum[rep];
            if (!p) { failed = 1; continue; }
            const float *q = qkv + (size_t)i * width + (size_t)g * rep * D;
            const size_t head = (size_t)g * max_tokens;
            if (quantized)
                key_scores_q8(q, rep, (const int8_t *)cache->k + head * D, cache->k_scale + head * n_scales, n_keys, D,
                              cache->qb, scale, p, p + (size_t)rep * n_keys);
            else
                key_scores(q, rep, (const float *)cache->k + head * D, n_keys, D, scale, p);
            for (int r = 0; r < rep; r++) inv_sum[r] = 1.0f / softmax_numerators(p + (size_t)r * n_keys, n_keys);
            float *o = out + (size_t)i * H * D + (size_t)g * rep * D;
            memset(o, 0, sizeof(float) * (size_t)rep * D);
            if (quantized)
                weighted_values_q8(p, rep, n_keys, (const int8_t *)cache->v + head * D, cache->v_scale + head * n_scales, D,
                                   cache->qb, o, p + (size_t)rep * n_keys);
            else
                weighted_values(p, rep, n_keys, (const float *)cache->v + head * D, D, o);
            for (int r = 0; r < rep; r++)
                for (int d = 0; d < D; d++) o[(size_t)r * D + d] *= inv_sum[r];
            free(p);
        }
    }
    return failed ? -1 : 0;
}
