"""benchmarks/gpu_bench.py, the script a lent GPU runs, goes through every step on a tiny shape
here (the CPU's packed kernels: the Triton ones are slow in their interpreter), and its kernel
check runs the Triton path."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from inference import linear

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_bench.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_every_step_runs_and_lands_in_the_json(tmp_path, monkeypatch, capsys):
    bench = load_script()
    out = tmp_path / "gpu.json"
    monkeypatch.setattr(sys, "argv", ["gpu_bench.py", "--shape", "tiny", "--device", "cpu", "--contexts", "1024",
                                      "--prefill", "256", "--json", str(out)])
    bench.main()
    results = json.loads(out.read_text())
    for key in ("prefill_tok_s", "prefill_mtp_tok_s", "decode_tok_s", "mtp_draft_step_ms", "decode_1024_tok_s"):
        assert results[key] > 0, key
    assert list(results["forward_rows_cost"]) == [str(m) for m in range(1, 9)] and results["weight_bytes"] > 0
    assert set(results["mtp_decoding"]) == {"plain_tok_s", *(f"n{n}_{k}" for n in (1, 2, 3) for k in ("tok_s", "ratio"))}
    assert "decode_tok_s" in capsys.readouterr().out


def test_the_kernel_check_covers_each_block_type_of_the_layout(tmp_path, monkeypatch):
    from inference import Engine
    from support.qwen35_synthetic import TINY, write_qwen35

    bench = load_script()
    monkeypatch.setattr(linear, "TRITON_DEVICES", {"cpu"})  # the GPU's kernels, interpreted
    engine = Engine.load(write_qwen35(tmp_path / "tiny.gguf", TINY), device="cpu", weights="packed", spec="off")
    errors = bench.check_kernels(engine)
    assert set(errors) == {"Q4_K", "Q6_K", "Q8_0"} and all(e < 1e-4 for e in errors.values())
