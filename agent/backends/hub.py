"""`--model hf:OWNER/REPO[:QUANT]`, as `llama-server -hf` reads it: the repository's GGUF file of that
quantization, fetched with huggingface_hub (which honours HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE).
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.errors import AgentError

DEFAULT_QUANT = "Q4_K_M"
_SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)  # llama.cpp's split files


def parse_reference(reference: str) -> tuple[str, str | None]:
    """`OWNER/REPO[:QUANT]` -> (repo id, quant or None)."""
    repo, _, quant = reference.partition(":")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise AgentError(f"'hf:{reference}' is not a hub reference; write hf:OWNER/REPO or hf:OWNER/REPO:QUANT, "
                         "e.g. hf:Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M")
    return repo, quant or None


def pick_gguf(files: list[str], quant: str | None, repo: str) -> str:
    """The file for QUANT (case-insensitive, matched as a word of the name), else Q4_K_M if there is
    one, else the first. Projector files (mmproj) and split models are not candidates."""
    candidates = sorted(f for f in files if f.lower().endswith(".gguf") and "mmproj" not in Path(f).name.lower()
                        and not _SPLIT_PART.search(f))
    if not candidates:
        raise AgentError(f"hf:{repo} holds no single-file GGUF model (split files and mmproj projectors are not supported)")
    wanted = quant or DEFAULT_QUANT
    pattern = re.compile(rf"(^|[^a-z0-9]){re.escape(wanted.lower())}([^a-z0-9_]|$)")
    matching = [f for f in candidates if pattern.search(Path(f).name.lower())]
    if matching:
        return matching[0]
    if quant is None:
        return candidates[0]
    raise AgentError(f"hf:{repo} has no GGUF file for {quant}; it has {', '.join(Path(f).name for f in candidates)}")


def pull_from_hub(reference: str, into: Path, show_progress: bool = True) -> Path:
    """The local path of the referenced GGUF, downloaded under `into`/OWNER/REPO on first use."""
    repo, quant = parse_reference(reference)
    local_dir = into / repo
    from huggingface_hub import hf_hub_download, list_repo_files
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    try:
        files = list_repo_files(repo)
    except Exception as e:  # noqa: BLE001 - offline, missing repo, no access: all end the same way
        cached = [str(p.relative_to(local_dir)) for p in local_dir.rglob("*.gguf")] if local_dir.is_dir() else []
        if not cached:
            raise AgentError(f"cannot list the files of hf:{repo} on the hub ({_first_line(e)}); check the name, "
                             "the network, or HF_TOKEN for a gated repository") from e
        files = cached  # offline, but fetched before
    filename = pick_gguf(files, quant, repo)
    was_disabled = are_progress_bars_disabled()
    if not show_progress:
        disable_progress_bars()
    try:
        return Path(hf_hub_download(repo, filename, local_dir=local_dir))
    except Exception as e:  # noqa: BLE001
        raise AgentError(f"cannot download {filename} from hf:{repo} ({_first_line(e)})") from e
    finally:
        if not was_disabled:
            enable_progress_bars()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
