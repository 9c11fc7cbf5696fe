"""Config files: every key is known or named as an error, with the nearest known key."""

from __future__ import annotations

import pytest

from agent.core.config import KNOWN_KEYS, load_config
from agent.errors import AgentError
from agent.frontends.cli import main


def project_config(root, text: str):
    (root / ".mtp-agent").mkdir(exist_ok=True)
    (root / ".mtp-agent" / "config.toml").write_text(text)


@pytest.mark.parametrize(("text", "named"), [
    ("[agent]\nmax_turn = 1\n", "unknown key 'max_turn' in [agent] (did you mean 'max_turns'?)"),
    ('[backend]\nmodle = "x"\n', "unknown key 'modle' in [backend] (did you mean 'model'?)"),
    ('[permissions]\nalow = ["shell(ls)"]\n', "unknown key 'alow' in [permissions] (did you mean 'allow'?)"),
    ("[hooks]\ntimeuot = 5\n", "unknown key 'timeuot' in [hooks] (did you mean 'timeout'?)"),
    ("[agents]\nmax_turns = 1\n", "unknown section [agents] (did you mean 'agent'?)"),
    ("[agent]\nzzz = 1\n", "unknown key 'zzz' in [agent]; known keys: auto_test, look_first"),
    ('agent = "fast"\n', "agent must be a table"),
])
def test_an_unknown_key_is_an_error_naming_the_file_the_key_and_the_nearest_known_one(tmp_path, text, named):
    project_config(tmp_path, text)
    with pytest.raises(AgentError) as error:
        load_config(tmp_path, user_file=tmp_path / "none.toml")
    assert named in str(error.value) and str(tmp_path / ".mtp-agent" / "config.toml") in str(error.value)


def test_every_documented_key_is_known(tmp_path):
    values = {"allow": "[]", "deny": "[]", "servers": "{}"}
    text = "\n".join(f"[{section}]\n" + "\n".join(f"{key} = {values.get(key, 1)}" for key in sorted(keys))
                     for section, keys in KNOWN_KEYS.items())
    project_config(tmp_path, text)
    assert load_config(tmp_path, user_file=tmp_path / "none.toml").agent["max_turns"] == 1


def test_the_cli_exits_2_with_the_key_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    project_config(tmp_path, "[agent]\nmax_turn = 1\n")
    assert main(["run", "--backend", "scripted", "--script", "x", "--prompt", "x"]) == 2
    assert "unknown key 'max_turn' in [agent] (did you mean 'max_turns'?)" in capsys.readouterr().err
