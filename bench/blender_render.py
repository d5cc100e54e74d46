"""Blender's side of the Cycles check (cycles_check.py): run as a script by a Python that imports bpy.

    python bench/blender_render.py MESH.obj CAMERAS.json SIZE TEXTURE.png OUT_PREFIX [TEXTURE.png OUT_PREFIX ...]

Renders the mesh with each texture shown unlit (an emission shader, the Standard view transform: the texels' own
values), from each camera of CAMERAS.json ([{"eye", "target", "fov_deg", "near", "far"}], vertical field of view,
Z up, as views.Camera) into OUT_PREFIX_<i>.png (RGBA; alpha is coverage). One Blender process serves every texture. Cycles reads the full-resolution texture with
no mip levels and averages many samples a pixel under a one-pixel box filter: a pixel is the mean of the
texture over its footprint on the surface, whatever the footprint's shape.
"""

from __future__ import annotations

import json
import math
import sys

import bpy
from mathutils import Vector

SAMPLES = 32


def main(argv: list[str]) -> None:
    mesh_path, cameras_path, size, *jobs = argv
    cameras = json.loads(open(cameras_path, encoding="utf-8").read())
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.obj_import(filepath=mesh_path)  # Y-up OBJ to Blender's Z-up, as formats/obj.py reads it
    material = bpy.data.materials.new("texture")
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    image = nodes.new("ShaderNodeTexImage")
    image.interpolation = "Linear"
    emission = nodes.new("ShaderNodeEmission")
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(image.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], output.inputs["Surface"])
    for obj in bpy.context.scene.objects:
        if obj.type == "MESH":
            obj.data.materials.clear()
            obj.data.materials.append(material)

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = SAMPLES
    scene.cycles.use_denoising = False
    scene.cycles.pixel_filter_type = "BOX"
    scene.cycles.filter_width = 1.0
    scene.render.resolution_x = scene.render.resolution_y = int(size)
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    data = bpy.data.cameras.new("view")
    camera = bpy.data.objects.new("view", data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    data.sensor_fit = "VERTICAL"
    for texture_path, prefix in zip(jobs[::2], jobs[1::2]):
        image.image = bpy.data.images.load(texture_path)
        for i, view in enumerate(cameras):
            eye, target = Vector(view["eye"]), Vector(view["target"])
            data.angle_y = math.radians(view["fov_deg"])
            data.clip_start, data.clip_end = view["near"], view["far"]
            camera.location = eye
            camera.rotation_euler = (target - eye).to_track_quat("-Z", "Y").to_euler()
            scene.render.filepath = f"{prefix}_{i}.png"
            bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    main(sys.argv[1:])
