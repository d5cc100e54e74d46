"""glTF 2.0 (.glb / .gltf) in and out: the textured mesh of a model, and the same model with a new texture.

pygltflib reads and writes the container (JSON, binary chunk, buffers, data URIs) and nothing more, which is
what we want: accessors are decoded here with numpy, and writing the result back changes only the base
colour images (and their materials' colour factors, to white: the images then hold what the surface shows), so
everything else in the model (nodes, other materials, animations, extensions) survives. The original read is what a
viewer shows: each image times its material's colour factor.
(trimesh would load the model into its own scene and export that, losing what it does not model.)

Every triangle primitive with texture coordinates in the default scene is read (the set its base colour texture
reads, through its KHR_texture_transform where it has one), with its node's world transform
applied; glTF is Y-up with V = 0 at the top of an image, so positions are turned into Blender's Z-up
world ((x, y, z) -> (x, -z, y), as Blender's importer does) and V into our V = 0 at the bottom.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import MeshError
from ..mesh import Mesh, make_mesh
from .atlas import plan_atlas, unpack
from .images import linear_to_srgb, srgb_to_linear
from .model import atlas_texture, is_atlas

COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
TRIANGLES = 4
UNSUPPORTED = {"KHR_draco_mesh_compression": "Draco-compressed", "EXT_meshopt_compression": "meshopt-compressed"}
NO_MATERIAL = -1  # a primitive without a material: glTF's default material, plain white


def _load(path: Path):
    import pygltflib

    try:
        return pygltflib.GLTF2().load(str(path))
    except FileNotFoundError:
        raise MeshError(f"{path}: no such file") from None
    except Exception as exc:  # pygltflib raises many kinds on malformed files
        raise MeshError(f"{path}: not a readable glTF file ({type(exc).__name__})") from None


def _buffer_bytes(gltf, path: Path, index: int) -> bytes:
    data = gltf.get_data_from_buffer_uri(gltf.buffers[index].uri) if gltf.buffers[index].uri else gltf.binary_blob()
    if data is None and gltf.buffers[index].uri:  # an external .bin next to the .gltf
        try:
            data = (path.parent / gltf.buffers[index].uri).read_bytes()
        except OSError as exc:
            raise MeshError(f"{path}: buffer {gltf.buffers[index].uri!r} cannot be read ({exc.strerror or exc})") from None
    if data is None:
        raise MeshError(f"{path}: buffer {index} has no data")
    return data


def _accessor(gltf, path: Path, index: int, cache: dict) -> np.ndarray:
    """An accessor's values as a (count, components) float64 or integer array (normalized ints scaled)."""
    accessor = gltf.accessors[index]
    if accessor.sparse is not None or accessor.bufferView is None:
        raise MeshError(f"{path}: accessor {index} is sparse or has no buffer view (not supported)")
    view = gltf.bufferViews[accessor.bufferView]
    if view.buffer not in cache:
        cache[view.buffer] = _buffer_bytes(gltf, path, view.buffer)
    dtype = np.dtype(DTYPES[accessor.componentType]).newbyteorder("<")
    components = COMPONENTS[accessor.type]
    stride = view.byteStride or dtype.itemsize * components
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    needed = start + stride * (accessor.count - 1) + dtype.itemsize * components if accessor.count else start
    data = cache[view.buffer]
    if needed > len(data):
        raise MeshError(f"{path}: accessor {index} reaches past the end of its buffer")
    raw = np.ndarray((accessor.count, components), dtype, buffer=data, offset=start, strides=(stride, dtype.itemsize))
    values = np.array(raw)
    if accessor.normalized and dtype.kind in "iu":
        values = np.maximum(values / np.iinfo(dtype).max, -1.0)
    return values


