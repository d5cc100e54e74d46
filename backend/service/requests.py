"""Turning a `submit` message into a validated job request (mesh, images, settings, preview).

Everything from the network is checked here, before any work starts; problems raise ProtocolError
with a machine-readable code, which the server returns as an `error` reply.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields

import numpy as np
from PIL import Image

from .protocol import MAX_PAINTINGS, Message, ProtocolError, painting_array_name

from ..errors import StyleTexError
from ..mesh import Mesh, make_mesh
from ..style.settings import OWN_UV_UNWRAPS, StyleSettings, parse_blend, settings_from_dict

# Settings a client may set. Not 'device' (the server's choice), never 'weights' (a path on the
# server's disk: a client must not make the server open files). 'unwrap' only as auto, keep or round-trip: a client
# sends the UVs it wants the result in (and 'texture_uvs' when its texture lies in others), and a round trip
# hands the result back in them; 'even' would return new UVs, which a client makes itself.
CLIENT_SETTINGS = {f.name for f in fields(StyleSettings)} - {"device", "weights"}


@dataclass(frozen=True)
class ServiceLimits:
    max_vertices: int = 2_000_000
    max_faces: int = 2_000_000
    max_image_side: int = 8192
    max_texture_size: int = 4096
    max_render_size: int = 2048
    max_steps: int = 100_000
    max_job_seconds: float = 0.0  # a running job is stopped after this long (0: never)
    max_jobs_per_client: int = 4  # queued and running, per client connection
    max_frames: int = 240  # frames of one interpolation job (each holds a texture)


@dataclass(frozen=True)
class PreviewOptions:
    every: int = 0  # steps between previews; 0 = none
    max_size: int = 0  # downscale previews so their side is at most this; 0 = full size
    format: str = "uint8"  # uint8 | float16 | float32


@dataclass(frozen=True)
class SequenceRequest:
    """An interpolation job (style/sequence.py): `frames` textures morphing to `style_to`, from the original
    texture, or to the channel `objective_to`."""

    frames: int
    style_to: np.ndarray | None = None
    from_original: bool = False
    objective_to: str = ""
    independent: bool = False


@dataclass
class JobRequest:
    mesh: Mesh
    style: list[np.ndarray] | None  # paintings (H, W, 3) float32 in [0, 1], in the order style_blend weighs them
    texture: np.ndarray | None  # (H, W, 3 or 4: an alpha is kept) float32 in [0, 1]
    settings: StyleSettings
    preview: PreviewOptions
    editable: np.ndarray | None = None  # (F,) bool: only these faces are restyled (see stylize)
    sequence: SequenceRequest | None = None  # an interpolation job instead of one texture
    # (F, 3, 2): the UVs `texture` is laid out in when the job's are new ones (the add-on's Even UV Room); the
    # worker moves the texture into the job's UVs before it starts
    texture_uvs: np.ndarray | None = None


def _image(message: Message, name: str, limits: ServiceLimits, keep_alpha: bool = False) -> np.ndarray | None:
    """An image array (H, W, 3|4) uint8/uint16/float, or encoded file bytes (1-D uint8), -> float32 RGB, or RGBA where
    `keep_alpha` and the image has an alpha (the original texture's: a job keeps it)."""
    if name not in message.arrays:
        return None
    data = message.arrays[name]
    if data.ndim == 1:
        if data.dtype != np.uint8:
            raise ProtocolError("bad_image", f"{name}: encoded image bytes must be uint8")
        try:
            with Image.open(io.BytesIO(data.tobytes())) as image:
                if max(image.size) > limits.max_image_side:
                    raise ProtocolError("too_large", f"{name}: image side {max(image.size)} exceeds {limits.max_image_side}")
                data = np.asarray(image.convert("RGBA" if keep_alpha and image.has_transparency_data else "RGB"))
        except ProtocolError:  # too_large above (a ValueError: it must not become bad_image)
            raise
        except Exception as exc:  # Pillow raises many kinds on crafted files (SyntaxError, IndexError, ...)
            raise ProtocolError("bad_image", f"{name}: cannot decode the image ({type(exc).__name__})") from None
    if data.ndim != 3 or data.shape[2] not in (3, 4) or min(data.shape[:2]) < 1:
        raise ProtocolError("bad_image", f"{name}: image must have shape (H, W, 3 or 4), got {list(data.shape)}")
    if max(data.shape[:2]) > limits.max_image_side:
        raise ProtocolError("too_large", f"{name}: image side {max(data.shape[:2])} exceeds {limits.max_image_side}")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(data.dtype, 1.0)
    image = data[..., : 4 if keep_alpha else 3].astype(np.float32) / scale
    if not np.isfinite(image).all():
        raise ProtocolError("bad_image", f"{name}: image contains NaN or Inf")
    return np.clip(image, 0.0, 1.0)


def _settings(raw: object, limits: ServiceLimits) -> StyleSettings:
    try:
        settings = settings_from_dict(raw, CLIENT_SETTINGS)
    except StyleTexError as exc:
        raise ProtocolError("bad_settings", str(exc)) from None
    if settings.unwrap not in OWN_UV_UNWRAPS:
        raise ProtocolError("bad_settings", f"unwrap must be auto, keep or round-trip here, not {settings.unwrap!r}: the result "
                                            "comes in the uvs sent (make even UVs and send those instead)")
    # Each limit has its own code, and the message says the limit (the add-on shows it as it is).
    for name, value, limit in (("texture_size", settings.texture_size, limits.max_texture_size),
                               ("render_size", settings.render_size, limits.max_render_size),
                               ("steps", settings.steps, limits.max_steps)):
        if value > limit:
            raise ProtocolError(f"limit_{name}", f"this backend allows {name} up to {limit}; the job asks for {value}")
    return settings


def _preview(raw: object) -> PreviewOptions:
    if raw is None:
        return PreviewOptions()
    if not isinstance(raw, dict) or set(raw) - {"every", "max_size", "format"}:
        raise ProtocolError("bad_settings", "'preview' must be an object with every, max_size, format")
    every, max_size, fmt = raw.get("every", 0), raw.get("max_size", 0), raw.get("format", "uint8")
    for name, value in (("every", every), ("max_size", max_size)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1_000_000:
            raise ProtocolError("bad_settings", f"preview {name} must be a non-negative integer")
    if fmt not in ("uint8", "float16", "float32"):
        raise ProtocolError("bad_settings", "preview format must be uint8, float16 or float32")
    return PreviewOptions(every, max_size, fmt)


def parse_submit(message: Message, limits: ServiceLimits = ServiceLimits()) -> JobRequest:
    arrays = message.arrays
    for name in ("positions", "faces", "uvs"):
        if name not in arrays:
            raise ProtocolError("bad_mesh", f"submit needs an array {name!r}")
    positions, faces, uvs = arrays["positions"], arrays["faces"], arrays["uvs"]
    if positions.dtype.kind != "f" or uvs.dtype.kind != "f" or faces.dtype.kind not in "iu":
        raise ProtocolError("bad_mesh", "positions and uvs must be float arrays, faces an integer array")
    if (positions.ndim and len(positions) > limits.max_vertices) or (faces.ndim and len(faces) > limits.max_faces):
        raise ProtocolError("too_large", f"meshes are limited to {limits.max_vertices} vertices and {limits.max_faces} faces")
    try:
        mesh = make_mesh(positions, faces, uvs, source="submit")
    except StyleTexError as exc:
        raise ProtocolError("bad_mesh", str(exc)) from None
    settings = _settings(message.fields.get("settings"), limits)
    style = _paintings(message, limits)
    if style is None and settings.objective is None:
        raise ProtocolError("bad_image", "submit needs a 'style' image (or an objective setting)")
    texture = _image(message, "texture", limits, keep_alpha=True)
    if settings.preserve_colors and texture is None:
        raise ProtocolError("bad_settings", "preserve_colors keeps the original texture's colours: send a 'texture'")
    if style is not None:
        try:
            parse_blend(settings.style_blend, len(style))
        except StyleTexError as exc:
            raise ProtocolError("bad_settings", str(exc)) from None
    editable = None
    if "editable" in message.arrays:
        editable = message.arrays["editable"]
        if editable.shape != (len(mesh.faces),) or editable.dtype != np.uint8:
            raise ProtocolError("bad_mesh", f"editable must be ({len(mesh.faces)},) uint8, one flag per face, got "
                                            f"{editable.dtype} {list(editable.shape)}")
        editable = editable.astype(bool)
        if texture is None or not editable.any():
            raise ProtocolError("bad_mesh", "editable faces need a 'texture' (the others keep theirs) and at least one face")
        if settings.unwrap == "round-trip":  # auto keeps the own UVs for a selection
            raise ProtocolError("bad_settings", "unwrap round-trip restyles the whole mesh: it takes no 'editable' faces")
    sequence = _sequence(message, limits, settings, style, texture, editable)
    texture_uvs = _texture_uvs(message, mesh, texture, editable)
    return JobRequest(mesh, style, texture, settings, _preview(message.fields.get("preview")), editable, sequence,
                      texture_uvs)


def _texture_uvs(message: Message, mesh: Mesh, texture: np.ndarray | None, editable: np.ndarray | None) -> np.ndarray | None:
    """The optional 'texture_uvs': the layout of a texture sent for a job in other UVs, checked like 'uvs'."""
    if "texture_uvs" not in message.arrays:
        return None
    if texture is None:
        raise ProtocolError("bad_mesh", "texture_uvs say where a 'texture' lies: send the texture too")
    if editable is not None:
        raise ProtocolError("bad_mesh", "editable faces keep their texels exactly: they need the texture in the job's "
                                        "own uvs, not texture_uvs")
    raw = message.arrays["texture_uvs"]
    if raw.dtype.kind != "f":
        raise ProtocolError("bad_mesh", "texture_uvs must be a float array")
    try:
        return make_mesh(mesh.positions, mesh.faces, raw, source="texture_uvs").uvs
    except StyleTexError as exc:
        raise ProtocolError("bad_mesh", str(exc)) from None


SEQUENCE_TARGETS = ("painting", "original", "channel")


def _sequence(message: Message, limits: ServiceLimits, settings: StyleSettings, style, texture,
              editable) -> SequenceRequest | None:
    raw = message.fields.get("sequence")
    if raw is None:
        if "style_to" in message.arrays:
            raise ProtocolError("bad_image", "a 'style_to' painting belongs to a 'sequence' job")
        return None
    if not isinstance(raw, dict) or set(raw) - {"frames", "to", "objective_to", "independent"}:
        raise ProtocolError("bad_settings", "'sequence' must be an object with frames, to, objective_to, independent")
    frames, to = raw.get("frames"), raw.get("to")
    independent, objective_to = raw.get("independent", False), raw.get("objective_to", "")
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 2:
        raise ProtocolError("bad_settings", "sequence frames must be an integer of 2 or more")
    if frames > limits.max_frames:
        raise ProtocolError("limit_frames", f"this backend allows up to {limits.max_frames} frames; the job asks for {frames}")
    if to not in SEQUENCE_TARGETS:
        raise ProtocolError("bad_settings", f"sequence 'to' must be one of {', '.join(SEQUENCE_TARGETS)}")
    if not isinstance(independent, bool) or not isinstance(objective_to, str):
        raise ProtocolError("bad_settings", "sequence independent must be a boolean and objective_to a string")
    style_to = _image(message, "style_to", limits)
    if (to == "painting") != (style_to is not None):
        raise ProtocolError("bad_image", "a sequence to a painting needs a 'style_to' image, and only such a sequence")
    if to == "original" and (texture is None or style is None):
        raise ProtocolError("bad_settings", "a sequence from the original needs a 'texture' and a 'style' painting")
    if to == "channel" and not (objective_to and settings.objective):
        raise ProtocolError("bad_settings", "a sequence to a channel needs the objective setting and objective_to")
    if editable is not None:
        raise ProtocolError("bad_settings", "a sequence restyles the whole object: it takes no 'editable' faces")
    if settings.param != "fourier" or settings.style_loss != "gram":
        raise ProtocolError("bad_settings", "a sequence needs param fourier and style_loss gram")
    if settings.unwrap == "round-trip":  # auto keeps them for a sequence
        raise ProtocolError("bad_settings", "a sequence keeps the mesh's uvs: it takes no unwrap round-trip")
    return SequenceRequest(frames, style_to, to == "original", objective_to if to == "channel" else "", independent)


def _paintings(message: Message, limits: ServiceLimits) -> list[np.ndarray] | None:
    """The paintings 'style', 'style_2', ... in order; a gap in the numbering is an error."""
    names = [painting_array_name(k) for k in range(MAX_PAINTINGS)]
    stray = sorted(n for n in message.arrays if n.startswith("style_") and n not in names and n != "style_to")
    if stray:
        raise ProtocolError("bad_image", f"unknown painting array {stray[0]!r} (style, style_2 ... style_{MAX_PAINTINGS})")
    present = [n for n in names if n in message.arrays]
    if present != names[: len(present)]:
        raise ProtocolError("bad_image", f"painting arrays must be numbered without gaps, got {', '.join(present)}")
    return [_image(message, n, limits) for n in present] or None
