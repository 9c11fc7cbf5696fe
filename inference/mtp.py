"""The MTP (multi-token prediction) head: one extra decoder block that predicts the token after
next from the next token and the trunk's post-norm hidden state.

    x = eh_proj([RMS(embed(t); enorm) ‖ RMS(h; hnorm)]) -> block (its own KV cache) -> h' = RMS(x; shared_head_norm)
    logits = output(h')

It lives in the model file as `blk.{n_layer}.nextn.*` plus that block's tensors, or in a sidecar
`mtp-*.gguf` next to the model (or given with --mtp). The embedding and LM head are the trunk's
unless the block carries its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import ops
from .errors import UnsupportedModelError
from .gguf_file import GGUFFile
from .kv_cache import KVCache
from .linear import Embedding, PackedLinear, build_linear
from .models import qwen35
from .models.llama import LlamaLoader, LlamaModel, causal_mask
from .rope import Rotary

NEXTN_REQUIRED = ("eh_proj.weight", "enorm.weight", "hnorm.weight")
# what a grafted head (`agent mtp graft`) records about the model it was trained on
BASE_FINGERPRINT_KEY = "mtp_agent.base.fingerprint"
DRAFT_VOCAB_KEY = "mtp_agent.draft_vocab"  # token ids the head drafts among (the most frequent in its training)
BASE_SHA256_KEY = "mtp_agent.base.sha256"
BASE_FILE_KEY = "mtp_agent.base.file"
# The head catches up on the rows the model kept since its last draft (after a long prompt-lookup
# draft, 9+ at once) in one pass. Its outputs only steer drafts, so its packed weights stay on the
# int16 kernels for that many rows instead of being dequantized for BLAS at every catch-up: for
# the default model's head, 9 rows 1.6 ms instead of 3.4, 32 rows 4.7 instead of 5.8 (2-core CPU;
# the two cross near 40 rows).
HEAD_PACKED_MAX_ROWS = 32


class MTPHead(nn.Module):
    def __init__(self, embed: nn.Module, enorm: torch.Tensor, hnorm: torch.Tensor, eh_proj: nn.Module, block: nn.Module,
                 head_norm: torch.Tensor, output: nn.Module, cfg, device: torch.device, source: "MTPSource"):
        super().__init__()
        self.embed, self.enorm, self.hnorm, self.eh_proj = embed, enorm, hnorm, eh_proj
        self.block, self.head_norm, self.output, self.cfg = block, head_norm, output, cfg
        self.rotary = Rotary(cfg.rope, device)
        self.device = device
        self.source = source  # where the weights came from, for messages and stats
        self.draft_ids: torch.Tensor | None = None  # the tokens the head may draft, when restricted

    def restrict_drafts(self, token_ids: torch.Tensor, output: nn.Module) -> None:
        """Draft only among these tokens, with an LM head of just their rows: most of a small
        model's draft step is its LM head, and a draft outside the tokens the base model usually
        picks is rarely accepted anyway. Verification still decides, so the output is unchanged."""
        self.draft_ids, self.output = token_ids.to(self.device), output

    def token_id(self, index: int) -> int:
        """The token of an index into the logits forward returned."""
        return index if self.draft_ids is None else int(self.draft_ids[index])

    def new_cache(self, max_tokens: int, dtype: torch.dtype, kv_type: str = "auto") -> KVCache:
        return KVCache(1, self.cfg.n_head_kv, self.cfg.head_dim, max_tokens, dtype, self.device, kv_type)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor, start: int, cache: KVCache,
                logits_for: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
        """Rows at positions start..: (token t_p, trunk hidden h_{p-1}) each. Returns the logits
        (all rows or the last) and the head's own post-norm hidden states, which feed a further
        draft step."""
        eps = self.cfg.rms_eps
        n = tokens.shape[0]
        e = ops.rms_norm(self.embed(tokens), self.enorm, eps)
        h = ops.rms_norm(hidden.to(e.dtype).contiguous(), self.hnorm, eps)
        x = self.eh_proj(torch.cat([e, h], dim=-1))
        rotations = self.rotary.angles(torch.arange(start, start + n, device=self.device))
        x = self.block(x, start, cache, self.rotary, rotations, causal_mask(start, n, self.device))
        out = ops.rms_norm(x.contiguous(), self.head_norm, eps)
        return self.output(out[-1:] if logits_for == "last" else out).float(), out


@dataclass
class MTPSource:
    gguf: GGUFFile
    prefix: str  # "blk.{n}" of the MTP block in that file

    @property
    def description(self) -> str:
        return f"{self.gguf.path.name}:{self.prefix}"

    @property
    def weight_bytes(self) -> int:
        """The MTP block's own tensors as stored (the embedding and LM head are the trunk's)."""
        return sum(t.n_bytes for name, t in self.gguf.tensors.items() if name.startswith(self.prefix + "."))


def nextn_prefix(g: GGUFFile) -> str | None:
    n_nextn = int(g.arch_get("nextn_predict_layers", 0) or 0)
    if n_nextn < 1:
        return None
    return f"blk.{int(g.arch_get('block_count')) - n_nextn}"


def _check_complete(source: MTPSource, needed: list[str]) -> None:
    missing = [f"{source.prefix}.{n}" for n in needed if not source.gguf.has_tensor(f"{source.prefix}.{n}")]
    if missing:
        raise UnsupportedModelError(
            f"the MTP block {source.description} is incomplete (missing {', '.join(missing[:3])}"
            f"{' and more' if len(missing) > 3 else ''}); the file was cut or converted without it"
        )


def check_sidecar_matches(trunk: GGUFFile, sidecar: GGUFFile) -> None:
    problems = []
    if sidecar.architecture != trunk.architecture:
        problems.append(f"its architecture is {sidecar.architecture}, the model's is {trunk.architecture}")
    for key in ("embedding_length", "attention.head_count", "attention.head_count_kv", "attention.key_length"):
        a, b = trunk.arch_get(key), sidecar.arch_get(key)
        if a != b:
            problems.append(f"{key} is {b}, the model's is {a}")
    if sidecar.has_tensor("token_embd.weight") and sidecar.tensor("token_embd.weight").shape != trunk.tensor("token_embd.weight").shape:
        problems.append(f"its vocabulary has {sidecar.tensor('token_embd.weight').shape[0]} tokens, the model's "
                        f"{trunk.tensor('token_embd.weight').shape[0]}")
    if problems:
        raise UnsupportedModelError(f"the MTP sidecar {sidecar.path} does not belong to {trunk.path.name}: {'; '.join(problems)}")
    trained_for = sidecar.get(BASE_FINGERPRINT_KEY)
    if trained_for is not None and trained_for != trunk.fingerprint():
        base = sidecar.get(BASE_FILE_KEY, "another model")
        raise UnsupportedModelError(
            f"the MTP head {sidecar.path.name} was trained for {base}, not for {trunk.path.name} (their weights differ); "
            f"train one for this model with `agent mtp graft --model {trunk.path}`")


def find_source(trunk: GGUFFile, sidecar: Path | None) -> MTPSource | None:
    """The MTP block to use: --mtp FILE, else one embedded in the model, else an mtp-*.gguf next to
    the model that matches it. None when there is none."""
    if sidecar is not None:
        g = GGUFFile(sidecar)
        check_sidecar_matches(trunk, g)
        prefix = nextn_prefix(g)
        if prefix is None:
            raise UnsupportedModelError(f"{sidecar} has no MTP block (no {g.architecture}.nextn_predict_layers)")
        return MTPSource(g, prefix)
    prefix = nextn_prefix(trunk)
    if prefix is not None and any(name.startswith(prefix + ".") for name in trunk.tensors):
        return MTPSource(trunk, prefix)  # load_head checks that the block is complete
    for candidate in sorted(trunk.path.parent.glob("mtp-*.gguf")):
        try:
            g = GGUFFile(candidate)
            check_sidecar_matches(trunk, g)
        except UnsupportedModelError:
            continue  # another model's sidecar in the same folder
        side_prefix = nextn_prefix(g)
        if side_prefix is not None:
            return MTPSource(g, side_prefix)
    if prefix is not None:
        raise UnsupportedModelError(
            f"{trunk.path.name} declares an MTP block ({prefix}) but holds none of its tensors; the file was cut or "
            "converted without it (give the sidecar with --mtp FILE)")
    return None


class _FirstLayer(nn.Module):
    """A llama-family block called as the head calls its block: it is layer 0 of its own cache."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x, start, cache, rotary, rotations, mask):
        return self.block(x, 0, start, cache, rotary, rotations, mask)


