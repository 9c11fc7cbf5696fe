"""A draft model (llama.cpp's -md): a smaller model of the same vocabulary drafts, the main model
verifies; greedy output is identical to plain decoding, and a draft model that is the main model
itself is always right."""

from __future__ import annotations

import pytest

from inference import Engine
from inference.errors import EngineError
from support.gguf_builder import TinyModel

PROMPT = list(range(3, 40))


@pytest.fixture(scope="module")
def pair(tiny_dir, tiny_llama):
    other = TinyModel(arch="llama", seed=7).write(tiny_dir / "tiny-llama-seed7.gguf")  # same vocabulary, other weights
    return tiny_llama, other


def greedy(engine: Engine, n: int = 40):
    engine.reset()
    return engine.generate(PROMPT, max_new_tokens=n, ignore_eos=True)


@pytest.mark.parametrize("spec", ["draft", "auto"])
@pytest.mark.parametrize("n_max", [1, 3, 5])
def test_greedy_output_is_identical_with_a_draft_model(pair, spec, n_max):
    main, other = pair
    plain = greedy(Engine.load(main, device="cpu", spec="off"))
    drafted = greedy(Engine.load(main, device="cpu", spec=spec, spec_n_max=n_max, draft_model=other))
    assert drafted.token_ids == plain.token_ids
    assert drafted.stats.speculative["drafts_by"].get("draft", 0) > 0 or spec == "auto"


def test_the_main_model_as_its_own_draft_model_is_always_right(pair):
    main, _ = pair
    engine = Engine.load(main, device="cpu", spec="draft", spec_n_max=4, draft_model=main)
    first = greedy(engine)
    spec = first.stats.speculative
    assert spec["drafted"] > 0 and spec["accepted"] == spec["drafted"]
    assert greedy(engine).token_ids == first.token_ids  # the drafter's cache follows a new prompt too


def test_a_draft_model_with_another_vocabulary_is_refused(tiny_dir, tiny_llama):
    other = TinyModel(arch="llama", n_merges=20).write(tiny_dir / "tiny-llama-other-vocab.gguf")  # tokens differ from 276 on
    with pytest.raises(EngineError, match="another vocabulary"):
        Engine.load(tiny_llama, device="cpu", spec="draft", draft_model=other)


def test_spec_draft_needs_a_draft_model(tiny_llama):
    with pytest.raises(EngineError, match="--draft-model"):
        Engine.load(tiny_llama, device="cpu", spec="draft")


def test_the_cli_takes_a_draft_model(pair, capsys):
    from agent.frontends.cli import main

    main_model, other = pair
    assert main(["generate", "hello", "-n", "12", "--stats", "--model", str(main_model), "--draft-model", str(other),
                 "--spec", "draft"]) == 0
    assert "speculative (draft)" in capsys.readouterr().err
