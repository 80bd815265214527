"""Inline SVG charts (no JavaScript, no external assets): grouped bars and pass^k curves.

Each chart carries its title and a one-line note as visible text (a ``<title>`` alone is only a
tooltip), a legend, axis names and the value of every mark, so a screenshot reads on its own."""
from __future__ import annotations

from html import escape

PALETTE = ["#64748b", "#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626"]
HEAD = 62  # title, note and legend above the plot
LEGEND_STEP = 110


def _text_width(text: str, size: float = 11) -> float:
    """About how wide a line of system-ui text is (the SVG must not clip its note)."""
    return 0.55 * size * len(text) + 12


def _open(width: float, height: float, title: str, note: str, names: list[str], left: float,
          shapes: bool = False) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" font-family="system-ui, sans-serif">'
            f'<title>{escape(title)}</title>'
            f'<text class="chart-title" x="4" y="16" font-size="14" font-weight="600">{escape(title)}</text>'
            f'<text class="chart-note" x="4" y="33" font-size="11" fill="#4b5563">{escape(note)}</text>',
            _legend(names, left, 52, shapes)]


def _grid(left: float, top: float, width: float, height: float, axis, y_name: str) -> str:
    out = []
    for i in range(0, 101, 25):
        y = top + height - height * i / 100
        out.append(f'<line x1="{left}" x2="{left + width}" y1="{y}" y2="{y}" stroke="#e5e7eb"/>'
                   f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="10">{axis(i / 100)}</text>')
    mid = top + height / 2
    out.append(f'<text x="12" y="{mid}" font-size="11" fill="#4b5563" text-anchor="middle" '
               f'transform="rotate(-90 12 {mid})">{escape(y_name)}</text>')
    return "".join(out)


def grouped_bars(groups: list[str], series: list[str], values: dict[tuple[str, str], float | None],
                 title: str, scale: tuple[float, float] | None = None, note: str = "",
                 y_name: str = "trials passed") -> str:
    """Bars of 0..1 values: one group per x label, one bar per series (arm), each bar's value
    written above it (a 0% bar is a line on the axis, not nothing). With ``scale=(lo, hi)`` the
    axis and labels read lo..hi instead of 0-100% (the values stay 0..1)."""
    def axis(v: float) -> str:
        return f"{100 * v:.0f}%" if scale is None else f"{scale[0] + v * (scale[1] - scale[0]):.1f}"
    bar, gap, left, height = 28, 20, 58, 180
    top = HEAD + 12
    group_w = bar * len(series) + gap
    plot_w = group_w * len(groups) + 10
    width = max(left + plot_w + 10, left + LEGEND_STEP * len(series), _text_width(note))
    parts = _open(width, top + height + 100, title, note, series, left)
    parts.append(_grid(left, top, plot_w, height, axis, y_name))
    for g, group in enumerate(groups):
        x0 = left + g * group_w + gap / 2
        for s, name in enumerate(series):
            v = values.get((group, name))
            if v is None:
                continue
            h, x = max(height * v, 1.5), x0 + s * bar
            parts.append(f'<rect x="{x}" y="{top + height - h:.1f}" width="{bar - 3}" height="{h:.1f}" '
                         f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(name)} · {escape(group)}: '
                         f'{axis(v)}</title></rect>'
                         f'<text x="{x + (bar - 3) / 2}" y="{top + height - h - 3:.1f}" font-size="9" '
                         f'text-anchor="middle">{axis(v)}</text>')
        cx = x0 + bar * len(series) / 2
        parts.append(f'<text x="{cx}" y="{top + height + 14}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-35 {cx} {top + height + 14})">{escape(group)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def curves(series: dict[str, dict[int, float]], title: str, note: str = "") -> str:
    """pass^k curves: k on x, 0..1 on y, one line per series. Arms that score the same would hide
    each other, so each arm's marks sit a few pixels apart, with their own shape, and every line
    ends in a label naming the arm and its last value (labels pushed apart when they meet)."""
    ks = sorted({k for points in series.values() for k in points}) or [1]
    left, w, h, right = 58, 300, 180, 110
    top = HEAD + 12
    step = w / len(ks)  # half a step of margin either side: a single k sits in the middle
    dodge = 10
    width = max(left + w + right, _text_width(note), left + LEGEND_STEP * len(series))
    parts = _open(width, top + h + 48, title, note, list(series), left, shapes=True)
    parts.append(_grid(left, top, w, h, lambda v: f"{100 * v:.0f}%", "pass^k"))
    for i, k in enumerate(ks):
        parts.append(f'<text x="{left + (i + .5) * step:.1f}" y="{top + h + 16}" text-anchor="middle" '
                     f'font-size="10">k={k}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{top + h + 36}" text-anchor="middle" font-size="11" '
                 f'fill="#4b5563">k: trials of the same scenario, all of which must pass</text>')
    ends = []
    for s, (name, points) in enumerate(series.items()):
        color, offset = PALETTE[s % len(PALETTE)], (s - (len(series) - 1) / 2) * dodge
        xy = [(left + (ks.index(k) + .5) * step + offset, top + h - h * v, k, v) for k, v in sorted(points.items())]
        if len(xy) > 1:
            dash = ' stroke-dasharray="6 4"' if s % 2 else ""  # a line over an equal one still shows
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" stroke-opacity=".8"{dash} '
                         f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in xy)}"/>')
        for x, y, k, v in xy:
            parts.append(_marker(s, x, y, color, f"{name} pass^{k} = {v:.3f}"))
        if xy:
            ends.append([xy[-1][1], s, name, color, xy[-1][3]])
    ends.sort()  # by height, equal ones in the legend's order
    for i in range(1, len(ends)):  # push overlapping end labels apart, top to bottom
        ends[i][0] = max(ends[i][0], ends[i - 1][0] + 13)
    for y, _, name, color, v in ends:
        parts.append(f'<text x="{left + w + 8}" y="{y + 4:.1f}" font-size="11" fill="{color}">'
                     f'{escape(name)} {100 * v:.0f}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def _marker(shape: int, x: float, y: float, color: str, tip: str) -> str:
    """A circle, square, triangle or diamond: arms stay apart even where colours are hard to tell."""
    tip = f"<title>{escape(tip)}</title>"
    kind = shape % 4
    if kind == 0:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}">{tip}</circle>'
    if kind == 1:
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{color}">{tip}</rect>'
    pts = ([(x, y - 5), (x + 5, y + 4), (x - 5, y + 4)] if kind == 2
           else [(x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)])
    return f'<polygon points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts)}" fill="{color}">{tip}</polygon>'


def _legend(names: list[str], x: float, y: float, shapes: bool = False) -> str:
    """One swatch per series; ``shapes``: the series' marker instead of a square (curves)."""
    out = []
    for i, name in enumerate(names):
        at, color = x + i * LEGEND_STEP, PALETTE[i % len(PALETTE)]
        swatch = (_marker(i, at + 5, y - 4, color, name) if shapes
                  else f'<rect x="{at}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'{swatch}<text class="legend" x="{at + 14}" y="{y}" font-size="11">{escape(name)}</text>')
    return "".join(out)
