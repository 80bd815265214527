"""What rein can check a draft against, as typed facts about named things.

A fact from a tool result knows *which thing* it is about — the records holding it, found through
the JSON's nesting and its identifier keys (``reservation_id``, ``flight_number``, ``id`` ...), and
the call's own id arguments — and *which attribute* it is (the key path inside that record). The
factuality pass binds a claim to facts only through both; everything else here is a set of values
rein has seen (tool results, documents, what the user and the assistant said), which a draft may
repeat freely.

    ev = Evidence.from_context(ctx)
    ev.entities_in("Flight HAT069 departs at 6am")   # -> {"HAT069"} when a tool result names it

Building it is linear in the text it reads and bounded (``READ_LIMIT``); the current turn's tool
results are read first, and what is skipped is said in ``notes``.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable

from policies.messages import AssistantMessage, ToolMessage, UserMessage, text_of
from refiners.claims import Claim, comparable, same_value
from refiners.evidence_index import Index, join
from refiners.facts import Fact, facts_from_json, facts_from_text
from refiners.message_facts import call_facts, data_only, ids_of, said_facts, tool_facts
# Re-exported: refiners read words and sentences through this module.
from refiners.text import (_ID_TOKEN, STOP, Sentences, context_words, id_norm, is_id, key_words,  # noqa: F401
                           near_words, norm, sentence_of, words)

READ_LIMIT = 256_000  # characters of tool results and documents read per turn (newest first)


FACT_SOURCES = ("tool", "document")  # where facts come from: what a reply is checked against

class Evidence:
    def __init__(self, facts: list[Fact] | Index, notes: list[str] | None = None, said: Iterable[str] = ()):
        index = facts if isinstance(facts, Index) else Index(facts)
        if said:
            index = join([index, Index([], (i for text in said for i in ids_of(text)))])
        if index.by_entity and not index.ids.issuperset(index.by_entity):
            index.ids = index.ids | set(index.by_entity)  # (an empty index shares its empty sets: not updated in place)
        self.index = index
        self.notes = notes or []
        # which records there are, asked for every token of every sentence checked: a set (or dict) itself
        self._entities = getattr(index.by_entity, "keys_set", index.by_entity)
        self._names: dict[int, tuple[frozenset[str], dict[str, list[tuple[str, str]]]]] | None = None

    # The lookups a draft's check reads of almost any dialogue (a joined index builds each when first read).
    WARM = ("ids", "numbers", "money", "days", "seen", "outside", "said", "tool_ids", "tool_turns", "names",
            "tool_names")

    def warm(self) -> "Evidence":
        """Build now what a draft's check would build when it first asks (the joined lookups, the
        names table): ``Refinery.prepare`` calls it while the agent writes, off the turn's path."""
        for name in self.WARM:
            getattr(self.index, name)
        self.name_tables()
        return self

    def name_tables(self) -> dict[int, tuple[frozenset[str], dict[str, list[tuple[str, str]]]]]:
        """The tool results' names of 5+ characters by their number of words: (each lower-cased, with
        its plurals: a name itself is no misspelling; the names by initial, with their lower case:
        a close one starts with the same letter). Built once per evidence."""
        if self._names is None:
            tables: dict[int, tuple[set[str], dict[str, list[tuple[str, str]]]]] = {}
            for name in self.index.tool_names:
                if len(name) < 5:
                    continue
                spelt, by_initial = tables.setdefault(len(name.split()), (set(), {}))
                low = name.lower()
                spelt.update((low, low + "s", low + "es"))
                by_initial.setdefault(name[0].lower(), []).append((name, low))
            self._names = {n: (frozenset(spelt), by_initial) for n, (spelt, by_initial) in sorted(tables.items())}
        return self._names

    # The index's lookups, read from it when asked (a joined index builds each when first read).
    facts = property(lambda self: self.index.facts)
    by_entity = property(lambda self: self.index.by_entity)
    ids = property(lambda self: self.index.ids)
    _numbers = property(lambda self: self.index.numbers)
    _money = property(lambda self: self.index.money)
    _seen = property(lambda self: self.index.seen)
    _days = property(lambda self: self.index.days)
    _outside = property(lambda self: self.index.outside)
    _said = property(lambda self: self.index.said)

    @classmethod
    def from_context(cls, ctx: Any) -> "Evidence":
        parts: list[Index] = []
        notes: list[str] = []
        messages = ctx.messages
        calls: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
        for i, m in enumerate(messages):
            if isinstance(m, AssistantMessage):
                for call in m.tool_calls or []:
                    raw = call.function.arguments or ""
                    calls[call.id] = call_facts(raw, call.function.name, i, parts)
        budget = READ_LIMIT
        skipped = 0
        # Newest first: when the budget runs out, what goes unread is the oldest.
        for i in range(len(messages) - 1, -1, -1):
            m = messages[i]
            if not isinstance(m, ToolMessage):
                continue
            text = text_of(m)
            if len(text) > budget:
                skipped += 1
                continue
            budget -= len(text)
            record, entity = calls.get(m.tool_call_id, (frozenset(), ()))
            parts.append(tool_facts(text, i, entity, record))
        for doc in ctx.documents or []:
            if len(doc) > budget:
                skipped += 1
                continue
            budget -= len(doc)
            parts.append(Index(facts_from_text(data_only(doc), "document", -1)))
        for i, m in enumerate(messages):
            if isinstance(m, (UserMessage, AssistantMessage)):
                text = text_of(m)
                if not text or len(text) > budget:
                    skipped += bool(text)
                    continue
                budget -= len(text)
                source = "user" if isinstance(m, UserMessage) else "assistant"
                parts.append(said_facts(text, source, i))
        if skipped:
            notes.append(f"factuality: read the newest {READ_LIMIT // 1000} KB of the dialogue; "
                         f"{skipped} older message(s) not read")
        return cls(join(parts) if parts else Index([]), notes)

    def of(self, *sources: str) -> list[Fact]:
        return [f for f in self.facts if f.source in sources]

    def has(self, *sources: str) -> bool:
        return any(f.source in sources for f in self.index.iter_facts())

    # ---- what factuality asks -----------------------------------------------------------
    def seen(self, claim: Claim) -> bool:
        """The value is one rein has seen anywhere (a tool, a document, the user, the assistant)."""
        if claim.kind in ("money", "number", "percent"):
            return claim.value in self._numbers
        if claim.kind == "id":
            return claim.value in self.ids
        if claim.kind == "date":  # a date without its year matches that day in any year
            return (claim.value[1:] if claim.value[0] is None else claim.value) in self._days
        return claim.value in self._seen.get(claim.kind, ())

    def said(self, claim: Claim) -> bool:
        """The value is one the user, a document, the agent's calls or its earlier turns gave."""
        if claim.kind in ("money", "number", "percent"):
            return claim.value in self._said["number"]
        if claim.kind == "date":
            return (claim.value[1:] if claim.value[0] is None else claim.value) in self._said["date"]
        return claim.value in self._said.get(claim.kind, ())

    @staticmethod
    def holds(facts: list[Fact], claim: Claim) -> bool:
        """One of ``facts`` has the claim's value (whatever its attribute)."""
        numeric = claim.kind in ("money", "number")
        return any((f.value == claim.value and f.kind in ("money", "number")) if numeric
                   else (f.kind == claim.kind and same_value(claim.kind, claim.value, f.value)) for f in facts)

    def seen_outside_assistant(self, claim: Claim) -> bool:
        """The value is in a tool result, a document, a call or the user's words (not only the assistant's)."""
        kind = "number" if claim.kind in ("money", "number") else claim.kind
        value = claim.value[1:] if claim.kind == "date" and claim.value[0] is None else claim.value
        return value in self._outside.get(kind, ())

    def entities_in(self, text: str) -> list[str]:
        """Identifiers of records in the evidence that ``text`` names, in the order named."""
        out = []
        known = self._entities
        for t in _ID_TOKEN.findall(text):
            n = t.rstrip("-_").lstrip("#").upper()  # (id_norm of a token)
            if n in known and n not in out:
                out.append(n)
        return out

    @property
    def known_entities(self) -> Any:
        """The ids of the records the evidence describes (what ``entities_in`` finds)."""
        return self._entities

    def holders(self, ident: str) -> int:
        """How many records hold ``ident`` as a field of their own (a phone number: a customer's and a line's)."""
        return len({f.entities[0] for f in self.by_entity.get(ident, ()) if f.kind == "id" and f.own and f.entities
                    and f.source in FACT_SOURCES and id_norm(f.value) == ident})

    def about(self, entities: list[str]) -> list[Fact]:
        """Facts of the records named; when several are named, those inside all of them if any."""
        if not entities:
            return []
        if len(entities) == 1:
            return self.by_entity.get(entities[0], [])
        every = [f for f in self.by_entity.get(entities[0], []) if all(e in f.entities for e in entities[1:])]
        return every or [f for e in entities for f in self.by_entity.get(e, [])]

    def derivable(self, value: Decimal) -> bool:
        """``value`` follows from the amounts in view by simple arithmetic: a sum or difference of two,
        a multiple by a small count (per-passenger totals), or a column's sum."""
        ops = set(self._money)  # amounts, not counts: a seat count is no operand of a price
        ops |= self._sums()
        if len(ops) > 400:
            return True  # too many amounts to say it does not follow from them: do not call it wrong
        for a in ops:
            if value - a in ops or a - value in ops:
                return True
        for k in range(2, 10):
            part = value / k
            if part in ops or any(part - a in ops for a in ops):
                return True
        return False

    def _sums(self) -> set[Decimal]:
        sums: dict[tuple[int, frozenset[str]], Decimal] = {}
        for f in self.facts:
            if f.kind == "money" and f.source == "tool":
                sums[(f.turn, f.key)] = sums.get((f.turn, f.key), Decimal(0)) + f.value
        return set(sums.values())

    # ---- what coherence asks (earlier assistant turns) ----------------------------------
    def judge(self, claim: Claim, ctx: set[str], sentence: set[str], sources: tuple[str, ...],
              near: set[str] = frozenset()) -> tuple[str, Fact | None]:
        """``supported``, ``contradicted`` (with the one fact it contradicts) or ``unverified``: a
        claim contradicts only a fact whose name the words around the claim use, with one value."""
        cands = [f for f in self.facts if f.source in sources and comparable(claim.kind, f.kind)]
        if not cands:
            return "unverified", None
        if any(same_value(claim.kind, claim.value, f.value) for f in cands):
            return "supported", None
        scored = [(len(ctx & f.key) + len(near & f.key), f) for f in cands]
        best = max(s for s, _ in scored)
        if best == 0:
            return "unverified", None
        top = [f for s, f in scored if s == best]
        if len({repr(f.value) for f in top}) == 1:
            return "contradicted", top[0]
        return "unverified", None


__all__ = ["Evidence", "Fact", "Sentences", "context_words", "facts_from_json", "facts_from_text", "id_norm",
           "is_id", "key_words", "near_words", "norm", "sentence_of", "words"]
