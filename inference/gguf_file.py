"""Opening a GGUF file: validation with readable errors, metadata, and zero-copy tensor views.

The file is memory-mapped; parsing reads only the header (metadata and tensor table), and tensor
bytes are touched when a weight is moved to its device. The parser is our own: the `gguf`
package's reader builds a numpy view per string, which takes seconds on a 150k-token vocabulary.
Long arrays (vocabularies, merges) are decoded only when asked for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import mmap
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QType

from .errors import ModelFileError, UnsupportedModelError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF value types
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(13)
_SCALARS = {
    _UINT8: "<B", _INT8: "<b", _UINT16: "<H", _INT16: "<h", _UINT32: "<I", _INT32: "<i",
    _FLOAT32: "<f", _BOOL: "<?", _UINT64: "<Q", _INT64: "<q", _FLOAT64: "<d",
}
_NUMPY = {
    _UINT8: np.uint8, _INT8: np.int8, _UINT16: np.uint16, _INT16: np.int16, _UINT32: np.uint32, _INT32: np.int32,
    _FLOAT32: np.float32, _BOOL: np.bool_, _UINT64: np.uint64, _INT64: np.int64, _FLOAT64: np.float64,
}
# numpy dtype of tensor data that is not block-quantized
_TENSOR_NUMPY = {QType.F32: np.float32, QType.F16: np.float16, QType.F64: np.float64, QType.I8: np.int8,
                 QType.I16: np.int16, QType.I32: np.int32, QType.I64: np.int64}


class _Truncated(Exception):
    pass


class _Cursor:
    """Reads little-endian GGUF values from a buffer."""

    def __init__(self, buf: memoryview, offset: int = 0):
        self.buf, self.offset = buf, offset

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.buf):
            raise _Truncated
        value = struct.unpack_from(fmt, self.buf, self.offset)[0]
        self.offset += size
        return value

    def skip_string(self) -> tuple[int, int]:
        length = self.unpack("<Q")
        start = self.offset
        self.offset += length
        if self.offset > len(self.buf):
            raise _Truncated
        return start, length

    def string(self) -> str:
        start, length = self.skip_string()
        return bytes(self.buf[start : start + length]).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            return _LazyArray.read(self)
        if vtype not in _SCALARS:
            raise ValueError(f"unknown metadata value type {vtype}")
        return self.unpack(_SCALARS[vtype])


@dataclass
class _LazyArray:
    """An array value, located but not decoded until first use."""

    buf: memoryview
    item_type: int
    count: int
    offset: int
    string_offsets: list[tuple[int, int]] | None = None

    @classmethod
    def read(cls, cur: _Cursor) -> "_LazyArray":
        item_type, count = cur.unpack("<I"), cur.unpack("<Q")
        arr = cls(cur.buf, item_type, count, cur.offset)
        if item_type == _STRING:
            arr.string_offsets = [cur.skip_string() for _ in range(count)]
        elif item_type in _NUMPY:
            cur.offset += count * np.dtype(_NUMPY[item_type]).itemsize
            if cur.offset > len(cur.buf):
                raise _Truncated
        else:
            raise ValueError(f"arrays of metadata type {item_type} are not supported")
        return arr

    def decode(self) -> list[Any]:
        if self.string_offsets is not None:
            buf = self.buf
            return [bytes(buf[s : s + n]).decode("utf-8", errors="replace") for s, n in self.string_offsets]
        return np.frombuffer(self.buf, dtype=_NUMPY[self.item_type], count=self.count, offset=self.offset).tolist()


@dataclass(frozen=True)
class TensorInfo:
    name: str
    qtype: QType
    shape: tuple[int, ...]  # torch order: rows first, the contiguous dimension last
    data: np.ndarray  # a read-only view into the memory map (raw bytes for block-quantized types)
    rows: torch.Tensor | None = None  # an order of the rows (first dimension) to read them in

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape))

    @property
    def n_bytes(self) -> int:
        block_size, type_size = GGML_QUANT_SIZES[self.qtype]
        return self.n_elements // block_size * type_size

    def raw(self) -> torch.Tensor:
        """The tensor's bytes as uint8 [rows, row_bytes], still backed by the memory map."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the map is read-only; callers copy before writing
            raw = torch.from_numpy(self.data.reshape(-1).view(np.uint8))
        if len(self.shape) == 1:
            return raw.reshape(1, -1)
        block_size, type_size = GGML_QUANT_SIZES[self.qtype]
        raw = raw.reshape(-1, self.shape[-1] // block_size * type_size)
        return raw if self.rows is None else raw[self.rows]

    def reordered(self, rows: torch.Tensor) -> "TensorInfo":
        """The tensor read with these rows (or, for a vector, elements) in this order: a
        permutation, or a selection. A 3-D tensor's rows are those of its [experts * rows, cols] view."""
        if len(self.shape) == 1:
            return dataclasses.replace(self, rows=rows, shape=(len(rows),))
        return dataclasses.replace(self, rows=rows, shape=(len(rows), self.shape[-1]))


def file_sha256(path: Path) -> str:
    """The whole file's sha256, read in chunks (model files are gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class GGUFFile:
    """Metadata and tensor table of one GGUF file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._check_header()
        with self.path.open("rb") as f:
            self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._buf = memoryview(self._mmap)
        try:
            self._metadata, self.tensors = self._parse()
        except (_Truncated, struct.error) as e:
            raise ModelFileError(f"{self.path} is truncated inside its header; download or convert it again") from e
        except (ValueError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{self.path} is corrupt ({e}); download or convert it again") from e

    def _check_header(self) -> None:
        if not self.path.exists():
            raise ModelFileError(f"model file not found: {self.path}")
        if self.path.is_dir():
            raise ModelFileError(f"{self.path} is a directory; pass the path of a .gguf file")
        try:
            with self.path.open("rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise ModelFileError(f"cannot read {self.path}: {e.strerror}") from e
        if magic != GGUF_MAGIC:
            raise ModelFileError(
                f"{self.path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); "
                "convert the model with llama.cpp's convert_hf_to_gguf.py"
            )

    def _parse(self) -> tuple[dict[str, Any], dict[str, TensorInfo]]:
        cur = _Cursor(self._buf, 4)
        version = cur.unpack("<I")
        if version not in (2, 3):
            hint = " (a big-endian file?)" if version > 0xFFFF else ""
            raise ModelFileError(f"{self.path} is GGUF version {version}{hint}; versions 2 and 3 are supported")
        n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            metadata[key] = cur.value(cur.unpack("<I"))
        raw_infos = []
        for _ in range(n_tensors):
            name = cur.string()
            dims = [cur.unpack("<Q") for _ in range(cur.unpack("<I"))]
            raw_infos.append((name, dims, cur.unpack("<I"), cur.unpack("<Q")))
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"general.alignment must be a power of two, got {alignment!r}")
        data_start = (cur.offset + alignment - 1) // alignment * alignment
        self.header_bytes = data_start
        return metadata, {name: self._tensor_info(name, dims, t, data_start + off) for name, dims, t, off in raw_infos}

    def _tensor_info(self, name: str, dims: list[int], type_id: int, offset: int) -> TensorInfo:
        try:
            qtype = QType(type_id)
        except ValueError:
            raise UnsupportedModelError(
                f"tensor '{name}' in {self.path} has GGML type id {type_id}, unknown to this engine; "
                "the file was probably written by a newer llama.cpp"
            ) from None
        shape = tuple(int(d) for d in reversed(dims))  # ggml lists the contiguous dimension first
        n_elements = int(np.prod(shape))
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        n_bytes = n_elements // block_size * type_size
        if offset + n_bytes > len(self._buf):
            raise ModelFileError(
                f"{self.path} is truncated: tensor '{name}' ends at byte {offset + n_bytes:,} "
                f"but the file has {len(self._buf):,} bytes; download or convert it again"
            )
        if qtype in _TENSOR_NUMPY:
            data = np.frombuffer(self._buf, dtype=_TENSOR_NUMPY[qtype], count=n_elements, offset=offset).reshape(shape)
        else:
            data = np.frombuffer(self._buf, dtype=np.uint8, count=n_bytes, offset=offset)
        return TensorInfo(name, qtype, shape, data)

    def fingerprint(self) -> str:
        """A hash that tells this model's weights from another's without reading them all: the
        header (metadata and tensor table) and the first 64 KiB of a handful of tensors."""
        digest = hashlib.sha256(bytes(self._buf[: self.header_bytes]))
        names = sorted(self.tensors)
        sample = {names[i * (len(names) - 1) // 5] for i in range(6)} | ({"token_embd.weight"} & set(names)) if names else set()
        for name in sorted(sample):
            digest.update(self.tensors[name].data.reshape(-1).view(np.uint8)[:65536].tobytes())
        return digest.hexdigest()

    def release_pages(self) -> None:
        """Drop the file pages this process has touched (the weights have been copied to their
        device by now). Nothing is lost: a later read faults them back in from the page cache."""
        if hasattr(mmap, "MADV_DONTNEED"):
            self._mmap.madvise(mmap.MADV_DONTNEED)

    # -- metadata ---------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        value = self._metadata.get(key, default)
        if isinstance(value, _LazyArray):
            value = self._metadata[key] = value.decode()
        return value

    def keys(self) -> list[str]:
        return list(self._metadata)

    @property
    def architecture(self) -> str:
        arch = self.get("general.architecture")
        if not isinstance(arch, str):
            raise UnsupportedModelError(f"{self.path} has no 'general.architecture' key; it is not a model file")
        return arch

    def arch_get(self, suffix: str, default: Any = None) -> Any:
        """A key of the model's own architecture, e.g. arch_get('block_count')."""
        return self.get(f"{self.architecture}.{suffix}", default)

    def require(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise UnsupportedModelError(f"{self.path} lacks the metadata key '{key}' that its architecture needs")
        return value

    # -- tensors ----------------------------------------------------------------------------

    def tensor(self, name: str) -> TensorInfo:
        info = self.tensors.get(name)
        if info is None:
            raise UnsupportedModelError(
                f"{self.path} is missing tensor '{name}' needed for architecture "
                f"'{self.get('general.architecture')}'; the file is incomplete or was converted for another model"
            )
        return info

    def has_tensor(self, name: str) -> bool:
        return name in self.tensors

