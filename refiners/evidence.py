"""What rein can check a draft against: facts from tool results, operator documents, what the
user said, and what the assistant said earlier — each a typed value named by a few key words.

    ev = Evidence.from_context(ctx)
    claim = find_claims(draft)[0]
    verdict, fact = ev.judge(claim, context_words(draft, claim), words(draft), ("tool",))
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from policies.messages import AssistantMessage, ToolMessage, UserMessage, text_of
from refiners.claims import STATUSES, Claim, comparable, find_claims, same_value

STOP = set("""a an the and or but if of to in on at by for with from as is are was were be been being it its
this that these those your you yours my me we our us i he she they them their his her will would can could
should shall may might must has have had do does did not no yes so than then there here what which who whom
when where why how any all some each per via just also very into about up out over under again please let
know thanks thank hi hello hey sure okay ok get got can't don't won't isn't aren't i'm it's what's where's
i'd you're that's there's""".split())
_SYNONYMS = {"cost": "price", "costs": "price", "priced": "price", "amount": "total", "charge": "total",
             "charged": "total", "paid": "total", "pay": "total", "payment": "total", "refunded": "refund",
             "deliver": "delivery", "delivered": "delivery", "arrive": "delivery", "arrives": "delivery",
             "arrival": "delivery", "arriving": "delivery", "eta": "delivery", "expected": "delivery",
             "ship": "ship", "shipped": "ship", "shipping": "ship", "ships": "ship", "shipment": "ship",
             "depart": "departure", "departs": "departure", "leaves": "departure", "leave": "departure",
             "reservation": "booking", "confirmation": "booking", "booked": "booking", "book": "booking",
             "booking": "booking", "state": "status",
             "balance": "balance", "due": "due", "number": "id", "no": "id", "code": "id", "reference": "id",
             "ref": "id", "qty": "quantity", "units": "quantity", "count": "quantity", "ticket": "ticket"}
_WORD = re.compile(r"[A-Za-z][A-Za-z']+")
_SENTENCE_END = re.compile(r"[.!?;\n]")
_ID = re.compile(r"#?(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{3,}")
_MONEY_KEYS = {"price", "total", "fee", "refund", "balance", "credit", "subtotal", "tax", "fare", "deposit", "rate",
               "due", "salary", "budget"}


def norm(word: str) -> str:
    w = word.lower().strip("'")
    if w in _SYNONYMS:
        return _SYNONYMS[w]
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix) and not w.endswith(("us", "ss", "is")):
            stem = w[: -len(suffix)]
            return _SYNONYMS.get(stem, stem)
    return w


def words(text: str) -> set[str]:
    return {norm(w) for w in _WORD.findall(text) if w.lower() not in STOP}


def key_words(path: str) -> frozenset[str]:
    parts = re.sub(r"([a-z])([A-Z])", r"\1 \2", path).replace("_", " ").replace(".", " ").replace("-", " ")
    return frozenset(norm(w) for w in parts.split() if w.isalpha() and w.lower() not in STOP)


def sentence_of(text: str, start: int, end: int) -> tuple[int, int]:
    s = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    m = _SENTENCE_END.search(text, end)
    # a decimal point or an abbreviation dot inside a value is not the end of a sentence
    while m and m.group(0) == "." and m.end() < len(text) and not text[m.end()].isspace():
        m = _SENTENCE_END.search(text, m.end())
    return s, (m.start() if m else len(text))


def context_words(text: str, claim: Claim, before: int = 6, after: int = 2) -> set[str]:
    """Content words naming a value: a few before it and after it, within its sentence."""
    s, e = sentence_of(text, claim.start, claim.end)
    left = [w for w in _WORD.findall(text[s:claim.start]) if w.lower() not in STOP][-before:]
    right = [w for w in _WORD.findall(text[claim.end:e]) if w.lower() not in STOP][:after]
    return {norm(w) for w in left + right} - {norm(claim.text)}


def near_words(text: str, claim: Claim) -> set[str]:
    return context_words(text, claim, before=2, after=0)


@dataclass
class Fact:
    key: frozenset[str]
    kind: str
    value: Any
    display: str
    source: str            # tool | document | user | assistant
    record: frozenset[str]  # words of the record it belongs to (sibling keys, tool name)
    turn: int = -1
    ids: frozenset[str] = frozenset()  # IDs of that record: tells two orders' statuses apart


def _leaf_kind(keys: frozenset[str], value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) and not keys & _MONEY_KEYS and ("id" in keys or value >= 10000):
        return "id"
    if isinstance(value, (int, float)):
        return "money" if keys & _MONEY_KEYS else "number"
    return None


def _flatten(data: Any, path: str = "") -> Iterable[tuple[str, str, Any]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _flatten(v, f"{path}.{k}" if path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _flatten(v, f"{path}[{i}]")
    else:
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        yield parent, path, data


def facts_from_json(data: Any, source: str, turn: int, entity: frozenset[str] = frozenset()) -> list[Fact]:
    leaves = list(_flatten(data))
    records: dict[str, set[str]] = {}
    ids: dict[str, set[str]] = {}
    for parent, path, value in leaves:
        records.setdefault(parent, set(entity)).update(key_words(re.sub(r"\[\d+\]", "", path)))
        if isinstance(value, (str, int)) and not isinstance(value, bool) and _ID.fullmatch(str(value)):
            ids.setdefault(parent, set()).add(str(value).lstrip("#").upper())
    out: list[Fact] = []
    for parent, path, value in leaves:
        keys = key_words(re.sub(r"\[\d+\]", "", path.rsplit(".", 1)[-1])) or key_words(path)
        record = frozenset(records[parent])
        rec_ids = frozenset(ids.get(parent, ()))
        kind = _leaf_kind(keys, value)
        if kind == "id":
            out.append(Fact(keys, "id", str(value), str(value), source, record, turn, rec_ids))
            continue
        if kind:
            out.append(Fact(keys, kind, Decimal(str(value)), str(value), source, record, turn, rec_ids))
            continue
        if not isinstance(value, str) or not value.strip():
            continue
        text = value.strip()
        if text.lower() in STATUSES or ("status" in keys and len(text.split()) <= 3):
            out.append(Fact(keys | {"status"}, "status", text.lower().replace("canceled", "cancelled"), text,
                            source, record, turn, rec_ids))
            continue
        if "name" in keys or (text.istitle() and len(text.split()) <= 4 and not find_claims(text)):
            out.append(Fact(keys, "name", text, text, source, record, turn, rec_ids))
            continue
        for c in find_claims(text):
            whole = c.start == 0 and c.end == len(text)
            ctx = keys if whole else keys | context_words(text, c)
            out.append(Fact(frozenset(ctx), c.kind, c.value, c.text, source, record, turn, rec_ids))
        if not find_claims(text) and re.fullmatch(r"[A-Za-z0-9-]{4,}", text) and any(ch.isdigit() for ch in text):
            out.append(Fact(keys, "id", text.upper(), text, source, record, turn, rec_ids))
    return out


def facts_from_text(text: str, source: str, turn: int, kinds: tuple[str, ...] | None = None) -> list[Fact]:
    out = []
    for c in find_claims(text, kinds):
        line_start = text.rfind("\n", 0, c.start) + 1
        head = text[line_start:c.start]
        key = key_words(head.split(":")[0]) if ":" in head else frozenset(context_words(text, c))
        s, e = sentence_of(text, c.start, c.end)
        out.append(Fact(frozenset(key), c.kind, c.value, c.text, source, frozenset(words(text[s:e])), turn))
    return out


class Evidence:
    def __init__(self, facts: list[Fact]):
        self.facts = facts

    @classmethod
    def from_context(cls, ctx: Any) -> "Evidence":
        facts: list[Fact] = []
        tool_names: dict[str, frozenset[str]] = {}
        messages = ctx.messages
        for i, m in enumerate(messages):
            if isinstance(m, AssistantMessage):
                for call in m.tool_calls or []:
                    tool_names[call.id] = key_words(call.function.name)
                if i < len(messages) and text_of(m):
                    facts += facts_from_text(text_of(m), "assistant", i)
            elif isinstance(m, ToolMessage):
                text = text_of(m)
                try:
                    facts += facts_from_json(json.loads(text), "tool", i, tool_names.get(m.tool_call_id, frozenset()))
                except ValueError:
                    facts += facts_from_text(text, "tool", i)
            elif isinstance(m, UserMessage):
                facts += facts_from_text(text_of(m), "user", i, ("id", "money", "date", "time"))
        for doc in ctx.documents or []:
            facts += facts_from_text(doc, "document", -1)
        return cls(facts)

    def of(self, *sources: str) -> list[Fact]:
        return [f for f in self.facts if f.source in sources]

    def has(self, *sources: str) -> bool:
        return any(f.source in sources for f in self.facts)

    def judge(self, claim: Claim, ctx: set[str], sentence: set[str], sources: tuple[str, ...],
              near: set[str] = frozenset()) -> tuple[str, Fact | None]:
        """``supported``, ``contradicted`` (with the fact it contradicts) or ``unverified``.
        ``near``: the words right next to the value; they name it more surely than the rest."""
        cands = [f for f in self.facts if f.source in sources and comparable(claim.kind, f.kind)]
        if not cands:
            return "unverified", None
        numeric = claim.kind in ("money", "number")
        if any(same_value(claim.kind, claim.value, f.value) for f in cands) or numeric and any(
                f.kind in ("money", "number") and f.value == claim.value for f in self.facts if f.source in sources):
            return "supported", None  # a value the evidence holds is never "corrected" to another one
        scored = [(len(ctx & f.key) + len(near & f.key), f) for f in cands]
        best = max(s for s, _ in scored)
        if best > 0:
            top = [f for s, f in scored if s == best]
            scoped = [f for f in top if f.ids & sentence] or top
            values = {repr(f.value) for f in scoped}
            if len(values) == 1:
                return "contradicted", scoped[0]
        if claim.kind in ("date", "money", "id", "time", "status") and best == 0:
            # One value of this kind in view and the sentence is about its record: the draft meant it.
            related = [f for f in cands if (f.record - {"status", "id"}) & sentence]
            if len({repr(f.value) for f in related}) == 1:
                return "contradicted", related[0]
        return "unverified", None
