"""Image files in and out, and the UV checker used when no texture is given.

Pixel values pass through unchanged: the renderer is colour-space agnostic, so an sRGB-encoded
texture renders to an sRGB-encoded image. Arrays are float32 in [0, 1], shape (H, W, C), row 0 at
the top of the picture (as image files store it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import StyleTexError


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear colour values (a glTF colour factor, an MTL's Kd) encoded as sRGB, as the textures are."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.maximum(linear, 0) ** (1 / 2.4) - 0.055)


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def load_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Reads an image file as float32 (H, W, channels) in [0, 1]; StyleTexError if unreadable."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = {3: "RGB", 4: "RGBA", 1: "L"}[channels]
            if image.mode in ("I;16", "I;16B", "I"):
                data = np.asarray(image, dtype=np.float32) / 65535.0
                data = np.repeat(data[..., None], channels, axis=-1)
            else:
                data = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise StyleTexError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise StyleTexError(f"{path}: cannot read the image ({exc})") from None
    return data.reshape(data.shape[0], data.shape[1], channels)


def load_texture(path: str | Path) -> np.ndarray:
    """An original texture: float32 (H, W, 3), or (H, W, 4) where the file holds transparency (an alpha band or a
    transparent palette entry), which a job keeps (texture/alpha.py)."""
    try:
        with Image.open(path) as image:
            see_through = image.has_transparency_data
    except FileNotFoundError:
        raise StyleTexError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise StyleTexError(f"{path}: cannot read the image ({exc})") from None
    return load_image(path, 4 if see_through else 3)


def save_image(path: str | Path, pixels: np.ndarray) -> None:
    """Writes float (H, W, C) values in [0, 1] as an 8-bit PNG (or any format Pillow knows by suffix); a JPEG, which
    stores no alpha, gets the colours of an (H, W, 4) image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(pixels, dtype=np.float32), 0, 1)
    if data.ndim == 3 and data.shape[2] == 4 and path.suffix.lower() in (".jpg", ".jpeg"):
        data = data[..., :3]
    data = (data * 255 + 0.5).astype(np.uint8)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    try:
        Image.fromarray(data).save(path)
    except (OSError, ValueError) as exc:
        raise StyleTexError(f"{path}: cannot write the image ({exc})") from None


def uv_checker(size: int = 512, squares: int = 8) -> np.ndarray:
    """A UV test texture: checker squares tinted red along u and green along v, so orientation and
    seams are visible. Returned in image layout (row 0 = top = v near 1)."""
    v, u = np.meshgrid(1 - (np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size, indexing="ij")
    check = ((np.floor(u * squares) + np.floor(v * squares)) % 2).astype(np.float32)
    shade = 0.35 + 0.5 * check
    return np.stack([shade * (0.5 + 0.5 * u), shade * (0.5 + 0.5 * v), shade * 0.6 + 0.2], axis=-1).astype(np.float32)


def contact_sheet(images: list[np.ndarray], columns: int, gap: int = 4, background: float = 1.0) -> np.ndarray:
    """Tiles equally sized (H, W, C) images into one grid image."""
    h, w, c = images[0].shape
    rows = -(-len(images) // columns)
    sheet = np.full((rows * h + (rows + 1) * gap, columns * w + (columns + 1) * gap, c), background, np.float32)
    for k, image in enumerate(images):
        r, col = divmod(k, columns)
        y, x = gap + r * (h + gap), gap + col * (w + gap)
        sheet[y : y + h, x : x + w] = image
    return sheet
