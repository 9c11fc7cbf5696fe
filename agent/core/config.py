"""Settings from config files: the user's (~/.config/mtp-agent/config.toml) and the project's
(.mtp-agent/config.toml at the repository root), the project's winning. Flags override both."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import tomlkit

from agent.errors import AgentError
from agent.tools.files import write_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT_CONFIG = Path(".mtp-agent") / "config.toml"


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir("mtp-agent")) / "config.toml"


@dataclass
class Config:
    permission_mode: str = "ask"
    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    backend: dict[str, Any] = field(default_factory=dict)  # name, model, base_url, api_key, context_window, ...
    agent: dict[str, Any] = field(default_factory=dict)  # max_turns, max_time, shell_timeout, ...
    hooks: dict[str, Any] = field(default_factory=dict)  # timeout, fail_closed, fail_on, style (the git hooks)
    sources: list[Path] = field(default_factory=list)


def read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    """The TOML file's table; AgentError naming `what` the file is, and what to do, when it cannot be read."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise AgentError(f"{what} {path} is not valid TOML: {e}; fix or remove it") from e
    except OSError as e:
        raise AgentError(f"cannot read {what} {path}: {e.strerror}") from e


# every key each section may hold: a typo (`max_turn`, `modle`) is an error, not a silent no-op
KNOWN_KEYS: dict[str, set[str]] = {
    "permissions": {"mode", "allow", "deny"},
    "backend": {"name", "model", "base_url", "api_key", "context_window", "temperature", "max_new_tokens", "max_tokens",
                "constrain", "spec", "script", "read_timeout"},
    "agent": {"max_turns", "max_time", "look_first", "steer", "workflow", "network"},
    "hooks": {"timeout", "fail_closed", "fail_on", "style"},
}


def _check_keys(data: dict[str, Any], source: Path) -> None:
    for section, table in data.items():
        known = KNOWN_KEYS.get(section)
        if known is None:
            raise AgentError(f"config file {source} has an unknown section [{section}]{_nearest(section, set(KNOWN_KEYS))}; "
                             f"known sections: {', '.join(sorted(KNOWN_KEYS))}")
        if not isinstance(table, dict):
            raise AgentError(f"config file {source}: {section} must be a table ([{section}]), not a {type(table).__name__}")
        for key in table:
            if key not in known:
                raise AgentError(f"config file {source}: unknown key '{key}' in [{section}]{_nearest(key, known)}; "
                                 f"known keys: {', '.join(sorted(known))}")


def _nearest(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _merge(config: Config, data: dict[str, Any], source: Path) -> None:
    _check_keys(data, source)
    permissions = data.get("permissions", {})
    if "mode" in permissions:
        config.permission_mode = str(permissions["mode"])
    for key in ("allow", "deny"):
        rules = permissions.get(key, [])
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise AgentError(f"config file {source}: permissions.{key} must be a list of strings like \"shell(pytest *)\"")
        getattr(config, key).extend(rules)
    config.backend.update(data.get("backend", {}))
    config.agent.update(data.get("agent", {}))
    config.hooks.update(data.get("hooks", {}))
    config.sources.append(source)


def load_config(root: Path, user_file: Path | None = None) -> Config:
    config = Config()
    for path in (user_file or user_config_path(), root / PROJECT_CONFIG):
        if path.is_file():
            _merge(config, read_toml(path), path)
    return config


def save_project_rule(root: Path, rule: str) -> Path:
    """Add an allow rule to the project's config (.mtp-agent/config.toml), keeping its comments."""
    path = root / PROJECT_CONFIG
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.is_file() else tomlkit.document()
    permissions = document.setdefault("permissions", tomlkit.table())
    allow = permissions.setdefault("allow", tomlkit.array())
    if rule not in allow:
        allow.append(rule)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, tomlkit.dumps(document).encode("utf-8"))
    return path
