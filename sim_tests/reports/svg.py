"""Inline SVG charts (no JavaScript, no external assets): grouped bars and line curves."""
from __future__ import annotations

from html import escape

PALETTE = ["#64748b", "#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626"]


def grouped_bars(groups: list[str], series: list[str], values: dict[tuple[str, str], float | None],
                 title: str, scale: tuple[float, float] | None = None) -> str:
    """Bars of 0..1 values: one group per x label, one bar per series (arm). With ``scale=(lo, hi)``
    the axis and tooltips read lo..hi instead of 0-100% (the values stay 0..1)."""
    def axis(v: float) -> str:
        return f"{100 * v:.0f}%" if scale is None else f"{scale[0] + v * (scale[1] - scale[0]):.1f}"
    bar, gap, left, top, height = 14, 18, 44, 28, 180
    group_w = bar * len(series) + gap
    width = left + group_w * len(groups) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{top + height + 90}" '
             f'viewBox="0 0 {width} {top + height + 90}"><title>{escape(title)}</title>']
    for i in range(0, 101, 25):
        y = top + height - height * i / 100
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y}" y2="{y}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="10">{axis(i / 100)}</text>')
    for g, group in enumerate(groups):
        x0 = left + g * group_w + gap / 2
        for s, name in enumerate(series):
            v = values.get((group, name))
            if v is None:
                continue
            h = height * v
            parts.append(f'<rect x="{x0 + s * bar}" y="{top + height - h:.1f}" width="{bar - 2}" height="{h:.1f}" '
                         f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(name)} · {escape(group)}: '
                         f'{axis(v)}</title></rect>')
        cx = x0 + bar * len(series) / 2
        parts.append(f'<text x="{cx}" y="{top + height + 12}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-35 {cx} {top + height + 12})">{escape(group)}</text>')
    parts.append(_legend(series, left, 14))
    parts.append("</svg>")
    return "".join(parts)


def curves(series: dict[str, dict[int, float]], title: str) -> str:
    """pass^k curves: k on x, 0..1 on y, one line per series."""
    ks = sorted({k for points in series.values() for k in points}) or [1]
    left, top, w, h = 44, 28, 320, 180
    step = w / max(1, len(ks) - 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{left + w + 30}" height="{top + h + 40}" '
             f'viewBox="0 0 {left + w + 30} {top + h + 40}"><title>{escape(title)}</title>']
    for i in range(0, 101, 25):
        y = top + h - h * i / 100
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y}" y2="{y}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="10">{i}%</text>')
    for i, k in enumerate(ks):
        parts.append(f'<text x="{left + i * step}" y="{top + h + 16}" text-anchor="middle" font-size="10">k={k}</text>')
    for s, (name, points) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        xy = [(left + ks.index(k) * step, top + h - h * v) for k, v in sorted(points.items())]
        if len(xy) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                         f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in xy)}"/>')
        for (x, y), (k, v) in zip(xy, sorted(points.items())):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                         f'<title>{escape(name)} pass^{k} = {v:.3f}</title></circle>')
    parts.append(_legend(list(series), left, 14))
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: list[str], x: int, y: int) -> str:
    out = []
    for i, name in enumerate(names):
        out.append(f'<rect x="{x + i * 90}" y="{y - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{x + i * 90 + 14}" y="{y}" font-size="11">{escape(name)}</text>')
    return "".join(out)
