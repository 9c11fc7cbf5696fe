"""EngineSettings: a flag wins, then the config's [backend] table, then the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.backends.engine_settings import EngineSettings
from agent.core.config import Config
from agent.core.setup import RunSettings

CONFIGURED = Config(backend={"model": "config.gguf", "context_window": 8192, "spec": "ngram", "temperature": 0.7,
                             "max_new_tokens": 512})


def test_without_flags_or_config_the_defaults_hold():
    assert EngineSettings.from_config(RunSettings(), Config()) == EngineSettings(
        model=None, device="auto", ctx=None, weights="auto", dtype="auto", chat_template=None, temperature=0.0,
        spec="auto", spec_n_max=3, mtp=None, max_new_tokens=2048)


def test_the_config_fills_what_the_flags_leave_open():
    settings = EngineSettings.from_config(RunSettings(), CONFIGURED)
    assert (settings.model, settings.ctx, settings.spec, settings.temperature, settings.max_new_tokens) == (
        "config.gguf", 8192, "ngram", 0.7, 512)


def test_flags_win_over_the_config():
    flags = RunSettings(model="flag.gguf", ctx=1024, spec="off", temperature=0.0, device="cpu", weights="dense",
                        dtype="float32", chat_template=Path("t.jinja"), spec_n_max=5, mtp=Path("mtp-x.gguf"))
    settings = EngineSettings.from_config(flags, CONFIGURED)
    assert settings == EngineSettings(model="flag.gguf", device="cpu", ctx=1024, weights="dense", dtype="float32",
                                      chat_template=Path("t.jinja"), temperature=0.0, spec="off", spec_n_max=5,
                                      mtp=Path("mtp-x.gguf"), max_new_tokens=512)
    assert EngineSettings.from_config(RunSettings(max_tokens=77), CONFIGURED).max_new_tokens == 77  # --max-tokens


def test_constrained_tool_calls_are_on_unless_a_flag_or_the_config_turns_them_off():
    assert EngineSettings.from_config(RunSettings(), Config()).constrain is True
    assert EngineSettings.from_config(RunSettings(), Config(backend={"constrain": False})).constrain is False
    assert EngineSettings.from_config(RunSettings(constrain=False), Config(backend={"constrain": True})).constrain is False


def test_the_no_constrain_flag_reaches_the_run_settings():
    from agent.frontends.cli import _run_settings, build_parser

    parser = build_parser()
    assert _run_settings(parser.parse_args(["run", "--no-constrain", "--prompt", "x"])).constrain is False
    assert _run_settings(parser.parse_args(["run", "--prompt", "x"])).constrain is None


def test_the_prefill_dtype_flag_reaches_the_engine_settings():
    from agent.frontends.cli import _run_settings, build_parser

    parser = build_parser()
    for argv, expected in ((["run", "--prompt", "x"], "auto"), (["run", "--prefill-dtype", "float32", "--prompt", "x"], "float32")):
        assert EngineSettings.from_config(_run_settings(parser.parse_args(argv)), Config()).prefill_dtype == expected


def test_the_activations_flag_reaches_the_engine_settings():
    from agent.frontends.cli import _run_settings, build_parser

    parser = build_parser()
    for argv, expected in ((["run", "--prompt", "x"], "auto"), (["run", "--activations", "int16", "--prompt", "x"], "int16")):
        assert EngineSettings.from_config(_run_settings(parser.parse_args(argv)), Config()).activations == expected


def test_an_unknown_activation_rounding_is_refused_before_loading(tmp_path):
    from inference import Engine, EngineError

    with pytest.raises(EngineError, match="activations must be auto, int16, int8"):
        Engine.load(tmp_path / "never-read.gguf", device="cpu", activations="int4")
