"""Texture lookups: per-corner attribute interpolation and differentiable (mip-mapped) sampling."""

from .interpolate import interpolate, surface_uv
from .mipmap import MipPyramid, build_pyramid
from .sample import sample

__all__ = ["MipPyramid", "build_pyramid", "interpolate", "sample", "surface_uv"]
