"""Corrupted model files (issue 19): truncations, byte flips and absurd counts or offsets, generated
from a tiny model. Each one loads and runs, or is refused with one line and exit 2: no traceback,
no hang, bounded memory."""

from __future__ import annotations

import random
import resource
import struct
import time
from pathlib import Path

import pytest

from agent.frontends.cli import main

SEED = 19
TIME_BOUND_S = 20.0


def variants(model: bytes, directory: Path) -> list[tuple[str, Path]]:
    rng = random.Random(SEED)
    out: list[tuple[str, bytes]] = []
    for cut in sorted(rng.sample(range(4, len(model)), 24)) + [0, 3, 8, 16, 24]:
        out.append((f"truncated at {cut}", model[:cut]))
    header_end = min(len(model), 4096)  # the metadata and the tensor table: where a flip changes the structure
    for i in range(40):
        position = rng.randrange(4, header_end) if i < 32 else rng.randrange(header_end, len(model))
        flipped = bytearray(model)
        flipped[position] ^= 1 << rng.randrange(8)
        out.append((f"bit flipped at {position}", bytes(flipped)))
    for name, offset, value in [("version 99", 4, struct.pack("<I", 99)),
                                ("2^63 tensors", 8, struct.pack("<Q", 2**63)),
                                ("2^63 metadata entries", 16, struct.pack("<Q", 2**63)),
                                ("no tensors", 8, struct.pack("<Q", 0)),
                                ("first key 2^60 bytes long", 24, struct.pack("<Q", 2**60))]:
        patched = bytearray(model)
        patched[offset:offset + len(value)] = value
        out.append((name, bytes(patched)))
    paths = []
    for i, (name, data) in enumerate(out):
        path = directory / f"case-{i}.gguf"
        path.write_bytes(data)
        paths.append((name, path))
    return paths


@pytest.fixture(scope="module")
def corrupted(tiny_dir, tiny_llama) -> list[tuple[str, Path]]:
    directory = tiny_dir / "corrupted"
    directory.mkdir(exist_ok=True)
    return variants(tiny_llama.read_bytes(), directory)


def test_every_corrupted_model_file_runs_or_is_refused_in_one_line(corrupted, capsys):
    outcomes = {"refused": 0, "ran": 0}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, path in corrupted:
        start = time.monotonic()
        code = main(["generate", "hi", "-n", "2", "--model", str(path)])
        err = capsys.readouterr().err
        assert time.monotonic() - start < TIME_BOUND_S, name
        assert code in (0, 2) and "Traceback" not in err, f"{name}: exit {code}\n{err}"
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("agent: error: "), f"{name}: {err}"
        outcomes["refused" if code == 2 else "ran"] += 1
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 500, f"memory grew by {grown_mib:.0f} MiB"
    assert outcomes["refused"] >= 35  # every truncation and structural flip; flips inside weights may still run
    print(f"\n{len(corrupted)} corrupted files: {outcomes}")
