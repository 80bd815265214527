"""Stable rule ids, and the mode a pack gives each rule.

Every finding has one rule id (the same string in headers, spans, the decision log and packs):

- ``detect:<type>`` or ``detect:<type>/<subtype>`` — a diagnosis detection (the taxonomy's entries);
- ``refine:<refiner>/<kind>`` — a refiner's finding (``refine:factuality/amount``; a refiner whose
  findings have no kinds, e.g. coherence, reports ``refine:<refiner>/revise``);
- ``action:<rule id>`` — an operator action rule of the pack; ``action:builtin/<check>`` — a built-in
  action check.

A pack sets a rule's mode by id or glob (the most specific pattern wins: an exact id, then the
longest glob); a rule no pattern names acts::

    rules:
      "detect:ambiguous_request/*": flag      # reported (headers, span, log), nothing changed
      "refine:factuality/date": shadow        # recorded as what rein would have done
      "detect:action_loop": off               # not even reported
    shadow: true                              # every rule that would act is recorded instead

>>> modes = RuleModes({"detect:ambiguous_request/*": "flag", "detect:ambiguous_request/polysemy": "off"})
>>> modes.mode("detect:ambiguous_request/vague_reference"), modes.mode("detect:ambiguous_request/polysemy")
('flag', 'off')
>>> modes.mode("detect:tool_failure"), RuleModes({}, shadow=True).mode("detect:tool_failure")
('act', 'shadow')
"""
from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Any, Iterable, Literal

from pydantic import BeforeValidator

Mode = Literal["off", "act", "flag", "shadow"]
# YAML 1.1 reads a bare ``off`` as false: a pack that writes ``detect:x: off`` means the mode.
PackMode = Annotated[Mode, BeforeValidator(lambda v: "off" if v is False else v)]
MODES: tuple[str, ...] = ("off", "act", "flag", "shadow")
RULE_PATTERN = r"^(?:detect|refine|action):[A-Za-z0-9_*?.\[\]/-]+$"
# What a factuality finding is about (the claim kinds of refiners/claims.py, and misspelt names).
FACTUALITY_KINDS = {"money": "amount", "date": "date", "time": "time", "status": "status", "number": "number",
                    "percent": "number", "id": "id", "name": "name"}
# The built-in action checks (inception's action engine reports them as action:builtin/<check>).
BUILTIN_ACTION_CHECKS = ("unconfirmed_write", "unknown_id", "repeated_failed_write", "claimed_action")
_GLOB = re.compile(r"[*?\[]")


def refiner_rule(refiner: str, kind: str = "revise") -> str:
    """``refine:factuality/amount``; a finding without a kind is ``revise``."""
    return f"refine:{refiner}/{kind}"


def factuality_rule(claim_kind: str) -> str:
    return refiner_rule("factuality", FACTUALITY_KINDS.get(claim_kind, claim_kind))


def known_rules(policy: Any, refiner_names: Iterable[str] = ()) -> set[str]:
    """Every rule id ``policy`` can report: its taxonomy, its refiners (built in and ``refiner_names``,
    plug-ins included), its action rules and the built-in action checks."""
    out: set[str] = set()
    for entry in policy.taxonomy:
        out |= {f"detect:{entry.type}", f"detect:{entry.label}"}
    for name in dict.fromkeys([*policy.refiners.refiners, *refiner_names]):
        out.add(refiner_rule(name))
        if name == "factuality":
            out |= {factuality_rule(k) for k in FACTUALITY_KINDS}
    actions = getattr(policy, "actions", None)  # the pack's action rules, where the schema has them
    for rule in getattr(actions, "rules", None) or []:
        out.add(f"action:{rule.id}")
    checks = getattr(actions, "builtins", None) or BUILTIN_ACTION_CHECKS
    out |= {f"action:builtin/{check}" for check in checks}
    return out


def unknown_patterns(rules: dict[str, str], known: set[str]) -> list[tuple[str, str]]:
    """(pattern, why) for each id that names no rule and each glob that matches none."""
    out = []
    for pattern in rules:
        if _GLOB.search(pattern):
            if not any(fnmatch.fnmatchcase(rule, pattern) for rule in known):
                out.append((pattern, f"the pattern {pattern!r} matches no rule of this policy"))
        elif pattern not in known:
            near = sorted(r for r in known if r.split(":")[0] == pattern.split(":")[0])[:6]
            out.append((pattern, f"unknown rule {pattern!r}" + (f" (known: {', '.join(near)}, ...)" if near else "")))
    return out


class RuleModes:
    """The mode of each rule id under a pack's ``rules:`` (resolved once per id, then remembered)."""

    def __init__(self, rules: dict[str, str] | None = None, shadow: bool = False):
        rules = rules or {}
        self.exact = {k: v for k, v in rules.items() if not _GLOB.search(k)}
        # The longest glob is the most specific: tried first.
        self.globs = sorted(((k, v) for k, v in rules.items() if _GLOB.search(k)), key=lambda kv: -len(kv[0]))
        self.shadow = shadow
        self._seen: dict[str, str] = {}

    @classmethod
    def of(cls, policy: Any, shadow: bool | None = None) -> "RuleModes":
        return cls(dict(policy.rules), policy.shadow if shadow is None else shadow)

    @property
    def all_act(self) -> bool:
        """No rule is set to anything but act and nothing is shadowed: the pipeline need not look."""
        return not self.shadow and all(v == "act" for v in [*self.exact.values(), *(v for _, v in self.globs)])

    def softens(self, kind: str) -> bool:
        """Whether a rule of ``kind`` (detect, refine, action) may be kept from acting: shadow
        mode, or a pattern for that kind set to anything but act."""
        return self.shadow or any(v != "act" and k.startswith(kind + ":")
                                  for k, v in [*self.exact.items(), *self.globs])

    def mode(self, rule: str) -> str:
        found = self._seen.get(rule)
        if found is None:
            found = self.exact.get(rule) or next((v for k, v in self.globs if fnmatch.fnmatchcase(rule, k)), "act")
            if self.shadow and found == "act":
                found = "shadow"
            if len(self._seen) < 4096:
                self._seen[rule] = found
        return found

    def acts(self, rule: str) -> bool:
        return self.mode(rule) == "act"
