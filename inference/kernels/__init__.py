"""Optional compiled kernels. `cpu` is None when the C extension was not built or the CPU lacks AVX2."""

from __future__ import annotations

from types import ModuleType

import torch


def _load_cpu_kernels() -> ModuleType | None:
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        return None
    try:
        from . import _cpu  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _cpu


cpu: ModuleType | None = _load_cpu_kernels()
