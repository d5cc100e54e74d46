"""Restyling in new UVs of even texel density (backend.mesh.unwrap, backend.texture.transfer, --unwrap even)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.commands.main import main
from backend.errors import StyleTexError
from backend.formats.images import load_image
from backend.formats.obj import read_obj, write_obj
from backend.mesh.primitives import dense_cap_sphere, many_island_sphere, two_island_sphere, uv_sphere
from backend.mesh.seams import find_seams
from backend.mesh.unwrap import even_layout, even_uvs, repacked_uvs
from backend.mesh.uv_room import dense_islands, uv_axes, uv_room, weighted_median
from backend.render import MeshTensors, rasterize_view, shade
from backend.style.engine import stylize
from backend.style.finishing import SEAM_GUTTER, uv_island_mask
from backend.style.round_trip import BackToOwnUVs, auto_unwrap
from backend.style.sequence import stylize_sequence
from backend.style.settings import OWN_UV_UNWRAPS, StyleSettings
from backend.texture.transfer import transfer_texture
from backend.views import ring_cameras

REPO = Path(__file__).resolve().parent.parent
STYLE = REPO / "data" / "styles" / "starry_night.jpg"


@pytest.fixture(scope="module")
def blub():
    return read_obj(REPO / "data" / "blub" / "blub_triangulated.obj")


def test_new_uvs_give_every_part_of_blub_texture_room(blub):
    """Blub's own UVs give its tail and fins 1/1500 of the median texels per unit of area (the 1st percentile);
    the new ones about half of it at worst, with the same faces in the same order."""
    even = even_uvs(blub, 1024)
    assert np.array_equal(even.faces, blub.faces) and np.array_equal(even.positions, blub.positions)
    assert even.uvs.min() >= 0 and even.uvs.max() <= 1

    def density_quantile(mesh) -> float:
        corners = mesh.positions[mesh.faces]
        area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
        u = mesh.uvs
        edges = u[:, 1:] - u[:, :1]  # (F, 2, 2)
        uv_area = np.abs(edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 1, 0] * edges[:, 0, 1])
        density = uv_area / np.maximum(area, 1e-12)
        return float(np.percentile(density, 1) / np.median(density))

    assert density_quantile(blub) < 0.01 and density_quantile(even) > 0.3
    assert uv_room(blub, 1024).note() != "" and uv_room(even, 1024).note() == ""


def test_repacked_islands_keep_their_shapes_at_one_density(blub):
    """Bob's head island has 2.2 times the surface's median texels per unit of area, 3 times his sparsest island's.
    Repacked (repacked_uvs), each island is its own shape again, moved, turned and scaled alike along both axes, and
    the islands' densities are within a fifth of each other. Blub's tail is starved inside its island, which repacking cannot mend, and the many-island
    sphere's islands cut it more than new charts would: their even layouts are xatlas's charts (even_layout)."""
    bob = read_obj(REPO / "data" / "bob" / "bob_tri.obj")
    packed = repacked_uvs(bob, 1024)
    assert np.array_equal(packed.faces, bob.faces) and packed.uvs.min() >= 0 and packed.uvs.max() <= 1
    labels = find_seams(bob, False).island
    densities = []
    for mesh in (bob, packed):
        area, major, minor = uv_axes(mesh)
        density = np.sqrt(major * minor)
        densities.append([weighted_median(density[labels == k], area[labels == k]) for k in np.unique(labels)])
    assert len(densities[0]) == 3 and max(densities[0]) / min(densities[0]) > 2
    assert max(densities[1]) / min(densities[1]) < 1.25
    for label in np.unique(labels):
        own = bob.uvs[labels == label].reshape(-1, 2).astype(np.float64)
        new = packed.uvs[labels == label].reshape(-1, 2).astype(np.float64)
        affine = np.concatenate([own, np.ones((len(own), 1))], axis=1)
        fit = np.linalg.lstsq(affine, new, rcond=None)[0]
        assert np.abs(affine @ fit - new).max() < 1e-4
        stretch = np.linalg.svd(fit[:2], compute_uv=False)
        assert stretch[0] / stretch[1] < 1.01
    assert even_layout(bob, 1024).uvs.tolist() == packed.uvs.tolist()
    assert uv_room(repacked_uvs(blub, 1024), 1024).note() != "" and uv_room(even_layout(blub, 1024), 1024).note() == ""
    # The many-island sphere's 72 islands cut it more than xatlas's charts do: those are its even layout.
    islands = many_island_sphere()
    assert len(np.unique(find_seams(islands, False).island)) == 72
    assert len(np.unique(find_seams(even_layout(islands, 512), False).island)) < 50


def test_a_moved_texture_shows_the_same_surface():
    spot = read_obj(REPO / "data" / "spot" / "spot_triangulated.obj")
    texture = load_image(REPO / "data" / "spot" / "spot_texture.png")[..., :3]
    even = even_uvs(spot, 1024)
    moved = transfer_texture(texture, spot.uvs, even.uvs, 1024)
    assert moved.shape == (1024, 1024, 3)
    renders = []
    for mesh, image in ((spot, texture), (even, moved)):
        tensors = MeshTensors.from_mesh(mesh)
        renders.append(torch.stack([shade(rasterize_view(tensors, camera, 128), tensors.uvs, torch.from_numpy(image))
                                    for camera in ring_cameras(spot.center, spot.radius, 4)]))
    difference = (renders[0] - renders[1]).abs().mean(dim=-1)
    assert float(difference.mean()) < 0.01 and float(difference.quantile(0.99)) < 0.1
    # the same renders from an unmoved texture in the new UVs are another picture
    tensors = MeshTensors.from_mesh(even)
    wrong = torch.stack([shade(rasterize_view(tensors, camera, 128), tensors.uvs, torch.from_numpy(texture))
                         for camera in ring_cameras(spot.center, spot.radius, 4)])
    assert float((renders[0] - wrong).abs().mean()) > 5 * float(difference.mean())


def test_a_job_with_new_uvs_returns_them_and_only_whole_textures_may_have_them():
    sphere = uv_sphere(8, 16)
    style = load_image(STYLE)
    original = np.full((32, 32, 3), 0.7, np.float32)
    settings = StyleSettings(steps=2, texture_size=64, render_size=32, features="random", unwrap="even")
    result = stylize(sphere, style, settings, original)
    assert result.uvs is not None and result.uvs.shape == sphere.uvs.shape and not np.allclose(result.uvs, sphere.uvs)
    assert result.texture.shape == (64, 64, 3) and result.report["settings"]["unwrap"] == "even"
    assert stylize(sphere, style, StyleSettings(steps=1, texture_size=64, render_size=32, features="random"),
                   original).uvs is None
    with pytest.raises(StyleTexError, match="unselected"):
        stylize(sphere, style, settings, original, editable=np.arange(len(sphere.faces)) % 2 == 0)
    with pytest.raises(StyleTexError, match="sequences"):
        stylize_sequence(sphere, style, style, settings, 2, original)
    with pytest.raises(StyleTexError, match="unwrap"):
        StyleSettings(unwrap="smart").validate()
    assert OWN_UV_UNWRAPS == ("auto", "keep", "round-trip")  # what the service and batches take: results in the UVs sent


def test_the_command_line_writes_the_mesh_with_its_new_uvs(tmp_path, capsys):
    mesh_path = tmp_path / "sphere.obj"
    sphere = uv_sphere(6, 12)
    write_obj(mesh_path, sphere)
    base = ["stylize", str(mesh_path), "--style", str(STYLE), "--features", "random", "--steps", "1",
            "--texture-size", "64", "--render-size", "32", "--quiet"]
    assert main([*base, "--unwrap", "even", "--out", str(tmp_path / "a.png"), "--out-mesh", str(tmp_path / "a.obj")]) == 0
    written = read_obj(tmp_path / "a.obj")
    np.testing.assert_allclose(written.positions, sphere.positions, atol=1e-6)
    assert np.array_equal(written.faces, sphere.faces) and not np.allclose(written.uvs, sphere.uvs)
    assert load_image(tmp_path / "a.png").shape[:2] == (64, 64)
    capsys.readouterr()
    for extra, says in ((["--unwrap", "even"], "--out-mesh"), (["--out-mesh", str(tmp_path / "b.obj")], "--unwrap even"),
                        (["--unwrap", "even", "--out-mesh", str(tmp_path / "b.ply")], ".obj")):
        assert main([*base, *extra, "--out", str(tmp_path / "b.png")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err
        assert not (tmp_path / "b.png").exists()


def test_a_round_trip_hands_back_the_surface_in_the_own_uvs():
    """Spot's texture moved into even UVs and back (round_trip.BackToOwnUVs) renders as the original does, and
    texels beyond the islands' seam gutters and padding keep the original's values exactly."""
    spot = read_obj(REPO / "data" / "spot" / "spot_triangulated.obj")
    texture = load_image(REPO / "data" / "spot" / "spot_texture.png")[..., :3]
    texture = np.ascontiguousarray(texture[::2, ::2])  # 512^2
    even = even_uvs(spot, 512)
    settings = StyleSettings(texture_size=512)
    back = BackToOwnUVs(even.uvs, spot, texture, settings)(transfer_texture(texture, spot.uvs, even.uvs, 512))
    tensors = MeshTensors.from_mesh(spot)
    renders = [torch.stack([shade(rasterize_view(tensors, camera, 128), tensors.uvs, torch.from_numpy(image))
                            for camera in ring_cameras(spot.center, spot.radius, 4)]) for image in (texture, back)]
    difference = (renders[0] - renders[1]).abs().mean(dim=-1)
    assert float(difference.mean()) < 0.01 and float(difference.quantile(0.99)) < 0.1
    island = uv_island_mask(torch.from_numpy(spot.uvs), 512)
    reach = settings.margin + SEAM_GUTTER + 1  # the seams' gutters, then the padding around them
    padded = torch.nn.functional.max_pool2d(island[None, None].float(), 2 * reach + 1, 1, reach)[0, 0] > 0
    assert bool((~padded).any())
    np.testing.assert_array_equal(back[~padded.numpy()], texture[~padded.numpy()])
    # the even layout's texture read through the own UVs unmoved is another picture
    assert float((torch.from_numpy(back) - torch.from_numpy(transfer_texture(texture, spot.uvs, even.uvs, 512))
                  ).abs().mean()) > 0.05


def small_round_trip(steps: int):
    """A sphere, a painting, a light original and the settings of a small round-trip job previewing every step."""
    settings = StyleSettings(steps=steps, texture_size=64, render_size=32, features="random", unwrap="round-trip",
                             preview_every=1)
    return uv_sphere(8, 16), load_image(STYLE), np.full((32, 32, 3), 0.7, np.float32), settings


def test_a_round_trip_job_keeps_the_mesh_uvs_and_says_how_much_room_they_give():
    sphere, style, original, settings = small_round_trip(2)
    previews = []
    result = stylize(sphere, style, settings, original, progress=lambda p: previews.append(p.texture))
    assert result.uvs is None and result.texture.shape == (64, 64, 3)
    assert result.report["settings"]["unwrap"] == "round-trip"
    assert result.report["uv_room"] == uv_room(sphere, 64).to_dict() != uv_room(even_uvs(sphere, 64), 64).to_dict()
    assert len(previews) == 2 and all(p.shape == (64, 64, 3) for p in previews)
    assert result.report["polish_steps"] == 0  # too short a job to polish
    bare = stylize(sphere, style, replace(settings, steps=1, preview_every=0), None).texture  # no original: grown
    assert bare.shape == (64, 64, 3) and np.isfinite(bare).all() and float(bare.std()) > 0
    with pytest.raises(StyleTexError, match="unselected"):
        stylize(sphere, style, settings, original, editable=np.arange(len(sphere.faces)) % 2 == 0)
    with pytest.raises(StyleTexError, match="round-trip is for single textures"):
        stylize_sequence(sphere, style, style, settings, 2, original)


def test_a_round_trip_polishes_in_the_own_uvs_at_the_end_and_reports_the_whole_job():
    sphere, style, original, settings = small_round_trip(7)
    states = []
    result = stylize(sphere, style, settings, original, progress=states.append)
    report = result.report
    assert report["polish_steps"] == 1 and report["steps_done"] == 7 and report["settings"]["steps"] == 7
    assert [entry["step"] for entry in report["loss"]] == list(range(1, 8))
    assert [(s.step, s.steps) for s in states] == [(k, 7) for k in range(1, 8)] and states[-1].eta == 0
    assert all(s.texture is not None and s.texture.shape == (64, 64, 3) for s in states)
    # the last preview is the polished texture before finishing: the result on the islands' texels
    inside = uv_island_mask(torch.from_numpy(sphere.uvs), 64, grown=False).numpy()
    assert np.abs(states[-1].texture - result.texture)[inside].mean() < 0.02
    # a job cancelled before its polish hands back what it carried
    cancel = threading.Event()
    stopped = stylize(sphere, style, settings, original, progress=lambda s: s.step == 2 and cancel.set(), cancel=cancel)
    assert stopped.cancelled and stopped.report["steps_done"] == 2 and stopped.report["polish_steps"] == 0

def test_the_command_line_round_trip_writes_the_texture_alone(tmp_path, capsys):
    mesh_path = tmp_path / "sphere.obj"
    write_obj(mesh_path, uv_sphere(6, 12))
    base = ["stylize", str(mesh_path), "--style", str(STYLE), "--features", "random", "--steps", "1",
            "--texture-size", "64", "--render-size", "32", "--quiet", "--unwrap", "round-trip"]
    assert main([*base, "--out", str(tmp_path / "a.png")]) == 0
    assert load_image(tmp_path / "a.png").shape[:2] == (64, 64)
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "b.png"), "--out-mesh", str(tmp_path / "b.obj")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--unwrap even" in err, err
    assert not (tmp_path / "b.png").exists()


def test_auto_takes_the_round_trip_where_dense_islands_would_come_out_calmer(blub, tmp_path, capsys):
    """unwrap auto (the default): Bob's head island, 13 % of his surface at over 1.5 times its median density, and the
    dense cap of a procedural sphere are what the round trip evens out, in their own islands repacked. Blub's dense islands would starve his tail when repacked,
    the many-island sphere's cut it more than new charts: both take the trip through xatlas's charts. The two-island
    sphere, whose islands have one density, keeps its own UVs, as does a job of selected faces, and the report says
    which was taken and why."""
    bob = read_obj(REPO / "data" / "bob" / "bob_tri.obj")
    dense = dense_islands(bob, find_seams(bob).island)
    area = uv_axes(bob)[0]
    assert dense is not None and 0.1 < area[dense].sum() / area.sum() < 0.2
    layout, why = auto_unwrap(bob, 256)
    assert layout is not None and layout.uvs.tolist() == repacked_uvs(bob, 256).uvs.tolist()
    assert why.startswith("round trip") and "13 % of the surface" in why
    # a procedural head: the cap, a third of the sphere, packed 2.2 times as densely as the rest (its own island)
    cap = dense_cap_sphere()
    labels = find_seams(cap).island
    assert len(np.unique(labels)) == 2 and len(find_seams(cap)) == 64
    layout, why = auto_unwrap(cap, 256)
    assert layout is not None and "33 % of the surface" in why
    area, major, minor = uv_axes(layout)
    density = np.sqrt(major * minor)
    medians = [weighted_median(density[labels == k], area[labels == k]) for k in np.unique(labels)]
    assert max(medians) / min(medians) < 1.1  # repacked at one density
    for mesh in (blub, many_island_sphere()):
        layout, why = auto_unwrap(mesh, 256)
        assert layout is not None and why.startswith("round trip through new charts"), why
        assert layout.uvs.tolist() == even_uvs(mesh, 256).uvs.tolist()
    layout, why = auto_unwrap(two_island_sphere(), 256)
    assert layout is None and why.startswith("kept the own UVs") and "one texel density" in why, why
    assert StyleSettings().unwrap == "auto"
    style, original = load_image(STYLE), load_image(REPO / "data" / "bob" / "bob_diffuse.png")
    settings = StyleSettings(steps=2, texture_size=64, render_size=32, features="random")
    result = stylize(bob, style, settings, original)
    assert result.uvs is None and result.texture.shape == (64, 64, 3)
    assert result.report["unwrap"] == "round-trip" and result.report["unwrap_reason"].startswith("round trip")
    assert result.report["uv_room"] == uv_room(bob, 64).to_dict()  # the room of the UVs the texture comes in
    selected = stylize(bob, style, settings, original, editable=dense)
    assert selected.report["unwrap"] == "keep" and "selected faces" in selected.report["unwrap_reason"]
    kept = stylize(bob, style, replace(settings, unwrap="keep"), original)
    assert kept.report["unwrap"] == "keep" and kept.report["unwrap_reason"] == ""
    assert not np.allclose(kept.texture, result.texture)
    # a sequence keeps the own UVs under auto
    assert len(stylize_sequence(bob, style, style, replace(settings, steps=1), 2, original).frames) == 2
    # the command line says when auto took the trip
    capsys.readouterr()
    assert main(["stylize", str(REPO / "data" / "bob" / "bob_tri.obj"), "--style", str(STYLE), "--features", "random",
                 "--steps", "1", "--texture-size", "64", "--render-size", "32", "--out", str(tmp_path / "b.png")]) == 0
    assert "unwrap auto: round trip through the own islands" in capsys.readouterr().err


def test_a_round_trip_spectrum_is_at_least_what_the_own_uvs_resolve():
    """Bob's even layout alone would get a 512^2 spectrum at 256^2 renders, his own UVs 1024^2 (his face's front gets
    few texels in the even layout): the round trip's job in it keeps 1024^2. Spot's both get 512^2: auto stays. A size
    that is set is left alone."""
    from backend.render import MeshTensors
    from backend.style.engine import job_probe, round_trip_spectrum
    from backend.style.spectrum_size import resolvable_shape

    settings = StyleSettings(texture_size=1024, render_size=256)
    cpu = torch.device("cpu")
    bob = read_obj(REPO / "data" / "bob" / "bob_tri.obj")
    spot = read_obj(REPO / "data" / "spot" / "spot_triangulated.obj")
    bob_even, spot_even = auto_unwrap(bob, 1024)[0], auto_unwrap(spot, 1024)[0]
    shape = lambda mesh: resolvable_shape(job_probe(MeshTensors.from_mesh(mesh), mesh, settings), 1024)  # noqa: E731
    assert shape(bob_even) == (512, 512) and shape(bob) == (1024, 1024)
    assert round_trip_spectrum(bob, bob_even, settings, cpu) == 1024
    assert shape(spot_even) == shape(spot) == (512, 512)
    assert round_trip_spectrum(spot, spot_even, settings, cpu) == 0
    assert round_trip_spectrum(bob, bob_even, replace(settings, spectrum_size=256), cpu) == 256
