/* Python bindings of the CPU kernels (module inference.kernels._cpu). Pointers come in as
 * integers (tensor.data_ptr()); the GIL is released while a kernel runs.
 *
 *   matmul(qtype, x, w, y, M, N, K, row_bytes[, int8])  y[M,N] = x[M,K] @ W[N,K]^T, W in a GGML block
 *       format; int8: activations rounded to 8 bits where the type has such a kernel (int8_types())
 *   dequantize(qtype, w, out, rows, K, row_bytes)
 *   dequantize_bf16(qtype, w, out, rows, K, row_bytes)   the same rounded to bfloat16 (nearest even)
 *   rms_norm(x, residual, weight, out, rows, dim, eps)  [residual may be 0: x += residual first]
 *   silu_mul(gate_up, out, rows, dim)                  out = silu(gate_up[:, :dim]) * gate_up[:, dim:]
 *   attention(qkv, rows, n_head, n_head_kv, head_dim, rot_dim, inv_freq, mscale, qk_norm, eps,
 *             k_cache, v_cache, k_scale, v_scale, q8_block, max_tokens, start, out)
 *                                                   one attention step for a few rows (scales 0: float32 cache)
 *   set_num_threads(n), get_num_threads(), supported_types(), int8_types()
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <omp.h>

#include "common.h"

static const kernel_entry *find_kernel(int qtype, int K) {
    for (int i = 0; i < N_KERNELS; i++) {
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

/* ---- Python bindings --------------------------------------------------------------------------- */

static PyObject *py_matmul(PyObject *self, PyObject *args) {
    int qtype, M, N, K, int8 = 0; unsigned long long x, w, y; Py_ssize_t rb;
    if (!PyArg_ParseTuple(args, "iKKKiiin|p", &qtype, &x, &w, &y, &M, &N, &K, &rb, &int8)) return NULL;
    const kernel_entry *k = find_kernel(qtype, K);
    if (!k) return NULL;
    matmul_fn fn = int8 && k->matmul8 ? k->matmul8 : k->matmul;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = fn((const float *)x, (const uint8_t *)w, (float *)y, M, N, K, (size_t)rb);
    Py_END_ALLOW_THREADS
    if (rc) return PyErr_NoMemory();
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

/* fp32 -> bf16 with round-to-nearest-even, as torch's .to(torch.bfloat16) for finite values. */
static void f32_to_bf16(const float *in, uint16_t *out, size_t n) {
    size_t i = 0;
    const __m256i ones = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF);
    for (; i + 8 <= n; i += 8) {
        __m256i x = _mm256_castps_si256(_mm256_loadu_ps(in + i));
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), ones);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(bias, lsb)), 16);
        _mm_storeu_si128((__m128i *)(out + i),
                         _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
    }
    for (; i < n; i++) {
        uint32_t x; memcpy(&x, in + i, 4);
        out[i] = (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
    }
}

/* Rows are dequantized a few at a time into a per-thread float scratch that stays in L2, then
 * rounded: no full-size float32 copy of the matrix is written or read back. */
#define BF16_ROW_BATCH 8

static int dequantize_bf16_rows(const kernel_entry *k, const uint8_t *w, uint16_t *out, int rows, int K, size_t rb) {
    int failed = 0;
    #pragma omp parallel
    {
        float *scratch = malloc(sizeof(float) * (size_t)BF16_ROW_BATCH * K);
        if (!scratch) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(static)
        for (int n0 = 0; n0 < rows; n0 += BF16_ROW_BATCH) {
            if (!scratch) continue;
            int batch = rows - n0 < BF16_ROW_BATCH ? rows - n0 : BF16_ROW_BATCH;
            k->dequant(w + (size_t)n0 * rb, scratch, batch, K, rb);  /* nested: runs on this thread */
            f32_to_bf16(scratch, out + (size_t)n0 * K, (size_t)batch * K);
        }
        free(scratch);
    }
    return failed;
}

