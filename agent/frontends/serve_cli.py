"""`agent serve` on the command line: its options, and starting the server (agent/frontends/serve.py)."""

from __future__ import annotations

import argparse
import sys

from agent.errors import AgentError


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser("serve", parents=[common], help="serve the model over an OpenAI-compatible HTTP API "
                                                           "(/v1/chat/completions, /v1/completions, /v1/models, /health)")
    serve.add_argument("--backend", choices=["embedded", "scripted"], default="embedded",
                       help="embedded: the in-process engine; scripted: replay --script (for tests)")
    serve.add_argument("--script", metavar="FILE", help="model turns to replay (scripted backend)")
    serve.add_argument("--temperature", type=float, help="default sampling temperature (a request's own wins; default 0)")
    serve.add_argument("--no-constrain", dest="constrain", action="store_false", default=None,
                       help="let the model write tool calls freely instead of within a grammar of the offered tools")
    serve.add_argument("--max-tokens", type=int, metavar="N", help="a request's token bound when it gives none (default 2048)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--api-key", metavar="KEY", help="require 'Authorization: Bearer KEY' on every request")
    serve.add_argument("--max-queue", type=int, default=8, metavar="N",
                       help="requests that may wait while one decodes; more get 429 (default 8)")


def cmd_serve(args: argparse.Namespace, settings) -> int:
    import uvicorn

    from agent.core.config import Config
    from agent.core.setup import make_backend
    from agent.frontends.serve import Server

    if args.max_queue < 0:
        raise AgentError(f"--max-queue must be 0 or more (got {args.max_queue})")
    if not 0 < args.port < 65536:
        raise AgentError(f"--port must be from 1 to 65535 (got {args.port})")
    backend = make_backend(settings, Config())
    server = Server(backend, api_key=args.api_key, max_waiting=args.max_queue)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        print(f"agent serve: warning: listening on {args.host} without --api-key: anyone who can reach it can use it",
              file=sys.stderr)
    print(f"agent serve: {backend.model} on http://{args.host}:{args.port}/v1", file=sys.stderr, flush=True)
    uvicorn.run(server.app(), host=args.host, port=args.port, log_level="warning")
    return 0
