"""Wavefront OBJ reading: positions, texture coordinates and faces into a Mesh.

Polygons are fan-triangulated; indices may be negative (relative to the end of the list so far);
`v/vt` and `v/vt/vn` corners are accepted. Every problem is reported with the file and line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import MeshError
from ..mesh import Mesh, make_mesh


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
    if up_axis not in ("Y", "Z"):
        raise MeshError(f"up axis must be 'Y' or 'Z', got {up_axis!r}")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise MeshError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    positions: list[list[float]] = []
    texcoords: list[list[float]] = []
    faces: list[tuple[int, int, int]] = []
    corner_uvs: list[tuple[int, int, int]] = []
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
            for k in range(1, len(vs) - 1):
                faces.append((vs[0], vs[k], vs[k + 1]))
                corner_uvs.append((ts[0], ts[k], ts[k + 1]))
    if not faces:
        raise MeshError(f"{path}: the file has no faces")
    points = np.asarray(positions, dtype=np.float32).reshape(-1, 3)
    if up_axis == "Y":
        points = np.stack([points[:, 0], -points[:, 2], points[:, 1]], axis=1)
    uv_table = np.asarray(texcoords, dtype=np.float32).reshape(-1, 2)
    return make_mesh(
        points,
        np.asarray(faces, dtype=np.int64),
        uv_table[np.asarray(corner_uvs, dtype=np.int64)],
        source=str(path),
    )


def obj_references(path: str | Path) -> tuple[list[Path], list[str]]:
    """An OBJ file's material libraries (`mtllib`, beside it) and the materials its faces are given (`usemtl`, in
    order of first use), in one pass; nothing where it cannot be read (read_obj says why)."""
    path = Path(path)
    libraries: list[Path] = []
    names: dict[str, None] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                keyword, _, rest = line.split("#", 1)[0].strip().partition(" ")
                if keyword == "mtllib" and rest.strip():
                    libraries.append(path.parent / rest.strip())
                elif keyword == "usemtl" and rest.split():
                    names.setdefault(rest.split()[0])
    except OSError:
        return [], []
    return libraries, list(names)


def obj_texture(libraries: list[Path], materials: list[str]) -> Path | None:
    """The image the material `libraries` name as the diffuse map (`map_Kd`) of `materials` (obj_references'), where
    they name one and the same: what Blender's importer shows on the mesh. None where they name none, several, or a
    file that is not there (the grey stand-in is then said, as for a model without a texture)."""
    maps: dict[str, Path] = {}
    for library in libraries:
        try:
            text = library.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        material = None
        for raw in text.split("\n"):
            keyword, _, rest = raw.split("#", 1)[0].strip().partition(" ")
            if keyword == "newmtl":
                material = rest.strip()
            elif keyword == "map_Kd" and material is not None and rest.split():
                maps[material] = library.parent / rest.split()[-1]  # options (-s 1 1 1 ...) come first
    used = {maps[name] for name in materials if name in maps}
    if len(used) != 1:
        return None
    found = next(iter(used))
    return found if found.is_file() else None


def write_obj(path: str | Path, mesh: Mesh) -> None:
    """Writes a Mesh as a Y-up OBJ with one vt per corner; read_obj(path) gives the mesh back."""
    lines = [f"v {x:.9g} {z:.9g} {-y:.9g}" for x, y, z in mesh.positions]
    lines += [f"vt {u:.9g} {v:.9g}" for u, v in mesh.uvs.reshape(-1, 2)]
    for i, (a, b, c) in enumerate(mesh.faces + 1):
        t = 3 * i + 1
        lines.append(f"f {a}/{t} {b}/{t + 1} {c}/{t + 2}")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        raise MeshError(f"{path}: cannot write the mesh ({exc.strerror or exc})") from None
