"""The batch manifest: reading and checking every job before anything runs.

    {"jobs": [{"name": "crate", "mesh": "props/crate.glb", "texture": "props/crate.png" (optional),
               "style": "styles/wave.jpg" or ["a.jpg", "b.jpg"], "settings": {"steps": 200, ...}}]}

Paths are relative to the manifest. A problem anywhere is a StyleTexError naming the job and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import StyleTexError
from ..style.settings import OWN_UV_UNWRAPS, StyleSettings, parse_blend, settings_from_dict

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # becomes a file name in the output folder
JOB_FIELDS = {"name", "mesh", "texture", "style", "settings"}
MODEL_SUFFIXES = (".obj", ".glb", ".gltf")


@dataclass(frozen=True)
class BatchJob:
    name: str
    mesh: Path
    texture: Path | None
    styles: tuple[Path, ...]
    settings: dict  # StyleSettings fields, validated

    def input_hash(self) -> str:
        """What --resume compares: the bytes of every input file and the settings."""
        digest = hashlib.sha256()
        for path in (self.mesh, self.texture, *self.styles):
            digest.update(b"-" if path is None else path.read_bytes())
        digest.update(json.dumps(self.settings, sort_keys=True).encode())
        return digest.hexdigest()


def _path(root: Path, value, where: str, suffixes: tuple[str, ...] | None = None) -> Path:
    if not isinstance(value, str) or not value:
        raise StyleTexError(f"{where} must be a path (a non-empty string)")
    path = (root / value).resolve()
    if not path.is_file():
        raise StyleTexError(f"{where}: no such file {value!r}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise StyleTexError(f"{where}: {value!r} is not one of {', '.join(suffixes)}")
    return path


def _settings(raw, where: str) -> dict:
    try:
        settings = settings_from_dict(raw, {f.name for f in fields(StyleSettings)} - {"weights", "device"})
    except StyleTexError as exc:
        raise StyleTexError(f"{where}: {exc}") from None
    if settings.unwrap not in OWN_UV_UNWRAPS:
        raise StyleTexError(f"{where}: unwrap must be auto, keep or round-trip in a batch, not {settings.unwrap!r}")
    return dict(raw or {})


def load_manifest(path: str | Path) -> list[BatchJob]:
    """Reads and checks the whole manifest; raises StyleTexError naming the job and field at fault."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StyleTexError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StyleTexError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list) or not data["jobs"]:
        raise StyleTexError(f"{path}: needs a non-empty list \"jobs\"")
    root, jobs, names = path.parent, [], set()
    for number, raw in enumerate(data["jobs"], 1):
        label = f"job {number}"
        if not isinstance(raw, dict):
            raise StyleTexError(f"{label} must be an object")
        name = raw.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise StyleTexError(f"{label}.name must be letters, digits, '.', '_' or '-' (a file name), got {name!r}")
        label = f"job {name!r}"
        if name in names:
            raise StyleTexError(f"{label}: the name is used twice")
        names.add(name)
        unknown = sorted(set(raw) - JOB_FIELDS)
        if unknown:
            raise StyleTexError(f"{label}: unknown field {unknown[0]!r}")
        mesh = _path(root, raw.get("mesh"), f"{label}.mesh", MODEL_SUFFIXES)
        texture = _path(root, raw["texture"], f"{label}.texture") if raw.get("texture") is not None else None
        style = raw.get("style")
        styles = style if isinstance(style, list) else [style]
        if not styles:
            raise StyleTexError(f"{label}.style must name at least one painting")
        paths = tuple(_path(root, s, f"{label}.style") for s in styles)
        settings = _settings(raw.get("settings"), f"{label}.settings")
        try:
            parse_blend(settings.get("style_blend", ""), len(paths))
        except StyleTexError as exc:
            raise StyleTexError(f"{label}.settings: {exc}") from None
        jobs.append(BatchJob(name, mesh, texture, paths, settings))
    return jobs
