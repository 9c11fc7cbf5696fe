"""`agent mtp graft` trains an MTP head for a model that ships without one; `agent mtp eval`
measures how often its drafts are accepted, per draft position, on held-out code."""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from itertools import islice
from typing import Callable, Iterator

import numpy as np

from agent.errors import AgentError
from agent.backends.engine_settings import EngineSettings
from agent.backends.model_store import resolve_model
from agent.engine_tools.mtp_answers import AnswerStore, answer_chunks, collect_answers, mixed, requests

EVAL_PROMPT_TOKENS = 128
TEACHER_FORCED_TOKENS = 512  # per held-out chunk in `agent mtp eval`'s teacher-forced column
DRAFT_VOCAB_SAMPLE = 65_536  # base-model choices counted to choose the draft vocabulary
DEFAULT_ANSWERS = 600  # with their requests ~230,000 tokens: 27 min of generation for the default model on 2 cores


def _sources(args: argparse.Namespace):
    from inference.code_corpus import default_roots, find_sources, split

    roots = ([] if args.no_default_corpus else default_roots()) + [Path(d).expanduser() for d in args.corpus]
    if not roots:
        raise AgentError("no corpus: give folders with --corpus DIR, or drop --no-default-corpus")
    try:
        files = find_sources(roots)
    except FileNotFoundError as e:
        raise AgentError(str(e)) from e
    train, held_out = split(files)
    if not train or not held_out:
        raise AgentError(f"the corpus ({', '.join(map(str, roots))}) has {len(files)} source files, too few to split "
                         "into training and held-out files; add folders with --corpus")
    return roots, train, held_out


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressPrinter:
    """One line every `every` seconds (and at each held-out estimate), on stderr."""

    def __init__(self, every: float = 15.0):
        self.every, self.last, self.last_heldout = every, 0.0, None

    def __call__(self, p) -> None:
        now = time.monotonic()
        fresh = p.heldout_acceptance is not None and p.heldout_acceptance != self.last_heldout
        if now - self.last < self.every and not fresh and p.step != p.steps:
            return
        self.last, self.last_heldout = now, p.heldout_acceptance
        heldout = f"{100 * p.heldout_acceptance:.1f}%" if p.heldout_acceptance is not None else "-"
        print(f"step {p.step}/{p.steps}  {p.tokens:,} tokens  loss {p.loss:.3f}  acceptance: train {100 * p.train_acceptance:.1f}% "
              f"held-out {heldout}  {p.tokens_per_second:.0f} tok/s  ETA {_duration(p.eta_seconds)}", file=sys.stderr, flush=True)


def _answers(args: argparse.Namespace, base_path: Path, train: list, path: Path, seed: int) -> list[list[int]]:
    """The base model's own answers to requests made from the training files (generated once, kept)."""
    from inference import SamplingParams

    store = AnswerStore(path)
    engine = None
    started, have = time.monotonic(), len(store.load())

    def generate(request: str) -> list[int]:
        nonlocal engine
        if engine is None:  # only when answers are missing
            engine = EngineSettings(model=str(base_path), device=args.device, ctx=4096, spec="ngram").load()[0]
        ids = _chat_ids(engine, request)
        return ids + engine.generate(ids, sampling=SamplingParams(), max_new_tokens=args.answer_tokens).token_ids

    last_print = 0.0

    def progress(done: int, total: int, tokens: int) -> None:
        nonlocal last_print
        if time.monotonic() - last_print < 15 and done != total:
            return
        last_print = time.monotonic()
        rate = (done - have) / max(time.monotonic() - started, 1e-9)
        print(f"answers {done}/{total}  {tokens:,} tokens  ETA {_duration((total - done) / max(rate, 1e-9))}",
              file=sys.stderr, flush=True)

    if have < args.answers:
        print(f"the base model answers {args.answers - have} coding requests made from the training files "
              f"(kept in {path})", file=sys.stderr)
    answers = collect_answers(generate, requests(train, seed), store, args.answers, progress)
    del engine
    return answers


