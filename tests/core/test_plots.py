import numpy as np
import pytest

from playground.core.plots import confusion_matrix_figure, moving_average, training_curves_figure
from playground.core.runs import RunDir


def test_smoothing_is_a_trailing_mean_without_start_up_bias():
    smoothed = moving_average([4, 2, 0, 2, 4, 6, 8, 10, 12, 14], window=2)
    assert smoothed.tolist() == pytest.approx([4, 3, 1, 1, 3, 5, 7, 9, 11, 13])


def test_report_figures_render_to_png(tmp_path):
    run = RunDir.create("plots", tmp_path)
    matrix = np.array([[5, 1], [0, 4]])
    cm = run.save_figure(confusion_matrix_figure(matrix, ["a", "b"]), "cm")
    epochs = [
        {"epoch": 1, "train/accuracy": 0.5, "val/accuracy": 0.6},
        {"epoch": 2, "train/accuracy": 0.7, "val/accuracy": 0.8},
    ]
    curves = run.save_figure(training_curves_figure([2.0, 1.0, 0.5], epochs), "curves")
    for path in (cm, curves):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
