"""Restyle the active object of a .blend file without the UI:

    blender -b scene.blend --python examples/stylize_headless.py -- painting.jpg \
        [--address tcp://127.0.0.1:5555] [--steps 400] [--texture-size 1024] [--render-size 512] \
        [--features auto|efficientnet_lite0|vgg19|vgg16|random] [--seed 0] [--out scene_styled.blend] \
        [--also other.jpg:0.5 ...] [--strength 0.5] [--style-scale 1] [--preserve-colors] [--uv-map NAME] \
        [--selected-only] [--auto-unwrap] [--even-uvs [--keep-own-uvs]] [--animate FRAMES [--animate-to IMAGE|original]]

The StyleTex add-on must be enabled in this Blender. Without --address the add-on's preferences
say where the backend is (in "local" mode it starts one). The result is packed into the file as
'<original image>_styled' (or 'StyleTex_<object>') and wired into the material's Base Color; the
file is saved as --out (default: '<name>_styled.blend' next to the original). On failure the script
prints the reason and Blender exits with status 1.
"""

import argparse
import re
import sys

import bpy


def painting(item: str) -> dict:
    """IMAGE[:WEIGHT] as the operator's painting item; a colon not followed by a number is part of the path."""
    found = re.fullmatch(r"(.*):(\d+\.?\d*|\.\d+)", item)
    return {"name": found[1], "weight": float(found[2])} if found else {"name": item, "weight": 1.0}


parser = argparse.ArgumentParser(prog="stylize_headless.py", description="Restyle the active object's texture.")
parser.add_argument("style", help="the painting (an image file)")
parser.add_argument("--address", default="", help="backend address (default: from the add-on preferences)")
parser.add_argument("--steps", type=int, default=400)
parser.add_argument("--texture-size", type=int, default=1024)
parser.add_argument("--render-size", type=int, default=512)
parser.add_argument("--features", default="auto", choices=("auto", "efficientnet_lite0", "vgg19", "vgg16", "random"),
                    help="auto (default): EfficientNet-Lite0 on a CPU backend, VGG-19 on CUDA when its weights are there; "
                         "random is for tests only, not a quality mode")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default="", help="where to save the .blend (default: <name>_styled.blend)")
parser.add_argument("--also", action="append", default=[], metavar="IMAGE[:WEIGHT]", type=painting,
                    help="another painting mixed into the style, with its weight (default 1); repeatable")
parser.add_argument("--strength", type=float, default=0.5, help="0 subtle ... 1 strong (default 0.5)")
parser.add_argument("--style-scale", type=float, default=1.0, help="2: bigger brush strokes, 0.5: finer")
parser.add_argument("--preserve-colors", action="store_true", help="keep the texture's own colours")
parser.add_argument("--uv-map", default="", help="the UV map to use (default: the image node's, else the render map)")
parser.add_argument("--selected-only", action="store_true", help="restyle the faces selected in Edit Mode only")
parser.add_argument("--auto-unwrap", action="store_true", help="give a mesh without UV map one (Smart UV Project)")
parser.add_argument("--even-uvs", action="store_true",
                    help="restyle in a new UV map of even texel density (Even UV Room): squeezed parts get strokes")
parser.add_argument("--keep-own-uvs", action="store_true",
                    help="with --even-uvs: the backend hands the result back in the object's own UV map (no map added)")
parser.add_argument("--animate", type=int, default=0, metavar="FRAMES",
                    help="a texture that morphs over FRAMES frames (saved beside the .blend, played from the start frame)")
parser.add_argument("--animate-to", default="original", metavar="IMAGE|original",
                    help="with --animate: the last frame's painting, or 'original' to morph from the object's texture")
args = parser.parse_args(sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else [])

if not hasattr(bpy.ops.styletex, "stylize") or not hasattr(bpy.types, "STYLETEX_OT_stylize"):
    sys.exit("the StyleTex add-on is not enabled in this Blender (Preferences > Add-ons)")
if bpy.context.active_object is None:  # pick the first mesh when the file has no active object
    mesh = next((o for o in bpy.context.scene.objects if o.type == "MESH"), None)
    if mesh is None:
        sys.exit("no mesh object in this file")
    bpy.context.view_layer.objects.active = mesh

# Blocks in background mode, printing progress; raises RuntimeError with the reason on failure.
try:
    bpy.ops.styletex.stylize(style_path=args.style, steps=args.steps, texture_size=args.texture_size,
                             render_size=args.render_size, features=args.features, seed=args.seed,
                             address=args.address, paintings=args.also, strength=args.strength,
                             style_scale=args.style_scale, preserve_colors=args.preserve_colors, uv_map=args.uv_map,
                             selected_only=args.selected_only, auto_unwrap=args.auto_unwrap, even_uvs=args.even_uvs,
                             keep_own_uvs=args.keep_own_uvs,
                             animate=args.animate > 0, animate_frames=max(args.animate, 2),
                             animate_to="original" if args.animate_to == "original" else "painting",
                             animate_style_path="" if args.animate_to == "original" else args.animate_to)
except RuntimeError as exc:
    sys.exit(str(exc).strip())
out = args.out or (bpy.data.filepath[: -len(".blend")] if bpy.data.filepath.endswith(".blend")
                   else bpy.data.filepath or "untitled") + "_styled.blend"
bpy.ops.wm.save_as_mainfile(filepath=out)
print(f"saved {out}")
