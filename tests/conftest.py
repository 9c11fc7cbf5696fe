from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from support.gguf_builder import TinyModel

if not torch.cuda.is_available():  # GPU kernels (Triton) run in its interpreter on the CPU
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def own_config_dir(tmp_path_factory, monkeypatch) -> None:
    """No test reads the developer's config or trusts a folder in it, nor writes sessions beside theirs."""
    monkeypatch.setenv("MTP_AGENT_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("MTP_AGENT_SESSIONS", str(tmp_path_factory.mktemp("sessions")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))  # MCP servers' logs


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M, the smallest real model of the catalog (98 MB), fetched into the user cache once
    per machine and reused. Tests name it; the default model (the 1.5B coder) stays out of CI."""
    from agent.backends.catalog import SMOLLM2_135M
    from agent.backends.model_store import ensure_model

    return ensure_model(SMOLLM2_135M, show_progress=False)


@pytest.fixture(scope="session")
def hf_default(smollm2: Path):
    """transformers' own reading of the same GGUF file: the independent reference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(smollm2.parent, gguf_file=smollm2.name)
    model = AutoModelForCausalLM.from_pretrained(smollm2.parent, gguf_file=smollm2.name, dtype=torch.float32)
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def smollm2_engine(smollm2: Path):
    from inference import Engine

    return Engine.load(smollm2, device="cpu", n_ctx=2048, activations="int16")  # tests compare with transformers' greedy


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
