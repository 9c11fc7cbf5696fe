"""The memory planner's figures for Qwen3.6-27B with its MTP block (Q4_K_M-like types), from a
sparse GGUF that holds its header and a hole where the tensor data would be (no 16 GB written):

    python benchmarks/plan_qwen36_27b.py [--ctx 262144] [--gpu-memory 24GiB]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from agent.frontends.cli import main as agent  # noqa: E402
from support.qwen35_synthetic import QWEN36_27B, write_qwen35  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ctx", default="262144")
    parser.add_argument("--gpu-memory", default="24GiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = write_qwen35(Path(scratch) / "qwen36-27b-shape.gguf", QWEN36_27B, sparse=True)
        for kv in ("auto", "q8"):
            agent(["models", "info", str(path), "--ctx", args.ctx, "--kv-cache", kv, "--gpu-memory", args.gpu_memory])


if __name__ == "__main__":
    main()
