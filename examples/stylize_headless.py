"""Restyle the active object of a .blend file without the UI:

    blender -b scene.blend --python examples/stylize_headless.py -- painting.jpg [tcp://127.0.0.1:5555]

A backend must be running (`.venv/bin/python -m backend serve` in the StyleTex folder). The result is
packed into the file as '<original image>_styled' (or 'StyleTex_<object>') and wired into the
material's Base Color; the script saves the file next to the original as '<name>_styled.blend'.
"""

import sys

import bpy

args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
if not args:
    sys.exit("usage: blender -b FILE.blend --python stylize_headless.py -- STYLE_IMAGE [ADDRESS]")
style, address = args[0], (args[1] if len(args) > 1 else "tcp://127.0.0.1:5555")

if bpy.context.active_object is None:  # pick the first mesh when the file has no active object
    mesh = next((o for o in bpy.context.scene.objects if o.type == "MESH"), None)
    if mesh is None:
        sys.exit("no mesh object in this file")
    bpy.context.view_layer.objects.active = mesh

# Blocks in background mode, printing progress; raises RuntimeError with the reason on failure.
bpy.ops.styletex.stylize(style_path=style, steps=400, texture_size=1024, render_size=512, features="vgg19",
                         seed=0, address=address)
bpy.ops.wm.save_as_mainfile(filepath=bpy.data.filepath.replace(".blend", "_styled.blend"))
