"""Per-scene job settings and the panel's state (bpy-facing)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .controls import DEFAULT_STRENGTH
from .protocol import FEATURE_CHOICES

FEATURES = list(FEATURE_CHOICES)
# A painting's weight in the mix: the first painting's (on the controls) and each further one's.
BLEND = {"name": "Weight", "default": 1.0, "min": 0.0, "max": 100.0, "description": "This painting's share of the style"}


class StyleTexPainting(bpy.types.PropertyGroup):
    """One more painting to mix into the style, with its weight. The item's `name` is the painting's file
    path: collections passed to an operator as dicts must give a name, so the path is it
    (`paintings=[{"name": "/path/wave.jpg", "weight": 0.5}]`)."""

    name: StringProperty(name="Painting", subtype="FILE_PATH")
    weight: FloatProperty(**BLEND)


class JobControls:
    """The artist's controls: the same properties on the scene's settings (the panel) and on the stylize
    operator, which the panel fills from them (Blender gathers annotations from a mixin like this)."""

    blend_weight: FloatProperty(**BLEND)
    style_scale: FloatProperty(
        name="Style Scale", default=1.0, min=0.125, max=8.0,
        description="The painting's size against the renders: 2 gives bigger brush strokes and motifs, 0.5 finer ones")
    preserve_colors: BoolProperty(
        name="Preserve Colors", default=False,
        description="Keep the texture's own colours; take only the light and dark of the painting's strokes")
    strength: FloatProperty(
        name="Strength", default=DEFAULT_STRENGTH, min=0.0, max=1.0, subtype="FACTOR",
        description="From subtle (the object's markings stay) to strong (the painting takes over)")
    advanced_weights: BoolProperty(
        name="Raw Weights", default=False,
        description="Use the style and content weights below instead of the strength slider")
    uv_map: StringProperty(
        name="UV Map", default="", description="Empty: the map the image node uses, else the active render map")
    selected_only: BoolProperty(
        name="Selected Faces Only", default=False,
        description="Restyle the faces selected in Edit Mode; the others keep their texels exactly")
    auto_unwrap: BoolProperty(
        name="Auto Unwrap", default=False,
        description="A mesh without UV map gets one (Smart UV Project, named StyleTex_UV); nothing else changes")
    even_uvs: BoolProperty(
        name="Even UV Room", default=False,
        description="Restyle in a UV map of even texel density made for StyleTex (Smart UV Project, named "
                    "StyleTex_Even), so parts the object's own UVs squeeze, like tails and fins, get strokes too. The "
                    "styled image is shown through that map; Revert puts the original image and UVs back")
    keep_own_uvs: BoolProperty(
        name="Keep Own UVs", default=False,
        description="With Even UV Room: the backend restyles in even UVs of its own and hands the image back in the "
                    "object's own UV map, so the model and its other textures keep their UVs and no map is added. "
                    "Evens out parts packed denser than the rest (a head, a face) as well")
    animate: BoolProperty(
        name="Animate", default=False,
        description="Make a texture that morphs over frames (aligned interpolation), played from the scene's start "
                    "frame as an image sequence saved beside the .blend")
    animate_frames: IntProperty(name="Frames", default=24, min=2, max=240, description="Frames of the morph")
    animate_to: EnumProperty(name="Morph", default="painting", items=[
        ("painting", "To a Second Painting", "From the style painting to the second painting"),
        ("original", "From the Original", "From the object's own texture to the style painting")])
    animate_style_path: StringProperty(name="Second Painting", subtype="FILE_PATH",
                                       description="The painting the last frame takes")


class StyleTexSettings(JobControls, bpy.types.PropertyGroup):
    style_path: StringProperty(name="Style Image", subtype="FILE_PATH", description="The painting whose style to apply")
    paintings: CollectionProperty(type=StyleTexPainting, name="More Paintings")
    painting_index: IntProperty(name="Active Painting", default=0, min=0)
    texture_size: IntProperty(name="Texture Size", default=1024, min=64, max=4096)
    render_size: IntProperty(name="Render Size", default=512, min=64, max=2048)
    steps: IntProperty(name="Steps", default=400, min=1, max=100000)
    style_weight: FloatProperty(name="Style Weight", default=1.0, min=0.0)
    content_weight: FloatProperty(name="Content Weight", default=1.5, min=0.0)
    features: EnumProperty(name="Network", items=FEATURES, default="auto")
    seed: IntProperty(name="Seed", default=0, min=0)
    # Panel state, written by the main thread only.
    status: StringProperty(name="Status", default="")
    last_error: StringProperty(name="Last Error", default="")
    note: StringProperty(name="Note", default="")  # what the backend said of the job's input (its UVs)
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
