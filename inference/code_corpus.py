"""Source code to train an MTP head on: the Python standard library and installed packages'
sources (plus any folders given), split into training and held-out files by a hash of each
file's path, so the split is the same on every machine and no file is on both sides."""

from __future__ import annotations

import hashlib
import random
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

PYTHON = {".py"}
C_FAMILY = {".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh"}
MAX_FILE_BYTES = 256 * 1024  # generated tables and vendored blobs teach nothing about code
HELD_OUT_ONE_IN = 20
SKIPPED_DIRS = {"__pycache__", ".git", "node_modules"}


@dataclass(frozen=True)
class SourceFile:
    path: Path
    key: str  # path relative to its root: what the split is decided on

    @property
    def language(self) -> str:
        return "python" if self.path.suffix in PYTHON else "c/c++"

    @property
    def held_out(self) -> bool:
        return int(hashlib.sha256(self.key.encode()).hexdigest()[:8], 16) % HELD_OUT_ONE_IN == 0


def default_roots() -> list[Path]:
    paths = sysconfig.get_paths()
    roots = []
    for name in ("stdlib", "purelib", "platlib"):
        root = Path(paths[name]).resolve()
        if root.is_dir() and root not in roots:
            roots.append(root)
    return roots


def find_sources(roots: list[Path]) -> list[SourceFile]:
    """Python and C/C++ files under the roots, each file once, in a fixed order."""
    seen: set[Path] = set()
    files = []
    for root in roots:
        root = root.resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"corpus folder {root} does not exist")
        for path in sorted(root.rglob("*")):
            if path.suffix not in PYTHON | C_FAMILY or SKIPPED_DIRS & set(path.parts) or not path.is_file():
                continue
            resolved = path.resolve()
            if resolved in seen or path.stat().st_size > MAX_FILE_BYTES or path.stat().st_size < 64:
                continue
            seen.add(resolved)
            files.append(SourceFile(path, path.relative_to(root).as_posix()))
    return files


def split(files: list[SourceFile]) -> tuple[list[SourceFile], list[SourceFile]]:
    return [f for f in files if not f.held_out], [f for f in files if f.held_out]


def token_chunks(files: list[SourceFile], encode, seq_len: int, seed: int) -> Iterator[np.ndarray]:
    """The files in a seeded random order, tokenized and cut into chunks of seq_len tokens (a
    chunk may span two files). The same arguments always give the same chunks, which is what
    resuming relies on."""
    order = list(files)
    random.Random(seed).shuffle(order)
    pending: list[int] = []
    for f in order:
        try:
            text = f.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        pending += encode(text + "\n")
        while len(pending) >= seq_len:
            yield np.asarray(pending[:seq_len], dtype=np.int64)
            pending = pending[seq_len:]


def frequent_tokens(chunks: Iterator[np.ndarray], vocab_size: int, max_tokens: int, coverage: float) -> np.ndarray:
    """The most frequent token ids in the first max_tokens of `chunks` (arrays of token ids), as
    few as cover `coverage` of the occurrences, most frequent first."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    seen = 0
    for chunk in chunks:
        counts += np.bincount(chunk, minlength=vocab_size)[:vocab_size]
        seen += len(chunk)
        if seen >= max_tokens:
            break
    order = np.argsort(-counts, kind="stable")
    covered = np.cumsum(counts[order]) / max(counts.sum(), 1)
    return order[: int(np.searchsorted(covered, coverage)) + 1]
