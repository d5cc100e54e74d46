"""The README's headless recipe, as a user runs it: Debian's `blender -b spot.blend --python
examples/stylize_headless.py -- painting.jpg ...` with the built add-on enabled, against a real backend.
Then the saved file is opened in a new Blender to find the packed result in the material."""

from __future__ import annotations

import json
import subprocess
import zipfile

import pytest

from tests.net import free_port

from .support import ROOT, blender_env, build_zip, require_tools, start_backend, stop

EXAMPLE = ROOT / "examples" / "stylize_headless.py"
STYLE = ROOT / "data" / "styles" / "starry_night.jpg"

# Makes spot.blend: the bundled Spot with its texture on a Principled BSDF (what a user's file holds).
MAKE_BLEND = r'''
import sys, bpy
obj_path, texture_path, out = sys.argv[sys.argv.index("--") + 1:]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.obj(filepath=obj_path)
obj = bpy.context.selected_objects[0]
bpy.context.view_layer.objects.active = obj
material = bpy.data.materials.new("Spot")
material.use_nodes = True
tree = material.node_tree
node = tree.nodes.new("ShaderNodeTexImage")
node.image = bpy.data.images.load(texture_path, check_existing=True)  # the .mtl may have loaded it
node.image.pack()
tree.links.new(node.outputs["Color"], tree.nodes["Principled BSDF"].inputs["Base Color"])
obj.data.materials.clear()
obj.data.materials.append(material)
bpy.ops.wm.save_as_mainfile(filepath=out)
'''

# Reads back what the example saved.
INSPECT = r'''
import json, bpy
import numpy as np
obj = next(o for o in bpy.data.objects if o.type == "MESH")
node = next(n for n in obj.active_material.node_tree.nodes if n.type == "TEX_IMAGE")
def pixels(image):
    flat = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(flat)
    return flat
styled, original = node.image, bpy.data.images.get(node.get("styletex_original", ""))
print("RESULT " + json.dumps({
    "image": styled.name, "original": original.name if original else None, "size": list(styled.size), "packed": styled.packed_file is not None,
    "original_kept": original is not None, "rgb_std": float(pixels(styled).reshape(-1, 4)[:, :3].std()),
}))
'''


def blender(args: list[str], env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(["blender", "-b", "--factory-startup", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A Blender user folder with the add-on unpacked, and spot.blend."""
    tools = require_tools("blender")
    home = tmp_path_factory.mktemp("blender-home")
    with zipfile.ZipFile(build_zip()) as archive:
        archive.extractall(home / "scripts" / "addons")
    env = blender_env(tools["blender"], home)
    blend = home / "spot.blend"
    made = blender(["--python-expr", MAKE_BLEND, "--", str(ROOT / "data/spot/spot_triangulated.obj"),
                    str(ROOT / "data/spot/spot_texture.png"), str(blend)], env)
    assert made.returncode == 0 and blend.is_file(), made.stdout[-3000:] + made.stderr[-3000:]
    return {"env": env, "blend": blend, "home": home}


def run_example(setup: dict, *args: str, addon: bool = True) -> subprocess.CompletedProcess:
    enable = ["--addons", "styletex"] if addon else []
    return blender([str(setup["blend"]), *enable, "--python", str(EXAMPLE), "--", str(STYLE), *args], setup["env"])


def test_the_example_restyles_and_saves(setup, tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    backend = start_backend(address, tmp_path / "backend.log")
    out = tmp_path / "spot_styled.blend"
    try:
        # With the artist's controls too, as Blender 3.4 passes them (a painting list of dicts among them).
        run = run_example(setup, "--address", address, "--steps", "3", "--texture-size", "64", "--render-size", "32",
                          "--features", "random", "--out", str(out), "--also", f"{ROOT / 'data/styles/wave.jpg'}:0.5",
                          "--strength", "0.8", "--style-scale", "1.5", "--preserve-colors")
    finally:
        stop(backend)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "StyleTex: step 3/3" in output and f"saved {out}" in output, output[-4000:]
    inspect = blender([str(out), "--python-expr", INSPECT], setup["env"])
    lines = [line for line in inspect.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, inspect.stdout[-3000:] + inspect.stderr[-3000:]
    info = json.loads(lines[-1][len("RESULT "):])
    assert info["original"] == "spot_texture.png" and info["original_kept"], info  # revert can find it
    assert info["image"] == "spot_texture.png_styled" and info["packed"], info
    assert info["size"] == [64, 64]
    assert info["rgb_std"] > 0.02  # painted, not the blank new image


def test_the_example_fails_with_the_reason_and_status_1(setup):
    dead = f"tcp://127.0.0.1:{free_port()}"  # nobody listens here
    run = run_example(setup, "--address", dead, "--steps", "1", "--features", "random")
    assert run.returncode == 1
    assert f"no answer from the StyleTex backend at {dead}" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr

    run = run_example(setup, "--steps", "1", addon=False)
    assert run.returncode == 1
    assert "the StyleTex add-on is not enabled" in run.stdout + run.stderr

    run = run_example(setup, "--steps", "lots")
    assert run.returncode == 2 and "argument --steps: invalid int value: 'lots'" in run.stderr



# Reads back an animated result: the sequence image, its frames on disk, and the node's frame range.
INSPECT_ANIMATED = r'''
import json, os, bpy
obj = next(o for o in bpy.data.objects if o.type == "MESH")
node = next(n for n in obj.active_material.node_tree.nodes if n.type == "TEX_IMAGE")
image, user = node.image, node.image_user
print("RESULT " + json.dumps({
    "image": image.name, "source": image.source, "first": bpy.path.abspath(image.filepath),
    "duration": user.frame_duration, "start": user.frame_start, "scene_start": bpy.context.scene.frame_start,
    "original": node.get("styletex_original"),
}))
'''


def test_the_example_animates_on_blender_3_4(setup, tmp_path):
    """--animate through Blender 3.4's own image-sequence API: frames beside the saved file, played from
    the scene's start frame, still there when the saved copy is opened."""
    address = f"tcp://127.0.0.1:{free_port()}"
    backend = start_backend(address, tmp_path / "backend.log")
    out = setup["home"] / "spot_animated.blend"
    try:
        run = run_example(setup, "--address", address, "--steps", "2", "--texture-size", "32", "--render-size", "32",
                          "--features", "random", "--out", str(out), "--animate", "3",
                          "--animate-to", str(ROOT / "data/styles/wave.jpg"))
    finally:
        stop(backend)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    folder = setup["home"] / "spot_styletex"  # beside the .blend the job ran in
    assert sorted(p.name for p in folder.iterdir()) == [f"spot_texture.png_styled_morph_{n:04d}.png" for n in (1, 2, 3)]
    inspect = blender([str(out), "--python-expr", INSPECT_ANIMATED], setup["env"])
    lines = [line for line in inspect.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, inspect.stdout[-3000:] + inspect.stderr[-3000:]
    info = json.loads(lines[-1][len("RESULT "):])
    assert info["source"] == "SEQUENCE" and info["image"] == "spot_texture.png_styled_morph", info
    assert info["first"] == str(folder / "spot_texture.png_styled_morph_0001.png"), info  # the saved copy finds them
    assert info["duration"] == 3 and info["start"] == info["scene_start"], info
    assert info["original"] == "spot_texture.png"
