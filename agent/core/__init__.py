"""The agent itself, whatever draws it: the loop, its session, the context it sends, tool-call parsing, events, permissions, checkpoints, config and setup."""