def cmd_graft(args: argparse.Namespace) -> int:
    from inference.code_corpus import frequent_tokens, token_chunks
    from inference.mtp_export import write_sidecar
    from inference.mtp_train import Base, Checkpoint, GraftSettings, Interrupted, evaluate, train_head
    from inference.tokenizer import Tokenizer

    base_path = resolve_model(args.model)
    out = Path(args.out) if args.out else base_path.with_name(f"mtp-{base_path.stem}.gguf")
    settings = replace(GraftSettings(), **{k: v for k, v in (("tokens", args.tokens), ("seq_len", args.seq_len),
                                                                ("lr", args.lr), ("seed", args.seed)) if v is not None})
    roots, train, held_out = _sources(args)
    base = Base.load(base_path)
    encode = Tokenizer.from_gguf(base.gguf).encode
    checkpoint = Checkpoint(out.with_name(out.name + ".ckpt"))
    if args.restart:
        checkpoint.path.unlink(missing_ok=True)
    init = Path(args.init).expanduser() if args.init else None
    if init is not None and not init.is_file():
        raise AgentError(f"--init {init}: no such file (give the .ckpt or the mtp-*.gguf of an earlier run)")
    run_key = {"base": base.gguf.fingerprint(), "seq_len": settings.seq_len, "seed": settings.seed, "lr": settings.lr,
               "corpus": sorted(str(r) for r in roots), "answers": args.answers, "answer_share": args.answer_share,
               "init": str(init) if init else None}
    n_heldout = max(settings.heldout_tokens // settings.seq_len, 1)
    heldout = [c for c, _ in zip(token_chunks(held_out, encode, settings.seq_len, settings.seed), range(n_heldout))]
    languages = {f.language for f in held_out}
    print(f"grafting an MTP head onto {base_path.name}: {settings.tokens:,} tokens from {len(train):,} files "
          f"({len(held_out):,} held out: {', '.join(sorted(languages))}); checkpoints in {checkpoint.path}", file=sys.stderr)
    answers = _answers(args, base_path, train, out.with_name(out.name + ".answers.jsonl"), settings.seed) if args.answers else []

    def training_chunks() -> Iterator[np.ndarray]:
        code = token_chunks(train, encode, settings.seq_len, settings.seed)
        return mixed(code, answer_chunks(answers, settings.seq_len, settings.seed), args.answer_share) if answers else code

    try:
        head = train_head(base, training_chunks(), heldout, settings, checkpoint, run_key, ProgressPrinter(), init=init)
    except Interrupted:
        print(f"interrupted; the checkpoint is saved: run the same command to resume ({checkpoint.path})", file=sys.stderr)
        return 130
    teacher = [base.teach(c) for c in heldout]
    acceptance = evaluate(head, base, heldout, teacher)
    vocab, covered = None, 1.0
    if args.draft_coverage < 1.0:
        # what the base model itself picks on training text (its choices, not the text, are what drafts must hit)
        choices_on_train = (base.teach(c)[1].argmax(-1).numpy() for c in training_chunks())
        vocab = frequent_tokens(choices_on_train, base.cfg.vocab_size, DRAFT_VOCAB_SAMPLE, args.draft_coverage)
        choices = np.concatenate([t.argmax(-1).numpy() for _, t in teacher])
        covered = float(np.isin(choices, vocab).mean())
    write_sidecar(head, base.gguf, out, quantized=not args.f32, draft_vocab=None if vocab is None else vocab.tolist(),
                  notes={"tokens": settings.tokens, "heldout_acceptance": round(acceptance, 4), "seq_len": settings.seq_len,
                         "answers": len(answers)})
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): held-out first-draft acceptance {100 * acceptance:.1f}% "
          f"on {len(heldout) * settings.seq_len:,} tokens"
          + (f"; drafts among {len(vocab):,} of {base.cfg.vocab_size:,} tokens, which hold {100 * covered:.1f}% of the "
             "base model's held-out choices" if vocab is not None else ""))
    return 0


def _chat_ids(engine, request: str) -> list[int]:
    if engine.chat_template is not None:
        return engine.chat_prompt([{"role": "user", "content": request}])
    return engine.tokenizer.encode(request + "\n\n", add_special=True)  # a base model without a chat template


def _teacher_forced_scorer(engine, base_path: Path, chunks: int, seed: int) -> Callable[[list], float] | None:
    """files -> first-draft acceptance at every position of `chunks` held-out chunks of them,
    teacher-forced (what `agent mtp graft` estimates), for a grafted head; None for a model's own
    MTP block, which the trainer does not load."""
    from inference.code_corpus import token_chunks
    from inference.mtp_train import Base, agreement

    source = engine.mtp_head.source.gguf.path
    if source.resolve() == base_path.resolve():
        return None
    base = Base.load(base_path)
    head = base.head_from(source)

    def score(files: list) -> float:
        texts = islice(token_chunks(files, engine.tokenizer.encode, TEACHER_FORCED_TOKENS, seed), chunks)
        return float(np.mean([agreement(head, base, t, engine.mtp_head.draft_ids) for t in texts] or [np.nan]))
    return score


