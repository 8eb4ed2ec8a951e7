"""Inline SVG charts: one polyline per series over a fixed grid, no script, no library.

``line_chart`` takes series of equal length (one value per minute, ``None`` for a minute
without data) and returns the geometry the template draws; scales start at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 600, 160, 4


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    peak: float
    lines: list[tuple[str, str]]  # (series name, SVG points "x,y x,y ...")
    width: int = WIDTH
    height: int = HEIGHT


def line_chart(title: str, unit: str, series: dict[str, Sequence[float | None]]) -> Chart:
    peak = max((v for values in series.values() for v in values if v is not None), default=0.0)
    scale = (HEIGHT - 2 * PAD) / peak if peak > 0 else 0.0
    lines = []
    for name, values in series.items():
        step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
        points = " ".join(
            f"{PAD + i * step:.1f},{HEIGHT - PAD - (v or 0.0) * scale:.1f}" for i, v in enumerate(values)
        )
        lines.append((name, points))
    return Chart(title, unit, peak, lines)
