"""The optimizers charts on hand-made curves and short paths: panels, traces, axes, the step."""

import math

import pytest
import torch

from playground.core.charts import save_png
from playground.optimizers.catalog import COLORS
from playground.optimizers.charts import curves_chart, log_epochs_by_default, path_traces, trajectory_chart
from playground.optimizers.curves import Curves
from playground.optimizers.functions import Trajectory, get_function


def curves(passes: int = 2, std: bool = False) -> Curves:
    epochs = list(range(passes + 1))
    spread = [0.1] * (passes + 1) if std else None
    return Curves(
        epochs,
        [2.0 / (e + 1) for e in epochs],
        [0.1 + 0.2 * e for e in epochs],
        [e + 0.5 for e in range(passes)],
        [1.5 / (e + 1) for e in range(passes)],
        val_loss_std=spread,
        val_accuracy_std=spread,
        train_loss_std=[0.1] * passes if std else None,
        seeds=2 if std else 1,
    )


def test_the_curves_are_three_panels_one_line_per_optimizer_with_bands_over_seeds():
    chart = curves_chart({"gd": curves(), "adam": curves(std=True)})
    train, val_loss, accuracy = chart.panels
    assert chart.name == "curves" and chart.columns == 3 and "mean ± std over 2 seeds" in chart.title
    assert [t.name for t in accuracy.traces] == ["GD (full batch)", "Adam"]
    assert accuracy.traces[0].color == COLORS["gd"] and accuracy.traces[0].markers
    assert accuracy.traces[1].x == [0, 1, 2] and accuracy.traces[1].y == pytest.approx([0.1, 0.3, 0.5])
    assert accuracy.traces[0].lower is None and accuracy.traces[1].upper == pytest.approx([0.2, 0.4, 0.6])
    assert train.log_y and val_loss.log_y and not accuracy.log_y and not train.log_x
    assert train.traces[0].x == [0.5, 1.5] and not train.traces[0].markers


def test_a_log_epoch_axis_leaves_out_epoch_zero_and_is_the_default_when_gd_runs_many_more_passes():
    assert not log_epochs_by_default({"gd": curves(3), "adam": curves(1)})
    assert log_epochs_by_default({"gd": curves(4), "adam": curves(1)})
    chart = curves_chart({"gd": curves(4), "adam": curves(1)})
    accuracy = chart.panels[2]
    assert accuracy.log_x and accuracy.traces[0].x == [1, 2, 3, 4]
    assert accuracy.traces[1].x == [1] and accuracy.traces[1].y == pytest.approx([0.3])
    assert "epoch 0 is left out" in accuracy.x_label
    assert not curves_chart({"gd": curves(4)}, log_epochs=False).panels[0].log_x


def path(optimizer: str, points: list[tuple[float, float]], diverged_at=None) -> Trajectory:
    xy = torch.tensor(points + [(math.nan, math.nan)] * (diverged_at is not None), dtype=torch.float64)
    return Trajectory("saddle", optimizer, 0.1, xy, torch.zeros(len(xy)), diverged_at)


def test_the_trajectory_chart_draws_the_paths_up_to_the_step_over_the_contours(tmp_path):
    fn = get_function("saddle")
    paths = [path("gd", [(1.8, 0.001), (1.0, 0.1), (0.5, 0.5)]), path("adam", [(1.8, 0.001), (1.0, 1.0)], 2)]
    chart = trajectory_chart(fn, paths, grid=20)
    (panel,) = chart.panels
    assert chart.name == "trajectory_saddle" and (panel.x_range, panel.y_range) == (fn.x_range, fn.y_range)
    contour, minimum, saddle, start, *moving = panel.traces
    assert contour.kind == "contour" and len(contour.z) == 20 and len(contour.levels) == 30
    assert (minimum.name, len(minimum.x), saddle.name, start.x) == ("minimum", 2, "saddle point", [1.8])
    assert moving == path_traces(paths) and [t.name for t in moving[::2]] == [
        "GD (full batch) (lr 0.1)",
        "Adam (lr 0.1) diverged",
    ]
    assert moving[0].x == [1.8, 1.0, 0.5] and moving[1].x == [0.5] and moving[3].y == [1.0]
    early = path_traces(paths, step=1)
    assert early[0].x == [1.8, 1.0] and early[1].y == [0.1] and early[2].x == [1.8, 1.0]
    assert save_png(trajectory_chart(fn, paths, 1, grid=20), tmp_path / "t.png").stat().st_size > 1000
