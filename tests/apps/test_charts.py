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
