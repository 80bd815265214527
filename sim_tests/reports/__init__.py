"""Reports rendered from a run log (never by re-running): Markdown, HTML, JUnit XML."""
from __future__ import annotations

from pathlib import Path

from sim_tests.log import RunLog
from sim_tests.reports.html import render_html
from sim_tests.reports.junit import render_junit
from sim_tests.reports.markdown import render_markdown, text_table


def write_reports(log: RunLog, out_dir: Path) -> dict[str, Path]:
    """Write report.md, report.html and junit.xml next to the log; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "report.md", "html": out_dir / "report.html", "junit": out_dir / "junit.xml"}
    paths["markdown"].write_text(render_markdown(log))
    paths["html"].write_text(render_html(log))
    paths["junit"].write_text(render_junit(log))
    return paths


__all__ = ["render_html", "render_junit", "render_markdown", "text_table", "write_reports"]
