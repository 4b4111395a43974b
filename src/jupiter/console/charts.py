"""Charts drawn on the server as SVG: no script, no library, no CDN.

Colours are SVG presentation attributes (``fill``), which the console's
Content-Security-Policy allows, unlike inline ``style``.
"""

from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = {
    "critical": "#7f1d1d",
    "high": "#dc2626",
    "medium": "#f59e0b",
    "low": "#3b82f6",
    "info": "#9ca3af",
    "pass": "#16a34a",
    "fail": "#dc2626",
    "excepted": "#a855f7",
}
_DEFAULT = "#2563eb"


def _num(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def bar_chart(title: str, items: list[tuple[str, float]], unit: str = "") -> Markup:
    """Horizontal bars, one per ``(label, value)``, scaled to the largest."""
    width, label_w, row_h = 460, 150, 26
    height = 30 + row_h * max(len(items), 1)
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
    ]
    if not items:
        parts.append('<text x="0" y="44" class="chart-empty">no data yet</text>')
    for i, (label, value) in enumerate(items):
        y = 28 + i * row_h
        bar = (width - label_w - 60) * (value / top)
        colour = PALETTE.get(label, _DEFAULT)
        parts.append(f'<text x="0" y="{y + 15}" class="chart-label">{escape(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{bar:.1f}" height="{row_h - 8}" '
            f'fill="{colour}"><title>{escape(label)}: {_num(value)}{escape(unit)}</title></rect>'
        )
        parts.append(
            f'<text x="{label_w + bar + 6:.1f}" y="{y + 15}" class="chart-value">'
            f"{_num(value)}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above went through escape())


def stacked_bar(title: str, counts: dict[str, int]) -> Markup:
    """One bar split by share (e.g. pass / fail / excepted), with a legend."""
    width, height = 460, 70
    total = sum(counts.values())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
    ]
    if total == 0:
        parts.append('<text x="0" y="44" class="chart-empty">no data yet</text>')
    x = 0.0
    for key, value in counts.items():
        if total == 0 or value == 0:
            continue
        w = width * value / total
        parts.append(
            f'<rect x="{x:.1f}" y="24" width="{w:.1f}" height="20" '
            f'fill="{PALETTE.get(key, _DEFAULT)}"><title>{escape(key)}: {value}</title></rect>'
        )
        x += w
    legend = "   ".join(f"{k}: {v}" for k, v in counts.items())
    parts.append(f'<text x="0" y="62" class="chart-label">{escape(legend)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above went through escape())
