"""Wavefront OBJ reading: positions, texture coordinates and faces into a Mesh.

Polygons are fan-triangulated; indices may be negative (relative to the end of the list so far);
`v/vt` and `v/vt/vn` corners are accepted. Every problem is reported with the file and line.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MeshError
from ..mesh import Mesh, make_mesh
from .images import linear_to_srgb


def _floats(parts: list[str], count: int, where: str, what: str) -> list[float]:
    if len(parts) < count:
        raise MeshError(f"{where}: '{what}' needs {count} numbers, got {len(parts)}")
    try:
        values = [float(p) for p in parts[:count]]
    except ValueError:
        raise MeshError(f"{where}: '{what}' has a value that is not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise MeshError(f"{where}: '{what}' contains NaN or Inf")
    return values


def _resolve(token: str, count: int, where: str, kind: str) -> int:
    """OBJ indices are 1-based; negative ones count back from the last element read so far."""
    try:
        index = int(token)
    except ValueError:
        raise MeshError(f"{where}: face index '{token}' is not an integer") from None
    resolved = index - 1 if index > 0 else count + index
    if index == 0 or not 0 <= resolved < count:
        raise MeshError(f"{where}: {kind} index {index} is out of range (have {count})")
    return resolved


def read_obj(path: str | Path, up_axis: str = "Y") -> Mesh:
    """Reads an OBJ file into a Mesh with per-corner UVs. Raises MeshError naming file and line.

    OBJ files are conventionally Y-up. With up_axis="Y" (the default) positions are turned into
    Blender's Z-up world exactly as Blender's OBJ importer does: (x, y, z) -> (x, -z, y), so camera
    coordinates given on the command line mean what they mean in Blender. up_axis="Z" keeps them.
    """
    return _parse(Path(path), up_axis)[0]


def _parse(path: Path, up_axis: str) -> tuple[Mesh, list[Path], list[str], np.ndarray]:
    """read_obj's mesh, and in the same pass the material libraries (`mtllib`, beside the file), the materials the
    faces are given (`usemtl`, in order of first use; "" for faces before any) and each face's index in them."""
    if up_axis not in ("Y", "Z"):
        raise MeshError(f"up axis must be 'Y' or 'Z', got {up_axis!r}")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise MeshError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    positions: list[list[float]] = []
    texcoords: list[list[float]] = []
    faces: list[tuple[int, int, int]] = []
    corner_uvs: list[tuple[int, int, int]] = []
    libraries: list[Path] = []
    materials: dict[str, int] = {}
    face_material: list[int] = []
    current = ""
    # read_text already turned \r\n and \r into \n; splitlines() would also break at form feeds and
    # other Unicode separators (say in a comment), throwing the reported line numbers off.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        keyword, *parts = line.split()
        where = f"{path}:{number}"
        if keyword == "v":
            positions.append(_floats(parts, 3, where, "v"))
        elif keyword == "vt":
            texcoords.append(_floats(parts, 2, where, "vt"))
        elif keyword == "mtllib" and parts:
            libraries.append(path.parent / " ".join(parts))
        elif keyword == "usemtl" and parts:
            current = parts[0]
        elif keyword == "f":
            if len(parts) < 3:
                raise MeshError(f"{where}: a face needs at least 3 corners, got {len(parts)}")
            vs, ts = [], []
            for corner in parts:
                fields = corner.split("/")
                if len(fields) < 2 or not fields[1]:
                    raise MeshError(f"{where}: face corner '{corner}' has no texture coordinate (vt)")
                vs.append(_resolve(fields[0], len(positions), where, "vertex"))
                ts.append(_resolve(fields[1], len(texcoords), where, "texture coordinate"))
            material = materials.setdefault(current, len(materials))
            for k in range(1, len(vs) - 1):
                faces.append((vs[0], vs[k], vs[k + 1]))
                corner_uvs.append((ts[0], ts[k], ts[k + 1]))
                face_material.append(material)
    if not faces:
        raise MeshError(f"{path}: the file has no faces")
    points = np.asarray(positions, dtype=np.float32).reshape(-1, 3)
    if up_axis == "Y":
        points = np.stack([points[:, 0], -points[:, 2], points[:, 1]], axis=1)
    uv_table = np.asarray(texcoords, dtype=np.float32).reshape(-1, 2)
    mesh = make_mesh(points, np.asarray(faces, dtype=np.int64), uv_table[np.asarray(corner_uvs, dtype=np.int64)],
                     source=str(path))
    return mesh, libraries, list(materials), np.asarray(face_material, dtype=np.int64)


DEFAULT_KD = 0.8  # the grey (linear) Blender's importer gives a material without a Kd, and faces without a material


@dataclass(frozen=True)
class MtlMaterial:
    diffuse_map: Path | None  # map_Kd, where it names a file that is there
    colour: np.ndarray  # (3,) sRGB: Kd, as Blender's importer takes it for the Base Color (linear)


