"""The per-trait part of every report: success, pass^k and satisfaction by arm × user trait, the
user side's lexical metrics against the cooperative user and the dev-set reference, and rein's
diagnosis rate per trait. Rows are built once here; Markdown and HTML only lay them out."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from sim_tests.lexical import UserSide, reference
from sim_tests.log import RunLog
from sim_tests.trait_metrics import COOPERATIVE, TraitCell, diagnosis_rates, trait_table

REFERENCE_LABEL = "reference: tau-bench airline dev users (an LLM simulator, not people)"
LEXICAL = [("mattr", "MATTR"), ("yules_k", "Yule's K"), ("hdd", "HD-D"), ("turn_words_mean", "words/turn"),
           ("turn_words_sd", "sd"), ("new_info_share", "new info")]


@lru_cache(maxsize=1)
def _reference() -> UserSide | None:
    return reference()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def outcome_rows(cells: list[TraitCell]) -> tuple[list[str], list[list[str]]]:
    ks = sorted({k for c in cells for k in c.pass_k})
    header = ["arm", "trait", "success", *[f"pass^{k}" for k in ks], "satisfaction (rules)",
              "satisfaction (judge)", "gave up"]
    rows = []
    for c in cells:
        judge = f"{_num(c.judge_satisfaction)} ({c.judged})" if c.judged else "–"
        rows.append([c.arm, c.trait, f"{_pct(c.success_rate)} ({c.passed}/{c.trials - c.errors})",
                     *[f"{c.pass_k[k]:.2f}" if k in c.pass_k else "–" for k in ks],
                     _num(c.satisfaction), judge, str(c.gave_up)])
    return header, rows


def _with_delta(value: float | None, base: float | None) -> str:
    if value is None:
        return "–"
    if base is None:
        return f"{value:g}"
    delta = value - base
    return f"{value:g} ({'+' if delta >= 0 else ''}{delta:.3g})"


def lexical_rows(cells: list[TraitCell], with_reference: bool = True) -> tuple[list[str], list[list[str]]]:
    """Each arm × trait, its change from the same arm's cooperative user in brackets, and the
    reference row when the dev set is present."""
    header = ["arm", "trait", "user turns", *[name for _, name in LEXICAL]]
    coop = {c.arm: c.user_side for c in cells if c.trait == COOPERATIVE}
    rows = []
    for c in cells:
        base = coop.get(c.arm) if c.trait != COOPERATIVE else None
        rows.append([c.arm, c.trait, str(c.user_side.user_turns),
                     *[_with_delta(getattr(c.user_side, key), getattr(base, key) if base else None)
                       for key, _ in LEXICAL]])
    ref = _reference() if with_reference else None
    if ref is not None:
        rows.append(["–", REFERENCE_LABEL, str(ref.user_turns), *[_num(getattr(ref, key)) for key, _ in LEXICAL]])
    return header, rows


def diagnosis_rows(log: RunLog) -> tuple[list[str], list[list[str]]]:
    header = ["arm", "trait", "diagnosed as with the cooperative user", "rate"]
    rows = []
    for d in diagnosis_rates(log.trials):
        what = (f"{d.matched}/{d.pairs} failure trials diagnosed at all" if d.trait == COOPERATIVE
                else f"{d.matched}/{d.pairs}")
        rows.append([d.arm, d.trait, what, _pct(d.rate)])
    return header, rows


def sections(log: RunLog) -> list[tuple[str, str, tuple[list[str], list[list[str]]]]]:
    """(title, note, (header, rows)) for each per-trait table of the report."""
    cells = trait_table(log.trials)
    out = [("By user trait", "Success, pass^k and simulated satisfaction (1-5) per arm and user trait.",
            outcome_rows(cells)),
           ("User side: human-likeness", "Lexical metrics of the user turns (after MirrorBench); in brackets "
            "the change from the same arm's cooperative user.", lexical_rows(cells))]
    diag = diagnosis_rows(log)
    if diag[1]:
        out.append(("rein's diagnosis under user traits", "Failure scenarios whose trait variant rein diagnoses "
                    "with every error type it found for the cooperative user.", diag))
    return out


def markdown_lines(log: RunLog) -> list[str]:
    lines: list[str] = []
    for title, note, (header, rows) in sections(log):
        lines += ["", f"## {title}", "", note, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def chart_values(log: RunLog) -> dict[str, Any]:
    """Per (trait, arm): success rate and satisfaction on 0..1 (for the HTML charts)."""
    cells = trait_table(log.trials)
    return {"traits": list(dict.fromkeys(c.trait for c in cells)), "arms": list(dict.fromkeys(c.arm for c in cells)),
            "success": {(c.trait, c.arm): c.success_rate for c in cells},
            "satisfaction": {(c.trait, c.arm): None if c.satisfaction is None else (c.satisfaction - 1) / 4
                             for c in cells}}
