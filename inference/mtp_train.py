"""Grafting an MTP head onto a model that has none: self-distillation on source code.

The frozen base model reads a chunk of code; its post-norm hidden states h and its next-token
distributions are the teacher. The head sees what it sees at inference time, row p being
(token t_p, h_{p-1}), and learns the base's distribution at p: what the base will say next, not
what the corpus says. Only the head's own weights train (eh_proj, enorm, hnorm, one decoder
block of the base's architecture, shared_head_norm); the embedding and LM head are the base's,
frozen. The block starts as a copy of the base's last block.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import EngineError, UnsupportedModelError
from .gguf_file import GGUFFile
from .linear import load_dense
from .models import load_model
from .models.llama import LlamaConfig, LlamaLoader, LlamaModel
from .mtp import check_sidecar_matches, nextn_prefix
from .rope import Rotary

CHECKPOINT_VERSION = 1


@dataclass
class GraftSettings:
    tokens: int = 1_000_000  # training tokens: about two hours for the default model on 2 CPU cores
    seq_len: int = 512
    lr: float = 1e-3
    warmup_steps: int = 40
    seed: int = 0
    eval_every: int = 50  # steps between held-out acceptance estimates
    checkpoint_seconds: float = 120.0
    heldout_tokens: int = 4096


class TrainableHead(nn.Module):
    """The head as plain, differentiable fp32 parameters, in the engine's internal layout
    (q/k rows with adjacent rotary pairs)."""

    def __init__(self, cfg: LlamaConfig, base_block: dict[str, torch.Tensor], output_norm: torch.Tensor):
        super().__init__()
        d = cfg.d_model
        self.cfg = cfg
        self.rotary = Rotary(cfg.rope, torch.device("cpu"))
        generator = torch.Generator().manual_seed(0)
        # hidden half: the identity, so the head starts as "the last block once more, on h";
        # embedding half: small, so the token is blended in as training finds it useful
        eh = torch.cat([torch.randn(d, d, generator=generator) * 0.02, torch.eye(d)], dim=1)
        self.eh_proj = nn.Parameter(eh)
        self.enorm = nn.Parameter(torch.ones(d))
        self.hnorm = nn.Parameter(torch.ones(d))
        self.shared_head_norm = nn.Parameter(output_norm.clone())
        self.block = nn.ParameterDict({name: nn.Parameter(t.clone()) for name, t in base_block.items()})

    def forward(self, tokens: torch.Tensor, hidden_prev: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        """Post-norm head states for rows (t_p, h_{p-1}); [T, d]."""
        cfg, b, eps = self.cfg, self.block, self.cfg.rms_eps
        e = F.rms_norm(embed[tokens], (cfg.d_model,), self.enorm, eps)
        h = F.rms_norm(hidden_prev, (cfg.d_model,), self.hnorm, eps)
        x = torch.cat([e, h], dim=-1) @ self.eh_proj.t()
        n, hd = x.shape[0], cfg.head_dim
        a = F.rms_norm(x, (cfg.d_model,), b["attn_norm"], eps)
        q, k, v = (a @ b[f"attn_{w}"].t() + (b[f"attn_{w}_bias"] if cfg.qkv_bias else 0) for w in "qkv")
        q, k, v = q.view(n, cfg.n_head, hd), k.view(n, cfg.n_head_kv, hd), v.view(n, cfg.n_head_kv, hd)
        if cfg.qk_norm:
            q = F.rms_norm(q, (hd,), b["attn_q_norm"], eps)
            k = F.rms_norm(k, (hd,), b["attn_k_norm"], eps)
        rotations = self.rotary.angles(torch.arange(n))
        q, k = self.rotary.apply(q, rotations), self.rotary.apply(k, rotations)
        out = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True,
                                             enable_gqa=True)
        x = x + out.transpose(0, 1).reshape(n, cfg.n_head * hd) @ b["attn_output"].t()
        m = F.rms_norm(x, (cfg.d_model,), b["ffn_norm"], eps)
        x = x + (F.silu(m @ b["ffn_gate"].t()) * (m @ b["ffn_up"].t())) @ b["ffn_down"].t()
        return F.rms_norm(x, (cfg.d_model,), self.shared_head_norm, eps)


BLOCK_TENSORS = {"attn_norm": "attn_norm.weight", "attn_q": "attn_q.weight", "attn_k": "attn_k.weight",
                 "attn_v": "attn_v.weight", "attn_output": "attn_output.weight", "ffn_norm": "ffn_norm.weight",
                 "ffn_gate": "ffn_gate.weight", "ffn_up": "ffn_up.weight", "ffn_down": "ffn_down.weight"}


def block_tensor_names(cfg: LlamaConfig) -> dict[str, str]:
    names = dict(BLOCK_TENSORS)
    if cfg.qkv_bias:
        names |= {f"attn_{w}_bias": f"attn_{w}.bias" for w in "qkv"}
    if cfg.qk_norm:
        names |= {"attn_q_norm": "attn_q_norm.weight", "attn_k_norm": "attn_k_norm.weight"}
    return names


def row_order(loader: LlamaLoader, key: str) -> torch.Tensor | None:
    """The engine's reordering of a tensor's rows (qwen2/qwen3 q/k), or None."""
    if key in ("attn_q", "attn_q_bias"):
        return loader.q_rows
    if key in ("attn_k", "attn_k_bias"):
        return loader.k_rows
    if key in ("attn_q_norm", "attn_k_norm"):
        return loader.head_rows
    return None


@dataclass
class Base:
    """The frozen model: the engine's fast (packed) model as the teacher, dense fp32 copies of
    its embedding and LM head for the head's training."""

    gguf: GGUFFile
    cfg: LlamaConfig
    model: LlamaModel
    embed: torch.Tensor
    output: torch.Tensor

    @classmethod
    def load(cls, path: Path) -> "Base":
        g = GGUFFile(path)
        model = load_model(g, torch.device("cpu"), torch.float32, packed=True)
        if not isinstance(model, LlamaModel):
            raise UnsupportedModelError(f"grafting an MTP head onto {g.architecture} models is not supported "
                                        "(llama, qwen2, qwen3 are)")
        embed = load_dense(g.tensor("token_embd.weight"), torch.device("cpu"), torch.float32)
        output = load_dense(g.tensor("output.weight"), torch.device("cpu"), torch.float32) if g.has_tensor("output.weight") else embed
        return cls(g, model.cfg, model, embed, output)

    def _block(self, g: GGUFFile, prefix: str) -> dict[str, torch.Tensor]:
        loader = LlamaLoader(g, self.cfg, torch.device("cpu"), torch.float32, packed=False)
        return {key: load_dense(loader.tensor(f"{prefix}.{name}", row_order(loader, key)), torch.device("cpu"), torch.float32)
                for key, name in block_tensor_names(self.cfg).items()}

    def _vector(self, g: GGUFFile, name: str) -> torch.Tensor:
        return load_dense(g.tensor(name), torch.device("cpu"), torch.float32)

    def initial_head(self) -> TrainableHead:
        """A new head: the base's last block, run once more on the hidden state."""
        return TrainableHead(self.cfg, self._block(self.gguf, f"blk.{self.cfg.n_layer - 1}"),
                             self._vector(self.gguf, "output_norm.weight"))

    def head_from(self, path: Path) -> TrainableHead:
        """The head of an earlier run, to train further: its checkpoint (.ckpt) or the sidecar it wrote."""
        head = self.initial_head()
        if path.suffix == ".ckpt":
            state = Checkpoint(path).load()
            if state is None or state["run"].get("base") != self.gguf.fingerprint():
                raise EngineError(f"{path} is not a checkpoint of a head for {self.gguf.path.name}")
            head.load_state_dict(state["head"])
            return head
        g = GGUFFile(path)
        check_sidecar_matches(self.gguf, g)
        prefix = nextn_prefix(g)
        if prefix is None:
            raise EngineError(f"{path} has no MTP head to start from")
        with torch.no_grad():
            for key, value in self._block(g, prefix).items():
                head.block[key].copy_(value)
            for name in ("eh_proj", "enorm", "hnorm", "shared_head_norm"):
                getattr(head, name).copy_(self._vector(g, f"{prefix}.nextn.{name}.weight"))
        return head

    @torch.inference_mode()
    def teach(self, tokens: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The base's post-norm hidden states [T, d] and next-token log-probabilities [T, V]."""
        ids = torch.from_numpy(tokens)
        cache = self.model.new_cache(len(tokens), torch.float32)
        logits, hidden = self.model(ids, 0, cache, logits_for="all")
        return hidden.clone(), F.log_softmax(logits, dim=-1)


def head_logits(head: TrainableHead, base: Base, tokens: np.ndarray, hidden: torch.Tensor) -> torch.Tensor:
    """The head's first-draft logits at every row, teacher-forced on the base's hidden states."""
    hidden_prev = torch.cat([torch.zeros(1, hidden.shape[1]), hidden[:-1]])  # row 0 pairs with zeros, as at inference
    return head(torch.from_numpy(tokens), hidden_prev, base.embed) @ base.output.t()


def head_loss(head: TrainableHead, base: Base, tokens: np.ndarray, hidden: torch.Tensor,
              teacher: torch.Tensor) -> tuple[torch.Tensor, float]:
    """KL(teacher || head) over the rows, and the share of rows whose argmax agrees (what greedy
    verification accepts at the first draft position)."""
    logits = head_logits(head, base, tokens, hidden)
    student = F.log_softmax(logits, dim=-1)
    loss = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    agree = (logits.argmax(-1) == teacher.argmax(-1)).float().mean().item()
    return loss, agree


@dataclass
class Progress:
    step: int
    steps: int
    tokens: int
    loss: float
    train_acceptance: float
    heldout_acceptance: float | None
    tokens_per_second: float
    eta_seconds: float


@dataclass
class Checkpoint:
    path: Path

    def save(self, **state) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        torch.save({"version": CHECKPOINT_VERSION, **state}, temporary)
        os.replace(temporary, self.path)

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, weights_only=False)
        except Exception as e:  # noqa: BLE001 - a torn or foreign file
            raise EngineError(f"cannot read the checkpoint {self.path} ({e}); remove it to start over") from e
        return state if state.get("version") == CHECKPOINT_VERSION else None


