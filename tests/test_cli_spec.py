"""The speculative-decoding options of the command line: --spec, --spec-draft-n-max, --mtp,
`agent bench --spec`, and `agent models info` on hybrid models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agent.frontends.cli import main
from support.qwen35_fixtures import FIXTURES

MTPFIT = FIXTURES / "qwen35-dense-mtpfit-F32.gguf"
TRUNK = FIXTURES / "qwen35-dense-trunk-F32.gguf"


def test_generate_reports_speculation_stats(capsys):
    assert main(["generate", "--model", str(MTPFIT), "def main():", "-n", "24", "--stats", "--spec", "mtp",
                 "--spec-draft-n-max", "2"]) == 0
    err = capsys.readouterr().err
    assert "[speculative (mtp): " in err and "tokens per forward]" in err


def test_same_text_with_and_without_speculation(capsys):
    outputs = []
    for spec in ("off", "mtp", "ngram", "auto"):
        assert main(["generate", "--model", str(MTPFIT), "class Scheduler:", "-n", "30", "--spec", spec]) == 0
        outputs.append(capsys.readouterr().out)
    assert len(set(outputs)) == 1


def test_sidecar_given_with_mtp(tmp_path: Path, capsys):
    trunk = shutil.copy(TRUNK, tmp_path / "model.gguf")
    assert main(["generate", "--model", str(trunk), "x = ", "-n", "8", "--spec", "mtp", "--stats",
                 "--mtp", str(FIXTURES / "mtp-qwen35-dense-F32.gguf")]) == 0
    assert "[speculative (mtp)" in capsys.readouterr().err


def test_forced_mtp_without_a_head_is_one_line_and_exit_2(tmp_path: Path, capsys):
    trunk = shutil.copy(TRUNK, tmp_path / "model.gguf")
    assert main(["generate", "--model", str(trunk), "x", "-n", "2", "--spec", "mtp"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no MTP head" in err and "--spec ngram" in err


def test_mismatched_sidecar_is_one_line_and_exit_2(capsys):
    assert main(["generate", "--model", str(TRUNK), "x", "-n", "2", "--mtp", str(FIXTURES / "mtp-qwen35moe-F32.gguf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not belong to qwen35-dense-trunk-F32.gguf" in err


def test_draft_length_out_of_range(capsys):
    assert main(["generate", "--model", str(MTPFIT), "x", "--spec-draft-n-max", "9"]) == 2
    assert "between 1 and 7" in capsys.readouterr().err


def test_bench_spec_table_with_an_mtp_head(capsys):
    assert main(["bench", "--model", str(MTPFIT), "--spec", "mtp", "--decode", "16", "--runs", "1", "--prefill", "64"]) == 0
    out = capsys.readouterr().out
    for task in ("code_python", "code_cpp", "stepwise_math", "code_edit"):
        assert task in out
    assert "MTP on (" in out and "MTP memory: weights 0.3 MiB" in out
    assert " NO" not in out  # every task's output equals plain decoding


def test_bench_auto_shows_what_the_head_adds(capsys):
    assert main(["bench", "--model", str(MTPFIT), "--spec", "auto", "--decode", "12", "--runs", "1", "--prefill", "32",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert all(t["identical"] and t["without_head_tokens_per_second"] > 0 and t["without_head_speedup"] > 0
               for t in r["tasks"])
    assert main(["bench", "--model", str(MTPFIT), "--spec", "auto", "--decode", "8", "--runs", "1", "--prefill", "32"]) == 0
    table = capsys.readouterr().out
    assert "without the head" in table.splitlines()[1] and table.count(" tok/s, ") == 4  # "<tok/s> tok/s, <speedup>x" per task


def test_bench_spec_json_with_prompt_lookup(tiny_llama: Path, capsys):
    assert main(["bench", "--model", str(tiny_llama), "--ctx", "2048", "--spec", "ngram", "--decode", "12", "--runs", "1",
                 "--prefill", "32", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["mode"] == "ngram" and r["prefill_mtp_tokens_per_second"] is None
    assert [t["task"] for t in r["tasks"]] == ["code_python", "code_cpp", "stepwise_math", "code_edit"]
    assert all(t["identical"] and t["plain_tokens_per_second"] > 0 and t["spec_tokens_per_second"] > 0 for t in r["tasks"])


def test_bench_spec_off_is_refused(tiny_llama: Path, capsys):
    assert main(["bench", "--model", str(tiny_llama), "--spec", "off"]) == 2
    assert "nothing to compare" in capsys.readouterr().err


def test_models_info_counts_only_attention_layers_for_the_kv_cache(capsys):
    assert main(["models", "info", str(FIXTURES / "qwen35-dense-F32.gguf"), "--ctx", "1024"]) == 0
    out = capsys.readouterr().out
    assert "8 layers + 1 MTP" in out and "3 keep attention KV" in out
    # the trunk's 2 attention layers x K and V x 2 heads x 32 dims x 1024 tokens x 4 bytes = 1.0 MiB
    # (the MTP block's third layer is counted with the MTP block)
    cpu = next(line for line in out.splitlines() if "CPU, packed weights" in line).split()
    _, _, kv = cpu[3:9:2]  # "CPU, packed weights  1.9 MiB  0.8 MiB  1.0 MiB ..."
    assert kv == "1.0" and cpu[8] == "MiB"
