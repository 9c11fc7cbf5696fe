"""`agent models info`: what a GGUF holds and what running it takes in memory (inference/memory_plan.py)."""

from __future__ import annotations

import argparse

from agent.errors import AgentError

# (device, weights, label); GPU speed with packed weights is unmeasured, so they are not the GPU default yet
LAYOUTS = (("cpu", "auto", "CPU, packed weights"), ("cuda", "dense", "GPU, bf16 weights"),
           ("cuda", "packed", "GPU, packed (Triton)"))


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


def cmd_models_info(args: argparse.Namespace) -> int:
    from inference.gguf_file import GGUFFile
    from inference.memory_plan import parse_size, plan_memory
    from inference.model_info import describe

    from agent.backends.model_store import resolve_model

    try:
        gpu_memory = parse_size(args.gpu_memory) if args.gpu_memory else None
    except ValueError as e:
        raise AgentError(f"--gpu-memory: {e}") from None
    g = GGUFFile(resolve_model(args.file or args.model))
    info = describe(g)
    ctx = args.ctx or info.context_length or 4096
    print(f"file           {info.path} ({mib(info.file_bytes)})")
    if info.name:
        print(f"name           {info.name}")
    print(f"architecture   {info.architecture}" + ("" if info.supported else "  (not supported by this engine)"))
    print(f"parameters     {info.parameters / 1e6:,.1f}M")
    if info.n_layer:
        layers = f"{info.n_layer - info.mtp_layers} layers + {info.mtp_layers} MTP" if info.mtp_layers else f"{info.n_layer} layers"
        print(f"shape          {layers}, d_model {info.d_model}, heads {info.n_head} (kv {info.n_head_kv}), head_dim {info.head_dim}"
              + (f"; {info.kv_layers} keep attention KV, the rest are Gated DeltaNet" if info.kv_layers is not None else ""))
    print(f"context length {info.context_length}")
    print(f"vocabulary     {info.vocab_size} tokens, {info.tokenizer or 'no tokenizer'}; chat template: {'yes' if info.has_chat_template else 'no'}")
    print(f"MTP block      {'yes (' + str(info.mtp_layers) + ' layer' + ('s' if info.mtp_layers > 1 else '') + ')' if info.mtp_layers else 'no'}")
    types = ", ".join(f"{name} x{count} ({mib(size)})" for name, (count, size) in info.tensor_types.items())
    print(f"tensor types   {types}")
    if not info.supported:
        return 0
    print(f"\nmemory at {ctx:,} tokens, KV cache {args.kv_cache} (auto: the compute dtype, float32 on CPU, bf16 on GPU):")
    print(f"  {'':24}{'weights':>12}{'MTP':>12}{'KV cache':>12}{'recurrent':>12}{'activations*':>14}{'total':>12}")
    gpu_totals = {}
    for device, weights, label in LAYOUTS:
        plan = plan_memory(g, ctx, device, args.kv_cache, weights, args.spec_draft_n_max)
        if device == "cuda":
            gpu_totals[weights] = plan.total
        print(f"  {label:24}{mib(plan.weights):>12}{mib(plan.mtp):>12}{mib(plan.kv):>12}{mib(plan.recurrent):>12}"
              f"{mib(plan.activations):>14}{mib(plan.total):>12}")
    print("  * an estimate: one prefill chunk of 2,048 tokens; the rest is what the engine allocates")
    if gpu_memory is not None:
        verdicts = [f"{'yes' if total <= gpu_memory else 'no, ' + mib(total - gpu_memory) + ' short'} with {weights} weights"
                    for weights, total in gpu_totals.items()]
        print(f"fits a GPU of {mib(gpu_memory)}: {'; '.join(verdicts)}")
    return 0
