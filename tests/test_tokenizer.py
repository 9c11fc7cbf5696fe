"""The tokenizer against transformers and against HF `tokenizers` pipelines built from the same
GGUF vocabulary."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from tokenizers import AddedToken, Regex, Tokenizer as HFTokenizer, models, pre_tokenizers

from inference.errors import TokenizerError
from inference.gguf_file import GGUFFile
from inference.tokenizer import CONTROL, PRE_TOKENIZERS, SpecialTokens, Tokenizer

FIXED = [
    "def hello(): 你好 🎉  x", "  leading spaces", "trailing spaces   ", "a\n\n\nb", "tabs\tand\t\ttabs",
    "windows\r\nline\r\nends", "x = 1234567 + 89", "price: 3.14159, 1e-10, 0x1F, 1_000_000", "version 2.0.1-rc3",
    "It's they're we've I'm you'll he'd", "IT'S THEY'RE DON'T", "émoji 👨‍👩‍👧 family, 👍🏽 and 🇺🇸 flags",
    "日本語のテキストとカタカナ", "中文测试：你好，世界！", "한국어 텍스트입니다", "Ελληνικά γράμματα", "Привет, мир",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "ภาษาไทย", "Ünïcödé çåsès ñ", "non\u00a0breaking\u2009spaces",
    "zero\u200bwidth", "combining e\u0301 and a\u0308\u0304", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>", "<|im_end|><|im_start|>",
    "<|im_start", "text<|endoftext|>more", "<repo_name>octo/cat<file_sep>main.py", "    return x ** 2  # square",
    "if (a && b) { return c; }", "SELECT * FROM users WHERE id = 42;", "https://example.com/path?q=1&r=2#frag",
    "C:\\Users\\name\\file.txt", "€100 £50 ¥1000 ₹20", "∑∫∂√∞≠≤≥", "a.1", "x \n1", "  1", "\t\t2", "end with newline\n",
    "", " ", "\n", "  ", "🎉", "a", "1", "ab12cd34", "CamelCaseIdentifier snake_case_name kebab-case-name",
]


def varied_strings() -> list[str]:
    rng = random.Random(1234)
    strings = list(FIXED)
    sources = [Path(__file__).read_text(), (Path(__file__).parent.parent / "inference" / "tokenizer.py").read_text()]
    for _ in range(150):
        src = rng.choice(sources)
        start = rng.randrange(len(src))
        strings.append(src[start : start + rng.randrange(1, 300)])
    pool = " \t\n\r0123456789abcXYZ'.,;:!?-_()[]{}<>\"#@你好世界🎉é\u00a0"
    for _ in range(150):
        strings.append("".join(rng.choice(pool) for _ in range(rng.randrange(1, 40))))
    return strings


STRINGS = varied_strings()
# transformers' GGUF loader has no split rule for the 'smollm' pre-tokenizer and falls back to
# GPT-2's regex; the model's own tokenizer isolates digits first (Digits -> ByteLevel), which
# differs only in how a run of 2+ whitespace characters before a digit is split.
DIGIT_AFTER_WHITESPACE_RUN = re.compile(r"\s{2,}(?=\d)")


@pytest.fixture(scope="module")
def ours(smollm2) -> Tokenizer:
    return Tokenizer.from_gguf(GGUFFile(smollm2))


@pytest.fixture(scope="module")
def vocab(smollm2) -> tuple[list[str], list[int], list[str]]:
    g = GGUFFile(smollm2)
    return g.get("tokenizer.ggml.tokens"), g.get("tokenizer.ggml.token_type"), g.get("tokenizer.ggml.merges")


def hf_pipeline(vocab, pre: list) -> HFTokenizer:
    """An HF tokenizer with the GGUF vocabulary and merges and the given pre-tokenizer steps."""
    tokens, types, merges = vocab
    tk = HFTokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ")) for m in merges]))
    tk.pre_tokenizer = pre_tokenizers.Sequence(pre)
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == CONTROL])
    return tk


def test_at_least_200_varied_strings():
    assert len(STRINGS) >= 300
    assert any("\t" in s for s in STRINGS) and any("🎉" in s for s in STRINGS) and any("<|im_end|>" in s for s in STRINGS)


def test_matches_transformers_tokenizer(ours, hf_default):
    _, hf_tokenizer = hf_default
    compared = 0
    for s in STRINGS:
        if DIGIT_AFTER_WHITESPACE_RUN.search(s):
            continue
        assert ours.encode(s, parse_special=True) == hf_tokenizer(s, add_special_tokens=False).input_ids, repr(s)
        compared += 1
    assert compared >= 200


def test_matches_the_models_own_pretokenizer_everywhere(ours, vocab):
    """SmolLM2's tokenizer.json: Digits(individual_digits) then ByteLevel with GPT-2's regex."""
    reference = hf_pipeline(vocab, [pre_tokenizers.Digits(individual_digits=True),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    for s in STRINGS:
        assert ours.encode(s, parse_special=True) == reference.encode(s, add_special_tokens=False).ids, repr(s)
    assert ours.encode("x  1") == [reference.token_to_id("x"), reference.token_to_id("ĠĠ"), reference.token_to_id("1")]


@pytest.mark.parametrize("pre", ["qwen2", "qwen35", "llama-bpe", "deepseek-v3", "gpt2"])
def test_other_pretokenizers_match_hf_split_pipelines(pre, vocab):
    tokens, types, merges = vocab
    special = SpecialTokens(bos=None, eos=None, eot=None, add_bos=False, add_eos=False)
    ours = Tokenizer(tokens, types, merges, pre, special)
    reference = hf_pipeline(vocab, [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in PRE_TOKENIZERS[pre]]
                            + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    for s in STRINGS:
        assert ours.encode(s, parse_special=True) == reference.encode(s, add_special_tokens=False).ids, (pre, repr(s))


def test_decode_round_trips(ours):
    for s in STRINGS:
        assert ours.decode(ours.encode(s, parse_special=True)) == s


def test_stream_decoder_never_emits_half_a_character(ours):
    text = "日本語 🎉 naïve 👨‍👩‍👧 end"
    ids = ours.encode(text)
    decoder = ours.stream_decoder()
    deltas = [decoder.push(t) for t in ids] + [decoder.flush()]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
    # the emoji is spread over several byte tokens: some pushes must have returned nothing
    assert len(ids) > len([d for d in deltas if d])


def test_special_tokens_are_parsed_only_when_asked(ours):
    im_start = ours.literal_ids["<|im_start|>"]
    assert ours.encode("<|im_start|>user", parse_special=True)[0] == im_start
    plain = ours.encode("<|im_start|>user")
    assert im_start not in plain and ours.decode(plain) == "<|im_start|>user"


def test_bos_and_eos_rules(vocab):
    tokens, types, merges = vocab
    special = SpecialTokens(bos=1, eos=2, eot=2, add_bos=True, add_eos=True)
    tk = Tokenizer(tokens, types, merges, "smollm", special)
    ids = tk.encode("hello", add_special=True)
    assert ids[0] == 1 and ids[-1] == 2
    assert tk.encode("hello") == ids[1:-1]
    # a prompt that already starts with BOS does not get a second one
    assert tk.encode("<|im_start|>hi", add_special=True, parse_special=True).count(1) == 1


def test_unknown_pretokenizer_is_refused(vocab):
    tokens, types, merges = vocab
    with pytest.raises(TokenizerError, match="pre-tokenizer 'mystery-bpe'"):
        Tokenizer(tokens, types, merges, "mystery-bpe", SpecialTokens(None, None, None, False, False))


def test_sentencepiece_vocabulary_is_refused(tmp_path):
    from support.gguf_builder import TinyModel

    path = TinyModel().write(tmp_path / "m.gguf")
    # the string value "gpt2" (type 8, length 4) of tokenizer.ggml.model, rewritten in place
    value = b"\x08\x00\x00\x00" + (4).to_bytes(8, "little")
    data = path.read_bytes().replace(b"tokenizer.ggml.model" + value + b"gpt2", b"tokenizer.ggml.model" + value + b"tsp5")
    path.write_bytes(data)
    with pytest.raises(TokenizerError, match="tokenizer model 'tsp5'"):
        Tokenizer.from_gguf(GGUFFile(path))
