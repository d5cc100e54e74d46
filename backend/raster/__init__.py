"""Rasterization: clip-space triangles -> Fragments (triangle id, barycentrics, depth per pixel)."""

from .fragments import Fragments
from .rasterizer import rasterize
from .triangle_setup import MAX_SIZE

__all__ = ["MAX_SIZE", "Fragments", "rasterize"]
