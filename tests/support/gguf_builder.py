"""Tiny GGUF models for tests, written with gguf's own writer: random weights, a small byte-level
BPE vocabulary trained on a few sentences, special tokens and a ChatML template."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType, GGUFWriter, quants

from inference.tokenizer import byte_to_unicode

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = (
    "def add(a, b):\n    return a + b\n\nclass Point:\n    def __init__(self, x, y):\n        self.x = x\n"
    "The quick brown fox jumps over the lazy dog. the the the and and return return self self"
)


def train_bpe(text: str, n_merges: int) -> tuple[list[str], list[str]]:
    """A byte-level vocabulary: the 256 byte symbols, then one token per learned merge."""
    b2u = byte_to_unicode()
    words = [[b2u[b] for b in w.encode()] for w in text.replace("\n", " \n ").split(" ") if w]
    tokens = [b2u[b] for b in range(256)]
    merges = []
    for _ in range(n_merges):
        pairs = Counter((w[i], w[i + 1]) for w in words for i in range(len(w) - 1))
        if not pairs:
            break
        (a, b), _ = pairs.most_common(1)[0]
        merges.append(f"{a} {b}")
        tokens.append(a + b)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if w[i] == a and w[i + 1] == b:
                    w[i : i + 2] = [a + b]
                i += 1
    return tokens, merges


@dataclass
class TinyModel:
    arch: str = "llama"
    n_layer: int = 2
    d_model: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int = 16
    ffn_dim: int = 128
    qtype: QType = QType.F32  # for the 2-D weight matrices
    tied: bool = False
    context: int = 256
    rope_base: float = 10000.0
    chat_template: str | None = CHATML
    pre_tokenizer: str = "gpt2"
    seed: int = 0
    drop_tensors: tuple[str, ...] = ()
    extra_metadata: dict[str, Any] = field(default_factory=dict)  # key -> (value, GGUFValueType)
    extra_tensors: tuple[str, ...] = ()  # more F32 vectors of d_model, e.g. to fake an MTP block
    n_merges: int = 40

    def write(self, path: Path) -> Path:
        rng = np.random.default_rng(self.seed)
        tokens, merges = train_bpe(CORPUS, self.n_merges)
        tokens = tokens + SPECIAL
        types = [1] * (len(tokens) - len(SPECIAL)) + [3] * len(SPECIAL)
        vocab = len(tokens)
        a = self.arch
        w = GGUFWriter(str(path), a)
        w.add_name(f"tiny-{a}")
        w.add_context_length(self.context)
        w.add_embedding_length(self.d_model)
        w.add_block_count(self.n_layer)
        w.add_feed_forward_length(self.ffn_dim)
        w.add_head_count(self.n_head)
        w.add_head_count_kv(self.n_head_kv)
        w.add_layer_norm_rms_eps(1e-6)
        w.add_rope_freq_base(self.rope_base)
        if self.head_dim * self.n_head != self.d_model or a == "qwen3":
            w.add_key_length(self.head_dim)
            w.add_value_length(self.head_dim)
        w.add_vocab_size(vocab)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(self.pre_tokenizer)
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(tokens.index("<|endoftext|>"))
        w.add_eos_token_id(tokens.index("<|im_end|>"))
        w.add_add_bos_token(False)
        if self.chat_template is not None:
            w.add_chat_template(self.chat_template)
        for key, value in self.extra_metadata.items():
            w.add_key_value(key, value[0], value[1])

        def matrix(name: str, rows: int, cols: int, scale: float = 0.08) -> None:
            self._add(w, name, (rng.standard_normal((rows, cols)) * scale).astype(np.float32), self.qtype, rng)

        def vector(name: str, n: int, base: float = 1.0) -> None:
            self._add(w, name, (base + 0.1 * rng.standard_normal(n)).astype(np.float32), QType.F32, rng)

        q, kv = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
        matrix("token_embd.weight", vocab, self.d_model, 0.5)
        for i in range(self.n_layer):
            p = f"blk.{i}"
            vector(f"{p}.attn_norm.weight", self.d_model)
            matrix(f"{p}.attn_q.weight", q, self.d_model)
            matrix(f"{p}.attn_k.weight", kv, self.d_model)
            matrix(f"{p}.attn_v.weight", kv, self.d_model)
            if a == "qwen2":
                for n, size in (("q", q), ("k", kv), ("v", kv)):
                    vector(f"{p}.attn_{n}.bias", size, 0.0)
            if a == "qwen3":
                vector(f"{p}.attn_q_norm.weight", self.head_dim)
                vector(f"{p}.attn_k_norm.weight", self.head_dim)
            matrix(f"{p}.attn_output.weight", self.d_model, q)
            vector(f"{p}.ffn_norm.weight", self.d_model)
            matrix(f"{p}.ffn_gate.weight", self.ffn_dim, self.d_model)
            matrix(f"{p}.ffn_up.weight", self.ffn_dim, self.d_model)
            matrix(f"{p}.ffn_down.weight", self.d_model, self.ffn_dim)
        vector("output_norm.weight", self.d_model)
        if not self.tied:
            matrix("output.weight", vocab, self.d_model)
        for name in self.extra_tensors:
            vector(name, self.d_model)
        write_out(w)
        return path

    def _add(self, w: GGUFWriter, name: str, values: np.ndarray, qtype: QType, rng: np.random.Generator) -> None:
        if name in self.drop_tensors:
            return
        block = GGML_QUANT_SIZES[qtype][0]
        if values.ndim == 1 or values.shape[-1] % block:
            qtype = QType.F32
        if qtype == QType.F32:
            w.add_tensor(name, values)
        elif qtype not in QUANTIZABLE:
            # gguf cannot quantize k-quants (or i-quants); random blocks with sane fp16 scales stand in
            w.add_tensor(name, random_blocks(qtype, values.size // block, rng).reshape(values.shape[0], -1), raw_dtype=qtype)
        else:
            w.add_tensor(name, quants.quantize(values, qtype), raw_dtype=qtype)


QUANTIZABLE = (QType.F16, QType.BF16, QType.Q4_0, QType.Q4_1, QType.Q5_0, QType.Q5_1, QType.Q8_0)
# byte offsets of the fp16 scale fields in each block format
SCALE_OFFSETS = {QType.Q4_0: [0], QType.Q4_1: [0, 2], QType.Q5_0: [0], QType.Q5_1: [0, 2], QType.Q8_0: [0],
                 QType.Q2_K: [80, 82], QType.Q3_K: [108], QType.Q4_K: [0, 2], QType.Q5_K: [0, 2], QType.Q6_K: [208]}


def random_blocks(qtype: QType, n_blocks: int, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """Random bytes for n blocks, with every fp16 scale replaced by a small finite value."""
    type_size = GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    for off in SCALE_OFFSETS.get(qtype, []):
        raw[:, off : off + 2] = (np.abs(rng.standard_normal(n_blocks)) * scale).astype(np.float16).view(np.uint8).reshape(-1, 2)
    return raw


def rewrite_gguf(src: Path, dst: Path, drop: set[str] = frozenset(), replace: dict[str, np.ndarray] | None = None,
                 metadata: dict[str, Any] | None = None, copies: Callable[[str], list[str]] | None = None) -> Path:
    """A copy of a float GGUF file with some tensors dropped, replaced, or written under other names
    (`copies` maps a tensor's name to the names it is written as), and some metadata values
    changed: how tests and benchmarks make cut, mismatched or deeper files from good ones."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(dst, arch)
    for f in reader.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF."):
            continue
        sub_type = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(f.name, (metadata or {}).get(f.name, f.contents()), f.types[0], sub_type=sub_type)
    for t in reader.tensors:
        if t.name in drop:
            continue
        data = (replace or {}).get(t.name, np.asarray(t.data))
        for name in copies(t.name) if copies else [t.name]:
            writer.add_tensor(name, data)
    write_out(writer)
    return dst


def write_out(writer: GGUFWriter) -> None:
    """Header, metadata and tensors to the file, in gguf's order, and close it."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
