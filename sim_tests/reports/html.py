"""The self-contained HTML report: tables, inline SVG charts, and a transcript viewer."""
from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path
from typing import Any

from sim_tests.log import RunLog, TrialRecord
from sim_tests.metrics import costs, table
from sim_tests.reports.actions import action_sections
from sim_tests.reports.svg import curves, grouped_bars
from sim_tests.reports.traits import chart_values, sections

TEMPLATE = Path(__file__).with_name("template.html")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _message(m: dict[str, Any]) -> str:
    role = m.get("role", "?")
    if role == "assistant" and m.get("tool_calls"):
        calls = "\n".join(f"→ {c['function']['name']}({c['function'].get('arguments', '')})" for c in m["tool_calls"])
        text = ((m.get("content") or "") + "\n" + calls).strip()
    else:
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
    tag = " (inside the agent)" if m.get("inner") else ""
    return f'<div class="msg {escape(role)}"><span class="role">{escape(role)}{tag}</span>{escape(text or "")}</div>'


def _rein_notes(t: TrialRecord) -> str:
    out = []
    for turn in t.turns:
        diag = turn.diagnosis or {}
        found = ", ".join(e.get("subtype") or e.get("type", "?") for e in diag.get("errors") or [])
        bits = []
        if found:
            bits.append(f"diagnosis: {found}")
        if diag.get("plan"):
            bits.append(f"plan: {diag['plan']}")
        ref = turn.refinement or {}
        changed = [s["name"] for s in ref.get("steps") or [] if s.get("changed")]
        if changed:
            bits.append(f"refined by: {', '.join(changed)}")
        bits += turn.notes
        if bits:
            out.append(f'<div class="msg rein"><span class="role">rein · user turn {turn.user_turn}</span>'
                       f'{escape(" | ".join(bits))}</div>')
    return "".join(out)


REASON_CHARS = 220  # a summary line stays one or two lines; the whole text is in its tooltip


def _reason(t: TrialRecord) -> str:
    why = t.reason
    if not why:
        return ""
    short = why if len(why) <= REASON_CHARS else why[:REASON_CHARS - 1] + "…"
    return f'<span class="reason" title="{escape(why)}">{escape(short)}</span>'


def _trial(t: TrialRecord) -> str:
    scores = "".join(f'<li class="{"passed" if s.passed else "failed"}">{"✓" if s.passed else "✗"} '
                     f'{escape(s.name)}{" (process)" if s.process else ""}: {escape(s.detail)}</li>' for s in t.scores)
    error = f'<p class="error">error: {escape(t.error or "")}</p>' if t.error else ""
    return (f'<details class="trial" data-arm="{escape(t.arm)}" data-label="{escape(t.label)}" '
            f'data-trait="{escape(t.trait)}" data-status="{t.status}"><summary><span class="{t.status}">{t.status}</span>'
            f'{" (lucky: broke " + escape(", ".join(dict.fromkeys(t.broken_rules))) + ")" if t.lucky else ""} · '
            f'<code>{escape(t.scenario_id)}</code> · {escape(t.arm)} #{t.trial} · {escape(t.label)} · '
            f'{escape(t.trait)} user · ended by {t.ended_by} · {t.duration_s:.2f}s{_reason(t)}</summary>{error}<ul class="scores">{scores}</ul>'
            f'{_rein_notes(t)}{"".join(_message(m) for m in t.messages)}</details>')


def _traits(log: RunLog) -> str:
    values = chart_values(log)
    charts = (grouped_bars(values["traits"], values["arms"], values["success"], "Success rate by user trait and arm",
                           note="Share of each kind of user's trials that passed; one bar per arm.")
              + grouped_bars(values["traits"], values["arms"], values["satisfaction"],
                             "Satisfaction by user trait and arm (1-5)", scale=(1, 5), y_name="satisfaction",
                             note="Simulated user satisfaction by the rules, 1 (worst) to 5; one bar per arm."))
    parts = []
    for title, note, (header, rows) in sections(log):
        parts.append(f"<h2>{escape(title)}</h2><p>{escape(note)}</p>{_table(header, rows)}")
        if title == "By user trait" and len(values["traits"]) > 1:  # one kind of user: the charts above say it
            parts.append(f'<div class="charts">{charts}</div>')
    return "".join(parts)


def _actions(log: RunLog) -> str:
    return "".join(f"<h2>{escape(title)}</h2><p>{escape(note)}</p>{_table(header, rows)}"
                   for title, note, (header, rows) in action_sections(log))


def _pass_k_note(trials: int) -> str:
    if trials < 2:  # one point per arm says little: tell the reader how to get a curve
        return "One trial per scenario, so k=1 only (pass^1 = success rate); --trials 3 or more draws a curve."
    return "Chance that k runs of the same scenario all pass, over all scenarios; a falling line is flaky."


def render_html(log: RunLog) -> str:
    cells = table(log.trials)
    arms = list(dict.fromkeys(c.arm for c in cells))
    labels = list(dict.fromkeys(c.label for c in cells))
    by = {(c.arm, c.label): c for c in cells}
    success_rows = [[lab] + [("" if (a, lab) not in by else
                              f"{'–' if by[(a, lab)].success_rate is None else f'{100 * by[(a, lab)].success_rate:.0f}%'}"
                              f" ({by[(a, lab)].passed}/{by[(a, lab)].trials - by[(a, lab)].errors})")
                             for a in arms] for lab in labels]
    bars = grouped_bars([lab for lab in labels if lab != "all"], arms,
                        {(c.label, c.arm): c.success_rate for c in cells}, "Success rate by error type and arm",
                        note="Share of each error type's trials that passed (errors left out); one bar per arm.")
    pass_k = curves({a: by[(a, "all")].pass_k for a in arms if (a, "all") in by},
                    "pass^k by arm: does it pass every time?", _pass_k_note(log.config.trials))
    cost_rows = [[c.arm, c.trials, c.agent_calls_per_trial, c.rein_calls_per_trial, c.tokens_per_trial,
                  c.turn_latency_ms_p50, c.turn_latency_ms_p95, c.trial_seconds_mean] for c in costs(log.trials)]
    cfg = log.config
    summary = (f"Agent <code>{escape(cfg.agent)}</code>, {escape(cfg.user)} user, policy <code>{escape(cfg.policy)}</code>, "
               f"{cfg.trials} trial(s) per scenario, {len(log.trials)} trials, run {escape(log.status)} "
               f"(started {escape(log.started_at)}).")
    fills = {
        "title": escape(cfg.suite), "summary": summary,
        "success_table": _table(["error type"] + arms, success_rows),
        "bar_chart": bars, "pass_chart": pass_k,
        "cost_table": _table(["arm", "trials", "agent calls/trial", "rein calls/trial", "tokens/trial",
                              "turn p50 ms", "turn p95 ms", "trial s"], cost_rows),
        "arm_options": "".join(f"<option>{escape(a)}</option>" for a in arms),
        "label_options": "".join(f"<option>{escape(lab)}</option>" for lab in labels if lab != "all"),
        "trait_sections": _traits(log) + _actions(log),
        "trait_options": "".join(f"<option>{escape(x)}</option>" for x in dict.fromkeys(t.trait for t in log.trials)),
        "trials": "\n".join(_trial(t) for t in log.trials),
    }
    # One pass, so text from a transcript that looks like a placeholder is never filled in.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fills[m.group(1)], TEMPLATE.read_text())
