"""Charts as standalone SVG for reports (no plotting dependency): grouped bars, ROC curves,
lines over days."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = (
    "#1b6ac9",
    "#aaaaaa",
    "#e07b26",
    "#3a9d5d",
    "#8a5cc2",
    "#c93b3b",
    "#1a9ba8",
    "#a88a1a",
)


def grouped_bars(
    groups: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[str],
    *,
    title: str,
    width: int = 720,
    height: int = 300,
) -> str:
    """One group of bars per label, one bar per series; values are fractions (0..1),
    printed as percentages. A None value draws no bar."""
    pad, bar = 48, max(8, min(22, int((width - 96) / max(1, len(groups)) / (len(series) + 1))))
    step = (width - 2 * pad) / max(1, len(groups))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        ' font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="18" font-size="13">{escape(title)}</text>',
    ]
    legend_x = width - 110 * len(series)
    for j, name in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        left = legend_x + 110 * j
        parts.append(
            f'<rect x="{left}" y="8" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + 15}" y="17">{escape(name)}</text>'
        )
    base_y = height - pad
    scale = height - 2 * pad - 10
    for i, (label, values) in enumerate(groups):
        x = pad + i * step + (step - len(series) * bar) / 2
        for j, value in enumerate(values):
            if value is None:
                continue
            h = scale * max(0.0, min(1.0, float(value)))
            colour = PALETTE[j % len(PALETTE)]
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{base_y - h:.1f}" width="{bar - 2}"'
                f' height="{h:.1f}" fill="{colour}"/>'
                f'<text x="{x + j * bar + bar / 2 - 1:.1f}" y="{base_y - h - 3:.1f}"'
                f' text-anchor="middle" font-size="9">{100 * float(value):.0f}</text>'
            )
        centre = x + len(series) * bar / 2
        parts.append(
            f'<text x="{centre:.1f}" y="{base_y + 16}" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(f'<line x1="{pad}" y1="{base_y}" x2="{width - pad}" y2="{base_y}" stroke="#333"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def roc_curves(
    curves: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    title: str,
    marks: Sequence[tuple[str, float, float]] = (),
    size: int = 360,
) -> str:
    """ROC curves (FPR on x, TPR on y, both 0..1) as a standalone SVG, with the chance
    diagonal and optional marked operating points (label, fpr, tpr)."""
    pad = 44
    span = size - 2 * pad

    def xy(fpr: float, tpr: float) -> tuple[float, float]:
        return pad + span * fpr, size - pad - span * tpr

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 150}" height="{size}"'
        ' font-family="sans-serif" font-size="11">',
        f'<rect width="{size + 150}" height="{size}" fill="white"/>',
        f'<text x="{pad}" y="18" font-size="13">{escape(title)}</text>',
        f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#999"/>',
        f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#ccc"'
        ' stroke-dasharray="4 3"/>',
        f'<text x="{size / 2}" y="{size - 10}" text-anchor="middle">false-positive rate</text>',
        f'<text x="12" y="{size / 2}" transform="rotate(-90 12 {size / 2})"'
        ' text-anchor="middle">true-positive rate</text>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, _ = xy(tick, 0)
        _, y = xy(0, tick)
        parts.append(
            f'<text x="{x:.0f}" y="{size - pad + 14}" text-anchor="middle">{tick:g}</text>'
        )
        parts.append(f'<text x="{pad - 6}" y="{y + 4:.0f}" text-anchor="end">{tick:g}</text>')
    for j, (name, points) in enumerate(curves):
        colour = PALETTE[j % len(PALETTE)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(f, t) for f, t in points))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(
            f'<rect x="{size + 4}" y="{pad + 16 * j}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{size + 18}" y="{pad + 9 + 16 * j}">{escape(name)}</text>'
        )
    for label, fpr, tpr in marks:
        x, y = xy(fpr, tpr)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="none" stroke="black"/>'
            f'<text x="{x + 6:.1f}" y="{y + 12:.1f}" font-size="10">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _axis_step(top: float, ticks: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) reaching ``top`` in ``ticks`` steps."""
    raw = top / ticks
    magnitude: float = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def line_chart(
    series: Sequence[tuple[str, Sequence[float]]],
    labels: Sequence[str],
    *,
    title: str,
    unit: str,
    marks: Sequence[tuple[int, int]] = (),
    width: int = 760,
    height: int = 320,
) -> str:
    """One line per series over the x ``labels`` (values >= 0, in ``unit``, on a y axis from
    0), with the legend on the right; ``marks`` circles points given as (series, label index)
    in red, e.g. anomalies. Labels are thinned to about ten."""
    pad, legend = 56, 150
    right = width - legend
    base_y, top_y = height - 40, 36
    peak = max((v for _, values in series for v in values), default=0.0)
    step = _axis_step(peak, 4) if peak > 0 else 1.0
    top = step * max(1, math.ceil(peak / step))

    def x_at(i: int) -> float:
        if len(labels) <= 1:
            return (pad + right) / 2
        return pad + (right - pad) * i / (len(labels) - 1)

    def y_at(value: float) -> float:
        return base_y - (base_y - top_y) * max(0.0, value) / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        ' font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="18" font-size="13">{escape(title)}</text>',
        f'<text x="12" y="{(base_y + top_y) / 2}" transform="rotate(-90 12 {(base_y + top_y) / 2})"'
        f' text-anchor="middle">{escape(unit)}</text>',
    ]
    tick = 0.0
    while tick <= top + step / 2:
        y = y_at(tick)
        parts.append(
            f'<line x1="{pad}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{pad - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
        tick += step
    every = max(1, math.ceil(len(labels) / 10))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text x="{x_at(i):.1f}" y="{base_y + 16}" text-anchor="middle"'
                f' font-size="10">{escape(label)}</text>'
            )
    parts.append(f'<line x1="{pad}" y1="{base_y}" x2="{right}" y2="{base_y}" stroke="#333"/>')
    for j, (name, values) in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        points = " ".join(f"{x_at(i):.1f},{y_at(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        if len(values) == 1:
            parts.append(
                f'<circle cx="{x_at(0):.1f}" cy="{y_at(values[0]):.1f}" r="3" fill="{colour}"/>'
            )
        parts.append(
            f'<rect x="{right + 12}" y="{top_y + 16 * j}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{right + 26}" y="{top_y + 9 + 16 * j}">{escape(name)}</text>'
        )
    for j, i in marks:
        value = series[j][1][i]
        parts.append(
            f'<circle cx="{x_at(i):.1f}" cy="{y_at(value):.1f}" r="6" fill="none"'
            ' stroke="#d00000" stroke-width="2"><title>'
            f"{escape(series[j][0])} {escape(labels[i])}: {value:g} {escape(unit)}</title></circle>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