def _llama_block(source: MTPSource, model: LlamaModel, device: torch.device, dtype: torch.dtype, packed: bool):
    cfg = model.cfg
    p = source.prefix
    needed = ["attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
              "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"]
    needed += ["attn_q.bias", "attn_k.bias", "attn_v.bias"] if cfg.qkv_bias else []
    needed += ["attn_q_norm.weight", "attn_k_norm.weight"] if cfg.qk_norm else []
    _check_complete(source, [f"nextn.{n}" for n in NEXTN_REQUIRED] + needed)
    loader = LlamaLoader(source.gguf, cfg, device, dtype, packed)
    return loader, _FirstLayer(loader.block(p))


def _qwen35_block(source: MTPSource, model: qwen35.Qwen35Model, device: torch.device, dtype: torch.dtype, packed: bool):
    p = source.prefix
    loader = qwen35.Loader(source.gguf, model.cfg, device, dtype, packed)
    needed = [f"nextn.{n}" for n in NEXTN_REQUIRED] + [
        "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
        "attn_q_norm.weight", "attn_k_norm.weight", "post_attention_norm.weight",
    ]
    _check_complete(source, needed)
    return loader, loader.block(int(p.split(".")[1]), loader.attention(p, cache_layer=0))


def load_head(trunk: GGUFFile, model: nn.Module, source: MTPSource, device: torch.device, dtype: torch.dtype,
              packed: bool) -> MTPHead:
    if isinstance(model, qwen35.Qwen35Model):
        loader, block = _qwen35_block(source, model, device, dtype, packed)
    elif isinstance(model, LlamaModel):
        loader, block = _llama_block(source, model, device, dtype, packed)
    else:
        raise UnsupportedModelError(f"MTP heads for {trunk.architecture} models are not supported")
    g, p = source.gguf, source.prefix
    vec = loader.vec
    head_norm = vec(f"{p}.nextn.shared_head_norm.weight") if g.has_tensor(f"{p}.nextn.shared_head_norm.weight") \
        else vec("output_norm.weight") if g.has_tensor("output_norm.weight") else model.norm
    embed, output = model.embed, model.output
    if g.has_tensor(f"{p}.nextn.embed_tokens.weight"):
        embed = Embedding(g.tensor(f"{p}.nextn.embed_tokens.weight"), device, dtype, packed)
    if g.has_tensor(f"{p}.nextn.shared_head_head.weight"):
        output = build_linear([g.tensor(f"{p}.nextn.shared_head_head.weight")], None, device, dtype, packed)
    eh_proj = build_linear([g.tensor(f"{p}.nextn.eh_proj.weight")], None, device, dtype, packed)
    head = MTPHead(embed, vec(f"{p}.nextn.enorm.weight"), vec(f"{p}.nextn.hnorm.weight"), eh_proj, block,
                   head_norm, output, model.cfg, device, source)
    for linear in [*block.modules(), eh_proj]:
        if isinstance(linear, PackedLinear):
            linear.max_rows = HEAD_PACKED_MAX_ROWS
    vocab = g.get(DRAFT_VOCAB_KEY)
    if vocab is not None and output is model.output:
        ids = torch.tensor(list(vocab), dtype=torch.long)
        if int(ids.max()) >= model.cfg.vocab_size or int(ids.min()) < 0:
            raise UnsupportedModelError(f"{g.path.name}: its draft vocabulary names tokens the model does not have")
        table = trunk.tensor("output.weight") if trunk.has_tensor("output.weight") else trunk.tensor("token_embd.weight")
        head.restrict_drafts(ids, build_linear([table.reordered(ids)], None, device, dtype, packed))
    return head
