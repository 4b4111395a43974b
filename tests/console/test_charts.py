"""Server-side SVG charts: scaled bars, escaped labels, an empty state."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from jupiter.console.charts import bar_chart, stacked_bar

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_scale_to_the_largest_value_and_escape_labels() -> None:
    svg = str(bar_chart("Open <findings>", [("high", 10), ("<script>x</script>", 5)]))
    root = ET.fromstring(svg)  # well-formed XML
    widths = [float(r.get("width", "0")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] > 0 and abs(widths[1] - widths[0] / 2) < 0.2
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert root.find(f"{SVG}title") is not None
    assert root.find(f"{SVG}title").text == "Open <findings>"  # type: ignore[union-attr]


def test_stacked_bar_shares_and_empty_charts() -> None:
    svg = str(stacked_bar("Compliance", {"pass": 3, "fail": 1, "excepted": 0}))
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="24" width="([\d.]+)"', svg)]
    assert len(widths) == 2 and abs(widths[0] / widths[1] - 3) < 0.01
    assert "no data yet" in str(stacked_bar("Compliance", {"pass": 0}))
    assert "no data yet" in str(bar_chart("Nothing", []))
    ET.fromstring(str(bar_chart("Nothing", [])))
