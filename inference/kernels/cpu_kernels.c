/* CPU kernels for GGUF weights kept in their packed block formats (x86-64, AVX2 + FMA + F16C).
 *
 * Decode-time matmuls read the weights once per token, so they are bound by memory bandwidth:
 * reading 4.5-bit blocks instead of fp32 moves ~7x fewer bytes. Each kernel decodes 32 weights
 * at a time into registers with ggml's exact arithmetic (d*q + m, in that order) and multiplies
 * them with fp32 activations, so results equal a dense fp32 matmul up to summation order.
 * The same decoders fill fp32 buffers for prefill, where a BLAS GEMM is faster.
 *
 * Python API (module inference.kernels._cpu), pointers passed as integers:
 *   matmul(qtype, x, w, y, M, N, K, row_bytes)  y[M,N] = x[M,K] @ W[N,K]^T
 *   dequantize(qtype, w, out, rows, K, row_bytes)
 *   rms_norm(x, residual, weight, out, rows, dim, eps)  [residual may be 0: x += residual first]
 *   silu_mul(gate_up, out, rows, dim)                  out = silu(gate_up[:, :dim]) * gate_up[:, dim:]
 *   set_num_threads(n), get_num_threads(), supported_types()
 *
 * The elementwise kernels exist because on a small model each torch op costs a few microseconds
 * of dispatch, which at 30 layers x a dozen ops per token rivals the matmuls themselves.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
       T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30 };

typedef struct { __m256 v[4]; } group32;  /* 32 decoded weights */

#define INLINE static inline __attribute__((always_inline))

INLINE float f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }
INLINE __m256 u8_to_f32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
INLINE __m256 i8_to_f32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/* 32 unsigned bytes -> 4 x 8 floats, in order */
INLINE group32 bytes_u8(__m256i q) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    group32 g = {{u8_to_f32(lo), u8_to_f32(_mm_srli_si128(lo, 8)), u8_to_f32(hi), u8_to_f32(_mm_srli_si128(hi, 8))}};
    return g;
}
INLINE group32 bytes_i8(__m256i q) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    group32 g = {{i8_to_f32(lo), i8_to_f32(_mm_srli_si128(lo, 8)), i8_to_f32(hi), i8_to_f32(_mm_srli_si128(hi, 8))}};
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
INLINE group32 scale(group32 g, __m256 d) { for (int i = 0; i < 4; i++) g.v[i] = _mm256_mul_ps(g.v[i], d); return g; }
INLINE group32 scale_offset(group32 g, __m256 d, __m256 m) {
    for (int i = 0; i < 4; i++) g.v[i] = _mm256_add_ps(_mm256_mul_ps(g.v[i], d), m);
    return g;
}
/* halves with their own scale (sub-blocks of 16): value = dl*q - ml */
INLINE group32 scale_halves(group32 g, float d0, float d1, float m0, float m1) {
    __m256 d[2] = {_mm256_set1_ps(d0), _mm256_set1_ps(d1)}, m[2] = {_mm256_set1_ps(m0), _mm256_set1_ps(m1)};
    for (int i = 0; i < 4; i++) g.v[i] = _mm256_sub_ps(_mm256_mul_ps(d[i / 2], g.v[i]), m[i / 2]);
    return g;
}

/* ---- decoders: group gi (of 32 weights) of a row ------------------------------------------ */

