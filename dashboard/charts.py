"""Server-side SVG charts: geometry only, no Django import, no markup.

Each function returns a plain dict that ``templates/dashboard/_line_chart.html`` or
``_bar_chart.html`` turns into an ``<svg>`` through auto-escaping (labels such as generator
names come from producers and are untrusted). Colours are CSS classes (``s0`` ... ``s7`` in
static/css/dashboard.css), so the page needs no inline style and no script.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

WIDTH = 560
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 44
SERIES_CLASSES = 8
MAX_X_LABELS = 8


def _n(value: float) -> str:
    """A coordinate as SVG wants it: a dot for decimals whatever the locale, one decimal at
    most. Strings also spare the template engine its number localization, the costliest part of
    rendering a chart."""
    return f"{round(value, 1):g}"


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value - 1e-12:
            return step * power
    return 10 * power


def _format(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.0%}"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _frame(y_max: float, percent: bool) -> dict[str, Any]:
    plot_h = HEIGHT - TOP - BOTTOM
    ticks = []
    for i in range(5):
        value = y_max * i / 4
        ticks.append({"y": _n(TOP + plot_h - plot_h * i / 4), "label": _format(value, percent)})
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "tick_x": LEFT - 4,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "y_ticks": ticks,
        "label_y": HEIGHT - BOTTOM + 16,
    }


def _x_labels(labels: Sequence[str], x_of: Callable[[int], float]) -> list[dict[str, Any]]:
    """Every nth label; on a line chart the first and last are anchored inside the plot."""
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    last = len(labels) - 1
    out = []
    for i, label in enumerate(labels):
        if i % step and i != last:
            continue
        x = x_of(i)
        anchor = "start" if x <= LEFT + 1 else "end" if x >= WIDTH - RIGHT - 1 else "middle"
        out.append({"x": _n(x), "label": label, "anchor": anchor})
    return out


def line_chart(
    x: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    percent: bool = False,
    y_max: float | None = None,
) -> dict[str, Any]:
    """One polyline per series over the x labels; None values break the line."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = y_max if y_max is not None else _nice_max(max(values, default=0.0))
    frame = _frame(top, percent)
    plot_w = frame["right"] - LEFT
    plot_h = frame["bottom"] - TOP

    def x_of(i: int) -> float:
        return LEFT + (plot_w * i / (len(x) - 1) if len(x) > 1 else plot_w / 2)

    def y_of(v: float) -> float:
        return TOP + plot_h - plot_h * min(v, top) / top

    lines = []
    for index, (name, vs) in enumerate(series.items()):
        segments: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                segments.append([])
            else:
                segments[-1].append((_n(x_of(i)), _n(y_of(v))))
        points = [" ".join(f"{px},{py}" for px, py in seg) for seg in segments if len(seg) > 1]
        dots = [{"x": px, "y": py} for seg in segments for px, py in seg if len(seg) == 1]
        lines.append(
            {"name": name, "css": f"s{index % SERIES_CLASSES}", "polylines": points, "dots": dots}
        )
    return {
        **frame,
        "kind": "line",
        "x_labels": _x_labels(x, x_of),
        "series": lines,
        "empty": not values,
    }


def bar_chart(
    categories: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    stacked: bool = False,
    percent: bool = False,
) -> dict[str, Any]:
    """Bars per category: side by side for several series, or stacked."""
    n = max(len(categories), 1)
    if stacked:
        totals = [sum(vs[i] for vs in series.values()) for i in range(len(categories))]
        top = _nice_max(max(totals, default=0.0))
    else:
        top = _nice_max(max((v for vs in series.values() for v in vs), default=0.0))
    frame = _frame(top, percent)
    plot_w = frame["right"] - LEFT
    plot_h = frame["bottom"] - TOP
    slot = plot_w / n
    groups = max(1, 1 if stacked else len(series))
    bar_w = max(1.0, slot * 0.8 / groups)
    bars = []
    base = [0.0] * len(categories)
    for index, (name, vs) in enumerate(series.items()):
        for i, v in enumerate(vs):
            height = plot_h * v / top
            if stacked:
                x = LEFT + slot * i + slot * 0.1
                y = TOP + plot_h - plot_h * base[i] / top - height
                base[i] += v
            else:
                x = LEFT + slot * i + slot * 0.1 + bar_w * index
                y = TOP + plot_h - height
            if v:
                bars.append(
                    {
                        "x": _n(x),
                        "y": _n(y),
                        "w": _n(bar_w),
                        "h": _n(height),
                        "css": f"s{index % SERIES_CLASSES}",
                        "title": f"{name}, {categories[i]}: {_format(v, percent)}",
                    }
                )
    legend = [{"name": name, "css": f"s{i % SERIES_CLASSES}"} for i, name in enumerate(series)]
    return {
        **frame,
        "kind": "bar",
        "x_labels": _x_labels(categories, lambda i: LEFT + slot * i + slot / 2),
        "bars": bars,
        "series": legend,
        "empty": not bars,
    }
