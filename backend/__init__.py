"""StyleTex backend: differentiable texture rendering and (later) the style service.

Importable without bpy. The data flow is mesh -> views -> fragments -> texture samples -> image.
"""

__version__ = "0.1.0"
