"""Errors the engine raises for bad input: each message names the input and says what to do."""


class EngineError(Exception):
    """Base class: a problem with the user's input (model file, template, options), not a bug."""


class ModelFileError(EngineError):
    """The file is missing, unreadable, truncated or not GGUF."""


class UnsupportedModelError(EngineError):
    """A valid GGUF file that this engine cannot run (architecture, tensor type, missing tensor)."""


class TokenizerError(EngineError):
    """The GGUF vocabulary cannot be turned into a tokenizer."""


class ChatTemplateError(EngineError):
    """The chat template is missing, broken, or tried to do something the sandbox forbids."""
