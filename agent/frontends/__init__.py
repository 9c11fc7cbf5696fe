"""The ways in: the `agent` command line, headless `agent run`, the interactive session behind the TUI and the line REPL."""