def cmd_eval(args: argparse.Namespace) -> int:
    from inference import SamplingParams

    base_path = resolve_model(args.model)
    _, _, held_out = _sources(args)
    engine = EngineSettings(model=str(base_path), device=args.device, ctx=4096, spec="mtp", spec_n_max=args.draft,
                            mtp=Path(args.mtp) if args.mtp else None).load()[0]
    if engine.mtp_head is None:
        raise AgentError(f"{base_path.name} has no MTP head: train one with `agent mtp graft`, or give --mtp FILE")
    rng = random.Random(args.seed or 0)
    teacher_forced = _teacher_forced_scorer(engine, base_path, args.prompts, args.seed or 0)

    def accepted_per_position(prompts: Iterator[list[int]]) -> tuple[int, np.ndarray]:
        counts, n = np.zeros((2, args.draft), dtype=np.int64), 0
        for ids in prompts:
            if n >= args.prompts:
                break
            completion = engine.generate(ids, sampling=SamplingParams(), max_new_tokens=args.new_tokens)
            spec = completion.stats.speculative or {}
            for i, (d, a) in enumerate(zip(spec.get("drafted_at", []), spec.get("accepted_at", []))):
                if i < args.draft:
                    counts[:, i] += (d, a)
            n += 1
        return n, counts

    def file_prompts(files: list) -> Iterator[list[int]]:
        for f in files:
            ids = engine.tokenizer.encode(f.path.read_text(encoding="utf-8", errors="replace"))
            if len(ids) >= EVAL_PROMPT_TOKENS + args.new_tokens:
                yield ids[:EVAL_PROMPT_TOKENS]

    by_language: dict[str, list] = {}
    for f in held_out:
        by_language.setdefault(f.language, []).append(f)
    rows, forced = [], {}
    for language, files in sorted(by_language.items()):
        rng.shuffle(files)
        rows.append((language, *accepted_per_position(file_prompts(files))))
        if teacher_forced is not None:
            forced[language] = teacher_forced(files)
    rows.append(("all", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    if forced:
        forced["all"] = float(np.nanmean(list(forced.values())))
    rows.append(("answers", *accepted_per_position(_chat_ids(engine, r) for r in requests(held_out, args.seed or 0))))
    print(f"MTP head {engine.mtp_head.source.description} on {base_path.name}: greedy, drafts of {args.draft}, "
          f"{args.new_tokens} tokens each after {EVAL_PROMPT_TOKENS}-token prompts from held-out files (and, for "
          "`answers`, after coding requests made from them): the share of drafts at each position accepted"
          + ("; `forced`: first-draft acceptance at every position of "
             f"{args.prompts} held-out {TEACHER_FORCED_TOKENS}-token chunks per language, teacher-forced" if forced else ""))
    header = "".join(f"   pos {i + 1}" for i in range(args.draft)) + ("  forced" if forced else "")
    print(f"{'text':<8}{'prompts':>8}{header}")
    for language, prompts, counts in rows:
        shares = "".join(f"{100 * a / d:7.1f}%" if d else "       -" for d, a in zip(*counts))
        if forced:
            share = forced.get(language, np.nan)
            shares += f"{100 * share:7.1f}%" if not np.isnan(share) else "       -"
        print(f"{language:<8}{prompts:>8}{shares}")
    return 0


def cmd_mtp(args: argparse.Namespace) -> int:
    return cmd_graft(args) if args.mtp_command == "graft" else cmd_eval(args)


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    mtp = sub.add_parser("mtp", parents=[common], help="graft an MTP head onto a model without one, and measure it")
    mtp_sub = mtp.add_subparsers(dest="mtp_command", metavar="ACTION", required=True)
    corpus = argparse.ArgumentParser(add_help=False)
    corpus.add_argument("--corpus", action="append", default=[], metavar="DIR",
                        help="more source folders (repeatable); by default the Python standard library and installed packages")
    corpus.add_argument("--no-default-corpus", action="store_true", help="use only the --corpus folders")
    corpus.add_argument("--seed", type=int, help="order of the files (default 0)")
    graft = mtp_sub.add_parser("graft", parents=[common, corpus], help="train an MTP head on the frozen model, written as mtp-*.gguf")
    graft.add_argument("--tokens", type=int, metavar="N", help="training tokens (default 1,000,000: about two hours for the default model on 2 cores)")
    graft.add_argument("--seq-len", type=int, metavar="N", help="tokens per training chunk (default 512)")
    graft.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    graft.add_argument("--out", metavar="FILE", help="the sidecar to write (default: mtp-<model>.gguf next to the model)")
    graft.add_argument("--restart", action="store_true", help="ignore a checkpoint of an earlier run")
    graft.add_argument("--init", metavar="FILE", help="start from the head of an earlier run (its .ckpt or mtp-*.gguf) "
                       "instead of the model's last block")
    graft.add_argument("--answers", type=int, default=DEFAULT_ANSWERS, metavar="N",
                       help=f"train also on the model's own answers to N coding requests made from the training files "
                            f"(default {DEFAULT_ANSWERS}; 0: source files only)")
    graft.add_argument("--answer-share", type=float, default=0.5, metavar="P",
                       help="share of the training chunks taken from those answers (default 0.5)")
    graft.add_argument("--answer-tokens", type=int, default=256, metavar="N", help="longest answer (default 256 tokens)")
    graft.add_argument("--f32", action="store_true", help="write F32 weights instead of Q8_0")
    graft.add_argument("--draft-coverage", type=float, default=0.99, metavar="P",
                       help="draft among the tokens the model picks most often on training text, as many as make up "
                            "this share of its picks (default 0.99; 1: all tokens); the draft LM head shrinks accordingly")
    ev = mtp_sub.add_parser("eval", parents=[common, corpus], help="acceptance per draft position on held-out code")
    ev.add_argument("--draft", type=int, default=4, metavar="N", help="draft length (default 4)")
    ev.add_argument("--prompts", type=int, default=24, metavar="N", help="prompts per language (default 24)")
    ev.add_argument("--new-tokens", type=int, default=64, metavar="N", help="tokens generated per prompt (default 64)")
