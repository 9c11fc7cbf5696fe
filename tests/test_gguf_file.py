"""GGUF parsing against gguf-py's reader, and the errors for broken files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from support.gguf_builder import TinyModel
from inference.errors import ModelFileError, UnsupportedModelError
from inference.gguf_file import GGUFFile


def reader_value(field):
    value = field.contents()
    return value.tolist() if isinstance(value, np.ndarray) else value


@pytest.mark.parametrize("which", ["tiny", "default"])
def test_metadata_and_tensors_match_gguf_reader(which, tiny_llama, smollm2):
    path = tiny_llama if which == "tiny" else smollm2
    ours, reference = GGUFFile(path), GGUFReader(path)
    keys = [k for k in reference.fields if not k.startswith("GGUF.")]
    assert ours.keys() == keys
    for key in keys:
        expected = reader_value(reference.fields[key])
        got = ours.get(key)
        if isinstance(expected, float):
            assert got == pytest.approx(expected, rel=1e-7), key
        else:
            assert got == expected, key
    assert list(ours.tensors) == [t.name for t in reference.tensors]
    for t in reference.tensors:
        mine = ours.tensors[t.name]
        assert mine.shape == tuple(int(d) for d in reversed(t.shape))
        assert mine.qtype == t.tensor_type
        assert np.array_equal(mine.data.reshape(-1).view(np.uint8), t.data.reshape(-1).view(np.uint8))


def test_tensor_bytes_are_not_copied_at_open(smollm2):
    g = GGUFFile(smollm2)
    info = g.tensor("blk.0.ffn_down.weight")
    assert not info.data.flags.owndata  # a view into the memory map
    assert info.raw().shape == (576, 1536 // 32 * 20)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        GGUFFile(tmp_path / "nope.gguf")


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        GGUFFile(tmp_path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00{}" + b"\x00" * 64)
    with pytest.raises(ModelFileError, match="is not a GGUF file"):
        GGUFFile(path)


def truncated_copy(src: Path, dst: Path, n_bytes: int) -> Path:
    dst.write_bytes(src.read_bytes()[:n_bytes])
    return dst


def test_truncated_header(tiny_llama, tmp_path):
    with pytest.raises(ModelFileError, match="truncated inside its header"):
        GGUFFile(truncated_copy(tiny_llama, tmp_path / "cut.gguf", 2000))


def test_truncated_tensor_data(tiny_llama, tmp_path):
    size = tiny_llama.stat().st_size
    with pytest.raises(ModelFileError, match=r"truncated: tensor 'output\.weight' ends at byte"):
        GGUFFile(truncated_copy(tiny_llama, tmp_path / "cut.gguf", size - 100))


def test_unsupported_version(tiny_llama, tmp_path):
    data = bytearray(tiny_llama.read_bytes())
    data[4:8] = struct.pack("<I", 1)
    path = tmp_path / "v1.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="GGUF version 1"):
        GGUFFile(path)


def with_patched_tensor_type(src: Path, dst: Path, tensor: str, type_id: int) -> Path:
    data = bytearray(src.read_bytes())
    name = tensor.encode()
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    struct.pack_into("<I", data, at + 4 + 8 * n_dims, type_id)
    dst.write_bytes(bytes(data))
    return dst


def test_unknown_tensor_type_id(tiny_llama, tmp_path):
    path = with_patched_tensor_type(tiny_llama, tmp_path / "future.gguf", "output_norm.weight", 250)
    with pytest.raises(UnsupportedModelError, match="'output_norm.weight' .* type id 250"):
        GGUFFile(path)


def test_missing_tensor_is_named(tmp_path):
    from inference import Engine

    path = TinyModel(drop_tensors=("blk.1.ffn_up.weight",)).write(tmp_path / "holey.gguf")
    with pytest.raises(UnsupportedModelError, match=r"missing tensor 'blk\.1\.ffn_up\.weight'"):
        Engine.load(path, device="cpu")


def test_unknown_architecture(tmp_path):
    from inference import Engine

    path = TinyModel(arch="mamba").write(tmp_path / "mamba.gguf")
    with pytest.raises(UnsupportedModelError, match="architecture 'mamba' .* not supported"):
        Engine.load(path, device="cpu")
