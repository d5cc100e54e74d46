"""Texture lookups: per-corner attribute interpolation and differentiable (mip-mapped) sampling."""

from .interpolate import interpolate, surface_uv
from .mipmap import MipPyramid, build_pyramid, pyramid_layout
from .sample import SamplePlan, gather, plan_samples, sample

__all__ = ["MipPyramid", "SamplePlan", "build_pyramid", "gather", "interpolate", "plan_samples", "pyramid_layout", "sample", "surface_uv"]