INLINE group32 dec_f32(const uint8_t *row, int gi) {
    const float *p = (const float *)row + gi * 32;
    group32 g = {{_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _mm256_loadu_ps(p + 16), _mm256_loadu_ps(p + 24)}};
    return g;
}
INLINE group32 dec_f16(const uint8_t *row, int gi) {
    const __m128i *p = (const __m128i *)(row + gi * 64);
    group32 g = {{_mm256_cvtph_ps(_mm_loadu_si128(p)), _mm256_cvtph_ps(_mm_loadu_si128(p + 1)),
                  _mm256_cvtph_ps(_mm_loadu_si128(p + 2)), _mm256_cvtph_ps(_mm_loadu_si128(p + 3))}};
    return g;
}
INLINE group32 dec_bf16(const uint8_t *row, int gi) {
    const __m128i *p = (const __m128i *)(row + gi * 64);
    group32 g;
    for (int i = 0; i < 4; i++)
        g.v[i] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p + i)), 16));
    return g;
}
INLINE group32 dec_q4_0(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 18;
    __m256i q = _mm256_sub_epi8(nibbles16(b + 2), _mm256_set1_epi8(8));
    return scale(bytes_i8(q), _mm256_set1_ps(f16(b)));
}
INLINE group32 dec_q4_1(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 20;
    return scale_offset(bytes_u8(nibbles16(b + 4)), _mm256_set1_ps(f16(b)), _mm256_set1_ps(f16(b + 2)));
}
INLINE group32 dec_q5_0(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 22;
    __m256i q = _mm256_or_si256(nibbles16(b + 6), _mm256_slli_epi16(bits32(b + 2), 4));
    return scale(bytes_i8(_mm256_sub_epi8(q, _mm256_set1_epi8(16))), _mm256_set1_ps(f16(b)));
}
INLINE group32 dec_q5_1(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 24;
    __m256i q = _mm256_or_si256(nibbles16(b + 8), _mm256_slli_epi16(bits32(b + 4), 4));
    return scale_offset(bytes_u8(q), _mm256_set1_ps(f16(b)), _mm256_set1_ps(f16(b + 2)));
}
INLINE group32 dec_q8_0(const uint8_t *row, int gi) {
    const uint8_t *b = row + gi * 34;
    return scale(bytes_i8(_mm256_loadu_si256((const __m256i *)(b + 2))), _mm256_set1_ps(f16(b)));
}
/* K-quants: 256 weights per block, so group gi is sub-group g of block gi/8 */
INLINE group32 dec_q2_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 84; int g = gi % 8;
    const uint8_t *sc = b, *qs = b + 16;
    float d = f16(b + 80), dmin = f16(b + 82);
    group32 q = bytes_u8(shr_mask(qs + (g / 4) * 32, 2 * (g % 4), 3));
    return scale_halves(q, d * (float)(sc[2 * g] & 15), d * (float)(sc[2 * g + 1] & 15),
                        dmin * (float)(sc[2 * g] >> 4), dmin * (float)(sc[2 * g + 1] >> 4));
}
INLINE float q3_k_scale(const uint8_t *s, int sb) {
    int low = sb < 8 ? (s[sb] & 15) : (s[sb - 8] >> 4);
    int high = (s[8 + sb % 4] >> (2 * (sb / 4))) & 3;
    return (float)((int8_t)(low | (high << 4)) - 32);
}
INLINE group32 dec_q3_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 110; int g = gi % 8;
    const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    float d = f16(b + 108);
    __m256i ql = shr_mask(qs + (g / 4) * 32, 2 * (g % 4), 3);
    __m256i hb = shr_mask(hmask, g, 1);  /* set bit: no -4 offset */
    __m256i q = _mm256_sub_epi8(ql, _mm256_slli_epi16(_mm256_xor_si256(hb, _mm256_set1_epi8(1)), 2));
    return scale_halves(bytes_i8(q), d * q3_k_scale(sc, 2 * g), d * q3_k_scale(sc, 2 * g + 1), 0.0f, 0.0f);
}
INLINE void k_scale_min(const uint8_t *s, int g, float *sc, float *mn) {
    if (g < 4) { *sc = (float)(s[g] & 63); *mn = (float)(s[g + 4] & 63); }
    else {
        *sc = (float)((s[g + 4] & 15) | ((s[g - 4] >> 6) << 4));
        *mn = (float)((s[g + 4] >> 4) | ((s[g] >> 6) << 4));
    }
}
INLINE group32 dec_q4_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 144; int g = gi % 8;
    float sc, mn; k_scale_min(b + 4, g, &sc, &mn);
    float dl = f16(b) * sc, ml = f16(b + 2) * mn;
    group32 q = bytes_u8(shr_mask(b + 16 + (g / 2) * 32, 4 * (g % 2), 15));
    return scale_halves(q, dl, dl, ml, ml);
}
INLINE group32 dec_q5_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 176; int g = gi % 8;
    float sc, mn; k_scale_min(b + 4, g, &sc, &mn);
    float dl = f16(b) * sc, ml = f16(b + 2) * mn;
    __m256i q = _mm256_or_si256(shr_mask(b + 48 + (g / 2) * 32, 4 * (g % 2), 15),
                                _mm256_slli_epi16(shr_mask(b + 16, g, 1), 4));
    return scale_halves(bytes_u8(q), dl, dl, ml, ml);
}
INLINE group32 dec_q6_k(const uint8_t *row, int gi) {
    const uint8_t *b = row + (gi / 8) * 210; int g = gi % 8;
    const uint8_t *ql = b, *qh = b + 128; const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16(b + 208);
    int c = g / 4;
    __m256i lo = shr_mask(ql + c * 64 + (g % 2) * 32, 4 * ((g % 4) / 2), 15);
    __m256i hi = shr_mask(qh + c * 32, 2 * (g % 4), 3);
    __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
    return scale_halves(bytes_i8(q), d * (float)sc[2 * g], d * (float)sc[2 * g + 1], 0.0f, 0.0f);
}

/* ---- kernels built from a decoder ------------------------------------------------------------ */

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_hadd_ps(s, s); s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
}

