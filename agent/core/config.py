"""Settings from config files: the user's (~/.config/mtp-agent/config.toml) and the project's
(.mtp-agent/config.toml at the repository root), the project's winning. Flags override both."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
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


def user_config_dir() -> Path:
    return Path(os.environ.get("MTP_AGENT_CONFIG_DIR") or platformdirs.user_config_dir("mtp-agent"))


def user_config_path() -> Path:
    return user_config_dir() / "config.toml"


@dataclass
class Config:
    permission_mode: str = "ask"
    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    backend: dict[str, Any] = field(default_factory=dict)  # name, model, base_url, api_key, context_window, ...
    agent: dict[str, Any] = field(default_factory=dict)  # max_turns, max_time, shell_timeout, ...
    hooks: dict[str, Any] = field(default_factory=dict)  # timeout, fail_closed, fail_on, style (the git hooks)
    mcp: dict[str, Any] = field(default_factory=dict)  # {"servers": {NAME: {command, args, env} or {url}}}
    sources: list[Path] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # the project's widening settings, left out: folder not trusted


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
                "constrain", "spec", "script", "read_timeout", "draft_model", "kv_cache"},
    "agent": {"max_turns", "max_time", "look_first", "steer", "auto_test", "workflow", "network"},
    "hooks": {"timeout", "fail_closed", "fail_on", "style"},
    "mcp": {"servers"},  # [mcp.servers.NAME] tables: tools/mcp_client.py checks them
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
    config.mcp.setdefault("servers", {}).update(data.get("mcp", {}).get("servers", {}))
    config.sources.append(source)


def load_config(root: Path, user_file: Path | None = None, trust_project: bool = False) -> Config:
    """The user's config, then the project's; the project's settings that widen what runs apply
    only when the folder is trusted (`trust_project` trusts it, and remembers that)."""
    config = Config()
    user_file = user_file or user_config_path()
    if user_file.is_file():
        _merge(config, read_toml(user_file), user_file)
    project = _project_table(root)
    if project is not None:
        path, data = project
        widening = widening_settings(data)
        if widening and trust_project:
            trust_folder(root)
        elif widening and not is_trusted(root):
            config.ignored = widening
            data = _without_widening(data)
        _merge(config, data, path)
    return config


def _project_table(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The repository's own config file and its table (keys checked), if it has one."""
    path = root / PROJECT_CONFIG
    if not path.is_file():
        return None
    data = read_toml(path)
    _check_keys(data, path)
    return path, data


def save_project_rule(root: Path, rule: str) -> Path:
    """Add an allow rule to the project's config (.mtp-agent/config.toml), keeping its comments; the
    person who answered "always" trusts the folder's settings as they stand with it."""
    path = root / PROJECT_CONFIG
    trusted = not path.is_file() or is_trusted(root)
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.is_file() else tomlkit.document()
    permissions = document.setdefault("permissions", tomlkit.table())
    allow = permissions.setdefault("allow", tomlkit.array())
    if rule not in allow:
        allow.append(rule)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, tomlkit.dumps(document).encode("utf-8"))
    if trusted:
        trust_folder(root)
    return path


# -- trusting a folder's own settings ----------------------------------------------------------------
# A cloned repository's .mtp-agent/config.toml is the repository author's, not the user's: what
# widens what runs without asking, or where code and prompts are sent, waits for the user's trust
# (as Claude Code and Codex ask before a folder's settings apply). Narrowing settings always apply.
WIDENING_BACKEND_KEYS = {"name", "base_url", "api_key", "model", "script", "draft_model"}
NARROW_MODES = {"ask", "plan"}


def widening_settings(data: dict[str, Any]) -> list[str]:
    """The settings of a config table that widen what runs or where data goes, as `section.key = value`."""
    found = []
    permissions, backend = data.get("permissions", {}), data.get("backend", {})
    if "mode" in permissions and permissions["mode"] not in NARROW_MODES:
        found.append(f"permissions.mode = {permissions['mode']!r}")
    if permissions.get("allow"):
        found.append(f"permissions.allow = {permissions['allow']!r}")
    found += [f"backend.{key} = {backend[key]!r}" for key in sorted(WIDENING_BACKEND_KEYS & set(backend))]
    if data.get("mcp", {}).get("servers"):  # MCP servers are programs started at once
        found.append(f"mcp.servers = {sorted(data['mcp']['servers'])!r}")
    return found


def _without_widening(data: dict[str, Any]) -> dict[str, Any]:
    permissions = {k: v for k, v in data.get("permissions", {}).items()
                   if k == "deny" or (k == "mode" and v in NARROW_MODES)}
    backend = {k: v for k, v in data.get("backend", {}).items() if k not in WIDENING_BACKEND_KEYS}
    return {**data, "permissions": permissions, "backend": backend, "mcp": {}}


def _trust_file() -> Path:
    return user_config_dir() / "trusted-folders.json"


def _digest(root: Path) -> str:
    path = root / PROJECT_CONFIG
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def _trusted() -> dict[str, str]:
    try:
        table = json.loads(_trust_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def is_trusted(root: Path) -> bool:
    """Whether the user trusted this folder's config file as it is now (a changed file asks again)."""
    return _trusted().get(str(root.resolve())) == _digest(root)


def trust_folder(root: Path) -> None:
    table = _trusted()
    table[str(root.resolve())] = _digest(root)
    _trust_file().parent.mkdir(parents=True, exist_ok=True)
    write_atomic(_trust_file(), json.dumps(table, indent=1, sort_keys=True).encode("utf-8"))


def untrusted_settings(root: Path) -> list[str]:
    """What this folder's config would widen, when the folder is not trusted yet (else nothing)."""
    project = _project_table(root)
    if project is None or is_trusted(root):
        return []
    return widening_settings(project[1])
