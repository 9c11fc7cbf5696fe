from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.gguf_builder import TinyModel


@pytest.fixture(autouse=True)
def own_config_dir(tmp_path_factory, monkeypatch) -> None:
    """No test reads the developer's config or trusts a folder in it, nor writes sessions beside theirs."""
    monkeypatch.setenv("MTP_AGENT_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path_factory.mktemp("sessions")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))  # MCP servers' logs


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The real default model, fetched into the user cache once per machine and reused."""
    from agent.backends.model_store import ensure_default_model

    return ensure_default_model(show_progress=False)


@pytest.fixture(scope="session")
def hf_default(default_model: Path):
    """transformers' own reading of the same GGUF file: the independent reference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(default_model.parent, gguf_file=default_model.name)
    model = AutoModelForCausalLM.from_pretrained(default_model.parent, gguf_file=default_model.name, dtype=torch.float32)
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def default_engine(default_model: Path):
    from inference import Engine

    return Engine.load(default_model, device="cpu", n_ctx=2048)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_llama(tiny_dir: Path) -> Path:
    return TinyModel(arch="llama").write(tiny_dir / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def tiny_engine(tiny_llama: Path):
    from inference import Engine

    return Engine.load(tiny_llama, device="cpu")
