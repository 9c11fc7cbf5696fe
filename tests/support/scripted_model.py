"""A tiny GGUF model whose greedy output is known in advance: asked anything, it calls one tool;
once a tool's result is in the conversation, it answers. Its weights are set by hand, not random:

- every token's embedding is its own dimension (one-hot), and no rotary angle to speak of;
- one attention head finds the `</tool_response>` token anywhere in the context and writes a flag
  into the residual (the flag is 0 when no result came back);
- the feed-forward block fires only when the flag is set and the current token is the newline that
  opens the assistant's turn (silu(gate) * up is an AND of the two);
- the output matrix maps each token of a script to the next one; the AND feature starts the
  answer instead of the call.

So the same engine, template and grammar that serve a real model serve a scripted conversation:
a tool-using task end to end without a real model (issue 18: `--backend openai` against `agent
serve`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from inference.tokenizer import byte_to_unicode
from support.gguf_builder import write_out

TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "templates" / "qwen2.5-coder.jinja"
CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MARKUP_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]  # user-defined, as in Qwen's vocabulary
NORMAL, CONTROL, USER_DEFINED = 1, 3, 4
ROW = 32  # the engine reads float matrices in rows of whole 32-value blocks
HEAD_DIM = ROW
FFN_DIM = ROW
SIGNAL = HEAD_DIM - 1  # the head dimension whose rotary frequency is base^(-30/32): ~0 for the base below
ROPE_BASE = 1e30
STEP = 10.0  # logit weight of a script's next token
OPENING = 10.0  # gate weight of the opening newline in the AND


def write_scripted_model(path: Path, call: str, answer: str, context: int = 16384) -> Path:
    """A llama-architecture GGUF that, asked with the Qwen2.5 chat template, writes
    `<tool_call>{call}</tool_call>` at first and `answer` once a tool result came back."""
    b2u = byte_to_unicode()
    byte_tokens = [b2u[b] for b in range(256)]
    pieces = [call, answer]
    tokens = byte_tokens + CONTROL_TOKENS + MARKUP_TOKENS + ["".join(b2u[b] for b in p.encode()) for p in pieces]
    types = [NORMAL] * 256 + [CONTROL] * len(CONTROL_TOKENS) + [USER_DEFINED] * len(MARKUP_TOKENS) + [NORMAL] * 2
    ids = {name: 256 + i for i, name in enumerate(CONTROL_TOKENS + MARKUP_TOKENS)}
    call_id, answer_id = len(tokens) - 2, len(tokens) - 1
    newline = ord("\n")
    vocab = len(tokens)
    flag, opening = vocab, vocab + 1  # residual dimensions past the tokens' own
    d_model = -(-(vocab + 2) // ROW) * ROW

    embedding = np.eye(vocab, d_model, dtype=np.float32)
    query = np.zeros((HEAD_DIM, d_model), np.float32)
    query[SIGNAL, :vocab] = 1.0  # the same query at every position
    key = np.zeros((HEAD_DIM, d_model), np.float32)
    key[SIGNAL, ids["</tool_response>"]] = 1.0  # scores ~d_model/4 there, 0 elsewhere
    value = np.zeros((HEAD_DIM, d_model), np.float32)
    value[SIGNAL, ids["</tool_response>"]] = 1.0
    attn_output = np.zeros((d_model, HEAD_DIM), np.float32)
    attn_output[flag, SIGNAL] = 1.0
    gate = np.zeros((FFN_DIM, d_model), np.float32)
    gate[0, newline] = OPENING
    up = np.zeros((FFN_DIM, d_model), np.float32)
    up[0, flag] = 1.0
    down = np.zeros((d_model, FFN_DIM), np.float32)
    down[opening, 0] = 1.0
    output = np.zeros((vocab, d_model), np.float32)
    script = [(newline, ids["<tool_call>"]), (ids["<tool_call>"], call_id), (call_id, ids["</tool_call>"]),
              (ids["</tool_call>"], ids["<|im_end|>"]), (answer_id, ids["<|im_end|>"])]
    for current, following in script:
        output[following, current] = STEP
    output[answer_id, opening] = STEP  # outweighs the call's first step once a result came back

    w = GGUFWriter(str(path), "llama")
    w.add_name("scripted-tool-user")
    w.add_context_length(context)
    w.add_embedding_length(d_model)
    w.add_block_count(1)
    w.add_feed_forward_length(FFN_DIM)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([])
    w.add_bos_token_id(ids["<|endoftext|>"])
    w.add_eos_token_id(ids["<|im_end|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(TEMPLATE.read_text())
    ones = np.ones(d_model, np.float32)
    for name, tensor in (("token_embd.weight", embedding), ("blk.0.attn_norm.weight", ones),
                         ("blk.0.attn_q.weight", query), ("blk.0.attn_k.weight", key),
                         ("blk.0.attn_v.weight", value), ("blk.0.attn_output.weight", attn_output),
                         ("blk.0.ffn_norm.weight", ones), ("blk.0.ffn_gate.weight", gate),
                         ("blk.0.ffn_up.weight", up), ("blk.0.ffn_down.weight", down),
                         ("output_norm.weight", ones), ("output.weight", output)):
        w.add_tensor(name, tensor)
    write_out(w)
    return path
