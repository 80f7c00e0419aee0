"""The pillar detector's pieces: pillars and their decorations, CenterPoint targets that decode back
to their boxes, augmentation that keeps points inside their boxes, the checkpoint and its refusals,
and the ONNX export."""

import math

import numpy as np
import pytest
import torch

from playground.errors import CheckpointError, ConfigError, DataFormatError
from playground.pointcloud.cuboid import Cuboid, points_in_box
from playground.pointcloud.detector import (
    CLASSES,
    DECORATIONS,
    LAYOUTS,
    Grid,
    PillarNet,
    check_layout,
    decode,
    load_detector,
    pillarize,
    point_array,
    save_detector,
)
from playground.pointcloud.detector_training import (
    Randomisation,
    augment,
    collate,
    detection_loss,
    gaussian_radius,
    targets,
)
from playground.pointcloud.scenes import SceneSpec, make_scene

SMALL = Grid(extent=8.0, pillar=0.5, max_points=4, max_pillars=500)


def test_points_are_grouped_into_their_pillars_with_pointpillars_decorations():
    rng = np.random.default_rng(0)
    raw = np.column_stack([rng.uniform(-7.9, 7.9, (300, 2)), rng.uniform(0, 2, 300), rng.random(300)])
    pillars = pillarize(raw.astype(np.float32), SMALL)
    real = pillars.mask.astype(bool)
    features = pillars.features
    assert features.shape[1:] == (SMALL.max_points, 4 + DECORATIONS)
    assert real.sum(axis=1).max() <= SMALL.max_points and real.any(axis=1).all()
    # each point lies in the cell its pillar names
    cols, rows = pillars.coords % SMALL.cells, pillars.coords // SMALL.cells
    cell_x = np.floor((features[..., 0] + SMALL.extent) / SMALL.pillar)
    cell_y = np.floor((features[..., 1] + SMALL.extent) / SMALL.pillar)
    assert (cell_x[real] == np.broadcast_to(cols[:, None], real.shape)[real]).all()
    assert (cell_y[real] == np.broadcast_to(rows[:, None], real.shape)[real]).all()
    # offsets from the pillar mean sum to zero; offsets from the centre stay within half a pillar
    sums = (features[..., 4:7] * real[..., None]).sum(axis=1)
    assert np.abs(sums).max() < 1e-4
    assert np.abs(features[..., 7:9][real]).max() <= SMALL.pillar / 2 + 1e-6
    assert (features[~real] == 0).all()


def test_points_outside_the_grid_are_dropped_and_the_sparsest_pillars_go_first():
    inside = np.array([[0.1, 0.1, 1.0]] * 3 + [[3.1, 3.1, 1.0]], np.float32)
    outside = np.array([[50.0, 0.0, 1.0], [0.0, 0.0, 9.0]], np.float32)
    pillars = pillarize(np.concatenate([inside, outside]), Grid(8.0, 0.5, max_points=2, max_pillars=1))
    assert len(pillars.coords) == 1 and pillars.mask.sum() == 2
    assert pillars.dropped_pillars == 1 and pillars.dropped_points == 1  # one over max_points
    empty = pillarize(np.zeros((0, 3), np.float32), SMALL)
    assert empty.features.shape == (0, SMALL.max_points, 3 + DECORATIONS)


def test_the_layout_decides_the_point_features():
    points, intensity = np.ones((5, 3), np.float32), np.full(5, 0.5, np.float32)
    assert point_array(points, intensity, LAYOUTS[0]).shape == (5, 4)
    assert point_array(points, None, LAYOUTS[0])[:, 3].tolist() == [0.0] * 5
    assert point_array(points, intensity, LAYOUTS[1]).shape == (5, 3)
    with pytest.raises(DataFormatError, match="must be \\(N, 3\\)"):
        point_array(np.ones((5, 2)), None, LAYOUTS[0])
    with pytest.raises(DataFormatError, match="trained on point features .*intensity.* but these points"):
        check_layout(LAYOUTS[0], LAYOUTS[1])


def _maps_from(target: dict) -> torch.Tensor:
    """Head maps that say exactly what ``target`` holds: heatmap logits and the regressions."""
    heat = torch.from_numpy(target["heatmap"]).clamp(1e-6, 1 - 1e-6)
    return torch.cat([torch.logit(heat), torch.from_numpy(target["regression"])])[None]


