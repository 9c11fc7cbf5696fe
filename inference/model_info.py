"""What a GGUF file holds and what running it costs, read from its header without loading weights."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .errors import EngineError
from .gguf_file import GGUFFile
from .models import LOADERS, qwen35


@dataclass
class ModelInfo:
    path: str
    file_bytes: int
    name: str | None
    architecture: str
    supported: bool
    parameters: int
    context_length: int | None
    n_layer: int | None
    d_model: int | None
    n_head: int | None
    n_head_kv: int | None
    head_dim: int | None
    vocab_size: int
    tokenizer: str | None
    has_chat_template: bool
    mtp_layers: int  # MTP (nextn) blocks in the file
    tensor_types: dict[str, tuple[int, int]]  # type -> (tensor count, bytes)
    kv_layers: int | None = None  # layers that keep attention KV (hybrid models: the full-attention ones, MTP included)
    # what running it takes in memory: memory_plan.py

    def weight_bytes(self) -> int:
        return sum(b for _, b in self.tensor_types.values())


def _mtp_layers(g: GGUFFile) -> int:
    declared = g.arch_get("nextn_predict_layers", 0) or 0
    found = {m.group(1) for name in g.tensors if (m := re.match(r"blk\.(\d+)\.nextn\.", name))}
    return max(int(declared), len(found))


def _kv_layers(g: GGUFFile, mtp_layers: int) -> int | None:
    """The KV-holding layers of a qwen35 model (its full-attention ones and the MTP block); None for other families."""
    if g.architecture not in qwen35.ARCHITECTURES:
        return None
    try:
        cfg = qwen35.Qwen35Config.from_gguf(g)
    except EngineError:
        return None
    return cfg.n_layer - sum(cfg.recurrent) + mtp_layers


def describe(g: GGUFFile) -> ModelInfo:
    arch = g.architecture
    types: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for t in g.tensors.values():
        types[t.qtype.name] += 1
        sizes[t.qtype.name] += t.n_bytes
    n_head = g.arch_get("attention.head_count")
    d_model = g.arch_get("embedding_length")
    head_dim = g.arch_get("attention.key_length") or (d_model // n_head if d_model and isinstance(n_head, int) and n_head else None)
    tokens = g.get("tokenizer.ggml.tokens") or []
    tokenizer = g.get("tokenizer.ggml.model")
    if tokenizer:
        tokenizer = f"{tokenizer} (pre-tokenizer {g.get('tokenizer.ggml.pre') or 'default'})"
    mtp_layers = _mtp_layers(g)
    kv_layers = _kv_layers(g, mtp_layers)
    return ModelInfo(
        path=str(g.path),
        file_bytes=g.path.stat().st_size,
        name=g.get("general.name"),
        architecture=arch,
        supported=arch in LOADERS,
        parameters=sum(t.n_elements for t in g.tensors.values()),
        context_length=g.arch_get("context_length"),
        n_layer=g.arch_get("block_count"),
        d_model=d_model,
        n_head=n_head if isinstance(n_head, int) else None,
        n_head_kv=g.arch_get("attention.head_count_kv", n_head) if isinstance(n_head, int) else None,
        head_dim=head_dim,
        vocab_size=len(tokens) or int(g.arch_get("vocab_size", 0) or 0),
        tokenizer=tokenizer,
        has_chat_template=g.get("tokenizer.chat_template") is not None,
        mtp_layers=mtp_layers,
        tensor_types={k: (types[k], sizes[k]) for k in sorted(types, key=lambda k: -sizes[k])},
        kv_layers=kv_layers,
    )
