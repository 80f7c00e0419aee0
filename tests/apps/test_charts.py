"""The page renderer draws the same Chart objects the reports save as PNG."""

import numpy as np
import plotly.graph_objects as go
import pytest

from apps.charts import plotly_figure
from playground.core.charts import PALETTE, Chart, Panel, Trace
from tests.core.test_charts import all_kinds_chart


def test_every_trace_kind_becomes_plotly_traces_in_its_own_panel():
    figure = plotly_figure(all_kinds_chart())
    kinds = [type(t).__name__ for t in figure.data]
    # the line's band is two extra scatter traces (upper edge, then lower edge filled to it)
    assert kinds == [
        "Scatter",
        "Scatter",
        "Scatter",
        "Scatter",
        "Bar",
        "Histogram",
        "Heatmap",
        "Heatmap",
        "Contour",
    ]
    assert [a.text for a in figure.layout.annotations][:7] == [
        "line",
        "scatter",
        "bar",
        "histogram",
        "heatmap",
        "image",
        "contour",
    ]
    assert figure.layout.yaxis.type == "log" and figure.layout.xaxis3.type == "category"
    assert figure.layout.yaxis5.autorange == "reversed"  # row 0 of the heatmap on top, as in the PNG
    assert figure.data[1].fill == "tonexty" and figure.layout.barmode == "overlay"
    assert figure.layout.height == 360 * 3


def test_heatmap_cells_keep_their_labels_and_colour_bars_sit_by_their_panel():
    figure = plotly_figure(all_kinds_chart())
    heatmap = next(t for t in figure.data if isinstance(t, go.Heatmap) and t.text is not None)
    assert heatmap.text.tolist() == [["5", "1"], ["0", "4"]] and heatmap.texttemplate == "%{text}"
    assert heatmap.colorbar.x == pytest.approx(figure.layout.xaxis5.domain[1] + 0.01)


def test_contour_levels_land_on_the_requested_values():
    grid = np.linspace(0, 1, 5)
    z = np.add.outer(grid, grid)  # 0 .. 2
    chart = Chart("c", [Panel([Trace("contour", x=list(grid), y=list(grid), z=z, levels=[0.5, 1.0, 2.0])])])
    contour = plotly_figure(chart).data[0]
    assert (contour.contours.start, contour.contours.end, contour.contours.size) == (0, 2, 1)
    # z = 1.0 (the second level) maps to index 1 exactly; z = 1.5 lies half way between levels 1 and 2
    assert contour.z[2][2] == pytest.approx(1.0) and contour.z[3][3] == pytest.approx(1.5)


def test_a_series_in_several_panels_is_listed_once_with_one_colour():
    panels = [Panel([Trace("line", "adam", [0, 1], [1, 0]), Trace("line", "sgd", [0, 1], [1, 1])])] * 2
    figure = plotly_figure(Chart("twice", panels))
    assert [t.showlegend for t in figure.data] == [True, True, False, False]
    assert [t.line.color for t in figure.data] == [PALETTE[0], PALETTE[1]] * 2


def test_an_rgb_image_becomes_a_plotly_image_beside_a_one_channel_one():
    rgb = np.zeros((4, 5, 3))
    rgb[..., 2] = 1.0
    chart = Chart("rgb", [Panel([Trace("image", z=rgb)]), Panel([Trace("image", "grey", z=np.eye(4))])])
    colour_image, grey = plotly_figure(chart).data
    assert isinstance(colour_image, go.Image) and np.asarray(colour_image.z).shape == (4, 5, 3)
    assert np.asarray(colour_image.z)[0, 0].tolist() == [0, 0, 255] and isinstance(grey, go.Heatmap)


def test_a_scatter_keeps_its_marker_size_or_the_default():
    chart = Chart(
        "s", [Panel([Trace("scatter", "a", [0, 1], [0, 1]), Trace("scatter", "b", [0], [0], size=2)])]
    )
    default, small = plotly_figure(chart).data
    assert (default.marker.size, small.marker.size) == (7, 2)


def test_stacked_panels_leave_room_for_axis_titles_and_edge_labels_are_not_clipped():
    points = Trace("scatter", "models", [1.0, 2.0], [0.5, 0.7], text=["a", "b"])
    figure = plotly_figure(Chart("stack", [Panel([points], x_label="ms")] * 2, columns=1))
    gap_pixels = (figure.layout.yaxis.domain[0] - figure.layout.yaxis2.domain[1]) * figure.layout.height
    assert gap_pixels >= 100 and figure.data[0].cliponaxis is False
