"""What the engine reports while it runs and when it ends (maps directly onto wire messages)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Progress:
    step: int  # steps done so far (1-based)
    steps: int
    total: float
    style: float
    content: float
    elapsed: float  # seconds since the job started
    eta: float  # seconds still to go, from the mean step time so far
    texture: np.ndarray | None = None  # (S, S, 3, or 4 with the original's alpha) float32 in [0, 1], at the chosen cadence
    network: str = ""  # the feature network that runs and why ("efficientnet_lite0 (auto: ...)")


@dataclass
class StyleResult:
    texture: np.ndarray  # (S, S, 3, or 4 with the original's alpha) float32 in [0, 1], image layout, sRGB-encoded values
    report: dict = field(default_factory=dict)
    cancelled: bool = False
    uvs: np.ndarray | None = None  # (F, 3, 2): the UVs the texture is made for, where they are new (unwrap even)
