"""Byte-level BPE tokenizer built from a GGUF vocabulary, with tiktoken doing the merges.

tiktoken ranks byte strings and merges the adjacent pair whose concatenation ranks lowest. A HF
merges list ranks pairs, so each merge result gets rank = its index in the list, and the ranks
are mapped back to the vocabulary's token ids afterwards. Special (control) and user-defined
tokens are matched in the text before pre-tokenization, longest first, as transformers does.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import cache
from typing import Iterable

import regex
import tiktoken

from .errors import TokenizerError
from .gguf_file import GGUFFile

# GGUF token types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_CL100K = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
_QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# Qwen3.5/3.6: as qwen2, but combining marks (\p{M}) stay with their letters
_QWEN35 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# GPT-2's pattern after every digit was split off on its own (HF: Digits(individual) then
# ByteLevel). One regex does both: a digit matches alone, and a whitespace run directly before a
# digit behaves as if it ended the text.
_GPT2_DIGITS = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"""
_DEEPSEEK_V3 = (
    r"""\p{N}{1,3}""",
    r"""[一-龥぀-ゟ゠-ヿ]+""",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
)

# tokenizer.ggml.pre -> the split patterns, applied in turn ("isolated" splits, as in HF's
# Sequence pre-tokenizers). A single pattern runs inside tiktoken.
PRE_TOKENIZERS: dict[str, tuple[str, ...]] = {
    "default": (_GPT2,),
    "gpt-2": (_GPT2,),
    "gpt2": (_GPT2,),
    "smollm": (_GPT2_DIGITS,),
    "starcoder": (_GPT2_DIGITS,),
    "llama-bpe": (_CL100K,),
    "llama3": (_CL100K,),
    "dbrx": (_CL100K,),
    "smaug-bpe": (_CL100K,),
    "qwen2": (_QWEN2,),
    "qwen35": (_QWEN35,),
    "deepseek-v3": _DEEPSEEK_V3,
}


@cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters, used in byte-level vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@cache
def unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in byte_to_unicode().items()}


def _token_bytes(text: str, token_type: int) -> bytes:
    if token_type in (CONTROL, USER_DEFINED, UNKNOWN, UNUSED):
        return text.encode("utf-8")
    decode = unicode_to_byte()
    try:
        return bytes(decode[c] for c in text)
    except KeyError:  # not in byte-level form: take the text as it is
        return text.encode("utf-8")


@dataclass(frozen=True)
class SpecialTokens:
    bos: int | None
    eos: int | None
    eot: int | None  # end of turn (e.g. <|im_end|>, <|eot_id|>) where the vocabulary has one
    add_bos: bool
    add_eos: bool


