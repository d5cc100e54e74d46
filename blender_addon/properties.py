"""Per-scene job settings and the panel's state (bpy-facing)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from .protocol import FEATURE_CHOICES

FEATURES = list(FEATURE_CHOICES)


class StyleTexSettings(bpy.types.PropertyGroup):
    style_path: StringProperty(name="Style Image", subtype="FILE_PATH", description="The painting whose style to apply")
    texture_size: IntProperty(name="Texture Size", default=1024, min=64, max=4096)
    render_size: IntProperty(name="Render Size", default=512, min=64, max=2048)
    steps: IntProperty(name="Steps", default=400, min=1, max=100000)
    style_weight: FloatProperty(name="Style Weight", default=1.0, min=0.0)
    content_weight: FloatProperty(name="Content Weight", default=1.0, min=0.0)
    features: EnumProperty(name="Network", items=FEATURES, default="auto")
    seed: IntProperty(name="Seed", default=0, min=0)
    # Panel state, written by the main thread only.
    status: StringProperty(name="Status", default="")
    last_error: StringProperty(name="Last Error", default="")
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
