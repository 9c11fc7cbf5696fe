"""Setting up an agent: the workspace, config, backend, session and system prompt. Every front end
(headless `agent run`, the TUI, the REPL) starts here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import git

from agent.core import context, environment
from agent.backends.base import Backend
from agent.core.config import PROJECT_CONFIG, Config, load_config
from agent.tools.mcp_client import mcp_tools, servers_from_config
from agent.errors import AgentError
from agent.core.events import EventSink, InitEvent
from agent.core.loop import Agent, Limits
from agent.core.permissions import Approver, Permissions
from agent.prompts import render_prompt
from agent.core.session import Session
from agent.tools import TOOLS
from agent.tools.base import Workspace
from agent.tools.network import NETWORK_SETTINGS

REPO_MAP_CHARS = 4000  # small models have small contexts; the map is a start, the tools do the rest


@dataclass
class RunSettings:
    """What the command line (or the TUI) asked for; None means "from the config, else default"."""

    backend: str | None = None
    model: str | None = None
    script: Path | None = None
    base_url: str | None = None
    api_key: str | None = None
    max_turns: int | None = None
    max_time: float | None = None
    permission_mode: str | None = None
    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    continue_session: bool = False
    resume: str | None = None
    device: str = "auto"
    ctx: int | None = None
    weights: str = "auto"
    dtype: str = "auto"
    prefill_dtype: str = "auto"  # the many-row GEMMs of packed weights: auto, float32 or bfloat16
    activations: str = "auto"  # how the packed kernels round a few rows' activations: auto, int16 or int8
    kv_cache: str = "auto"  # the attention KV cache's storage: auto (the compute dtype) or q8
    chat_template: Path | None = None
    temperature: float | None = None
    look_first: bool | None = None  # the first turn must call a tool; None: config, else off
    auto_test: bool | None = None  # run the task's command or the tests after an edit; None: config, else on
    steer: bool | None = None  # repeated calls steered away; None: config, else on
    workflow: str | None = None  # auto, fix or free (core/workflow.py); None: config, else auto
    constrain: bool | None = None  # tool calls within a grammar (embedded backend); None: config, else on
    spec: str | None = None
    spec_n_max: int = 3
    mtp: Path | None = None
    draft_model: str | None = None  # a GGUF path or catalog name (--draft-model)
    max_tokens: int | None = None  # per model turn; None: [backend] max_new_tokens / max_tokens, else the context left
    trust_project: bool = False  # the repository's own config may widen what runs (and this is remembered)


def _flag_or_config(flag: bool | None, table: dict, key: str, default: bool) -> bool:
    return flag if flag is not None else bool(table.get(key, default))


def untrusted_warning(ignored: list[str]) -> str:
    return (f"ignoring {', '.join(ignored)} from {PROJECT_CONFIG}: this folder is not trusted; "
            "if you trust it, run `agent trust` (or pass --trust-project)")


def find_root(cwd: Path) -> Path:
    """The repository root containing cwd, or cwd itself outside a git repository."""
    try:
        return Path(git.Repo(cwd, search_parent_directories=True).working_tree_dir).resolve()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, TypeError):
        return cwd.resolve()


def make_backend(settings: RunSettings, config: Config) -> Backend:
    if settings.max_tokens is not None and settings.max_tokens < 1:
        raise AgentError(f"--max-tokens must be at least 1 (got {settings.max_tokens})")
    name = settings.backend or config.backend.get("name", "embedded")
    if name == "scripted":
        from agent.backends.scripted import ScriptedBackend

        script = settings.script or config.backend.get("script")
        if not script:
            raise AgentError("the scripted backend needs --script FILE (a JSON Lines file of model turns)")
        return ScriptedBackend.from_file(Path(script), int(settings.ctx or config.backend.get("context_window", 32768)))
    if name == "openai":
        from agent.backends.openai import OpenAIBackend

        flags = {"base_url": settings.base_url, "api_key": settings.api_key, "model": settings.model,
                 "context_window": settings.ctx, "max_tokens": settings.max_tokens}
        try:
            return OpenAIBackend.from_settings({k: v for k, v in flags.items() if v is not None}, os.environ, config.backend)
        except ValueError as e:
            raise AgentError(str(e)) from e
    if name == "embedded":
        return _embedded_backend(settings, config)
    raise AgentError(f"unknown backend '{name}'; use embedded, openai or scripted")


def _embedded_backend(settings: RunSettings, config: Config) -> Backend:
    from inference import SamplingParams

    from agent.backends.embedded import EmbeddedBackend
    from agent.backends.engine_settings import EngineSettings

    engine_settings = EngineSettings.from_config(settings, config)
    engine, path, _ = engine_settings.load()
    return EmbeddedBackend(engine, path.name, SamplingParams(temperature=engine_settings.temperature),
                           max_new_tokens=engine_settings.max_new_tokens, constrain=engine_settings.constrain)


def system_prompt(root: Path) -> str:
    return render_prompt("system.md", root=root, instructions=context.project_instructions(root),
                         repo_map=context.repo_map(root, REPO_MAP_CHARS))


def open_session(settings: RunSettings, root: Path, backend: Backend) -> Session:
    if settings.resume:
        return Session.load(root, settings.resume)
    if settings.continue_session:
        return Session.latest(root)
    session = Session.create(root, {"backend": backend.name, "model": backend.model})
    session.add_message({"role": "system", "content": system_prompt(root)})
    return session


def prepare(settings: RunSettings, cwd: Path, on_event: EventSink, approver: Approver | None = None) -> tuple[Agent, InitEvent]:
    root = find_root(cwd)
    config = load_config(root, trust_project=settings.trust_project)
    permissions = Permissions.from_settings(settings.permission_mode or config.permission_mode,
                                            config.allow + settings.allow, config.deny + settings.deny)
    backend = make_backend(settings, config)
    session = open_session(settings, root, backend)
    limits = Limits(max_turns=settings.max_turns or int(config.agent.get("max_turns", 30)),
                    max_seconds=settings.max_time or config.agent.get("max_time"),
                    look_first=_flag_or_config(settings.look_first, config.agent, "look_first", False),
                    steer=_flag_or_config(settings.steer, config.agent, "steer", True),
                    auto_test=_flag_or_config(settings.auto_test, config.agent, "auto_test", True),
                    workflow=settings.workflow or str(config.agent.get("workflow", "auto")))
    network = str(config.agent.get("network", "auto"))
    if network not in NETWORK_SETTINGS:
        raise AgentError(f"[agent] network must be one of {', '.join(NETWORK_SETTINGS)}, not '{network}'")
    workspace = Workspace(root, attribution=f"mtp-agent:{backend.model}", network=network)
    extra, mcp_warnings = mcp_tools(servers_from_config(config.mcp, "config [mcp]"))
    tools = {**TOOLS, **{tool.name: tool for tool in extra}}
    agent = Agent(backend, environment.Environment(tools, workspace, permissions, approver), session, on_event, limits)
    warnings = ([untrusted_warning(config.ignored)] if config.ignored else []) + mcp_warnings
    init = InitEvent(session.id, backend.name, backend.model, str(root), permissions.mode, list(tools),
                     bool(settings.resume or settings.continue_session), backend.context_window, warnings)
    return agent, init