class Tokenizer:
    def __init__(self, tokens: list[str], token_types: list[int], merges: list[str], pre: str,
                 special: SpecialTokens, name: str = "vocabulary"):
        if pre not in PRE_TOKENIZERS:
            known = ", ".join(sorted(PRE_TOKENIZERS))
            raise TokenizerError(
                f"pre-tokenizer '{pre}' of the {name} is not supported (known: {known}); "
                "it decides how text is split before BPE, so guessing would give wrong token ids"
            )
        self.special = special
        self.vocab_size = len(tokens)
        self.id_to_bytes = [_token_bytes(t, ty) for t, ty in zip(tokens, token_types)]
        self.token_types = token_types
        self.literal_ids = {tokens[i]: i for i, ty in enumerate(token_types) if ty in (CONTROL, USER_DEFINED)}
        self._literal_split = (
            regex.compile("(" + "|".join(regex.escape(t) for t in sorted(self.literal_ids, key=len, reverse=True)) + ")")
            if self.literal_ids else None
        )
        self.control_ids = frozenset(i for i, ty in enumerate(token_types) if ty == CONTROL)
        patterns = PRE_TOKENIZERS[pre]
        # one pattern: tiktoken splits (fast, in Rust); several: split here, stage by stage, and
        # let tiktoken run BPE on each piece whole
        self._stages = [regex.compile(p) for p in patterns] if len(patterns) > 1 else []
        bpe_pattern = patterns[0] if len(patterns) == 1 else r"(?s:.+)"
        self._bpe, self._rank_to_id = self._build_bpe(token_types, merges, bpe_pattern)

    def _build_bpe(self, token_types: list[int], merges: list[str], pattern: str) -> tuple[tiktoken.Encoding, list[int]]:
        ids_by_bytes: dict[bytes, int] = {}
        for i, (b, ty) in enumerate(zip(self.id_to_bytes, token_types)):
            if ty in (NORMAL, BYTE):
                ids_by_bytes.setdefault(b, i)
        ranks: dict[bytes, int] = {}
        rank_to_id: list[int] = []
        unknown = next((i for i, ty in enumerate(token_types) if ty == UNKNOWN), 0)
        for b in range(256):
            ranks[bytes([b])] = len(rank_to_id)
            rank_to_id.append(ids_by_bytes.get(bytes([b]), unknown))
        decode = unicode_to_byte()
        for merge in merges:
            left, _, right = merge.partition(" ")
            try:
                merged = bytes(decode[c] for c in left + right)
            except KeyError as e:
                raise TokenizerError(f"merge '{merge}' is not in byte-level form; only byte-level BPE (gpt2) vocabularies are supported") from e
            if merged in ranks or merged not in ids_by_bytes:
                continue
            ranks[merged] = len(rank_to_id)
            rank_to_id.append(ids_by_bytes[merged])
        encoding = tiktoken.Encoding(name="gguf", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
        return encoding, rank_to_id

    @classmethod
    def from_gguf(cls, g: GGUFFile) -> "Tokenizer":
        model = g.get("tokenizer.ggml.model")
        if model is None:
            raise TokenizerError(f"{g.path} has no tokenizer (no 'tokenizer.ggml.model' key)")
        if model != "gpt2":
            raise TokenizerError(
                f"tokenizer model '{model}' of {g.path} is not supported; only byte-level BPE ('gpt2': "
                "Llama 3, Qwen, SmolLM, DeepSeek...) is"
            )
        tokens = g.require("tokenizer.ggml.tokens")
        types = g.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
        eot = g.get("tokenizer.ggml.eot_token_id")
        if eot is None:  # older files: the usual end-of-turn tokens, when the vocabulary marks them as control
            control = {t: i for i, (t, ty) in enumerate(zip(tokens, types)) if ty == CONTROL}
            eot = next((control[n] for n in ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>") if n in control), None)
        special = SpecialTokens(
            bos=g.get("tokenizer.ggml.bos_token_id"),
            eos=g.get("tokenizer.ggml.eos_token_id"),
            eot=eot,
            add_bos=bool(g.get("tokenizer.ggml.add_bos_token", False)),
            add_eos=bool(g.get("tokenizer.ggml.add_eos_token", False)),
        )
        return cls(tokens, types, g.get("tokenizer.ggml.merges") or [], g.get("tokenizer.ggml.pre") or "default",
                   special, name=f"vocabulary of {g.path}")

    # -- encoding ---------------------------------------------------------------------------

    def _encode_ordinary(self, text: str) -> list[int]:
        pieces = [text]
        for stage in self._stages:
            pieces = [p for piece in pieces for p in _split_isolated(stage, piece)]
        rank_to_id = self._rank_to_id
        return [rank_to_id[r] for piece in pieces for r in self._bpe.encode_ordinary(piece)]

    def encode(self, text: str, add_special: bool = False, parse_special: bool = False) -> list[int]:
        """Token ids of `text`. add_special adds BOS/EOS as the vocabulary asks; parse_special
        turns control-token text such as '<|im_start|>' into those tokens (only for trusted
        text: chat templates, not file contents). User-defined tokens always match."""
        ids: list[int] = []
        if self._literal_split is None:
            ids = self._encode_ordinary(text)
        else:
            for i, part in enumerate(self._literal_split.split(text)):
                token = self.literal_ids.get(part) if i % 2 else None
                if token is not None and (parse_special or token not in self.control_ids):
                    ids.append(token)
                elif part:
                    ids.extend(self._encode_ordinary(part))
        if add_special:
            if self.special.add_bos and self.special.bos is not None and ids[:1] != [self.special.bos]:
                ids.insert(0, self.special.bos)
            if self.special.add_eos and self.special.eos is not None:
                ids.append(self.special.eos)
        return ids

    # -- decoding ---------------------------------------------------------------------------

    def token_bytes(self, token: int) -> bytes:
        return self.id_to_bytes[token]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        parts = [self.id_to_bytes[i] for i in ids if not (skip_special and i in self.control_ids)]
        return b"".join(parts).decode("utf-8", errors="replace")

    @property
    def end_of_generation(self) -> frozenset[int]:
        """Tokens that end a generation: EOS and the end-of-turn token."""
        return frozenset(t for t in (self.special.eos, self.special.eot) if t is not None)

    def stream_decoder(self, skip_special: bool = False) -> "StreamDecoder":
        return StreamDecoder(self, skip_special)


def _split_isolated(pattern: regex.Pattern, text: str) -> list[str]:
    """Each match becomes a piece, and so does each stretch of text between matches."""
    pieces, last = [], 0
    for m in pattern.finditer(text):
        if m.start() > last:
            pieces.append(text[last:m.start()])
        if m.end() > m.start():
            pieces.append(m.group())
        last = m.end()
    if last < len(text):
        pieces.append(text[last:])
    return pieces


class StreamDecoder:
    """Turns token ids into text deltas as they arrive, holding back an incomplete UTF-8 sequence
    (one character split across tokens) until its last byte arrives."""

    def __init__(self, tokenizer: Tokenizer, skip_special: bool = False):
        self.tokenizer = tokenizer
        self.skip_special = skip_special
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        if self.skip_special and token in self.tokenizer.control_ids:
            return ""
        return self._utf8.decode(self.tokenizer.token_bytes(token))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)
