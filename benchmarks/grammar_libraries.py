"""llguidance against xgrammar on this machine: the cost of constraining an agent's turn to
"a plain answer or tool calls matching the offered tools", with a real vocabulary.

For each library: time to index the vocabulary, time to compile the grammar for the agent's
tools, and the time to compute the full next-token mask at every position of a few realistic
turns (a plain answer, a short call, a long edit call), fed token by token. Both libraries see
the same vocabulary and the same turns; llguidance gets the grammar the embedded backend uses,
xgrammar the same shape as a structural tag (free text until `<tool_call>`, then one of the
tools' schemas).

    python benchmarks/grammar_libraries.py [MODEL.gguf]   (default: the catalog's Qwen2.5-Coder 0.5B)

xgrammar is not a dependency of the project: `pip install xgrammar` to include it.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

from agent.backends.catalog import CATALOG
from agent.backends.model_store import ensure_model
from agent.backends.tool_grammar import tool_turn_grammar
from agent.core.toolcalls import format_tool_call
from agent.tools import TOOLS
from inference.gguf_file import GGUFFile
from inference.grammar import GrammarConstraint, grammar_tokenizer
from inference.tokenizer import Tokenizer

EDIT = "def median(values):\n    ordered = sorted(values)\n    middle = len(ordered) // 2\n" * 6
TURNS = {
    "answer": "The default port is 8080; it is set in config.py as DEFAULT_PORT and read by server.start().",
    "read call": "Let me look at the file first.\n" + format_tool_call("read_file", {"path": "stats/median.py"}),
    "edit call": format_tool_call("edit_file", {"path": "stats/median.py", "old_string": EDIT, "new_string": EDIT.replace("//", "/")}),
}


def turn_tokens(tokenizer: Tokenizer) -> dict[str, list[int]]:
    end = tokenizer.special.eot if tokenizer.special.eot is not None else tokenizer.special.eos
    return {name: tokenizer.encode(text) + [end] for name, text in TURNS.items()}


def bench_llguidance(tokenizer: Tokenizer, tools: list[dict], turns: dict[str, list[int]]) -> dict:
    started = time.perf_counter()
    grammar_tokenizer(tokenizer)
    setup = time.perf_counter() - started
    grammar = tool_turn_grammar(tools)
    masks, compiles = [], []
    for tokens in turns.values():
        started = time.perf_counter()
        constraint = GrammarConstraint(tokenizer, grammar)
        compiles.append(time.perf_counter() - started)
        for token in tokens:
            started = time.perf_counter()
            constraint.matcher.compute_bitmask()
            masks.append(time.perf_counter() - started)
            assert constraint.allowed(token), f"llguidance refused {tokenizer.decode([token])!r}"
            constraint.advance(token)
    return {"setup": setup, "compile": statistics.median(compiles), "masks": masks}


def bench_xgrammar(tokenizer: Tokenizer, tools: list[dict], turns: dict[str, list[int]]) -> dict | None:
    try:
        import xgrammar as xg
    except ImportError:
        return None
    end = sorted(tokenizer.end_of_generation)
    started = time.perf_counter()
    info = xg.TokenizerInfo(list(tokenizer.id_to_bytes), vocab_type=xg.VocabType.RAW, stop_token_ids=end)
    compiler = xg.GrammarCompiler(info)
    setup = time.perf_counter() - started
    tags = [xg.StructuralTagItem(begin=f'<tool_call>\n{{"name": "{t["function"]["name"]}", "arguments": ',
                                 schema=t["function"]["parameters"], end="}\n</tool_call>") for t in tools]
    masks, compiles = [], []
    bitmask = xg.allocate_token_bitmask(1, tokenizer.vocab_size)
    for tokens in turns.values():
        started = time.perf_counter()
        matcher = xg.GrammarMatcher(compiler.compile_structural_tag(tags, ["<tool_call>"]))
        compiles.append(time.perf_counter() - started)
        for token in tokens:
            started = time.perf_counter()
            matcher.fill_next_token_bitmask(bitmask)
            masks.append(time.perf_counter() - started)
            assert matcher.accept_token(token), f"xgrammar refused {tokenizer.decode([token])!r}"
    return {"setup": setup, "compile": statistics.median(compiles), "masks": masks}


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ensure_model(CATALOG["qwen2.5-coder-0.5b"])
    torch.set_num_threads(2)
    tokenizer = Tokenizer.from_gguf(GGUFFile(path))
    tools = [tool.spec() for tool in TOOLS.values()]
    turns = turn_tokens(tokenizer)
    print(f"{path.name}: {tokenizer.vocab_size} tokens; {len(tools)} tools; turns of "
          + ", ".join(f"{len(t)} ({n})" for n, t in turns.items()))
    print(f"{'library':12} {'vocab index':>12} {'compile':>9} {'mask median':>12} {'mask p90':>9} {'mask max':>9}")
    for name, bench in (("llguidance", bench_llguidance), ("xgrammar", bench_xgrammar)):
        result = bench(tokenizer, tools, turns)
        if result is None:
            print(f"{name:12} not installed")
            continue
        masks = sorted(result["masks"])
        print(f"{name:12} {result['setup'] * 1e3:10.0f}ms {result['compile'] * 1e3:7.1f}ms "
              f"{statistics.median(masks) * 1e6:10.0f}us {masks[int(len(masks) * 0.9)] * 1e6:7.0f}us {masks[-1] * 1e6:7.0f}us")
    print(json.dumps({"note": "mask = the full next-token mask over the vocabulary, computed at every position"}))


if __name__ == "__main__":
    main()