def test_targets_decode_back_to_their_boxes():
    boxes = [
        Cuboid((3.3, -2.2, 0.8), (4.2, 1.8, 1.6), 0.4, "car"),
        Cuboid((-5.1, 4.6, 0.85), (0.7, 0.6, 1.7), -2.9, "pedestrian"),
    ]
    found = decode(_maps_from(targets(boxes, SMALL)), SMALL, min_score=0.5)
    assert sorted(b.label for b in found) == ["car", "pedestrian"]
    for box in boxes:
        match = next(b for b in found if b.label == box.label)
        assert np.allclose(match.center, box.center, atol=1e-5) and np.allclose(
            match.size, box.size, atol=1e-5
        )
        assert math.isclose(math.sin(2 * match.yaw), math.sin(2 * box.yaw), abs_tol=1e-6)  # yaw modulo pi
        assert match.score == pytest.approx(1.0, abs=1e-5)


def test_the_gaussian_radius_grows_with_the_box_and_the_loss_is_lowest_at_the_truth():
    assert 0 < gaussian_radius(2, 1) < gaussian_radius(8, 4)
    boxes = [Cuboid((1.0, 1.0, 0.8), (4.0, 1.8, 1.6), 0.0, "car")]
    target = {k: torch.from_numpy(v)[None] for k, v in targets(boxes, SMALL).items()}
    exact, _ = detection_loss(_maps_from(targets(boxes, SMALL)), target)
    off, _ = detection_loss(_maps_from(targets(boxes, SMALL)) + 0.3, target)
    assert exact < off


def test_augmentation_moves_points_and_boxes_together():
    scene = make_scene(SceneSpec(seed=3, target_points=20000, cars=4, pedestrians=3, poles=0, walls=0))
    raw = point_array(scene.points, scene.intensity, LAYOUTS[0])
    truth = scene.ground_truth(CLASSES, 20)
    rng = np.random.default_rng(0)
    for _ in range(3):
        moved_points, moved_boxes = augment(raw, truth, rng)
        for before, after in zip(truth, moved_boxes):
            inside = points_in_box(raw[:, :3], before.with_(size=tuple(s + 0.2 for s in before.size)))
            grown = after.with_(size=tuple(s * 1.06 + 0.2 for s in after.size))
            assert points_in_box(moved_points[inside, :3], grown).all()


def test_a_batch_offsets_each_frames_cells():
    scene = make_scene(SceneSpec(seed=1, target_points=5000, object_range=6.0, min_distance=2.0))
    frame = (pillarize(point_array(scene.points, scene.intensity, LAYOUTS[0]), SMALL), targets([], SMALL))
    (features, mask, coords), target = collate([frame, frame], SMALL)
    assert len(coords) == 2 * len(frame[0].coords)
    assert coords[len(frame[0].coords) :].min() >= SMALL.cells**2
    net = PillarNet(SMALL, width=4).eval()
    with torch.no_grad():
        both = net(features, mask, coords, batch=2)
        one = net(*frame[0].tensors())
    assert torch.allclose(both[0], one[0], atol=1e-5) and torch.allclose(both[1], one[0], atol=1e-5)
    assert target["heatmap"].shape == (2, len(CLASSES), SMALL.cells // 2, SMALL.cells // 2)


def test_a_checkpoint_rebuilds_the_detector_and_refuses_another_layout(tmp_path):
    net = PillarNet(SMALL, LAYOUTS[1], width=4).eval()
    path = save_detector(tmp_path / "detector.safetensors", net)
    loaded = load_detector(path, LAYOUTS[1])
    assert loaded.grid == SMALL and loaded.layout == LAYOUTS[1]
    for name, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)
    with pytest.raises(DataFormatError, match="trained on point features \\['x', 'y', 'z'\\]"):
        load_detector(path, LAYOUTS[0])


