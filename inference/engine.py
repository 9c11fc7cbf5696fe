"""The public face of the engine: load a GGUF model on a device, then generate text from a prompt,
chat messages or token ids, streamed as text deltas."""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from . import kernels
from .chat_template import ChatTemplate
from .errors import ChatTemplateError, EngineError, UnsupportedModelError
from . import mtp
from .generate import GenerationStats, TokenLoop, prefill
from .gguf_file import GGUFFile
from .grammar import GrammarConstraint
from .models import load_model
from .mtp import MTPHead
from .sampling import Sampler, SamplingParams
from .kv_cache import KVCache, check_kv_cache
from .linear import activations_of, check_activations, prefill_dtype_of, resolve_prefill_dtype, set_activations, set_prefill_dtype
from .speculative import (MAX_DRAFT, MODES as SPEC_MODES, DraftModelDrafter, DraftPolicy, MTPDrafter, NgramDrafter, SpecStats, SpeculativeLoop,
                          StepCosts)
from .tokenizer import Tokenizer

DEFAULT_MAX_CONTEXT = 32768  # KV cache size unless asked otherwise (the model may allow more)
MAX_VOCAB_DIFFERENCE = 128  # a draft model's vocabulary may add or lack this many tokens at its end (llama.cpp's bound)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise EngineError(f"unknown device '{name}'; use auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(
            f"--device {name} was asked for, but this torch ({torch.__version__}) sees no CUDA GPU; "
            "install a CUDA build of torch or use --device cpu"
        )
    return torch.device(name)


def compute_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs. float32 on CPU: without AVX512-BF16/AMX a bf16 GEMM runs ~7x slower than
    fp32 (measured 16 vs 120 GFLOP/s on a Zen 3, see docs/benchmarks.md), and decode reads the
    weights in their packed GGUF form anyway."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str  # "eos", "stop" (a stop string) or "length"
    stats: GenerationStats


