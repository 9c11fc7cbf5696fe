"""Prefill speed with the MTP head catching up on the prompt, against prefill without it, on
models with the flagships' depth.

The shared fixtures have 8 (dense) and 4 (MoE) trunk layers, so one MTP layer is 1/9 or 1/5 of
their work. Qwen3.6-27B has 64 layers and Qwen3.6-35B-A3B 40 (three Gated DeltaNet layers per
full-attention layer in both). This script stacks the fixtures' own layers to those depths (the
MTP block stays one layer), then measures both settings alternately in one process and reports
the best run of each (on a shared VM the best run is the least disturbed one).

    python benchmarks/mtp_prefill.py [--tokens 512 2048] [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.gguf_builder import rewrite_gguf  # noqa: E402
from inference import Engine  # noqa: E402
from inference.gguf_file import GGUFFile  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "qwen35"
MODELS = {"qwen35 (27B depth)": ("qwen35-dense-F32.gguf", 64), "qwen35moe (35B-A3B depth)": ("qwen35moe-F32.gguf", 40)}


def deepen(src: Path, depth: int, dst: Path) -> Path:
    g = GGUFFile(src)
    arch = g.architecture
    n_trunk = int(g.arch_get("block_count")) - int(g.arch_get("nextn_predict_layers"))
    repeats = depth // n_trunk
    flags = [bool(f) for f in g.arch_get("attention.recurrent_layers")]

    def copies(name: str) -> list[str]:
        m = re.match(r"blk\.(\d+)\.(.*)", name)
        if not m:
            return [name]
        layer, rest = int(m.group(1)), m.group(2)
        if layer == n_trunk:  # the MTP block goes after the new trunk
            return [f"blk.{depth}.{rest}"]
        return [f"blk.{r * n_trunk + layer}.{rest}" for r in range(repeats)]

    metadata = {f"{arch}.block_count": depth + 1, f"{arch}.attention.recurrent_layers": flags[:n_trunk] * repeats + [False]}
    return rewrite_gguf(src, dst, metadata=metadata, copies=copies)


def measure(engine: Engine, ids: list[int], spec: str) -> float:
    engine.spec = spec
    engine.reset()
    return engine.generate(ids, max_new_tokens=1, ignore_eos=True).stats.prefill_tokens_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    text = (ROOT / "prompts" / "bench" / "code_python.txt").read_text()
    print(f"{'model':<28} {'layers':>6} {'prompt':>6} {'MTP off tok/s':>13} {'MTP on tok/s':>12} {'ratio':>6}   (best runs)")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (name, depth) in MODELS.items():
            path = deepen(FIXTURES / name, depth, Path(tmp) / f"deep-{name}")
            engine = Engine.load(path, device="cpu", spec="mtp", n_ctx=max(args.tokens) + 8)
            assert engine.mtp_head is not None
            ids = engine.tokenizer.encode(text * 4)
            for n in args.tokens:
                off, on = [], []
                for i in range(args.runs + 1):  # the first round warms up
                    a, b = measure(engine, ids[:n], "off"), measure(engine, ids[:n], "mtp")
                    if i:
                        off.append(a)
                        on.append(b)
                best_off, best_on = max(off), max(on)
                print(f"{label:<28} {depth:>4}+1 {n:>6} {best_off:>13.0f} {best_on:>12.0f} {100 * best_on / best_off:>5.0f}%"
                      f"   (medians {statistics.median(off):.0f} / {statistics.median(on):.0f})")


if __name__ == "__main__":
    main()
