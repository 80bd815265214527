"""The factuality check of one text against one turn's evidence: which values contradict a fact
about the same thing, and what was left alone and why (``refiners.factuality`` applies or flags).

A value is checked only against a fact about the same record (named by its id in the sentence, or
by the heading of the list item it sits in) and the same attribute (the words naming the value
match the fact's key), compared by type. It is never "corrected" when rein has seen the value
anywhere a user, document, call or earlier turn gave it, when it follows from the amounts in view
by simple arithmetic, or when the words around it say it is derived. When more than one fact could
apply, nothing changes and a note says so.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from refiners.assertion import unasserted
from refiners.claims import Claim, find_claims, render
from refiners.evidence import _ID_TOKEN, FACT_SOURCES, Evidence, Fact, Sentences, context_words, key_words
from refiners.id_typos import swaps
# (what makes a value derived or a term of a sum: read here and for a list item's value)
from refiners.item_facts import DERIVED as _DERIVED, GO_ON, SUM_AFTER as _SUM_AFTER, SUM_BEFORE as _SUM_BEFORE, item_fact
from refiners.list_heading import LINE_READ as _LINE_READ, heading, label as _label, table_cell
from refiners.quoted_record import quoted_record, spans
from refiners.status_check import status_finding
from refiners.value_roles import from_counts, named_as_other

CHECKED = ("money", "date", "time", "status", "number", "id")


@dataclass
class Finding:
    claim: Claim
    fact: Fact
    new: str

    def describe(self) -> str:
        where = "the tool result" if self.fact.source == "tool" else f"the {self.fact.source}"
        named = self.fact.name or " ".join(sorted(self.fact.key)) or self.fact.kind
        about = f"{self.fact.entities[0]} " if self.fact.entities else ""
        return f"{self.claim.text} → {self.new} ({where}: {about}{named} = {self.fact.display})"


_CLAUSE_MARK = re.compile(r"[,;\u2013\u2014|]")  # what ends the words after a value, before the next one
_ASCII_DIGIT = re.compile(r"[0-9]")


class Checker:
    """One draft against one turn's evidence: contradictions found, and notes on what was left alone."""

    def __init__(self, text: str, evidence: Evidence):
        self.text = text
        self.ev = evidence
        self.sentences = Sentences(text)
        self.notes: list[str] = []
        self.sources = evidence.index.tool_turns
        self._tool_ids = evidence.index.tool_ids
        self._typos: dict[str, str] = {}
        self._named: dict[str, tuple[list[str], bool]] = {}  # text -> _read(text)
        self._walks: dict[int, tuple[list[str], int | None]] = {}  # line start -> its heading walk (list_heading)
        self._tokens: dict[str, tuple[str, str | None, bool]] = {}  # token -> _token(token)
        self._prev_end = 0
        self._starts: dict[tuple[int, int], list[int]] = {}  # a streamed sentence's values, by its bounds
        self._all_starts: list[int] | None = None  # every value's start, when findings() read the whole text

    def findings(self) -> list[Finding]:
        out = []
        self._prev_end = 0
        claims = find_claims(self.text)
        self._all_starts = [c.start for c in claims]  # read once
        for claim in claims:
            found = self.check(claim)
            if found is not None:
                out.append(found)
        return out

    def reread(self, text: str, sentences: Sentences, start: int) -> None:
        """Go on with ``text``, the same text grown at its end (a streamed reply), from ``start``:
        a value's naming words never reach back past it (the start of the sentence checked next)."""
        self.text, self.sentences, self._prev_end = text, sentences, start
        self._walks.clear()  # (a line's walk read the text as it was)
        self._all_starts = None

    def check(self, claim: Claim) -> Finding | None:
        """The contradiction ``claim`` (the next value of the text, in order) makes, if any."""
        found = self._check(claim) if claim.kind in CHECKED else None
        self._prev_end = claim.end  # the words before a later value name that one, not this
        return found

    def _check(self, claim: Claim) -> Finding | None:
        if claim.kind == "id":
            fix = self._typo(claim.value)
            return Finding(claim, Fact(frozenset({"id"}), "id", fix, fix, "tool", frozenset()), render(claim, fix, "id")) \
                if fix else None
        # A value the user, a document, the agent's own calls or its earlier turns gave is never
        # "corrected"; nor is one the named record holds (under any attribute).
        if claim.kind == "status" and self.ev.seen(claim) or self.ev.said(claim):
            return None
        s, e = self.sentences.bounds(claim.start, claim.end)
        if claim.kind == "status":
            if unasserted(self.text, claim.start, claim.end, s, e):
                return None
            found = status_finding(self.text, self.ev, claim, s, self._entities(self.text[s:claim.start] + " " + self.text[claim.end:e]),
                                   self._entities)
            return Finding(claim, *found) if found else None
        rest = self.text[s:claim.start] + " " + self.text[claim.end:e]
        entities = self._entities(rest)
        headed = not entities  # the record is the one heading the sentence's list item, if any
        if headed:
            entities = self._heading(s)
            # an id the dialogue knows but no result describes as a record: another record, not the
            # heading's, unless it is a field of the heading's record (an order's item id)
            if self._read(rest)[1] and not self._ids_of(rest, entities):
                return None
        if entities:
            cands = self.ev.about(entities)
            if self.ev.holds(cands, claim):
                return None
            # A price the words before it tie to one of the record's id-less list items ("Vacuum
            # Cleaner (black): $99"): checked against that item's own (refiners.item_facts).
            fact = item_fact(self.ev, self.text, claim, s, e, self._prev_end, cands, entities, self._naming) \
                if claim.kind == "money" else GO_ON
            if fact is not GO_ON:
                new = fact and render(claim, fact.value, fact.kind)
                return Finding(claim, fact, new) if new and new != claim.text else None
        elif len(self.sources) == 1 and not self.ev.seen(claim):
            # One tool result or document in view and no record named: its top-level fields only
            # (a nested flight's date is not what an unnamed sentence is about).
            # (fields of a record, or the operator's documents: prose in a tool result — an email, a web
            # page, a planted passage — is about nothing the sentence names)
            facts = [f for f in self.ev.facts if f.source == "document" or f.source == "tool" and f.name]
            top = min((len(f.entities) for f in facts), default=0)
            cands = [f for f in facts if f.own and len(f.entities) == top]
        else:
            return None
        # A field of one of several id-less list items (a passenger's date of birth) is not the
        # record's own: unless the words name the item (above), nothing says which one is meant.
        # Same kind and role only: a bare number (a count, the digits of a card) never takes an amount.
        same = [f for f in cands if f.source in FACT_SOURCES and f.kind == claim.kind]
        cands = [f for f in same if not f.anonymous]
        if not cands:
            return None
        # Asked, negated, conditional, quoted, explained or part of an id: not stated as true. Read only
        # now (nothing above notes anything): most values hold for their record, or name none.
        if unasserted(self.text, claim.start, claim.end, s, e):
            return None
        if entities and len({(f.turn, f.row) for f in cands}) > 1:
            if not headed:
                # Records that share the id the sentence names (one gift card in two orders' payments):
                # those nested in the record heading the list item, when it heads some of them.
                heading = self._heading(s)
                under = [f for f in cands if any(h in f.entities[1:] for h in heading)] if heading else []
                cands = under or cands
            if len({(f.turn, f.row) for f in cands}) > 1:
                cands = quoted_record(self.ev, self.text, cands, claim, (s, e), entities)
        named = self._naming(claim, s, e)
        near = context_words(self.text, claim, before=2, after=0, bounds=(s, e))  # the sentence found once
        top = self._best(cands, named, near & named)
        if top and not near & named & top[0].key and self._names_item(entities, s, e):
            return None  # a list item of the record is named: a key word far from the value is no proof
        if not top:
            item = self._names_item(entities, s, e)
            # No word names the attribute: only the record's one value of this kind can be meant, if the
            # value is nowhere else and no other attribute is named ("DOB: ..."); under a heading or naming
            # an item, its items' values count too (item prices beside the payment's amount); each id must
            # be the own id of one record (a phone number of a customer and of a line names two).
            values = {repr(f.value) for f in (same if headed or item else cands)}
            if not entities or claim.kind == "number" or len(values) != 1 or self.ev.seen(claim) \
                    or self._names_other(claim, named) or any(self.ev.holders(i) > 1 for i in entities) \
                    or headed and named_as_other(self.text, claim.end, cands):  # "a €15 fee": no field of it
                return None
            top = cands
        if len({repr(f.value) for f in top}) > 1:
            self.notes.append(f"{claim.text}: several facts could apply "
                              f"({', '.join(sorted({f.display for f in top})[:4])}); left as written")
            return None
        fact = top[0]
        window = self.text[max(s, claim.start - 40):min(e, claim.end + 12)]
        if _SUM_BEFORE.search(self.text[max(s, claim.start - 24):claim.start]) \
                or _SUM_AFTER.match(self.text, claim.end, min(e, claim.end + 16)):
            return None  # a term or result of the reply's own sum ("$112 + $104 = $216")
        row = self.ev.index.rows.get((fact.turn, fact.row))
        named_by_record = spans(window.lower(), row.texts) if row is not None else []
        marker = next((m.group(0).lower() for m in _DERIVED.finditer(window)
                       if not key_words(m.group(0)) & (fact.key | fact.record)
                       # a word of the record's own text quoted ("New year gift") is not the reply's
                       and not any(a <= m.start() and m.end() <= b for a, b in named_by_record)), None)
        if marker:
            self.notes.append(f"{claim.text}: '{marker}' says it is derived, not the tool's "
                              f"{' '.join(sorted(fact.key))}; left as written")
            return None
        if claim.kind in ("money", "number") and self.ev.derivable(claim.value) or claim.kind == "number" \
                and from_counts(claim.value, [f.value for f in self.ev.about(fact.entities[:1]) if f.kind in ("number", "money")]):
            self.notes.append(f"{claim.text}: follows from amounts in view; left as written")
            return None
        new = render(claim, fact.value, fact.kind)
        return None if new == claim.text else Finding(claim, fact, new)

    def _entities(self, text: str) -> list[str]:
        return self._read(text)[0]

    def _read(self, text: str) -> tuple[list[str], bool]:
        """(the records ``text`` names, whether it names an id the dialogue knows — a user's, a call's,
        a result's), kept by the text for the next claim: a list item's values read the lines heading it."""
        found = self._named.get(text)
        if found is not None:
            return found
        if _ASCII_DIGIT.search(text) is None:
            found = [], False  # a record's id has a digit, as has any id worth a typo fix: none is named here
        else:
            # One read of the tokens (``entities_in``'s), each token's answer kept: a record it names,
            # the text a typo of a tool id is looked for in (3+ characters), whether it is a known id.
            read = [self._tokens.get(t) or self._token(t) for t in _ID_TOKEN.findall(text)]
            named = list(dict.fromkeys(n for n, _, _ in read if n))
            for _, body, _ in read:
                fix = body and self._typo(body)
                if fix and fix not in named:
                    named.append(fix)
            found = named, any(known for _, _, known in read)
        if len(self._named) >= 1024:
            self._named.clear()
        self._named[text] = found
        return found

    def _ids_of(self, text: str, entities: list[str]) -> bool:
        """Every id of ``text`` the dialogue knows is a value of the records ``entities`` name."""
        if not entities:
            return False
        held = {str(f.value).upper() for f in self.ev.about(entities) if f.kind == "id"}
        return all(t.rstrip("-_").lstrip("#").upper() in held for t in _ID_TOKEN.findall(text)
                   if (self._tokens.get(t) or self._token(t))[2])  # each token's reading, as _read keeps it

    def _token(self, t: str) -> tuple[str, str | None, bool]:
        n = t.rstrip("-_").lstrip("#").upper()
        body = t[1:] if t[:1] == "#" else t
        found = self._tokens[t] = (n if n in self.ev.known_entities else "", body.upper() if len(body) >= 3 else None,
                                   n in self.ev.ids)
        return found

    def _heading(self, s: int) -> list[str]:
        return heading(self.text, s, self._entities, self._walks)

    def _naming(self, claim: Claim, s: int, e: int) -> set[str]:
        cell = table_cell(self.text, claim.start, claim.end)
        if cell is not None:  # a table row: the value's own cell and its column's header name it
            lo, hi, header = cell
            return set(header) | context_words(self.text, claim, bounds=(max(lo, self._prev_end), hi))
        lo = max(0, claim.start - _LINE_READ)  # the line is looked for no further back than it is read
        head = self.text[max(self.text.rfind("\n", lo, claim.start) + 1, lo):claim.start]
        label = key_words(_label(head))
        return set(label) | context_words(self.text, claim, bounds=(max(s, self._prev_end), self._clause_end(claim, s, e)))

    def _clause_end(self, claim: Claim, s: int, e: int) -> int:
        """Words before an earlier value name that one; after this one, up to the next value or a clause mark, this one."""
        starts = self._all_starts or self._starts.get((s, e))
        if starts is None:  # a streamed sentence: its own values
            starts = self._starts[(s, e)] = [c.start + s for c in find_claims(self.text[s:e])]
        at = bisect_left(starts, claim.end)
        nxt = min(starts[at], e) if at < len(starts) else e
        mark = _CLAUSE_MARK.search(self.text, claim.end, nxt) if nxt < e else None
        return mark.start() if mark else nxt

    def _names_item(self, entities: list[str], s: int, e: int) -> bool:
        """The sentence names one of the record's id-less list items (an order's "Vacuum Cleaner")."""
        if not entities:
            return False
        low = self.text[s:e].lower()
        return any(str(f.value).lower() in low for f in self.ev.about(entities)
                   if f.anonymous and f.kind == "name" and "name" in f.key)

    def _names_other(self, claim: Claim, named: set[str]) -> bool:
        return any(f.kind == claim.kind and f.key & named for f in self.ev.facts if f.source in FACT_SOURCES)

    @staticmethod
    def _best(cands: list[Fact], named: set[str], near: set[str]) -> list[Fact]:
        """The facts whose key the words around the value name best (the words right before it count
        twice). Within one record, fewest words left over breaks a tie ("Economy Price" is
        prices.economy, not prices.basic_economy); across records (the old reservation and a new
        search) a tie stays a tie."""
        scored = [(len(named & f.key) + len(near & f.key), f) for f in cands]
        best = max(score for score, _ in scored)
        if best == 0:
            return []
        top = [f for score, f in scored if score == best]
        if len({(f.turn, f.entities[:1]) for f in top}) > 1:
            return top
        fewest = min(len(f.key - named) for f in top)
        return [f for f in top if len(f.key - named) == fewest]

    def _typo(self, value: str) -> str | None:
        if value in self._typos:
            return self._typos[value] or None
        fix = None
        if value not in self.ev.ids and any(ch.isdigit() for ch in value):
            # the value with two neighbours swapped, each looked up (not every tool id compared with it)
            near = {w for w in swaps(value) if w in self._tool_ids}
            fix = next(iter(near)) if len(near) == 1 else None
        self._typos[value] = fix or ""
        return fix
