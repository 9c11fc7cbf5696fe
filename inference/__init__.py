"""mtp-agent's inference engine: GGUF models run in-process with PyTorch.

    from inference import Engine, SamplingParams
    engine = Engine.load("model.gguf", device="auto")
    for delta in engine.stream(messages=[{"role": "user", "content": "hi"}]):
        print(delta, end="")

This package never imports `agent`.
"""

from .engine import Completion, Engine, Generation
from .errors import ChatTemplateError, EngineError, ModelFileError, TokenizerError, UnsupportedModelError
from .generate import GenerationStats
from .sampling import SamplingParams

__all__ = [
    "ChatTemplateError",
    "Completion",
    "Engine",
    "EngineError",
    "Generation",
    "GenerationStats",
    "ModelFileError",
    "SamplingParams",
    "TokenizerError",
    "UnsupportedModelError",
]
