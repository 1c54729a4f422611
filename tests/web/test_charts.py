"""Server-drawn SVG bar charts: round gridlines, escaped text, mirrored right to left."""

from __future__ import annotations

import re

from web.charts import Series, bar_chart


def label_positions(svg: str) -> dict[str, float]:
    found = re.findall(r'<text x="([\d.]+)" y="232" text-anchor="middle">([^<]+)</text>', svg)
    return {text: float(x) for x, text in found}


def test_gridlines_are_round_and_text_is_escaped() -> None:
    svg = bar_chart(
        chart_id="c",
        title="<b>Uploads</b>",
        description="d",
        labels=["w1", "w2", "w3"],
        series=[Series("up", [1, 0, 25])],
    )
    assert "<b>" not in svg and "&lt;b&gt;Uploads&lt;/b&gt;" in svg
    values = re.findall(r'text-anchor="end">(\d+)</text>', svg)
    assert values == ["0", "10", "20", "30", "40"]
    assert svg.count("<rect ") == 3


def test_right_to_left_charts_run_time_from_the_right() -> None:
    common = {
        "chart_id": "c",
        "title": "t",
        "description": "d",
        "labels": ["first", "second", "third"],
        "series": [Series("a", [1, 2, 3]), Series("b", [3, 2, 1], "bar bar--second")],
    }
    ltr = label_positions(bar_chart(**common))  # type: ignore[arg-type]
    rtl = label_positions(bar_chart(**common, rtl=True))  # type: ignore[arg-type]
    assert ltr["first"] < ltr["second"] < ltr["third"]
    assert rtl["first"] > rtl["second"] > rtl["third"]
    assert 'text-anchor="start">0</text>' in bar_chart(**common, rtl=True)  # type: ignore[arg-type]
