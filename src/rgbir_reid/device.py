"""Device selection: ``auto`` picks CUDA when present, else CPU."""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Map a config value (``auto``, ``cpu``, ``cuda``, ``cuda:1``) to a device.

    A ``torch.device`` is returned unchanged (not checked), so library functions can take
    either a config string or a device the caller already chose.

    Raises:
        ValueError: if CUDA is asked for by name but not available, naming the value.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} was asked for but CUDA is not available; use 'auto' or 'cpu'")
    return device
