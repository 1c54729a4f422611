"""Bar charts as SVG markup, drawn on the server: they show without JavaScript, print as
vectors, and carry a title and description for screen readers (the table beside each chart
holds the same figures). Colours come from classes styled in console.css, never from inline
styles, which the page CSP refuses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 240
LEFT = 64  # room for the value labels
BOTTOM = 28  # room for the period labels
TOP = 12


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[int]
    css: str = "bar"


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    value_label: Callable[[int], str] = str,
    rtl: bool = False,
) -> Markup:
    """Grouped bars, one group per label; the axis starts at zero. Right to left, time runs
    from the right and the value axis stands on the right, as the page is mirrored."""
    # Four equal steps of a round size, so every gridline's label is a whole, round value.
    step = _nice_ceiling(-(-max((v for s in series for v in s.values), default=0) // 4))
    top = step * 4
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    group = plot_w / max(len(labels), 1)
    bar = max(group * 0.8 / max(len(series), 1), 1.0)
    start = 8 if rtl else LEFT  # where the plot begins, left edge

    def slot(index: int, count: int) -> int:
        return count - 1 - index if rtl else index

    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d" '
        'direction="ltr" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">{escape(description)}</desc>',
    ]
    for i in range(5):
        value = step * i
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="axis" x1="{start}" x2="{start + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke-opacity="{1 if i == 0 else 0.25}"/>'
        )
        label_x, anchor = (start + plot_w + 6, "start") if rtl else (LEFT - 6, "end")
        parts.append(
            f'<text x="{label_x}" y="{y + 4:.1f}" text-anchor="{anchor}">'
            f"{escape(value_label(value))}</text>"
        )
    every = -(-len(labels) // 6)  # at most six labels, so none overlap
    for index, label in enumerate(labels):
        x0 = start + group * slot(index, len(labels)) + group * 0.1
        for offset, one in enumerate(series):
            value = one.values[index] if index < len(one.values) else 0
            height = plot_h * value / top
            parts.append(
                f'<rect class="{escape(one.css)}" x="{x0 + bar * slot(offset, len(series)):.1f}" '
                f'y="{TOP + plot_h - height:.1f}" width="{bar:.1f}" height="{height:.1f}">'
                f"<title>{escape(one.name)}, {escape(label)}: {escape(value_label(value))}</title>"
                "</rect>"
            )
        if index % every == 0:
            parts.append(
                f'<text x="{start + group * slot(index, len(labels)) + group / 2:.1f}" '
                f'y="{HEIGHT - 8}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every value above is escaped)