def _map_file(rest: str) -> str:
    """The file a map statement names after its options (`-s 1 1 1`, `-bm 0.5`, `-clamp on`, `-imfchan r`), which may
    hold spaces."""
    tokens = rest.split()
    i = 0
    while i < len(tokens) and tokens[i].startswith("-"):
        option, i = tokens[i], i + 1
        while i < len(tokens) and (tokens[i] in ("on", "off") or _is_number(tokens[i])
                                   or (option == "-imfchan" and tokens[i] in ("r", "g", "b", "m", "l", "z"))):
            i += 1
    return " ".join(tokens[i:])


def _is_number(token: str) -> bool:
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False


def mtl_materials(libraries: list[Path]) -> dict[str, MtlMaterial]:
    """The materials the `libraries` define: each one's diffuse map (options before the name, as `-s 1 1 1`, are
    skipped) and colour. A library that cannot be read adds none (its faces then show the default grey)."""
    found: dict[str, dict] = {}
    for library in libraries:
        try:
            text = library.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        material = None
        for raw in text.split("\n"):
            keyword, _, rest = raw.split("#", 1)[0].strip().partition(" ")
            if keyword == "newmtl":
                material = found.setdefault(rest.strip(), {})
            elif material is not None and keyword == "map_Kd" and _map_file(rest):
                material["map"] = library.parent / _map_file(rest)
            elif material is not None and keyword == "Kd" and len(rest.split()) >= 3:
                try:
                    material["kd"] = np.clip([float(v) for v in rest.split()[:3]], 0, 1)
                except ValueError:
                    pass
    return {name: MtlMaterial(fields["map"] if "map" in fields and fields["map"].is_file() else None,
                              linear_to_srgb(np.asarray(fields.get("kd", [DEFAULT_KD] * 3), np.float64)).astype(np.float32))
            for name, fields in found.items()}


def read_obj_model(path: Path, up_axis: str = "Y") -> tuple[Mesh, np.ndarray | None, int, np.ndarray | None]:
    """An OBJ as Blender's importer shows it, for model.Model: the mesh, the texture its materials show (the image
    their library names as the diffuse map, `map_Kd`; an atlas where they show several, or one beside plain colours
    (Kd), as a glTF model's are read), its cells and which faces show an image in such an atlas."""
    from .images import load_texture
    from .model import atlas_texture

    mesh, libraries, names, face_material = _parse(path, up_axis)
    table = mtl_materials(libraries)
    plain = MtlMaterial(None, linear_to_srgb(np.full(3, DEFAULT_KD)).astype(np.float32))
    shown = [table.get(name, plain) for name in names]
    maps = list(dict.fromkeys(m.diffuse_map for m in shown if m.diffuse_map is not None))
    without = [k for k, m in enumerate(shown) if m.diffuse_map is None]
    cell = np.asarray([maps.index(m.diffuse_map) if m.diffuse_map is not None else len(maps) + without.index(k)
                       for k, m in enumerate(shown)], dtype=np.int64)
    texture, uvs, cells, editable = atlas_texture([load_texture(p) for p in maps], [shown[k].colour for k in without],
                                                  cell[face_material], mesh.uvs)
    if cells > 1:
        mesh = make_mesh(mesh.positions, mesh.faces, uvs, str(path))
    return mesh, texture, cells, editable


def write_obj(path: str | Path, mesh: Mesh, texture: str | Path | None = None) -> None:
    """Writes a Mesh as a Y-up OBJ with one vt per corner; read_obj(path) gives the mesh back. With `texture` (an
    image file) a material library beside it (the same name, .mtl) names that image as the diffuse map, by its path
    relative to the OBJ, so an importer shows the mesh textured."""
    path = Path(path)
    lines = []
    if texture is not None:
        library = path.with_suffix(".mtl")
        try:
            image = os.path.relpath(Path(texture).resolve(), path.resolve().parent)
        except ValueError:  # on another drive (Windows): no relative path
            image = str(Path(texture).resolve())
        lines += [f"mtllib {library.name}", "usemtl styletex"]
    lines += [f"v {x:.9g} {z:.9g} {-y:.9g}" for x, y, z in mesh.positions]
    lines += [f"vt {u:.9g} {v:.9g}" for u, v in mesh.uvs.reshape(-1, 2)]
    for i, (a, b, c) in enumerate(mesh.faces + 1):
        t = 3 * i + 1
        lines.append(f"f {a}/{t} {b}/{t + 1} {c}/{t + 2}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if texture is not None:
            library.write_text(f"newmtl styletex\nKd 1 1 1\nmap_Kd {Path(image).as_posix()}\n", encoding="utf-8")
    except OSError as exc:
        raise MeshError(f"{path}: cannot write the mesh ({exc.strerror or exc})") from None