def test_damaged_or_foreign_checkpoints_are_refused_clearly(tmp_path):
    from playground.core.checkpoint import save_checkpoint

    net = PillarNet(SMALL, width=4)
    foreign = save_checkpoint(tmp_path / "a.safetensors", net, {"format": "something else"})
    with pytest.raises(CheckpointError, match="not a playground 3D detector"):
        load_detector(foreign)
    meta = dict(format="playground.pointcloud.detector/1", classes=list(CLASSES), width=4)
    broken = save_checkpoint(tmp_path / "b.safetensors", net, {**meta, "point_features": ["x", "y", "z"]})
    with pytest.raises(CheckpointError, match="detector metadata of .*b.safetensors lacks 'grid'"):
        load_detector(broken)
    grid = dict(extent=8.0, pillar=0.5, max_points=4, max_pillars=500, z_min=-1.0, z_max=3.0)
    misfit = save_checkpoint(
        tmp_path / "c.safetensors", net, {**meta, "grid": grid, "point_features": ["x", "y", "z"]}
    )
    with pytest.raises(CheckpointError, match="does not fit the detector"):
        load_detector(misfit)  # weights for x, y, z, intensity
    (tmp_path / "d.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(CheckpointError, match="corrupt or not a safetensors"):
        load_detector(tmp_path / "d.safetensors")


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda meta: [meta], "is a list"),
        (lambda meta: {**meta, "width": "4"}, "'width' is '4', not an int in 1..256"),
        (lambda meta: {**meta, "classes": "car"}, "'classes' is 'car', not a list of a string"),
        (lambda meta: {**meta, "grid": {**meta["grid"], "max_points": 0}}, "'max_points' is 0"),
        (lambda meta: {**meta, "grid": {**meta["grid"], "extent": 1e308, "pillar": 1e-308}}, "damaged"),
        (
            lambda meta: {**meta, "grid": {**meta["grid"], "extent": 2000.0, "pillar": 0.5}},
            "8000 cells a side",
        ),
        (lambda meta: {**meta, "width": 256}, "does not fit the detector"),
    ],
)
def test_hostile_detector_metadata_is_one_error_naming_the_file(tmp_path, edit, problem):
    from tests.hostile import replant

    path = save_detector(tmp_path / "detector.safetensors", PillarNet(SMALL, width=4))
    meta = {**load_detector_metadata(path)}
    replant(path, metadata=edit(meta))
    with pytest.raises(CheckpointError, match="detector.safetensors") as info:
        load_detector(path)
    assert problem in str(info.value)


def load_detector_metadata(path) -> dict:
    from playground.core.checkpoint import load_checkpoint

    return load_checkpoint(path)[1]


def test_bad_grids_and_randomisation_ranges_are_refused():
    with pytest.raises(ConfigError, match="multiple of 4"):
        Grid(extent=8.0, pillar=0.6)
    with pytest.raises(ConfigError, match="low <= high"):
        Randomisation(noise=[0.05, 0.01])
    with pytest.raises(ConfigError, match="dropout"):
        Randomisation(dropout=[0.0, 1.0])
    spec = Randomisation(rings=[32], noise=[0.02, 0.02]).spec(SceneSpec(), seed=5)
    assert (spec.rings, spec.noise, spec.seed) == (32, 0.02, 5)


def test_the_onnx_export_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from playground.pointcloud.learned import _ort_run, export_detector

    scene = make_scene(SceneSpec(seed=2, target_points=8000, object_range=7.0, min_distance=2.0))
    torch.manual_seed(0)
    net = PillarNet(SMALL, width=4).eval()
    path = export_detector(net, scene, tmp_path / "d.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    other = make_scene(SceneSpec(seed=9, target_points=6000, object_range=7.0, min_distance=2.0))
    tensors = pillarize(point_array(other.points, other.intensity, LAYOUTS[0]), SMALL).tensors()
    with torch.no_grad():
        expected = net(*tensors).numpy()
    assert np.abs(_ort_run(session, tensors)[0] - expected).max() < 1e-4  # another pillar count


def test_batches_are_the_same_whichever_process_makes_them():
    from playground.pointcloud.detector_training import TrainingBatches, training_scenes

    base = SceneSpec(target_points=4000, object_range=7.0, min_distance=2.0, walls=0)
    scenes = training_scenes(base, Randomisation(), 3, seed=7)
    assert [s.spec.seed for s in scenes] == [7, 8, 9]
    assert [len(s) for s in training_scenes(base, Randomisation(), 3, seed=7, workers=2)] == [
        len(s) for s in scenes
    ]
    net = PillarNet(SMALL, width=4)
    batches = TrainingBatches(scenes, net, steps=4, batch_size=2, seed=0, min_points=1)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=2)
    for (inputs, target), step in zip(loader, range(4)):
        again_inputs, again_target = batches[step]
        assert all(torch.equal(a, b) for a, b in zip(inputs, again_inputs))
        assert torch.equal(target["heatmap"], again_target["heatmap"])
    assert not torch.equal(batches[0][0][0], batches[1][0][0])
