"""What loading the in-process engine needs, decided once from the flags and the config's
[backend] table (a flag wins, then the config, then the default), and the one place that loads it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.core.config import Config
from agent.errors import AgentError

if TYPE_CHECKING:
    from inference import Engine

    from agent.core.setup import RunSettings


@dataclass(frozen=True)
class EngineSettings:
    model: str | None = None  # a GGUF path, a catalog name or hf:OWNER/REPO; None: the default model
    device: str = "auto"
    ctx: int | None = None  # None: the model's own context length (capped by the engine)
    weights: str = "auto"
    dtype: str = "auto"
    prefill_dtype: str = "auto"
    activations: str = "auto"
    kv_cache: str = "auto"
    chat_template: Path | None = None
    temperature: float = 0.0
    spec: str = "auto"
    spec_n_max: int = 3
    mtp: Path | None = None
    draft_model: str | None = None  # a GGUF path or a catalog name: a smaller model that drafts
    max_new_tokens: int = 2048
    constrain: bool = True  # tool calls within the grammar of the offered tools

    @classmethod
    def from_config(cls, flags: RunSettings, config: Config) -> EngineSettings:
        backend = config.backend
        temperature = flags.temperature if flags.temperature is not None else backend.get("temperature", 0.0)
        return cls(model=flags.model or backend.get("model"), device=flags.device,
                   ctx=flags.ctx or backend.get("context_window"), weights=flags.weights, dtype=flags.dtype,
                   prefill_dtype=flags.prefill_dtype, activations=flags.activations,
                   kv_cache=flags.kv_cache if flags.kv_cache != "auto" else backend.get("kv_cache", "auto"),
                   chat_template=flags.chat_template, temperature=float(temperature),
                   spec=flags.spec or backend.get("spec", "auto"), spec_n_max=flags.spec_n_max, mtp=flags.mtp,
                   draft_model=flags.draft_model or backend.get("draft_model"),
                   max_new_tokens=int(flags.max_tokens or backend.get("max_new_tokens") or backend.get("max_tokens") or 2048),
                   constrain=flags.constrain if flags.constrain is not None else bool(backend.get("constrain", True)))

    def load(self) -> tuple[Engine, Path, float]:
        """The engine, the model file it runs, and the seconds the load took (the model's download
        on first use not counted). Warnings that did not stop the load go to stderr."""
        from inference import Engine

        from agent.backends.model_store import resolve_model

        template = read_chat_template(self.chat_template)
        path = resolve_model(self.model, show_progress=True)
        draft = resolve_model(self.draft_model, show_progress=True) if self.draft_model else None
        start = time.perf_counter()
        engine = Engine.load(path, device=self.device, n_ctx=self.ctx, weights=self.weights, chat_template=template,
                             dtype=self.dtype, spec=self.spec, spec_n_max=self.spec_n_max, mtp=self.mtp, draft_model=draft,
                             prefill_dtype=self.prefill_dtype, activations=self.activations, kv_cache=self.kv_cache)
        seconds = time.perf_counter() - start
        for warning in engine.warnings:  # e.g. MTP drafting turned off: one line each
            print(f"agent: warning: {warning}", file=sys.stderr)
        return engine, path, seconds


def read_chat_template(path: str | Path | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise AgentError(f"cannot read --chat-template {path}: {e.strerror}") from e
