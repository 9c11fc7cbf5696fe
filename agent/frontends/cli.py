"""The `agent` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from agent import __version__
from agent.backends.catalog import DEFAULT_MODEL
from agent.errors import AgentError
from agent.frontends.output import FORMATS


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after the command name. Only the top-level parser
    holds defaults: a subcommand's parser must not overwrite a value given before it."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", metavar="FILE|NAME", default=default(None),
                        help="GGUF file, catalog model name (see `agent models list`) or hf:OWNER/REPO[:QUANT]; "
                             f"names are fetched on first use (default: {DEFAULT_MODEL.name})")
    common.add_argument("--device", default=default("auto"), choices=["auto", "cpu", "cuda"],
                        help="where to run the model (auto: CUDA when present)")
    common.add_argument("--ctx", type=int, metavar="N", default=default(None),
                        help="context size in tokens (default: the model's, at most 32768)")
    common.add_argument("--weights", default=default("auto"), choices=["auto", "packed", "dense"],
                        help="packed: keep GGUF blocks and use the CPU kernels (on a GPU the Triton ones, speed unmeasured); "
                             "dense: dequantize at load (auto: packed on CPU, dense on GPU)")
    common.add_argument("--dtype", default=default("auto"), choices=["auto", "float32", "bfloat16", "float16"],
                        help="compute dtype (auto: bfloat16 on GPU, float32 on CPU)")
    common.add_argument("--prefill-dtype", default=default("auto"), choices=["auto", "float32", "bfloat16"],
                        help="GEMM dtype of the CPU's packed weights for many-token inputs such as a prompt "
                             "(auto: bfloat16 where the CPU multiplies it natively, AVX512-BF16 or AMX, ~2.5x "
                             "faster prefill; float32 elsewhere, and exact)")
    common.add_argument("--activations", default=default("auto"), choices=["auto", "int16", "int8"],
                        help="how the CPU's packed kernels round a few tokens' activations (decode, verify): int8 "
                             "as llama.cpp does, or int16 per 32 values (~1e-4 relative error); auto: int8 for "
                             "K-quant weights (the 1.5B coder decodes 2.1x faster, perplexity +0.2%%), int16 for "
                             "the others")
    common.add_argument("--kv-cache", default=default("auto"), choices=["auto", "q8"],
                        help="how the attention KV cache is stored: auto, the compute dtype (float32 on CPU, "
                             "bfloat16 on GPU); q8, 8-bit blocks of 32 with an fp16 scale as llama.cpp's q8_0 "
                             "(a quarter of float32's memory, ~0.5%% relative error in attention)")
    common.add_argument("--chat-template", metavar="FILE", default=default(None),
                        help="a jinja chat template to use instead of the model's own")
    common.add_argument("--spec", default=default(None), choices=["auto", "mtp", "ngram", "draft", "off"],
                        help="speculative decoding: the model's MTP head, prompt lookup and a --draft-model with "
                             "adaptive draft lengths (auto, the default), the MTP head only, prompt lookup only, "
                             "the draft model only, or none")
    common.add_argument("--spec-draft-n-max", type=int, metavar="N", default=default(3),
                        help="most tokens drafted per step (default 3)")
    common.add_argument("--mtp", metavar="FILE", default=default(None),
                        help="an MTP sidecar (mtp-*.gguf) for a model converted without its MTP block")
    common.add_argument("-md", "--draft-model", metavar="FILE|NAME", default=default(None),
                        help="a smaller model of the same vocabulary that drafts for speculative decoding "
                             "(llama.cpp's -md), e.g. qwen2.5-coder-0.5b for qwen2.5-coder-1.5b")
    common.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks for errors")
    return common


def _backend_options(defaults: bool) -> argparse.ArgumentParser:
    """Which model answers: what the agent and the git helper share."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", choices=["embedded", "openai", "scripted"], default=default(None),
                         help="where the model runs (default: embedded)")
    backend.add_argument("--script", metavar="FILE", default=default(None), help="model turns to replay (scripted backend)")
    backend.add_argument("--base-url", default=default(None),
                         help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 (openai backend)")
    backend.add_argument("--api-key", default=default(None), help="API key for the server (or MTP_AGENT_API_KEY / OPENAI_API_KEY)")
    backend.add_argument("--temperature", type=float, default=default(None),
                         help="sampling temperature for the embedded model (default 0: greedy)")
    backend.add_argument("--no-constrain", dest="constrain", action="store_false", default=default(None),
                         help="let the embedded model write tool calls freely instead of within a grammar of the "
                              "offered tools (config: [backend] constrain = false)")
    return backend


def _agent_options(defaults: bool) -> argparse.ArgumentParser:
    """What the interactive UI (`agent`) and the headless `agent run` share."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    agent = argparse.ArgumentParser(add_help=False, parents=[_backend_options(defaults)])
    agent.add_argument("--max-turns", type=int, metavar="N", default=default(None), help="stop after N model turns (default 30)")
    agent.add_argument("--workflow", choices=["free", "fix", "auto"], default=default(None),
                       help="auto (default): fix for embedded models of at most 4B parameters when the task asks "
                            "for a change or a question, else free; fix: the agent runs the failing command, reads "
                            "what it points at, asks the model what must change and for each file's new text, re-runs "
                            "the command and retries from the start on failure; free: the model drives")
    agent.add_argument("--no-steer", dest="steer", action="store_false", default=default(None),
                       help="run repeated calls again instead of steering the model away from them ([agent] steer)")
    agent.add_argument("--no-auto-test", dest="auto_test", action="store_false", default=default(None),
                       help="after the model edits files, do not run the task's command or the tests for it "
                            "([agent] auto_test)")
    agent.add_argument("--look-first", dest="look_first", action="store_true", default=default(None),
                       help="the first turn of a task must call a tool before anything is answered ([agent] look_first)")
    agent.add_argument("--max-time", type=float, metavar="SECONDS", default=default(None),
                       help="stop after this much wall time, even while the model is writing")
    agent.add_argument("--max-tokens", type=int, metavar="N", default=default(None),
                       help="at most N generated tokens per model turn (default: [backend] max_new_tokens, 2048 "
                            "for the embedded model; for a server, the room the context has left)")
    agent.add_argument("--permission-mode", choices=["ask", "accept-edits", "plan", "yolo"], default=default(None),
                       help="ask: edits and commands need approval (denied when headless); accept-edits: edits run, "
                            "commands need approval; plan: read-only; yolo: everything runs")
    agent.add_argument("--allow", action="append", default=default([]), metavar="RULE",
                       help="allow calls matching RULE, e.g. 'shell(pytest *)'")
    agent.add_argument("--deny", action="append", default=default([]), metavar="RULE", help="deny calls matching RULE (deny wins)")
    agent.add_argument("--trust-project", action="store_true", default=default(False),
                       help="let this repository's own .mtp-agent/config.toml widen what runs (mode, allow rules, "
                            "backend server or model) and remember that for this content of the file; without it an "
                            "untrusted folder's widening settings are ignored with a warning")
    resume = agent.add_mutually_exclusive_group()
    resume.add_argument("-c", "--continue", dest="continue_session", action="store_true", default=default(False),
                        help="continue the latest session of this repository")
    resume.add_argument("-r", "--resume", metavar="ID", default=default(None), help="continue the session ID (see `agent sessions`)")
    return agent


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(defaults=False)
    parser = argparse.ArgumentParser(
        prog="agent", parents=[_common_options(defaults=True), _agent_options(defaults=True)],
        description="A coding agent that runs a local GGUF model in-process. Without a command it opens the "
                    "terminal UI in the current repository (a line-based REPL with --plain or without a terminal).")
    parser.add_argument("--version", action="version", version=f"mtp-agent {__version__}")
    parser.add_argument("--plain", action="store_true", help="use the line-based REPL instead of the full-screen UI")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = sub.add_parser("generate", parents=[common], help="stream a completion for a prompt to stdout")
    gen.add_argument("prompt", help="the prompt text ('-' reads it from stdin)")
    gen.add_argument("--chat", action="store_true", help="wrap the prompt as a user message in the model's chat template")
    gen.add_argument("--system", help="system message (with --chat)")
    gen.add_argument("-n", "--max-tokens", type=int, default=512, help="most tokens to generate (default 512)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--min-p", type=float, default=0.0)
    gen.add_argument("--repeat-penalty", type=float, default=1.0)
    gen.add_argument("--seed", type=int, help="seed for sampling (same seed, same output)")
    gen.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop before this text (repeatable)")
    gen.add_argument("--stats", action="store_true", help="print speed and memory to stderr at the end")

    bench = sub.add_parser("bench", parents=[common], help="measure prefill and decode speed (with --spec: plain against speculative decoding, per task), or perplexity")
    bench.add_argument("--prefill", type=int, default=512, metavar="N", help="prompt tokens per run (default 512)")
    bench.add_argument("--decode", type=int, default=128, metavar="N", help="generated tokens per run (default 128)")
    bench.add_argument("--runs", type=int, default=3, help="measured runs; medians are reported (default 3)")
    bench.add_argument("--prompt-file", metavar="FILE", help="text to take the prompt tokens from")
    bench.add_argument("--ppl", metavar="FILE", help="report perplexity over this text file instead")
    bench.add_argument("--ppl-ctx", type=int, default=512, metavar="N", help="perplexity window in tokens (default 512)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")

    run = sub.add_parser("run", parents=[common, _agent_options(defaults=False)], help="run the agent on a task without a UI (headless)",
                         description="Run the agent on a task. Exit codes: 0 done, 1 model or tool failure, "
                                     "2 bad usage or input, 3 limit reached, 4 stuck (kept repeating calls), 130 interrupted.")
    run.add_argument("task", nargs="?", help="a file holding the task ('-' reads it from stdin)")
    run.add_argument("-p", "--prompt", help="the task as text instead of a file")
    run.add_argument("--output-format", choices=FORMATS, default="text")

    undo = sub.add_parser("undo", parents=[common], help="restore the files as they were before the agent's last edits")
    undo.add_argument("--session", metavar="ID", help="undo in this session (default: the latest checkpoint of any)")
    sub.add_parser("sessions", parents=[common], help="this repository's saved sessions, newest first")
    trust = sub.add_parser("trust", parents=[common], help="let this repository's .mtp-agent/config.toml widen what runs "
                                                           "(shown first; remembered until the file changes)")
    trust.add_argument("--yes", action="store_true", help="trust without asking")

    _git_helper_parsers(sub, [common, _backend_options(defaults=False)])

    from agent.engine_tools.mtp_graft import add_parsers as add_mtp_parsers

    add_mtp_parsers(sub, common)

    from agent.engine_tools.evaluate import add_parser as add_eval_parser
    from agent.frontends.serve_cli import add_parser as add_serve_parser

    add_serve_parser(sub, common)

    add_eval_parser(sub, [common, _backend_options(defaults=False)])

    models = sub.add_parser("models", parents=[common], help="fetch, list and inspect models")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = models_sub.add_parser("pull", parents=[common], help="fetch a catalog model (or hf:OWNER/REPO[:QUANT]) into the cache")
    pull.add_argument("name", nargs="?", help="what to fetch (default: --model, else the default model)")
    models_sub.add_parser("list", parents=[common], help="the catalog's models, whether each is cached, and other files in the cache")
    info = models_sub.add_parser("info", parents=[common], help="architecture, size, types and memory needs of a GGUF")
    info.add_argument("file", nargs="?", help="the GGUF file (default: --model, else the default model)")
    info.add_argument("--gpu-memory", metavar="SIZE", help="say whether the model fits a GPU of this much memory (24GiB, 24GB, 16000MiB)")
    return parser


def _git_helper_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    from agent.hooks.commands import hook_options
    from agent.hooks.review import SEVERITIES

    fail_on = ["none", *SEVERITIES]
    msg = sub.add_parser("commit-msg", parents=parents, help="write a commit message for the staged changes")
    msg.add_argument("--write", metavar="FILE", help="put the message on top of FILE (a commit message file) instead of printing it")
    msg.add_argument("--style", choices=["auto", "conventional", "history"], default="auto",
                     help="auto (default): Conventional Commits unless the recent history clearly uses another style")

    review = sub.add_parser("review", parents=parents, help="review the staged changes (or a range) and print findings",
                            description="Prints findings as path:line: severity: message. Exit codes: 0 no finding at or "
                                        "above --fail-on, 1 at least one, 2 bad usage or no model.")
    what = review.add_mutually_exclusive_group()
    what.add_argument("--staged", action="store_true", help="review the staged changes (the default)")
    what.add_argument("--range", metavar="A..B", help="review the changes between two revisions")
    review.add_argument("--format", choices=["text", "json"], default="text")
    review.add_argument("--fail-on", choices=fail_on, default="high", help="exit 1 on a finding this severe or worse (default high)")

    hooks = sub.add_parser("hooks", parents=parents, help="install, remove or inspect the git hooks")
    hooks_sub = hooks.add_subparsers(dest="hooks_command", metavar="ACTION", required=True)
    budget = hook_options()
    install = hooks_sub.add_parser("install", parents=[*parents, budget], help="install the prepare-commit-msg hook (and, with --review, pre-commit)")
    install.add_argument("--review", action="store_true", help="also install the pre-commit review hook")
    hooks_sub.add_parser("uninstall", parents=parents, help="remove our hooks and put back the ones that were there")
    hooks_sub.add_parser("status", parents=parents, help="which hooks are installed, and where")
    run = hooks_sub.add_parser("run", parents=[*parents, budget], help="what the installed hooks call")
    run.add_argument("hook", choices=["prepare-commit-msg", "pre-commit"])
    run.add_argument("hook_args", nargs=argparse.REMAINDER, help="the arguments git gave the hook (options may come among them)")


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # text a model wrote that is not valid Unicode prints escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command or "interactive"](args)
    except KeyboardInterrupt:
        print("agent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:
        if not _is_user_error(e):
            raise
        if args.debug:
            traceback.print_exc()
        print(f"agent: error: {e}", file=sys.stderr)
        return 2


def _is_user_error(error: Exception) -> bool:
    """An error to report in one line. The engine's errors are checked without importing the
    engine (and PyTorch), so commands that need no model start fast."""
    inference = sys.modules.get("inference")
    return isinstance(error, AgentError) or (inference is not None and isinstance(error, inference.EngineError))


def _load_engine(args: argparse.Namespace):
    """The engine the flags ask for; the engine commands take flags only, not the config."""
    from agent.backends.engine_settings import EngineSettings
    from agent.core.config import Config

    return EngineSettings.from_config(_run_settings(args), Config()).load()


def cmd_generate(args: argparse.Namespace) -> int:
    from inference import SamplingParams

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    sampling = SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                              repetition_penalty=args.repeat_penalty, seed=args.seed)
    engine, _, _ = _load_engine(args)
    if args.chat:
        messages = ([{"role": "system", "content": args.system}] if args.system else []) + [{"role": "user", "content": prompt}]
        stream = engine.stream(messages=messages, sampling=sampling, max_new_tokens=args.max_tokens, stop=args.stop)
    else:
        stream = engine.stream(prompt, sampling=sampling, max_new_tokens=args.max_tokens, stop=args.stop)
    for delta in stream:
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if args.stats:
        s = stream.completion.stats
        print(f"[{s.prompt_tokens} prompt tokens at {s.prefill_tokens_per_second:.1f} tok/s, "
              f"{s.generated_tokens} generated at {s.decode_tokens_per_second:.1f} tok/s, "
              f"peak memory {s.peak_memory_bytes / 2**20:.0f} MiB, stopped by {stream.completion.finish_reason}]",
              file=sys.stderr)
        if s.speculative:
            sp = s.speculative
            print(f"[speculative ({sp['mode']}): {sp['accepted']}/{sp['drafted']} drafts accepted "
                  f"({100 * sp['acceptance']:.0f}%), {sp['tokens_per_forward']:.2f} tokens per forward]", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from agent.engine_tools.bench import format_spec_bench, perplexity, run_bench, run_spec_bench

    engine, path, load_seconds = _load_engine(args)
    if args.spec and not args.ppl:
        r = run_spec_bench(engine, path, args.spec, args.decode, args.runs, args.prefill)
        print(json.dumps(r.as_dict()) if args.json else format_spec_bench(r))
        return 0
    if args.ppl:
        text = _read_text(args.ppl, "--ppl")
        r = perplexity(engine, text, args.ppl_ctx)
        if args.json:
            print(json.dumps({"model": path.name, "perplexity": r.perplexity, "scored_tokens": r.scored_tokens,
                              "windows": r.windows, "context": r.context, "seconds": round(r.seconds, 3)}))
        else:
            print(f"perplexity {r.perplexity:.4f} over {r.scored_tokens} tokens of {args.ppl} "
                  f"({r.windows} windows of {r.context} tokens; the second half of each window is scored) in {r.seconds:.1f} s")
        return 0
    text = _read_text(args.prompt_file, "--prompt-file") if args.prompt_file else None
    engine.spec = "off"  # plain decoding; --spec compares it with speculation
    r = run_bench(engine, path, load_seconds, args.prefill, args.decode, args.runs, text=text)
    if args.json:
        print(json.dumps(r.as_dict()))
        return 0
    print(f"model    {r.model} on {r.device} ({r.dtype}, {r.weights} weights, {r.threads} threads), loaded in {r.load_seconds:.2f} s")
    print(f"prefill  {r.prefill_tokens_per_second:8.1f} tok/s   ({r.prefill_tokens} tokens, {r.prefill_dtype} GEMMs; "
          f"median of {r.runs}: {r.prefill_runs})")
    print(f"decode   {r.decode_tokens_per_second:8.1f} tok/s   ({r.decode_tokens} tokens, {r.activations} activations; "
          f"median of {r.runs}: {r.decode_runs})")
    print(f"peak RSS {r.peak_rss_bytes / 2**20:8.0f} MiB" if r.device == "cpu" else f"peak GPU {r.peak_rss_bytes / 2**20:8.0f} MiB")
    print(f"KV cache {r.kv_cache_bytes / 2**20:8.0f} MiB   ({r.kv_cache}, {engine.cache.max_tokens} tokens)")
    return 0


def _read_text(path: str, flag: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise AgentError(f"cannot read {flag} {path}: {e.strerror}") from e


def cmd_models(args: argparse.Namespace) -> int:
    if args.models_command == "pull":
        return _models_pull(args.name or args.model)
    if args.models_command == "list":
        _models_list()
        return 0
    from agent.frontends.models_info import cmd_models_info

    return cmd_models_info(args)


def _models_pull(name: str | None) -> int:
    from agent.backends import model_store
    from agent.backends.catalog import CATALOG, DEFAULT_MODEL

    show_progress = sys.stderr.isatty()
    if name is None or name.lower() in CATALOG:
        path, fetched = model_store.pull(CATALOG[name.lower()] if name else DEFAULT_MODEL, show_progress=show_progress)
        print(f"{'fetched' if fetched else 'already present'}: {path}")
    else:  # hf:OWNER/REPO[:QUANT], or an error that lists the names
        print(f"present: {model_store.resolve_model(name, show_progress=show_progress)}")
    return 0


def _models_list() -> None:
    from agent.backends import model_store
    from agent.backends.catalog import CATALOG, DEFAULT_MODEL

    mib = lambda n: f"{n / 2**20:9.1f} MiB"  # noqa: E731
    directory = model_store.models_dir()
    print(f"catalog ({DEFAULT_MODEL.name} is the default; `agent models pull NAME` fetches one into {directory}):")
    width = max(len(name) for name in CATALOG)
    for model in CATALOG.values():
        state = "cached    " if model_store.is_cached(model) else "not cached"
        default = "  (default)" if model == DEFAULT_MODEL else ""
        print(f"  {model.name:<{width}} {mib(model.size)}  {state}  {model.about}{default}")
    known = {model_store.model_path(m) for m in CATALOG.values()}
    others = [path for path in model_store.list_models() if path not in known]
    if others:
        print(f"other files in {directory}:")
    for path in others:
        print(f"  {mib(path.stat().st_size)}  {path.relative_to(directory)}")
    if not any(model_store.is_cached(m) for m in CATALOG.values()) and not others:
        print(f"no models in {directory} yet; run 'agent models pull [NAME]'")


def cmd_run(args: argparse.Namespace) -> int:
    from agent.frontends.output import make_output
    from agent.frontends.run import run_task

    if args.prompt is not None and args.task is not None:
        raise AgentError("give the task as a file or with --prompt, not both")
    if args.prompt is not None:
        task = args.prompt
    elif args.task == "-":
        task = sys.stdin.read()
    elif args.task:
        task = _read_text(args.task, "the task file")
    else:
        raise AgentError("no task: give a task file, '-' to read it from stdin, or --prompt TEXT")
    result = run_task(_run_settings(args), task, Path.cwd(), make_output(args.output_format))
    return result.exit_code


def _run_settings(args: argparse.Namespace):
    """The RunSettings the parsed options give (a command without an option keeps its default)."""
    from dataclasses import fields

    from agent.core.setup import RunSettings

    given = {f.name: getattr(args, f.name) for f in fields(RunSettings) if hasattr(args, f.name)}
    for name in ("script", "chat_template", "mtp"):  # draft_model stays a string: a file or a catalog name
        given[name] = Path(given[name]) if given.get(name) else None
    return RunSettings(**given, spec_n_max=args.spec_draft_n_max)


def _serve(args: argparse.Namespace) -> int:
    from agent.frontends.serve_cli import cmd_serve

    return cmd_serve(args, _run_settings(args))


def _trust(args: argparse.Namespace) -> int:
    from agent.frontends.trust import cmd_trust

    return cmd_trust(args)


def _mtp(args: argparse.Namespace) -> int:
    from agent.engine_tools.mtp_graft import cmd_mtp

    return cmd_mtp(args)


def _eval(args: argparse.Namespace) -> int:
    from agent.engine_tools.evaluate import cmd_eval

    return cmd_eval(args)


def _git_helper(name: str):
    def command(args: argparse.Namespace) -> int:
        from agent.hooks import commands

        return getattr(commands, name)(args, _run_settings(args))
    return command


def cmd_interactive(args: argparse.Namespace) -> int:
    """`agent` alone: the terminal UI, or the REPL where there is no terminal to draw on."""
    settings = _run_settings(args)
    if args.plain or not (sys.stdin.isatty() and sys.stdout.isatty()):
        from agent.frontends.repl import run_repl

        return run_repl(settings, Path.cwd())
    from agent.frontends.tui.app import run_tui

    return run_tui(settings, Path.cwd())


def cmd_undo(args: argparse.Namespace) -> int:
    from agent.core.checkpoints import CheckpointError, undo_last
    from agent.core.setup import find_root

    try:
        checkpoint, report = undo_last(find_root(Path.cwd()), args.session)
    except CheckpointError as e:
        raise AgentError(str(e)) from e
    print(f"restored the files as they were before {checkpoint.label} of session {checkpoint.session_id}")
    for label, paths in (("restored", report.restored), ("deleted", report.deleted), ("recreated", report.recreated)):
        for path in paths:
            print(f"  {label}: {path}")
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    from agent.core.setup import find_root
    from agent.core.session import list_sessions

    root = find_root(Path.cwd())
    sessions = list_sessions(root)
    if not sessions:
        print(f"no sessions for {root}")
    for s in sessions:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.modified))
        print(f"{s.id}  {stamp}  {s.first_task}")
    return 0


COMMANDS = {"interactive": cmd_interactive, "generate": cmd_generate, "bench": cmd_bench, "models": cmd_models,
            "run": cmd_run, "undo": cmd_undo, "sessions": cmd_sessions, "commit-msg": _git_helper("cmd_commit_msg"),
            "review": _git_helper("cmd_review"), "hooks": _git_helper("cmd_hooks"), "mtp": _mtp, "eval": _eval,
            "trust": _trust, "serve": _serve}