static PyObject *py_dequantize_bf16(PyObject *self, PyObject *args) {
    int qtype, rows, K; unsigned long long w, out; Py_ssize_t rb;
    if (!PyArg_ParseTuple(args, "iKKiin", &qtype, &w, &out, &rows, &K, &rb)) return NULL;
    const kernel_entry *k = find_kernel(qtype, K);
    if (!k) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = dequantize_bf16_rows(k, (const uint8_t *)w, (uint16_t *)out, rows, K, (size_t)rb);
    Py_END_ALLOW_THREADS
    if (rc) return PyErr_NoMemory();
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

static PyObject *py_attention(PyObject *self, PyObject *args) {
    unsigned long long qkv, inv_freq, qk_norm, k_cache, v_cache, k_scale, v_scale, out;
    int rows, H, Hkv, D, rot, qb, max_tokens, start; float mscale, eps;
    if (!PyArg_ParseTuple(args, "KiiiiiKfKfKKKKiiiK", &qkv, &rows, &H, &Hkv, &D, &rot, &inv_freq, &mscale, &qk_norm, &eps,
                          &k_cache, &v_cache, &k_scale, &v_scale, &qb, &max_tokens, &start, &out)) return NULL;
    if (Hkv <= 0 || H % Hkv != 0 || rot > D || rot % 2 || start < 0 || start + rows > max_tokens ||
        (k_scale && (qb <= 0 || D % qb || !v_scale))) {
        PyErr_SetString(PyExc_ValueError, "attention: inconsistent head counts, rotary size, positions or q8 blocks");
        return NULL;
    }
    kv_layer cache = {(void *)k_cache, (void *)v_cache, (uint16_t *)k_scale, (uint16_t *)v_scale, qb, max_tokens};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = attention_rows((float *)qkv, rows, H, Hkv, D, rot, (const float *)inv_freq, mscale, (const float *)qk_norm, eps,
                        &cache, start, (float *)out);
    Py_END_ALLOW_THREADS
    if (rc) return PyErr_NoMemory();
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
    for (int i = 0; i < N_KERNELS; i++) {
        PyObject *v = PyLong_FromLong(KERNELS[i].qtype);
        PyList_Append(out, v);
        Py_DECREF(v);
    }
    return out;
}

static PyObject *py_int8_types(PyObject *self, PyObject *args) {
    PyObject *out = PyList_New(0);
    for (int i = 0; i < N_KERNELS; i++) {
        if (!KERNELS[i].matmul8) continue;
        PyObject *v = PyLong_FromLong(KERNELS[i].qtype);
        PyList_Append(out, v);
        Py_DECREF(v);
    }
    return out;
}

static PyMethodDef METHODS[] = {
    {"matmul", py_matmul, METH_VARARGS, "y[M,N] = x[M,K] @ W[N,K]^T with W in a GGML block format"},
    {"dequantize", py_dequantize, METH_VARARGS, "packed rows -> float32 rows"},
    {"dequantize_bf16", py_dequantize_bf16, METH_VARARGS, "packed rows -> bfloat16 rows (round to nearest even)"},
    {"rms_norm", py_rms_norm, METH_VARARGS, "RMSNorm of rows, optionally adding a residual into x first"},
    {"silu_mul", py_silu_mul, METH_VARARGS, "silu(gate) * up of [rows, 2*dim] -> [rows, dim]"},
    {"attention", py_attention, METH_VARARGS, "norm + rope + KV store + GQA attention for a few rows"},
    {"set_num_threads", py_set_num_threads, METH_VARARGS, "threads used by the kernels"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "threads used by the kernels"},
    {"supported_types", py_supported_types, METH_NOARGS, "GGML type ids with a kernel"},
    {"int8_types", py_int8_types, METH_NOARGS, "GGML type ids with a kernel for 8-bit activations"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_cpu", "GGUF block-format CPU kernels", -1, METHODS};

PyMODINIT_FUNC PyInit__cpu(void) { return PyModule_Create(&MODULE); }