/* One weight row against R (<= 4) activation rows: each group is decoded once and reused. */
#define DEFINE_KERNELS(NAME)                                                                          \
    INLINE void rowdot_##NAME(const uint8_t *row, const float *x, int K, int R, float *y, int N) {    \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
        for (int gi = 0; gi < K / 32; gi++) {                                                         \
            group32 w = dec_##NAME(row, gi);                                                          \
            for (int r = 0; r < R; r++) {                                                             \
                const float *xr = x + (size_t)r * K + gi * 32;                                        \
                __m256 s = _mm256_mul_ps(w.v[0], _mm256_loadu_ps(xr));                                \
                s = _mm256_fmadd_ps(w.v[1], _mm256_loadu_ps(xr + 8), s);                              \
                s = _mm256_fmadd_ps(w.v[2], _mm256_loadu_ps(xr + 16), s);                             \
                s = _mm256_fmadd_ps(w.v[3], _mm256_loadu_ps(xr + 24), s);                             \
                acc[r] = _mm256_add_ps(acc[r], s);                                                    \
            }                                                                                         \
        }                                                                                             \
        for (int r = 0; r < R; r++) y[(size_t)r * N] = hsum(acc[r]);                                   \
    }                                                                                                 \
    static void matmul_##NAME(const float *x, const uint8_t *w, float *y, int M, int N, int K, size_t rb) { \
        _Pragma("omp parallel for schedule(static)")                                                   \
        for (int n = 0; n < N; n++) {                                                                 \
            const uint8_t *row = w + (size_t)n * rb;                                                  \
            for (int m0 = 0; m0 < M; m0 += 4) {                                                       \
                const float *xm = x + (size_t)m0 * K; float *ym = y + (size_t)m0 * N + n;             \
                switch (M - m0 < 4 ? M - m0 : 4) {                                                    \
                    case 1: rowdot_##NAME(row, xm, K, 1, ym, N); break;                               \
                    case 2: rowdot_##NAME(row, xm, K, 2, ym, N); break;                               \
                    case 3: rowdot_##NAME(row, xm, K, 3, ym, N); break;                               \
                    default: rowdot_##NAME(row, xm, K, 4, ym, N); break;                              \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
    static void dequant_##NAME(const uint8_t *w, float *out, int rows, int K, size_t rb) {            \
        _Pragma("omp parallel for schedule(static)")                                                   \
        for (int n = 0; n < rows; n++) {                                                              \
            for (int gi = 0; gi < K / 32; gi++) {                                                     \
                group32 g = dec_##NAME(w + (size_t)n * rb, gi);                                       \
                float *o = out + (size_t)n * K + gi * 32;                                             \
                for (int i = 0; i < 4; i++) _mm256_storeu_ps(o + 8 * i, g.v[i]);                      \
            }                                                                                         \
        }                                                                                             \
    }

DEFINE_KERNELS(f32)
DEFINE_KERNELS(f16)
DEFINE_KERNELS(bf16)
DEFINE_KERNELS(q4_0)
DEFINE_KERNELS(q4_1)
DEFINE_KERNELS(q5_0)
DEFINE_KERNELS(q5_1)
DEFINE_KERNELS(q8_0)
DEFINE_KERNELS(q2_k)
DEFINE_KERNELS(q3_k)
DEFINE_KERNELS(q4_k)
DEFINE_KERNELS(q5_k)
DEFINE_KERNELS(q6_k)

typedef void (*matmul_fn)(const float *, const uint8_t *, float *, int, int, int, size_t);
typedef void (*dequant_fn)(const uint8_t *, float *, int, int, size_t);
typedef struct { int qtype; int block; matmul_fn matmul; dequant_fn dequant; } kernel_entry;

static const kernel_entry KERNELS[] = {
    {T_F32, 32, matmul_f32, dequant_f32},     {T_F16, 32, matmul_f16, dequant_f16},
    {T_BF16, 32, matmul_bf16, dequant_bf16},  {T_Q4_0, 32, matmul_q4_0, dequant_q4_0},
    {T_Q4_1, 32, matmul_q4_1, dequant_q4_1},  {T_Q5_0, 32, matmul_q5_0, dequant_q5_0},
    {T_Q5_1, 32, matmul_q5_1, dequant_q5_1},  {T_Q8_0, 32, matmul_q8_0, dequant_q8_0},
    {T_Q2_K, 256, matmul_q2_k, dequant_q2_k}, {T_Q3_K, 256, matmul_q3_k, dequant_q3_k},
    {T_Q4_K, 256, matmul_q4_k, dequant_q4_k}, {T_Q5_K, 256, matmul_q5_k, dequant_q5_k},
    {T_Q6_K, 256, matmul_q6_k, dequant_q6_k},
};

static const kernel_entry *find_kernel(int qtype, int K) {
    for (size_t i = 0; i < sizeof(KERNELS) / sizeof(KERNELS[0]); i++) {
        if (KERNELS[i].qtype != qtype) continue;
        if (K <= 0 || K % KERNELS[i].block != 0) {
            PyErr_Format(PyExc_ValueError, "row length %d is not a multiple of the block size %d", K, KERNELS[i].block);
            return NULL;
        }
        return &KERNELS[i];
    }
    PyErr_Format(PyExc_ValueError, "no CPU kernel for GGML type %d", qtype);
    return NULL;
}

/* ---- elementwise kernels for decode ---------------------------------------------------------- */

static void rms_norm_rows(float *x, const float *residual, const float *w, float *out, int rows, int dim, float eps) {
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

static void silu_mul_rows(const float *gate_up, float *out, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        const float *g = gate_up + (size_t)r * 2 * dim, *u = g + dim;
        float *o = out + (size_t)r * dim;
        for (int i = 0; i < dim; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

/* ---- Python bindings --------------------------------------------------------------------------- */

static PyObject *py_matmul(PyObject *self, PyObject *args) {
    int qtype, M, N, K; unsigned long long x, w, y; Py_ssize_t rb;
    if (!PyArg_ParseTuple(args, "iKKKiiin", &qtype, &x, &w, &y, &M, &N, &K, &rb)) return NULL;
    const kernel_entry *k = find_kernel(qtype, K);
    if (!k) return NULL;
    Py_BEGIN_ALLOW_THREADS
    k->matmul((const float *)x, (const uint8_t *)w, (float *)y, M, N, K, (size_t)rb);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_dequantize(PyObject *self, PyObject *args) {
    int qtype, rows, K; unsigned long long w, out; Py_ssize_t rb;
    if (!PyArg_ParseTuple(args, "iKKiin", &qtype, &w, &out, &rows, &K, &rb)) return NULL;
    const kernel_entry *k = find_kernel(qtype, K);
    if (!k) return NULL;
    Py_BEGIN_ALLOW_THREADS
    k->dequant((const uint8_t *)w, (float *)out, rows, K, (size_t)rb);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_rms_norm(PyObject *self, PyObject *args) {
    unsigned long long x, residual, w, out; int rows, dim; float eps;
    if (!PyArg_ParseTuple(args, "KKKKiif", &x, &residual, &w, &out, &rows, &dim, &eps)) return NULL;
    rms_norm_rows((float *)x, (const float *)residual, (const float *)w, (float *)out, rows, dim, eps);
    Py_RETURN_NONE;
}

static PyObject *py_silu_mul(PyObject *self, PyObject *args) {
    unsigned long long gate_up, out; int rows, dim;
    if (!PyArg_ParseTuple(args, "KKii", &gate_up, &out, &rows, &dim)) return NULL;
    silu_mul_rows((const float *)gate_up, (float *)out, rows, dim);
    Py_RETURN_NONE;
}

static PyObject *py_set_num_threads(PyObject *self, PyObject *args) {
    int n;
    if (!PyArg_ParseTuple(args, "i", &n)) return NULL;
    omp_set_num_threads(n > 0 ? n : 1);
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *args) { return PyLong_FromLong(omp_get_max_threads()); }

static PyObject *py_supported_types(PyObject *self, PyObject *args) {
    PyObject *out = PyList_New(0);
    for (size_t i = 0; i < sizeof(KERNELS) / sizeof(KERNELS[0]); i++) {
        PyObject *v = PyLong_FromLong(KERNELS[i].qtype);
        PyList_Append(out, v);
        Py_DECREF(v);
    }
    return out;
}

static PyMethodDef METHODS[] = {
    {"matmul", py_matmul, METH_VARARGS, "y[M,N] = x[M,K] @ W[N,K]^T with W in a GGML block format"},
    {"dequantize", py_dequantize, METH_VARARGS, "packed rows -> float32 rows"},
    {"rms_norm", py_rms_norm, METH_VARARGS, "RMSNorm of rows, optionally adding a residual into x first"},
    {"silu_mul", py_silu_mul, METH_VARARGS, "silu(gate) * up of [rows, 2*dim] -> [rows, dim]"},
    {"set_num_threads", py_set_num_threads, METH_VARARGS, "threads used by the kernels"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "threads used by the kernels"},
    {"supported_types", py_supported_types, METH_NOARGS, "GGML type ids with a kernel"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_cpu", "GGUF block-format CPU kernels", -1, METHODS};

PyMODINIT_FUNC PyInit__cpu(void) { return PyModule_Create(&MODULE); }