def _local_matrix(node) -> np.ndarray:
    if node.matrix:
        return np.array(node.matrix, np.float64).reshape(4, 4).T  # column-major in the file
    t = np.eye(4)
    t[:3, 3] = node.translation or (0, 0, 0)
    x, y, z, w = node.rotation or (0, 0, 0, 1)
    r = np.eye(4)
    r[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                 [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                 [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    s = np.diag([*(node.scale or (1, 1, 1)), 1.0])
    return t @ r @ s


def _mesh_nodes(gltf) -> list[tuple[int, np.ndarray]]:
    """(mesh index, world matrix) of every node with a mesh in the default scene (or all roots)."""
    if gltf.scenes:
        roots = gltf.scenes[gltf.scene or 0].nodes or []
    else:
        children = {c for node in gltf.nodes for c in (node.children or [])}
        roots = [i for i in range(len(gltf.nodes)) if i not in children]
    out, stack = [], [(i, np.eye(4)) for i in roots]
    while stack:
        index, parent = stack.pop()
        node = gltf.nodes[index]
        world = parent @ _local_matrix(node)
        if node.mesh is not None:
            out.append((node.mesh, world))
        stack.extend((c, world) for c in (node.children or []))
    return out


def _base_color_source(gltf, material: int | None) -> int | None:
    """The image index behind a material's baseColorTexture, or None."""
    if material is None:
        return None
    pbr = gltf.materials[material].pbrMetallicRoughness
    info = pbr.baseColorTexture if pbr is not None else None
    return gltf.textures[info.index].source if info is not None else None


def base_color_image(gltf, path: Path, material: int | None) -> tuple[int, np.ndarray] | None:
    """(image index, (H, W, 3 or 4) float32 sRGB values) of a material's baseColorTexture, or None."""
    source = _base_color_source(gltf, material)
    return None if source is None else (source, _decoded(gltf, path, source))


def _decoded(gltf, path: Path, source: int) -> np.ndarray:
    """The image `source` of the model as (H, W, 3 or 4) float32 sRGB values: with its alpha where it has one (a job
    keeps it); MeshError where it cannot be read."""
    with _opened_image(gltf, path, source) as opened:
        return np.asarray(opened.convert("RGBA" if opened.has_transparency_data else "RGB"), np.float32) / 255.0


def _opened_image(gltf, path: Path, source: int) -> Image.Image:
    """The image `source` of the model, decoded by Pillow."""
    image = gltf.images[source]
    if image.bufferView is not None:
        view = gltf.bufferViews[image.bufferView]
        blob = _buffer_bytes(gltf, path, view.buffer)[(view.byteOffset or 0):(view.byteOffset or 0) + view.byteLength]
    elif image.uri and image.uri.startswith("data:"):
        blob = gltf.get_data_from_buffer_uri(image.uri)
    else:
        try:
            blob = (path.parent / (image.uri or "")).read_bytes()
        except OSError as exc:
            raise MeshError(f"{path}: image {image.uri!r} cannot be read ({exc.strerror or exc})") from None
    try:
        opened = Image.open(io.BytesIO(blob))
        opened.load()
        return opened
    except Exception as exc:
        raise MeshError(f"{path}: image {source} cannot be decoded ({type(exc).__name__})") from None


def read_gltf(path: str | Path) -> tuple[Mesh, np.ndarray | None]:
    """The model's textured triangles, in world space (Z up), and its texture (_textures: the one base colour image,
    an atlas of several, or None). Raises MeshError naming the file and the reason."""
    return read_gltf_model(Path(path))[:2]


def read_gltf_model(path: Path) -> tuple[Mesh, np.ndarray | None, int, np.ndarray | None, int]:
    """read_gltf's mesh and texture, how many atlas cells the texture is made of (1: one image, or none), which
    faces show an image where others show a plain colour (None: all of them, or none) and how many triangles were
    left out without texture coordinates: a model.Model's fields."""
    gltf = _load(path)
    required = set(gltf.extensionsRequired or []) | set(gltf.extensionsUsed or [])
    for extension, what in UNSUPPORTED.items():
        if extension in required:
            raise MeshError(f"{path}: {what} meshes are not supported ({extension}); export without compression")
    cache: dict = {}
    positions, faces, uvs, materials, base = [], [], [], [], 0
    found = _triangle_primitives(gltf)
    for mesh_index, world, primitive in _primitives(gltf, found):
        attributes = primitive.attributes
        points = _accessor(gltf, path, attributes.POSITION, cache)[:, :3]
        channel, transform = _texture_mapping(gltf, primitive.material)
        texcoords = _accessor(gltf, path, getattr(attributes, f"TEXCOORD_{channel}"), cache)[:, :2]
        texcoords = texcoords @ transform[:2, :2].T + transform[:2, 2]
        if primitive.indices is not None:
            triangles = _accessor(gltf, path, primitive.indices, cache).reshape(-1)
        else:
            triangles = np.arange(len(points))
        triangles = triangles[: len(triangles) // 3 * 3].reshape(-1, 3).astype(np.int64)
        if len(triangles) == 0:
            continue
        if triangles.max() >= len(points):
            raise MeshError(f"{path}: mesh {mesh_index} has an index past its vertices")
        placed = points @ world[:3, :3].T + world[:3, 3]
        positions.append(placed[:, [0, 2, 1]] * (1, -1, 1))  # Y-up -> Z-up: (x, y, z) -> (x, -z, y)
        corner = texcoords[triangles]
        uvs.append(np.stack([corner[..., 0], 1.0 - corner[..., 1]], axis=-1))
        faces.append(triangles + base)
        materials.append(np.full(len(triangles), NO_MATERIAL if primitive.material is None else primitive.material))
        base += len(points)
    if not faces:
        raise MeshError(f"{path}: no triangle primitive with texture coordinates (TEXCOORD_0) in the model")
    texture, face_uvs, cells, showing = _textures(gltf, path, np.concatenate(materials), np.concatenate(uvs))
    mesh = make_mesh(np.concatenate(positions), np.concatenate(faces), face_uvs, str(path))
    return mesh, texture, cells, showing, _without_texcoords(found)


def _texture_mapping(gltf, material: int | None) -> tuple[int, np.ndarray]:
    """Which TEXCOORD_n a material's base colour texture reads (0 without one) and the 3 x 3 matrix its
    KHR_texture_transform applies to them (offset, rotation, scale, in glTF's UVs; identity without one), so the
    texture lies where a viewer shows it."""
    pbr = gltf.materials[material].pbrMetallicRoughness if material is not None else None
    info = pbr.baseColorTexture if pbr is not None else None
    if info is None:
        return 0, np.eye(3)
    channel = info.texCoord or 0
    transform = (info.extensions or {}).get("KHR_texture_transform")
    if not transform:
        return channel, np.eye(3)
    (x, y), (sx, sy) = transform.get("offset", (0, 0)), transform.get("scale", (1, 1))
    angle = transform.get("rotation", 0)
    cos, sin = np.cos(angle), np.sin(angle)
    # the extension's translation * rotation * scale; its GLSL rotation, mat3(cos, sin, 0, -sin, cos, 0, 0, 0, 1), is
    # given column by column
    matrix = np.array([[1, 0, x], [0, 1, y], [0, 0, 1]]) @ np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]]) \
        @ np.diag([sx, sy, 1.0])
    return transform.get("texCoord", channel), matrix


def _triangle_primitives(gltf) -> list:
    """(mesh index, world matrix, primitive, triangles by its accessor's count (None where that accessor is not
    there), whether it has the texture coordinates its base colour texture reads (TEXCOORD_0 without one)) of every
    primitive of triangles with positions, in the default scene's node order."""
    out = []
    for mesh_index, world in _mesh_nodes(gltf):
        for primitive in gltf.meshes[mesh_index].primitives:
            attributes = primitive.attributes
            if (TRIANGLES if primitive.mode is None else primitive.mode) != TRIANGLES or attributes.POSITION is None:
                continue
            counted = primitive.indices if primitive.indices is not None else attributes.POSITION
            triangles = (gltf.accessors[counted].count or 0) // 3 if 0 <= counted < len(gltf.accessors) else None
            channel = _texture_mapping(gltf, primitive.material)[0]
            out.append((mesh_index, world, primitive, triangles,
                        getattr(attributes, f"TEXCOORD_{channel}", None) is not None))
    return out


def _primitives(gltf, found: list | None = None) -> list:
    """(mesh index, world matrix, primitive) of every primitive read: triangles with positions and the texture
    coordinates their base colour texture reads (and at least one triangle by its accessor's count); `found`:
    _triangle_primitives', where already listed."""
    return [(mesh_index, world, primitive) for mesh_index, world, primitive, triangles, textured
            in (found if found is not None else _triangle_primitives(gltf)) if textured and triangles != 0]


def _without_texcoords(found: list) -> int:
    """How many triangles of _triangle_primitives' `found` are left out for want of the texture coordinates their
    base colour texture reads (an eye or a button exported without UVs)."""
    return sum(triangles or 0 for *_, triangles, textured in found if not textured)


def _cells(gltf, materials) -> tuple[list[int], list[int]]:
    """The distinct base colour images of `materials` (indices, NO_MATERIAL for none) in order of first use, and the
    materials without one: an atlas's cells, in order."""
    images, plain = [], []
    for material in dict.fromkeys(int(m) for m in materials):
        source = _base_color_source(gltf, None if material == NO_MATERIAL else material)
        if source is None:
            plain.append(material)
        elif source not in images:
            images.append(source)
    return images, plain


def _textures(gltf, path: Path, material_of_face: np.ndarray, uvs: np.ndarray
              ) -> tuple[np.ndarray | None, np.ndarray, int, np.ndarray | None]:
    """The model's texture, as a viewer shows it (each image times the colour factor of the first material showing
    it), the faces' UVs in it and its atlas cells: the one base colour image (or None; 1 cell), or, where the
    materials show several or an image and plain colours, an atlas of them (model.atlas_texture) with a cell of its
    plain colour for each material without one, and every face's UVs moved into its cell; and, in an atlas with plain
    cells, which faces show an image (else None)."""
    images, plain = _cells(gltf, material_of_face)
    shown = [_tinted(_decoded(gltf, path, source), _factor(gltf, _showing(gltf, material_of_face, source)))
             for source in images]
    cell = {material: images.index(_base_color_source(gltf, material)) if material not in plain
            else len(images) + plain.index(material) for material in dict.fromkeys(material_of_face.tolist())}
    cell_of_face = np.asarray([cell[m] for m in material_of_face.tolist()])
    return atlas_texture(shown, [_plain_colour(gltf, material) for material in plain], cell_of_face, uvs)


def _factor(gltf, material: int) -> np.ndarray:
    """A material's base colour factor (3,), linear as glTF gives it; white without one."""
    pbr = gltf.materials[material].pbrMetallicRoughness if material != NO_MATERIAL else None
    factor = pbr.baseColorFactor if pbr is not None and pbr.baseColorFactor else [1.0, 1.0, 1.0]
    return np.clip(np.asarray(factor[:3], np.float64), 0, 1)


def _showing(gltf, materials: np.ndarray, source: int) -> int:
    """The first of `materials` whose base colour texture is the image `source`."""
    return next(m for m in dict.fromkeys(materials.tolist())
                if _base_color_source(gltf, None if m == NO_MATERIAL else m) == source)


def _tinted(image: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """An sRGB-encoded image (H, W, 3 or 4) as a material with colour `factor` shows it: glTF multiplies the decoded
    colours by it (the alpha, if any, as it is)."""
    if bool((factor == 1).all()):
        return image
    out = image.copy()
    out[..., :3] = linear_to_srgb(srgb_to_linear(image[..., :3].astype(np.float64)) * factor).astype(np.float32)
    return out


def _plain_colour(gltf, material: int) -> np.ndarray:
    """A material's base colour factor, sRGB-encoded as the textures are; white without one."""
    return linear_to_srgb(_factor(gltf, material)).astype(np.float32)


def write_gltf_with_texture(source: str | Path, out: str | Path, texture: np.ndarray) -> None:
    """Writes `source` again as a .glb at `out`, with the base colour image of the textured primitives
    replaced by `texture` ((S, S, 3 or 4) in [0, 1], sRGB), embedded as PNG; where read_gltf made an atlas of several
    images, each is replaced by its cell. Everything else is kept."""
    import pygltflib

    source, out = Path(source), Path(out)
    if out.suffix.lower() != ".glb":
        raise MeshError(f"{out}: --out-model writes a binary glTF; give it a .glb name")
    gltf = _load(source)
    gltf.convert_buffers(pygltflib.BufferFormat.BINARYBLOB)  # external and data-URI buffers into the one blob
    materials = [NO_MATERIAL if p.material is None else p.material for *_, p in _primitives(gltf)]
    images, plain = _cells(gltf, materials)
    if not images:
        raise MeshError(f"{source}: no base colour texture to replace")
    cells = ([texture] if not is_atlas(len(images), len(plain))
             else unpack(texture, plan_atlas(len(images) + len(plain), texture.shape[0]), len(images)))
    blob = bytearray(gltf.binary_blob() or b"")
    for index, cell in zip(images, cells):
        png = io.BytesIO()
        Image.fromarray((np.clip(cell, 0, 1) * 255 + 0.5).astype(np.uint8)).save(png, format="PNG")
        blob += b"\0" * (-len(blob) % 4)
        gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(png.getvalue())))
        blob += png.getvalue()
        gltf.images[index] = pygltflib.Image(bufferView=len(gltf.bufferViews) - 1, mimeType="image/png",
                                             name=gltf.images[index].name)
    for material in dict.fromkeys(materials):  # the images now hold what the surface shows: no tint on top of them
        pbr = gltf.materials[material].pbrMetallicRoughness if material != NO_MATERIAL else None
        if pbr is not None and _base_color_source(gltf, material) in images and pbr.baseColorFactor:
            pbr.baseColorFactor = [1.0, 1.0, 1.0, *pbr.baseColorFactor[3:4]]
    if not gltf.buffers:
        gltf.buffers.append(pygltflib.Buffer())
    gltf.buffers[0].byteLength = len(blob)
    gltf.buffers[0].uri = None
    gltf.set_binary_blob(bytes(blob))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        gltf.save_binary(str(out))
    except OSError as exc:
        raise MeshError(f"{out}: cannot write the model ({exc.strerror or exc})") from None


def is_gltf(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".glb", ".gltf")
