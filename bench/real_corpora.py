"""The real corpora the benches run over, and the one table per corpus plus a total they print.

Every folder under ``../shared/data/`` holding a ``dev.json`` of the shape bench/real_dialogues.py
reads is a corpus; a bench given no ``--data`` runs over all of them. Nothing of them is copied
into the repository.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def corpora(root: Path = DATA_DIR) -> list[Path]:
    """The dev sets under ``root``, by folder name (empty when the shared data is absent)."""
    return sorted(p for p in root.glob("*/dev.json")) if root.is_dir() else []


def corpus_name(path: Path) -> str:
    return path.parent.name if path.name == "dev.json" else path.stem


def table(rows: list[tuple[str, dict[str, Any]]], columns: list[tuple[str, str, Callable[[dict], str]]]) -> str:
    """``rows``: (corpus, figures); ``columns``: (heading, target, how to render a figure) — one line a corpus."""
    heads = ["corpus"] + [h for h, _, _ in columns]
    cells = [[name] + [render(fig) for _, _, render in columns] for name, fig in rows]
    targets = ["target"] + [t for _, t, _ in columns]
    widths = [max(len(r[i]) for r in [heads, targets, *cells]) for i in range(len(heads))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(heads), *(line(r) for r in cells), line(targets)])
