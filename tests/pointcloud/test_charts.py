"""The bird's-eye-view chart on hand-made points and boxes: height bands, outlines with heading ticks."""

from __future__ import annotations

import math

import numpy as np

from playground.core.charts import save_png
from playground.pointcloud.charts import CLASS_COLOURS, PROPOSAL_COLOUR, bev_chart, outlines
from playground.pointcloud.cuboid import Cuboid

CAR = Cuboid((10.0, 5.0, 0.8), (4.0, 2.0, 1.6), 0.0, "car")
PEDESTRIAN = Cuboid((-3.0, 2.0, 0.9), (0.6, 0.6, 1.8), math.pi / 2, "pedestrian")


def test_an_outline_is_the_footprint_then_the_heading_tick_with_breaks_between():
    x, y = outlines([CAR])
    assert x[:5] == [12.0, 8.0, 8.0, 12.0, 12.0] and y[:5] == [6.0, 6.0, 4.0, 4.0, 6.0]
    assert x[6:8] == [10.0, 12.0] and y[6:8] == [5.0, 5.0]  # centre to the middle of the front face
    assert math.isnan(x[5]) and math.isnan(x[8]) and len(x) == len(y) == 9
    assert outlines([]) == ([], [])


def test_bev_chart_bands_points_by_height_and_keeps_only_the_near_ones(tmp_path):
    points = np.array([[1.0, 1.0, 0.0], [2.0, 1.0, 0.5], [3.0, 1.0, 3.0], [50.0, 0.0, 0.0], [4.0, 2.0, 0.1]])
    chart = bev_chart(points, [CAR, PEDESTRIAN], [CAR.with_(yaw=0.1)], extent=20.0, title="frame 0")
    assert chart.name == "bev" and chart.title == "frame 0"
    (panel,) = chart.panels
    assert panel.equal_aspect and panel.x_label == "x (m, forward)"
    names = [t.name for t in panel.traces]
    assert names == [
        "z < 0.25 m",
        "z < 1 m",
        "z ≥ 2.5 m",
        "truth: car",
        "truth: pedestrian",
        "proposal",
        "sensor",
    ]
    ground = panel.traces[0]
    assert (ground.x, ground.y) == ([1.0, 4.0], [1.0, 2.0]) and ground.size == 1.0 and not ground.legend
    assert sum(len(t.x) for t in panel.traces[:3]) == 4  # the point 50 m away is left out
    car, pedestrian, proposal = panel.traces[3:6]
    assert car.color == CLASS_COLOURS["car"] and not car.dash and len(car.x) == 9
    assert proposal.color == PROPOSAL_COLOUR and proposal.dash
    assert all(isinstance(v, float) for t in panel.traces for v in t.x)  # plain numbers, no numpy
    assert save_png(chart, tmp_path / "bev.png").stat().st_size > 5000


def test_many_points_are_subsampled_and_a_frame_without_proposals_still_draws(tmp_path):
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-30, 30, (5000, 2)), rng.uniform(-0.5, 3.0, 5000)])
    chart = bev_chart(points, [CAR], [], max_points=1000)
    (panel,) = chart.panels
    assert sum(len(t.x) for t in panel.traces if t.name.startswith("z ")) == 1000
    assert panel.traces[-2].name == "proposal" and panel.traces[-2].x == []
    assert save_png(chart, tmp_path / "bev.png").is_file()
