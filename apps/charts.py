"""Draw a library :class:`~playground.core.charts.Chart` live with plotly (the report's PNG is the same chart
drawn by matplotlib in ``playground.core.charts.save_png``)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from playground.core.charts import GREY, Chart, Panel, Trace, colour, heatmap_cells

MARGIN = dict(t=50, b=10, l=10, r=10)


def show_chart(chart: Chart, where=st, key: str | None = None) -> None:
    """Draw ``chart`` on the page (or in a column: ``where=column``)."""
    where.plotly_chart(plotly_figure(chart), width="stretch", key=key)


def plotly_figure(chart: Chart) -> go.Figure:
    figure = make_subplots(
        rows=chart.rows,
        cols=chart.columns,
        subplot_titles=[p.title for p in chart.panels],
        horizontal_spacing=0.12,
        vertical_spacing=min(
            0.3, 110 / (chart.height * chart.rows)
        ),  # room for tick labels, axis and panel titles
    )
    shown: set[str] = set()
    for number, panel in enumerate(chart.panels):
        row, col = number // chart.columns + 1, number % chart.columns + 1
        for index, trace in enumerate(panel.traces):
            for part in _traces(trace, colour(trace, index)):
                if part.name and part.showlegend is not False:  # an RGB go.Image has neither
                    part.showlegend = part.name not in shown
                    shown.add(part.name)
                figure.add_trace(part, row=row, col=col)
        _style_axes(figure, panel, number, row, col)
    histogram = any(t.kind == "histogram" for p in chart.panels for t in p.traces)
    figure.update_layout(
        title=chart.title or None,
        height=chart.height * chart.rows,
        margin=MARGIN,
        barmode="overlay" if histogram else "group",
    )
    _place_colour_bars(figure)
    return figure


def _traces(trace: Trace, color: str) -> list:
    return TRACES[trace.kind](trace, color)


def _line(trace: Trace, color: str) -> list:
    parts = []
    if trace.lower is not None and trace.upper is not None:
        fill = _rgba(color, 0.2)
        edge = dict(width=0, color=fill)
        parts.append(go.Scatter(x=trace.x, y=trace.upper, line=edge, showlegend=False, hoverinfo="skip"))
        parts.append(
            go.Scatter(x=trace.x, y=trace.lower, line=edge, fill="tonexty", fillcolor=fill, showlegend=False)
        )
    line = dict(color=color, width=trace.width, dash="dash" if trace.dash else None)
    parts.append(
        go.Scatter(
            x=trace.x,
            y=trace.y,
            name=trace.name,
            mode="lines+markers" if trace.markers else "lines",
            line=line,
            opacity=trace.opacity,
            legendgroup=trace.name or None,
            showlegend=bool(trace.legend and trace.name),
        )
    )
    return parts


def _scatter(trace: Trace, color: str) -> list:
    return [
        go.Scatter(
            x=trace.x,
            y=trace.y,
            name=trace.name,
            mode="markers+text" if trace.text is not None else "markers",
            text=None if trace.text is None else [str(t) for t in trace.text],
            textposition="top right",
            cliponaxis=False,  # labels of points at the edge stay readable
            marker=dict(color=color, size=7 if trace.size is None else trace.size),
            opacity=trace.opacity,
            legendgroup=trace.name or None,
            showlegend=bool(trace.legend and trace.name),
        )
    ]


def _bar(trace: Trace, color: str) -> list:
    error = None if trace.error is None else dict(type="data", array=list(trace.error))
    return [
        go.Bar(
            x=[str(x) for x in trace.x],
            y=trace.y,
            name=trace.name,
            marker_color=color,
            opacity=trace.opacity,
            error_y=error,
            legendgroup=trace.name or None,
            showlegend=bool(trace.legend and trace.name),
        )
    ]


def _histogram(trace: Trace, color: str) -> list:
    return [
        go.Histogram(
            x=trace.x,
            name=trace.name,
            nbinsx=trace.bins,
            histnorm="probability density" if trace.density else "",
            marker_color=color,
            opacity=trace.opacity if trace.opacity < 1 else 0.5,
            legendgroup=trace.name or None,
            showlegend=bool(trace.legend and trace.name),
        )
    ]


def _heatmap(trace: Trace, color: str) -> list:
    text = None if trace.text is None else np.asarray(trace.text, dtype=object).astype(str)
    return [
        go.Heatmap(
            z=heatmap_cells(trace),
            x=None if trace.x is None else [str(x) for x in trace.x],
            y=None if trace.y is None else [str(y) for y in trace.y],
            text=text,
            texttemplate="%{text}" if text is not None else None,
            colorscale=trace.colorscale,
            zmin=trace.zmin,
            zmax=trace.zmax,
            colorbar=dict(title=trace.colorbar),
            showlegend=False,
        )
    ]


def _image(trace: Trace, color: str) -> list:
    cells = heatmap_cells(trace)
    if cells.ndim == 3:  # RGB in [0, 1]
        return [go.Image(z=np.clip(255 * cells, 0, 255).round().astype(np.uint8), hoverinfo="skip")]
    return [
        go.Heatmap(
            z=cells,
            colorscale=trace.colorscale,
            zmin=trace.zmin,
            zmax=trace.zmax,
            showscale=False,
            hoverinfo="skip",
            showlegend=False,
        )
    ]


def _contour(trace: Trace, color: str) -> list:
    z = heatmap_cells(trace)
    contours = dict(coloring="lines")
    if trace.levels is not None:
        # plotly draws evenly spaced levels only: contour the level index instead, whose whole
        # numbers sit exactly on the requested levels
        levels = np.asarray(trace.levels, dtype=float)
        z = np.interp(z, levels, np.arange(len(levels)))
        contours.update(start=0, end=len(levels) - 1, size=1)
    return [
        go.Contour(
            x=trace.x,
            y=trace.y,
            z=z,
            contours=contours,
            colorscale=trace.colorscale,
            showscale=False,
            line=dict(width=0.7),
            hoverinfo="skip",
            showlegend=False,
        )
    ]


def _style_axes(figure: go.Figure, panel: Panel, number: int, row: int, col: int) -> None:
    kinds = {t.kind for t in panel.traces}
    x_axis = dict(title_text=panel.x_label, type="log" if panel.log_x else None)
    y_axis = dict(title_text=panel.y_label, type="log" if panel.log_y else None)
    if panel.x_range:
        x_axis["range"] = _axis_range(panel.x_range, panel.log_x)
    if panel.y_range:
        y_axis["range"] = _axis_range(panel.y_range, panel.log_y)
    if "bar" in kinds:
        x_axis["type"] = "category"
    if kinds & {"heatmap", "image"}:
        y_axis["autorange"] = "reversed"  # row 0 on top, as in the PNG
    if "image" in kinds:
        x_axis.update(showticklabels=False)
        y_axis.update(showticklabels=False)
    if panel.equal_aspect or "image" in kinds:
        y_axis.update(scaleanchor=f"x{number + 1 if number else ''}", scaleratio=1)
    if panel.integer_x:
        x_axis.update(tickformat="d")
    figure.update_xaxes(row=row, col=col, **x_axis)
    figure.update_yaxes(row=row, col=col, **y_axis)
    for value, label in panel.hlines:
        figure.add_hline(
            y=value, row=row, col=col, line=dict(color=GREY, dash="dash", width=1), annotation_text=label
        )
    for value, label in panel.vlines:
        figure.add_vline(
            x=value, row=row, col=col, line=dict(color=GREY, dash="dot", width=1), annotation_text=label
        )


def _place_colour_bars(figure: go.Figure) -> None:
    """Put each heatmap's colour bar next to its own panel, not all at the right edge."""
    for trace in figure.data:
        if isinstance(trace, go.Heatmap) and trace.showscale is not False:
            axis = figure.layout[f"xaxis{trace.xaxis[1:]}"]
            y_axis = figure.layout[f"yaxis{trace.yaxis[1:]}"]
            trace.colorbar.update(
                x=axis.domain[1] + 0.01, y=sum(y_axis.domain) / 2, len=y_axis.domain[1] - y_axis.domain[0]
            )


def _axis_range(bounds: tuple[float, float], log: bool) -> list[float]:
    return [float(np.log10(b)) for b in bounds] if log else list(bounds)


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


TRACES = {
    "line": _line,
    "scatter": _scatter,
    "bar": _bar,
    "histogram": _histogram,
    "heatmap": _heatmap,
    "image": _image,
    "contour": _contour,
}
