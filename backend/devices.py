"""Device choice: CUDA when present, CPU otherwise."""

from __future__ import annotations

import torch

from .errors import StyleTexError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' fails clearly when there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise StyleTexError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise StyleTexError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)
