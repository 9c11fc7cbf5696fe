"""Grafting an MTP head: training on tiny models, the sidecar the engine loads, refusal of a head
made for another model, resuming an interrupted run, and the commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from support.gguf_builder import TinyModel
from inference import Engine, SamplingParams, UnsupportedModelError
from inference import mtp
from inference.code_corpus import SourceFile, find_sources, frequent_tokens, split, token_chunks
from inference.gguf_file import GGUFFile
from inference.mtp_export import write_sidecar
from inference.mtp_train import Base, Checkpoint, GraftSettings, Interrupted, train_head
from inference.tokenizer import Tokenizer

from agent.engine_tools.mtp_answers import AnswerStore

PROJECT = Path(__file__).resolve().parents[1]
STDLIB = Path(json.__file__).parent.parent
SETTINGS = GraftSettings(tokens=40 * 64, seq_len=64, lr=3e-3, warmup_steps=5, eval_every=10, heldout_tokens=256)


@pytest.fixture(scope="module")
def corpus() -> tuple[list[SourceFile], list[SourceFile]]:
    # Python's own json and email packages: code that does not change with this project's (the
    # project's sources made the training, and so these tests, move with every edit)
    return split(find_sources([STDLIB / "json", STDLIB / "email"]))


def model(tmp_path: Path, arch: str = "llama", seed: int = 0) -> Path:
    return TinyModel(arch=arch, seed=seed).write(tmp_path / f"tiny-{arch}-{seed}.gguf")


def train(base: Base, corpus, tmp_path: Path, settings: GraftSettings = SETTINGS, **kwargs):
    train_files, held_out = corpus
    encode = Tokenizer.from_gguf(base.gguf).encode
    heldout = list(token_chunks(held_out, encode, settings.seq_len, 0))[:4]
    progress = []
    head = train_head(base, token_chunks(train_files, encode, settings.seq_len, settings.seed), heldout, settings,
                      Checkpoint(tmp_path / "head.ckpt"), {"base": base.gguf.fingerprint()}, progress.append, **kwargs)
    return head, progress


def test_the_corpus_split_is_by_file_and_stable(corpus):
    train_files, held_out = corpus
    assert held_out and train_files and not {f.key for f in train_files} & {f.key for f in held_out}
    assert split(find_sources([STDLIB / "json", STDLIB / "email"])) == (train_files, held_out)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3"])
def test_the_trained_head_is_the_head_the_engine_runs(tmp_path, arch):
    base = Base.load(model(tmp_path, arch))
    head = base.initial_head()
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    sidecar = write_sidecar(head, base.gguf, tmp_path / "mtp-tiny.gguf", quantized=False)
    tokens = np.random.default_rng(0).integers(0, base.cfg.vocab_size, 24)
    hidden, _ = base.teach(tokens)
    hidden_prev = torch.cat([torch.zeros(1, hidden.shape[1]), hidden[:-1]])
    with torch.no_grad():
        trained = head(torch.from_numpy(tokens), hidden_prev, base.embed) @ base.output.t()
    loaded = mtp.load_head(base.gguf, base.model, mtp.find_source(base.gguf, sidecar), torch.device("cpu"),
                           torch.float32, packed=False)
    with torch.inference_mode():
        served, _ = loaded(torch.from_numpy(tokens), hidden_prev, 0, loaded.new_cache(32, torch.float32), logits_for="all")
    torch.testing.assert_close(served, trained, atol=1e-4, rtol=1e-4)
    prompt = "class Stack:\n    def push(self, x):"
    plain = Engine.load(base.gguf.path, spec="off").generate(prompt, sampling=SamplingParams(), max_new_tokens=24)
    drafted = Engine.load(base.gguf.path, spec="mtp", mtp=sidecar).generate(prompt, sampling=SamplingParams(), max_new_tokens=24)
    assert drafted.token_ids == plain.token_ids and drafted.stats.speculative["drafted"] > 0


def test_training_lowers_the_loss_and_the_sidecar_serves_identical_output(tmp_path, corpus):
    path = model(tmp_path)
    base = Base.load(path)
    head, progress = train(base, corpus, tmp_path)
    first, last = np.mean([p.loss for p in progress[:5]]), np.mean([p.loss for p in progress[-5:]])
    assert last < 0.7 * first, (first, last)
    assert progress[-1].heldout_acceptance is not None and progress[-1].heldout_acceptance > 0.1
    encode = Tokenizer.from_gguf(base.gguf).encode
    prompt = next(token_chunks(corpus[1], encode, 32, 0)).tolist()  # held-out code, where acceptance was measured
    plain = Engine.load(path, spec="off").generate(prompt, sampling=SamplingParams(), max_new_tokens=96)
    choices = [base.teach(c)[1].argmax(-1).numpy() for c in list(token_chunks(corpus[0], encode, 64, 0))[:8]]
    vocab = frequent_tokens(iter(choices), base.cfg.vocab_size, 10**6, 0.95)
    accepted = {}
    for name, draft_vocab in (("all", None), ("frequent", vocab.tolist())):
        # Q8_0, found next to the model
        sidecar = write_sidecar(head, base.gguf, tmp_path / f"mtp-{path.stem}.gguf", draft_vocab=draft_vocab)
        assert GGUFFile(sidecar).get(mtp.BASE_FINGERPRINT_KEY) == base.gguf.fingerprint()
        engine = Engine.load(path, spec="mtp", spec_n_max=3)
        assert engine.mtp_head is not None and engine.mtp_head.source.gguf.path == sidecar
        assert (engine.mtp_head.draft_ids is None) == (draft_vocab is None)
        drafted = engine.generate(prompt, sampling=SamplingParams(), max_new_tokens=96)
        assert drafted.token_ids == plain.token_ids
        accepted[name] = drafted.stats.speculative["accepted"]
    assert len(vocab) < base.cfg.vocab_size and accepted["all"] > 0 and accepted["frequent"] > 0, accepted


def test_a_packed_head_catches_up_on_many_rows_with_the_kernels(tmp_path, monkeypatch):
    """After a long lookup draft the head catches up on 9+ rows: its Q8_0 weights stay on the
    packed kernels (no dequantization per catch-up) and give what the dense head gives."""
    from inference.linear import PACKED_MAX_ROWS, PackedLinear

    base = Base.load(model(tmp_path))
    sidecar = write_sidecar(base.initial_head(), base.gguf, tmp_path / "mtp-tiny.gguf")
    source = mtp.find_source(base.gguf, sidecar)
    dense = mtp.load_head(base.gguf, base.model, source, torch.device("cpu"), torch.float32, packed=False)
    packed = mtp.load_head(base.gguf, base.model, source, torch.device("cpu"), torch.float32, packed=True)
    linears = [m for m in [*packed.block.modules(), packed.eh_proj] if isinstance(m, PackedLinear)]
    assert len(linears) >= 4 and all(m.max_rows == mtp.HEAD_PACKED_MAX_ROWS > PACKED_MAX_ROWS for m in linears)
    dequantized, dequantize = [], PackedLinear.dequantized
    monkeypatch.setattr(PackedLinear, "dequantized", lambda self, *a, **k: dequantized.append(self) or dequantize(self, *a, **k))
    rows = 20
    tokens = torch.from_numpy(np.random.default_rng(0).integers(0, base.cfg.vocab_size, rows))
    hidden = torch.randn(rows, base.cfg.d_model, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        got, _ = packed(tokens, hidden, 0, packed.new_cache(32, torch.float32), logits_for="all")
        want, _ = dense(tokens, hidden, 0, dense.new_cache(32, torch.float32), logits_for="all")
    assert dequantized and not any(m in linears for m in dequantized)  # only the model's own LM head, for 20 rows
    torch.testing.assert_close(got, want, atol=2e-3, rtol=2e-3)


def test_a_head_made_for_another_model_is_refused(tmp_path, corpus):
    mine, other = model(tmp_path, seed=0), model(tmp_path, seed=1)
    base = Base.load(mine)
    sidecar = write_sidecar(base.initial_head(), base.gguf, tmp_path / "mtp-for-mine.gguf")
    with pytest.raises(UnsupportedModelError, match=r"trained for tiny-llama-0.gguf, not for tiny-llama-1.gguf"):
        Engine.load(other, spec="mtp", mtp=sidecar)
    # found next to the wrong model it is passed over, not used
    assert mtp.find_source(GGUFFile(other), None) is None
    assert mtp.find_source(GGUFFile(mine), None).gguf.path == sidecar


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, corpus):
    base = Base.load(model(tmp_path))
    (tmp_path / "whole").mkdir()
    (tmp_path / "parts").mkdir()
    whole, _ = train(base, corpus, tmp_path / "whole")
    with pytest.raises(Interrupted):
        train(base, corpus, tmp_path / "parts", should_stop=lambda step: step == 17)
    assert torch.load(tmp_path / "parts" / "head.ckpt", weights_only=False)["step"] == 17
    resumed, progress = train(base, corpus, tmp_path / "parts")
    assert progress[0].step == 18 and progress[-1].step == SETTINGS.tokens // SETTINGS.seq_len
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, atol=1e-5, rtol=1e-4)


def test_a_new_run_can_start_from_an_earlier_runs_head(tmp_path, corpus):
    base = Base.load(model(tmp_path))
    with pytest.raises(Interrupted):
        train(base, corpus, tmp_path, should_stop=lambda step: step == 3)
    state = torch.load(tmp_path / "head.ckpt", weights_only=False)["head"]
    from_checkpoint = base.head_from(tmp_path / "head.ckpt")
    for name, value in from_checkpoint.state_dict().items():
        assert torch.equal(value, state[name]), name
    sidecar = write_sidecar(from_checkpoint, base.gguf, tmp_path / "mtp-tiny.gguf", quantized=False)
    for name, value in base.head_from(sidecar).state_dict().items():
        torch.testing.assert_close(value, state[name], msg=name)
    assert not torch.equal(base.initial_head().eh_proj, from_checkpoint.eh_proj)
    other = Base.load(model(tmp_path, seed=1))
    with pytest.raises(UnsupportedModelError, match="trained for tiny-llama-0.gguf"):
        other.head_from(sidecar)
    with pytest.raises(Exception, match="not a checkpoint of a head for tiny-llama-1.gguf"):
        other.head_from(tmp_path / "head.ckpt")


def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path, corpus):
    base = Base.load(model(tmp_path))
    with pytest.raises(Interrupted):
        train(base, corpus, tmp_path, should_stop=lambda step: step == 2)
    other = GraftSettings(**{**SETTINGS.__dict__, "seq_len": 32})
    with pytest.raises(Exception, match="checkpoint of another run"):
        train_head(base, iter([]), [], other, Checkpoint(tmp_path / "head.ckpt"), {"base": "something else"}, print)


def test_graft_and_eval_commands(tmp_path, capsys):
    from agent.frontends.cli import main

    path = model(tmp_path)
    corpus_args = ["--no-default-corpus", "--corpus", str(PROJECT / "inference"), "--corpus", str(PROJECT / "agent")]
    graft = ["mtp", "graft", "--model", str(path), "--tokens", "1280", "--seq-len", "64", "--answers", "3",
             "--answer-tokens", "12", *corpus_args]
    assert main(graft) == 0
    out = capsys.readouterr()
    assert "held-out first-draft acceptance" in out.out and "ETA" in out.err and "answers 3/3" in out.err
    sidecar = tmp_path / f"mtp-{path.stem}.gguf"
    assert sidecar.exists() and GGUFFile(sidecar).get("mtp_agent.tokens") == 1280
    answers = AnswerStore(sidecar.with_name(sidecar.name + ".answers.jsonl")).load()
    assert len(answers) == 3 and all(len(a["tokens"]) > 12 and a["request"] for a in answers)
    # a new run (here: further training of the first run's head) uses the answers instead of generating them again
    assert main([*graft, "--init", str(sidecar), "--restart", "--answers", "2"]) == 0
    assert "answers" not in capsys.readouterr().err.replace("answers.jsonl", "")
    assert main(["mtp", "eval", "--model", str(path), "--prompts", "2", "--new-tokens", "16", *corpus_args]) == 0
    table = capsys.readouterr().out
    assert "pos 1" in table and "pos 4" in table and "\nall " in table and "\nanswers " in table
    header, *rows = [line.split() for line in table.splitlines()[1:]]
    assert header[-1] == "forced" and {r[0] for r in rows} >= {"python", "all", "answers"}
    forced = {r[0]: r[-1] for r in rows}
    assert forced["answers"] == "-" and 0 <= float(forced["all"].rstrip("%")) <= 100

