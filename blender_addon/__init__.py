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


def _classes():
    from . import backend_setup, operators, panel, preferences, properties

    return (properties.StyleTexPainting, properties.StyleTexSettings, preferences.StyleTexPreferences,
            backend_setup.STYLETEX_OT_install_backend, backend_setup.STYLETEX_OT_cancel_backend_install,
            backend_setup.STYLETEX_OT_remove_backend,
            operators.STYLETEX_OT_stylize, operators.STYLETEX_OT_cancel, operators.STYLETEX_OT_revert,
            operators.STYLETEX_OT_painting_add, operators.STYLETEX_OT_painting_remove, panel.STYLETEX_UL_paintings,
            panel.STYLETEX_PT_panel, panel.STYLETEX_PT_advanced)


def register() -> None:
    import atexit

    import bpy

    from .vendor import ensure_zmq

    ensure_zmq()
    from . import preferences, properties

    for cls in _classes():
        bpy.utils.register_class(cls)
    bpy.types.Scene.styletex = bpy.props.PointerProperty(type=properties.StyleTexSettings)
    atexit.register(preferences.stop_local_backend)


def unregister() -> None:
    import bpy

    from . import preferences

    preferences.stop_local_backend()
    del bpy.types.Scene.styletex
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