class Interrupted(Exception):
    """Training stopped early (Ctrl-C, or a test's stop); the checkpoint holds the progress."""


def _lr(settings: GraftSettings, step: int, steps: int) -> float:
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(steps - settings.warmup_steps, 1)
    return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train_head(base: Base, chunks: Iterator[np.ndarray], heldout: list[np.ndarray], settings: GraftSettings,
               checkpoint: Checkpoint, run_key: dict, on_progress: Callable[[Progress], None],
               should_stop: Callable[[int], bool] = lambda step: False, init: Path | None = None) -> TrainableHead:
    """Train until settings.tokens, resuming from the checkpoint when it belongs to this run;
    a new run starts from the base's last block, or from the head in `init`."""
    torch.manual_seed(settings.seed)
    head = base.head_from(init) if init is not None else base.initial_head()
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.lr, betas=(0.9, 0.95), weight_decay=0.0)
    steps = max(settings.tokens // settings.seq_len, 1)
    step = 0
    state = checkpoint.load()
    if state is not None:
        if state["run"] != run_key:
            raise EngineError(f"{checkpoint.path} is the checkpoint of another run ({state['run']}); "
                              "remove it, or rerun with the settings it was made with, to resume")
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        for _ in range(step):  # the chunks already trained on
            next(chunks)
    def save() -> None:
        checkpoint.save(run=run_key, head=head.state_dict(), optimizer=optimizer.state_dict(), step=step,
                        settings=asdict(settings))

    teacher_heldout = [base.teach(c) for c in heldout]
    heldout_acceptance = None
    started, done_at_start, last_save = time.monotonic(), step, time.monotonic()
    try:
        while step < steps:
            tokens = next(chunks, None)
            if tokens is None:
                raise EngineError(f"the corpus ran out after {step * settings.seq_len:,} tokens; add folders with "
                                  "--corpus or ask for fewer --tokens")
            hidden, teacher = base.teach(tokens)
            for group in optimizer.param_groups:
                group["lr"] = _lr(settings, step, steps)
            loss, agree = head_loss(head, base, tokens, hidden, teacher)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()
            step += 1
            if heldout and (step % settings.eval_every == 0 or step == steps):
                heldout_acceptance = evaluate(head, base, heldout, teacher_heldout)
            elapsed = time.monotonic() - started
            rate = (step - done_at_start) * settings.seq_len / max(elapsed, 1e-9)
            on_progress(Progress(step, steps, step * settings.seq_len, loss.item(), agree, heldout_acceptance, rate,
                                 (steps - step) * settings.seq_len / max(rate, 1e-9)))
            if time.monotonic() - last_save >= settings.checkpoint_seconds or step == steps:
                save()
                last_save = time.monotonic()
            if should_stop(step):
                raise Interrupted
    except (KeyboardInterrupt, Interrupted):
        save()
        raise Interrupted from None
    return head


@torch.no_grad()
def agreement(head: TrainableHead, base: Base, tokens: np.ndarray, draft_ids: torch.Tensor | None = None) -> float:
    """Teacher-forced first-position acceptance on a text: the share of its positions where the
    head's first draft (among draft_ids, when the head drafts among those) is the base's choice."""
    hidden, teacher = base.teach(tokens)
    logits = head_logits(head, base, tokens, hidden)
    picks = logits.argmax(-1) if draft_ids is None else draft_ids[logits[:, draft_ids].argmax(-1)]
    return (picks == teacher.argmax(-1)).float().mean().item()


@torch.no_grad()
def evaluate(head: TrainableHead, base: Base, chunks: list[np.ndarray], teacher: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """First-position acceptance on held-out chunks: how often the head's argmax is the base's."""
    agree = [head_loss(head, base, c, h, t)[1] for c, (h, t) in zip(chunks, teacher)]
    return float(np.mean(agree)) if agree else 0.0
