"""Writing a trained head as a sidecar `mtp-*.gguf` in llama.cpp's nextn layout: the block at
`blk.{n_layer}.*`, its nextn tensors at `blk.{n_layer}.nextn.*`, `block_count` = n_layer + 1 and
`nextn_predict_layers` = 1, the base's hyperparameters copied. The embedding and LM head are
left out (the base's are used). The base file's fingerprint and sha256 are recorded so the head
is never paired with another model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

from .gguf_file import GGUFFile, file_sha256
from .models.llama import LlamaLoader
from .mtp import BASE_FILE_KEY, BASE_FINGERPRINT_KEY, BASE_SHA256_KEY, DRAFT_VOCAB_KEY
from .mtp_train import TrainableHead, block_tensor_names, row_order

Q8_BLOCK = 32


def _copy_metadata(writer: GGUFWriter, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value) if 0 <= value < 2**32 else writer.add_int64(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    elif isinstance(value, list) and value:
        writer.add_array(key, value)


def _file_rows(loader: LlamaLoader, key: str, tensor: torch.Tensor) -> torch.Tensor:
    """Undo the engine's row reordering, so the file holds the layout the architecture's files use."""
    order = row_order(loader, key)
    if order is None:
        return tensor
    restored = torch.empty_like(tensor)
    restored[order] = tensor
    return restored


def _add(writer: GGUFWriter, name: str, tensor: torch.Tensor, quantized: bool) -> None:
    array = tensor.detach().float().contiguous().numpy()
    if quantized and array.ndim == 2 and array.shape[1] % Q8_BLOCK == 0:
        writer.add_tensor(name, quantize(array, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
    else:
        writer.add_tensor(name, array.astype(np.float32))


def write_sidecar(head: TrainableHead, base: GGUFFile, path: Path, quantized: bool = True,
                  notes: dict[str, str | int | float] | None = None, draft_vocab: list[int] | None = None) -> Path:
    """Write the head to `path` atomically; matrices in Q8_0 when `quantized`, vectors in F32.
    `draft_vocab`: the token ids the engine should draft among (all, when None)."""
    arch, cfg = base.architecture, head.cfg
    writer_path = path.with_name(path.name + ".tmp")
    writer = GGUFWriter(str(writer_path), arch)
    writer.add_string("general.name", f"MTP head for {base.get('general.name') or base.path.stem}")
    for key in base.keys():
        if key.startswith(f"{arch}.") and key not in (f"{arch}.block_count", f"{arch}.nextn_predict_layers"):
            _copy_metadata(writer, key, base.get(key))
    writer.add_uint32(f"{arch}.block_count", cfg.n_layer + 1)
    writer.add_uint32(f"{arch}.nextn_predict_layers", 1)
    writer.add_string(BASE_FILE_KEY, base.path.name)
    writer.add_string(BASE_FINGERPRINT_KEY, base.fingerprint())
    writer.add_string(BASE_SHA256_KEY, file_sha256(base.path))
    for key, value in (notes or {}).items():
        _copy_metadata(writer, f"mtp_agent.{key}", value)
    if draft_vocab:
        writer.add_array(DRAFT_VOCAB_KEY, sorted(int(t) for t in draft_vocab))

    loader = LlamaLoader(base, cfg, torch.device("cpu"), torch.float32, packed=False)
    p = f"blk.{cfg.n_layer}"
    for key, name in block_tensor_names(cfg).items():
        _add(writer, f"{p}.{name}", _file_rows(loader, key, head.block[key]), quantized)
    _add(writer, f"{p}.nextn.eh_proj.weight", head.eh_proj, quantized)
    for name in ("enorm", "hnorm", "shared_head_norm"):
        _add(writer, f"{p}.nextn.{name}.weight", getattr(head, name), quantized)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(writer_path, path)
    except BaseException:
        writer_path.unlink(missing_ok=True)
        raise
    return path
