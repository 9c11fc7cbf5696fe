"""Settings from config files: the user's (~/.config/mtp-agent/config.toml) and the project's
(.mtp-agent/config.toml at the repository root), the project's winning. Flags override both."""

from __future__ import annotations

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


def _merge(config: Config, data: dict[str, Any], source: Path) -> None:
    known = {"permissions", "backend", "agent", "hooks"}
    unknown = set(data) - known
    if unknown:
        raise AgentError(f"config file {source} has unknown section(s) {sorted(unknown)}; known: {sorted(known)}")
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
