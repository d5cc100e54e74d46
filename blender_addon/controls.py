"""The artist's controls as job settings (pure Python, no bpy): the strength slider and the paintings.

Strength runs from "subtle" (0) to "strong" (1). It moves the content weight on a log scale around the
backend's tuned default (1.5 at 0.5): four times that at subtle, where the object's own markings dominate, a
quarter at strong, where the painting does. The style weight stays 1: only the ratio of the two matters.
"""

from __future__ import annotations

from typing import Sequence

DEFAULT_STRENGTH = 0.5
DEFAULT_CONTENT = 1.5  # the backend's default content weight (StyleSettings.content_weight)
CONTENT_RANGE = 4.0  # strength 0 multiplies it by this, strength 1 divides it by this


def weights_for_strength(strength: float) -> tuple[float, float]:
    """(style_weight, content_weight) for a strength in [0, 1] (clamped)."""
    strength = min(max(float(strength), 0.0), 1.0)
    return 1.0, DEFAULT_CONTENT * CONTENT_RANGE ** (1.0 - 2.0 * strength)


def blend_setting(weights: Sequence[float]) -> str:
    """The `style_blend` setting for the paintings' weights; "" (equal) for a single painting."""
    return "" if len(weights) < 2 else ",".join(repr(float(w)) for w in weights)


def style_settings(weights: Sequence[float], style_scale: float, preserve_colors: bool, strength: float,
                   raw_weights: tuple[float, float] | None = None) -> dict:
    """The job settings the controls stand for. raw_weights (style, content) replace the strength's."""
    style_weight, content_weight = raw_weights if raw_weights is not None else weights_for_strength(strength)
    return {"style_blend": blend_setting(weights), "style_scale": float(style_scale),
            "preserve_colors": bool(preserve_colors), "style_weight": float(style_weight),
            "content_weight": float(content_weight)}
