"""StyleTex Blender add-on.

This package is also imported outside Blender: its pure-Python modules (`protocol`, `client`) need
only numpy and pyzmq, and the backend uses `protocol` as the one definition of the wire format.
Nothing here imports bpy at module level; Blender-facing code is imported inside register().
"""

bl_info = {
    "name": "StyleTex",
    "author": "StyleTex",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "3D Viewport > Sidebar > StyleTex",
    "description": "Restyle the active mesh's texture with the style of a painting",
    "category": "Material",
}


def register() -> None:  # pragma: no cover - filled in by the Blender-facing modules
    pass


def unregister() -> None:  # pragma: no cover
    pass
