"""mtp-agent: a terminal coding agent around an in-process GGUF engine (see `inference`)."""

__version__ = "0.1.0"