class StopStrings:
    """Cuts the text stream at the first stop string, holding back any tail that might be the
    start of one so that no part of a stop string is ever emitted."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.stopped = False

    def feed(self, delta: str) -> str:
        self.pending += delta
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self.pending = self.pending[: min(hits)], ""
            return out
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.pending.endswith(s[:k])), default=0)
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(out):]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class Generation:
    """An iterator of text deltas; after it is exhausted, `completion` holds the result."""

    def __init__(self, loop: TokenLoop, tokenizer: Tokenizer, stop: Sequence[str], device: torch.device):
        self.loop = loop
        self._tokenizer = tokenizer
        self._stop = StopStrings(stop)
        self._device = device
        self.completion: Completion | None = None
        self._halted = False

    def stop(self) -> None:
        """End the generation after the delta just yielded (a caller's own stop condition); its
        finish reason is then "stop"."""
        self._halted = True

    def __iter__(self) -> Iterator[str]:
        decoder = self._tokenizer.stream_decoder(skip_special=True)
        tokens: list[int] = []
        text_parts: list[str] = []
        tokens_iter = iter(self.loop)
        for token in tokens_iter:
            tokens.append(token)
            delta = self._stop.feed(decoder.push(token))
            if delta:
                text_parts.append(delta)
                yield delta
            if self._stop.stopped or self._halted:
                tokens_iter.close()
                break
        if not (self._stop.stopped or self._halted):
            tail = self._stop.feed(decoder.flush()) + self._stop.flush()
            if tail:
                text_parts.append(tail)
                yield tail
        stats = self.loop.stats
        stats.peak_memory_bytes = peak_memory_bytes(self._device)
        spec = self.loop.speculative_stats()
        if spec is not None:
            stats.speculative = spec.as_dict()
        reason = "stop" if self._stop.stopped or self._halted else (self.loop.finish_reason or "length")
        self.completion = Completion("".join(text_parts), tokens, reason, stats)

    def collect(self) -> Completion:
        for _ in self:
            pass
        assert self.completion is not None
        return self.completion


def _require_triton() -> None:
    try:
        import triton  # noqa: F401
    except ImportError:
        raise EngineError("packed weights on a GPU need triton (pip install triton; CUDA builds of torch bring it)") from None


class Engine:
    """A loaded model with its tokenizer, chat template and KV cache (one sequence at a time)."""

    def __init__(self, gguf: GGUFFile, model: torch.nn.Module, tokenizer: Tokenizer,
                 chat_template: ChatTemplate | None, device: torch.device, dtype: torch.dtype,
                 n_ctx: int, packed_weights: bool, mtp_head: MTPHead | None = None, spec: str = "off",
                 spec_n_max: int = 3, warnings: list[str] | None = None, draft_model: torch.nn.Module | None = None,
                 kv_cache: str = "auto"):
        self.gguf, self.model, self.tokenizer, self.chat_template = gguf, model, tokenizer, chat_template
        self.device, self.dtype, self.packed_weights, self.kv_cache = device, dtype, packed_weights, kv_cache
        # a verify batch (the last token and up to spec_n_max drafts) rolls back to any of its rows:
        # a recurrent state keeps a snapshot after each (150 MB apiece for the 27B)
        self.cache = model.new_cache(n_ctx, dtype, kv_cache, max_rollback=spec_n_max + 1)
        self.mtp_head = mtp_head
        self.mtp_drafter = MTPDrafter(mtp_head, n_ctx, dtype, kv_cache) if mtp_head is not None else None
        self.ngram_drafter = NgramDrafter()
        self.draft_drafter = DraftModelDrafter(draft_model, n_ctx, dtype, kv_cache) if draft_model is not None else None
        self.spec, self.spec_n_max = spec, spec_n_max
        self.step_costs = StepCosts()  # measured verify and draft costs, which auto's draft lengths weigh
        self.warnings = warnings or []  # things the user should know that did not stop the load

    @property
    def prefill_dtype(self) -> torch.dtype:
        """The dtype prefill's GEMMs run in: packed weights' many-row path, else the compute dtype."""
        return prefill_dtype_of(self.model) or self.dtype

    @property
    def activations(self) -> str:
        """How the packed kernels round a decode step's activations (int8, int16 or int8+int16); "float" without them."""
        return activations_of(self.model) or "float"

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", n_ctx: int | None = None, weights: str = "auto",
             chat_template: str | None = None, dtype: str = "auto", spec: str = "auto", spec_n_max: int = 3,
             mtp: str | Path | None = None, draft_model: str | Path | None = None,
             prefill_dtype: str = "auto", activations: str = "auto", kv_cache: str = "auto") -> "Engine":
        """Load a GGUF model. weights="packed" keeps quantized blocks for the CPU kernels (on a GPU
        for the Triton kernels, GPU speed unmeasured),
        "dense" dequantizes everything into the compute dtype, "auto" picks packed on CPU.
        dtype="auto" is bfloat16 on GPUs and float32 on CPUs; the packed kernels need float32.
        spec: "auto" (the model's MTP head when it has one, plus prompt lookup, with adaptive draft
        lengths), "mtp", "ngram" or "off"; mtp: an MTP sidecar file (else one embedded in the model
        or an mtp-*.gguf next to it); draft_model: a smaller model of the same vocabulary that drafts
        (llama.cpp's -md), used by "auto" and "draft"; prefill_dtype: the GEMM dtype of packed
        weights' many-row (prefill) path, "auto" = bfloat16 where the CPU has it natively;
        activations: how their few-row kernels round activations, "int16", "int8" or "auto";
        kv_cache: "auto" (the compute dtype) or "q8" (8-bit blocks, a quarter of float32's memory)."""
        if weights not in ("auto", "packed", "dense"):
            raise EngineError(f"weights must be auto, packed or dense, not '{weights}'")
        if spec not in SPEC_MODES:
            raise EngineError(f"--spec must be one of {', '.join(SPEC_MODES)}, not '{spec}'")
        if not 1 <= spec_n_max <= MAX_DRAFT:
            raise EngineError(f"--spec-draft-n-max must be between 1 and {MAX_DRAFT}, not {spec_n_max}")
        dev = resolve_device(device)
        dtype_ = compute_dtype(dev) if dtype == "auto" else DTYPES.get(dtype)
        if dtype_ is None:
            raise EngineError(f"dtype must be auto, {', '.join(DTYPES)}; not '{dtype}'")
        packed = weights != "dense" and dev.type == "cpu" and kernels.cpu is not None and dtype_ == torch.float32
        if weights == "packed" and dev.type == "cuda":
            _require_triton()
            packed = True  # on GPUs opt-in until measured there: auto stays dense
        elif weights == "packed" and not packed:
            raise EngineError("packed weights need the CPU kernels (x86-64 with AVX2 and a built C extension), "
                              "--device cpu and float32; or a GPU with triton installed")
        check_kv_cache(kv_cache)  # before the weights load, not after
        if n_ctx is not None and n_ctx < 2:
            raise EngineError(f"context size must be at least 2 tokens, got {n_ctx}")
        try:
            prefill_dtype_ = resolve_prefill_dtype(prefill_dtype)
            check_activations(activations)
        except ValueError as e:
            raise EngineError(str(e)) from None
        if dev.type == "cpu" and kernels.cpu is not None:
            kernels.cpu.set_num_threads(torch.get_num_threads())
        gguf = GGUFFile(path)
        tokenizer = Tokenizer.from_gguf(gguf)
        with torch.inference_mode():
            model = load_model(gguf, dev, dtype_, packed)
            head, warnings = cls._mtp_head(gguf, model, spec, mtp, dev, dtype_, packed)
            drafting = cls._draft_model(draft_model, tokenizer, spec, dev, dtype_, packed) if spec in ("auto", "draft") else None
            for module in (model, head, drafting):
                if module is not None:
                    set_prefill_dtype(module, prefill_dtype_)
                    set_activations(module, activations)
        gguf.release_pages()
        ctx = n_ctx or min(model.cfg.context_length, DEFAULT_MAX_CONTEXT)
        template = cls._chat_template(gguf, tokenizer, chat_template)
        return cls(gguf, model, tokenizer, template, dev, dtype_, ctx, packed, head, spec, spec_n_max, warnings, drafting,
                   kv_cache)

    @staticmethod
    def _draft_model(path: str | Path | None, tokenizer: Tokenizer, spec: str, device: torch.device, dtype: torch.dtype,
                     packed: bool) -> torch.nn.Module | None:
        """The draft model, checked to share the main model's vocabulary and to roll back freely."""
        if path is None:
            if spec == "draft":
                raise EngineError("--spec draft needs a draft model: give one with --draft-model FILE|NAME")
            return None
        gguf = GGUFFile(path)
        theirs = Tokenizer.from_gguf(gguf)
        common = min(theirs.vocab_size, tokenizer.vocab_size)
        if abs(theirs.vocab_size - tokenizer.vocab_size) > MAX_VOCAB_DIFFERENCE or \
                theirs.id_to_bytes[:common] != tokenizer.id_to_bytes[:common]:
            raise EngineError(f"the draft model {gguf.path.name} has another vocabulary ({theirs.vocab_size:,} tokens, "
                              f"the model {tokenizer.vocab_size:,}); a draft model must tokenize the same way")
        draft = load_model(gguf, device, dtype, packed)
        gguf.release_pages()
        if type(draft.new_cache(1, dtype)) is not KVCache:
            raise EngineError(f"the draft model {gguf.path.name} is a {gguf.get('general.architecture')} model with "
                              "recurrent state; a draft model must be attention-only (llama, qwen2...)")
        return draft

    @staticmethod
    def _mtp_head(gguf: GGUFFile, model: torch.nn.Module, spec: str, sidecar: str | Path | None, device: torch.device,
                  dtype: torch.dtype, packed: bool) -> tuple[MTPHead | None, list[str]]:
        """The MTP head, if speculation may use one. With spec="mtp" a missing or broken head is an
        error; with "auto" it only disables MTP drafting, with a warning when something is wrong."""
        if spec not in ("auto", "mtp"):
            return None, []
        try:
            source = mtp.find_source(gguf, Path(sidecar) if sidecar else None)
            if source is None:
                if spec == "mtp":
                    raise UnsupportedModelError(
                        f"{gguf.path.name} has no MTP head (no nextn block, no mtp-*.gguf next to it); give one with "
                        "--mtp FILE or use --spec ngram")
                return None, []
            return mtp.load_head(gguf, model, source, device, dtype, packed), []
        except UnsupportedModelError as e:
            if spec == "mtp" or sidecar:
                raise
            return None, [f"MTP drafting is off: {e}"]

    @staticmethod
    def _chat_template(gguf: GGUFFile, tokenizer: Tokenizer, override: str | None) -> ChatTemplate | None:
        source, origin = override, "chat template given with --chat-template"
        if source is None:
            source, origin = gguf.get("tokenizer.chat_template"), f"chat template of {gguf.path.name}"
        if source is None:
            return None
        special = tokenizer.special
        token_text = lambda i: tokenizer.decode([i]) if i is not None and i < tokenizer.vocab_size else ""  # noqa: E731
        return ChatTemplate(source, token_text(special.bos), token_text(special.eos), origin)

    # -- prompts ----------------------------------------------------------------------------

    def chat_prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                    add_generation_prompt: bool = True, **template_args: Any) -> list[int]:
        if self.chat_template is None:
            raise ChatTemplateError(
                f"{self.gguf.path.name} has no chat template; pass one with --chat-template FILE or use a plain prompt"
            )
        text = self.chat_template.render(messages, tools, add_generation_prompt, **template_args)
        return self.tokenizer.encode(text, add_special=False, parse_special=True)

    def _prompt_ids(self, prompt: str | Sequence[int] | None, messages: list[dict[str, Any]] | None,
                    tools: list[dict[str, Any]] | None) -> list[int]:
        if (prompt is None) == (messages is None):
            raise EngineError("give either a prompt (text or token ids) or chat messages")
        if messages is not None:
            return self.chat_prompt(messages, tools)
        if isinstance(prompt, str):
            return self.tokenizer.encode(prompt, add_special=True)
        ids = [int(t) for t in prompt]
        bad = [t for t in ids if not 0 <= t < self.tokenizer.vocab_size]
        if bad:
            raise EngineError(f"token ids out of range for a {self.tokenizer.vocab_size}-token vocabulary: {bad[:5]}")
        return ids

    # -- generation ---------------------------------------------------------------------------

    def stream(self, prompt: str | Sequence[int] | None = None, *, messages: list[dict[str, Any]] | None = None,
               tools: list[dict[str, Any]] | None = None, sampling: SamplingParams | None = None,
               max_new_tokens: int = 512, stop: Sequence[str] = (), ignore_eos: bool = False,
               on_prefill: Callable[[int, int], None] | None = None, grammar: str | None = None) -> Generation:
        """Text deltas as they are generated. `on_prefill(done, total)` hears the prompt's progress
        chunk by chunk (a long prompt takes a while); raising from it stops the prefill. `grammar`
        (llguidance's Lark syntax) constrains every generated token, drafts included."""
        if max_new_tokens < 1:
            raise EngineError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        ids = self._prompt_ids(prompt, messages, tools)
        if not ids:
            raise EngineError("the prompt is empty")
        end = frozenset() if ignore_eos else self.tokenizer.end_of_generation
        sampler = Sampler(sampling or SamplingParams())
        constraint = GrammarConstraint(self.tokenizer, grammar) if grammar is not None else None
        drafters = self._drafters()
        if drafters:
            spec = SpecStats(mode=self.spec, snapshot_bytes=getattr(self.cache, "snapshot_bytes", 0), **self._mtp_sizes())
            policy = DraftPolicy(self.spec_n_max, adaptive=self.spec == "auto", costs=self.step_costs)
            loop = SpeculativeLoop(self.model, self.cache, ids, sampler, max_new_tokens, end, drafters=drafters,
                                   policy=policy, spec=spec, on_prefill=on_prefill, constraint=constraint)
        else:
            loop = TokenLoop(self.model, self.cache, ids, sampler, max_new_tokens, end, on_prefill=on_prefill,
                             constraint=constraint)
        return Generation(loop, self.tokenizer, stop, self.device)

    def _drafters(self) -> list:
        if self.spec == "off":
            return []
        if self.spec == "ngram":
            return [self.ngram_drafter]
        if self.spec == "mtp":
            if self.mtp_drafter is None:
                raise EngineError("spec 'mtp' needs an MTP head, and none was loaded (load with spec='auto' or 'mtp')")
            return [self.mtp_drafter]
        if self.spec == "draft":
            return [self.draft_drafter]
        # see DraftPolicy.choose: lookup first, then the MTP head (cheaper), then the draft model
        return [d for d in (self.ngram_drafter, self.mtp_drafter, self.draft_drafter) if d is not None]

    def _mtp_sizes(self) -> dict[str, int]:
        if self.mtp_head is None:
            return {}
        return {"mtp_weight_bytes": self.mtp_head.source.weight_bytes, "mtp_kv_bytes": self.mtp_drafter.cache.nbytes}

    def generate(self, prompt: str | Sequence[int] | None = None, **kwargs: Any) -> Completion:
        return self.stream(prompt, **kwargs).collect()

    def logits(self, token_ids: Sequence[int]) -> torch.Tensor:
        """Logits [len(token_ids), vocab] of every position, computed from an empty cache."""
        ids = self._prompt_ids(list(token_ids), None, None)
        self.reset()  # the drafters' state must not outlive the tokens it was built for
        return prefill(self.model, self.cache, ids, logits_for="all")

    @property
    def parameter_count(self) -> int:
        """The weights' element count as the GGUF file holds them (an MTP head included)."""
        return sum(tensor.n_elements for tensor in self.gguf.tensors.values())

    def reset(self) -> None:
        """Forget the cached prompt prefix (the next prompt is computed from scratch)."""
        self.cache.truncate(0)
        for drafter in (self.mtp_drafter, self.draft_drafter):
            if drafter is not None:
                drafter.truncate(0)

