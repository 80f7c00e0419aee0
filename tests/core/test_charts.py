"""The chart core: every trace kind draws to a PNG, bad traces fail with one line, bands follow seeds."""

import numpy as np
import pytest
from PIL import Image

from playground.core.charts import (
    KINDS,
    PALETTE,
    Chart,
    Panel,
    Trace,
    colour,
    confusion_chart,
    moving_average,
    save_png,
    training_chart,
)
from playground.core.runs import RunDir
from playground.core.seeds import band


def one_trace_of_each_kind() -> list[Trace]:
    grid = np.linspace(-1, 1, 12)
    z = np.add.outer(grid**2, grid**2)
    return [
        Trace("line", "loss", [1, 2, 3], [3.0, 2.0, 1.5], lower=[2.5, 1.5, 1.0], upper=[3.5, 2.5, 2.0]),
        Trace("scatter", "models", [1.0, 2.0], [0.5, 0.7], text=["a", "b"]),
        Trace("bar", "accuracy", ["cat", "dog", "owl"], [0.9, 0.8, 0.7], error=[0.01, 0.02, 0.03]),
        Trace("histogram", "scores", list(np.random.default_rng(0).normal(size=200))),
        Trace("heatmap", "", x=["a", "b"], y=["a", "b"], z=[[5, 1], [0, 4]], text=[[5, 1], [0, 4]]),
        Trace("image", "", z=np.eye(8)),
        Trace("contour", "", x=list(grid), y=list(grid), z=z, levels=[0.1, 0.5, 1.0, 1.5]),
    ]


def all_kinds_chart() -> Chart:
    panels = [
        Panel([trace], title=trace.kind, x_label="x", y_label="y") for trace in one_trace_of_each_kind()
    ]
    panels[0].hlines.append((2.0, "target"))
    panels[0].log_y = True
    return Chart("all_kinds", panels, title="every kind", columns=3)


def test_every_trace_kind_draws_into_a_png(tmp_path):
    assert {t.kind for t in one_trace_of_each_kind()} == set(KINDS)
    path = save_png(all_kinds_chart(), tmp_path / "all.png")
    image = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.shape[1] > image.shape[0] > 300  # three columns, three rows
    assert image.std() > 10  # something was drawn, not a blank canvas


def test_run_folder_saves_a_chart_under_its_name(tmp_path):
    run = RunDir.create("charts", tmp_path)
    path = run.save_chart(Chart("curves", [Panel([Trace("line", "a", [0, 1], [1, 0])])]))
    assert path == run.path / "curves.png" and path.stat().st_size > 2000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(kind="pie", x=[1], y=[1]), "unknown trace kind 'pie'"),
        (dict(kind="line", x=[1, 2]), "needs x and y"),
        (dict(kind="line", name="acc", x=[1, 2], y=[1, 2, 3]), "trace 'acc': y has 3 values, x has 2"),
        (dict(kind="line", x=[1, 2], y=[1, 2], lower=[0]), "lower has 1 values"),
        (dict(kind="heatmap", x=["a"]), "a heatmap trace needs z"),
    ],
)
def test_bad_traces_fail_with_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Trace(**kwargs)


def test_a_chart_needs_a_panel_and_keeps_columns_within_its_panels():
    with pytest.raises(ValueError, match="has no panels"):
        Chart("empty", [])
    chart = Chart("two", [Panel([Trace("line", "", [0], [0])])] * 2, columns=5)
    assert (chart.columns, chart.rows) == (2, 1)


def test_band_line_is_mean_plus_minus_sample_std_and_no_band_for_one_seed():
    trace = Trace.band_line("adam", [1, 2, 3], band([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]))
    std = np.std([1.0, 3.0], ddof=1)
    assert trace.y == [2.0, 3.0, 4.0]
    assert trace.lower == pytest.approx([2 - std, 3 - std, 4 - std])
    assert trace.upper == pytest.approx([2 + std, 3 + std, 4 + std])
    single = Trace.band_line("adam", [1, 2, 3, 4], band([[1.0, 2.0, 3.0]]))
    assert single.lower is None and single.upper is None and single.x == [1, 2, 3]


def test_colours_come_from_one_palette_by_trace_order_or_index():
    assert colour(Trace("line", "", [0], [0]), 3) == PALETTE[3]
    assert colour(Trace("line", "", [0], [0], color=1), 7) == PALETTE[1]
    assert colour(Trace("line", "", [0], [0], color="#000000"), 0) == "#000000"


def test_smoothing_is_a_trailing_mean_without_start_up_bias():
    smoothed = moving_average([4, 2, 0, 2, 4, 6, 8, 10, 12, 14], window=2)
    assert smoothed.tolist() == pytest.approx([4, 3, 1, 1, 3, 5, 7, 9, 11, 13])


def test_confusion_chart_shows_rates_labelled_with_counts():
    chart = confusion_chart(np.array([[5, 1], [0, 4]]), ["a", "b"])
    cells = chart.panels[0].traces[0]
    assert np.allclose(cells.z, [[5 / 6, 1 / 6], [0, 1]]) and cells.text == [[5, 1], [0, 4]]


def test_training_chart_has_the_loss_per_step_and_the_accuracy_per_epoch(tmp_path):
    epochs = [{"epoch": 1, "train/accuracy": 0.5, "val/accuracy": 0.6}, {"epoch": 2, "train/accuracy": 0.7}]
    loss, accuracy = training_chart([2.0, 1.0, 0.5], epochs).panels
    assert [t.name for t in loss.traces] == ["per step", "smoothed"] and loss.log_y
    assert [(t.name, t.x, t.y) for t in accuracy.traces] == [
        ("train/accuracy", [1, 2], [0.5, 0.7]),
        ("val/accuracy", [1], [0.6]),
    ]
    assert save_png(training_chart([], []), tmp_path / "empty.png").is_file()  # no steps yet: empty panels


def test_an_rgb_image_draws_in_colour(tmp_path):
    red = np.zeros((6, 6, 3))
    red[..., 0] = 1.0
    chart = Chart("rgb", [Panel([Trace("image", z=red.tolist())]), Panel([Trace("image", z=np.eye(6))])])
    pixels = np.asarray(Image.open(save_png(chart, tmp_path / "rgb.png")).convert("RGB"), dtype=int)
    assert ((pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)).sum() > 100


def test_a_scatter_marker_size_is_optional_and_draws_small_points(tmp_path):
    assert Trace("scatter", "a", [0.0], [0.0]).size is None  # the default look stays
    grid = np.linspace(0, 1, 40)
    x, y = np.meshgrid(grid, grid)
    for size in (None, 1.0):
        trace = Trace("scatter", "cloud", x.ravel().tolist(), y.ravel().tolist(), size=size, color="#000000")
        save_png(
            Chart(f"size{size}", [Panel([trace], x_range=(-0.1, 1.1), y_range=(-0.1, 1.1))]),
            tmp_path / f"{size}.png",
        )
    ink = [(np.asarray(Image.open(tmp_path / f"{s}.png").convert("L")) < 128).mean() for s in (None, 1.0)]
    assert ink[1] < ink[0] / 3  # one-pixel points cover far less than the default markers


def test_log_axes_are_labelled_with_plain_numbers_at_one_two_and_five():
    from playground.core.charts import _log_label

    assert [_log_label(v) for v in (0.1, 1.0, 100.0)] == ["0.1", "1", "100"]
    assert [_log_label(v, minor=True) for v in (0.2, 0.3, 5.0, 7.0)] == ["0.2", "", "5", ""]
