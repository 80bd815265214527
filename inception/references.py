"""The vague-reference detector: "cancel it" when the dialogue holds several candidates of that kind.

The candidates are the identifiers, each with a kind, that the earlier messages speak of
(``inception.candidates``). A *referent* is a phrase of the user's turn that points at one entity:
a noun with a determiner ("the order", "my reservation", "that flight"), "this one"/"that one",
or "it" and "that" as the object of an action ("cancel it"; "that" only after a verb whose object
is a thing: "cancel that", not "confirm that" nor "make that change"). "it" takes the kind of a noun before it in the turn;
an "it" followed by where it is acted on ("update it on my pending order") is no referent (the order is not "it").
The rivals of a referent are the candidates of its kind in the newest message that speaks of that
kind. It alarms only when there are two or more and nothing singles one out; it stays quiet when:

- the user names an id (one not known as another kind) or picks by position or option number;
- the user answers yes to the agent's last message, or acts on the one thing it proposed;
- the newest message of that kind (or the agent's last sentence) speaks of one: the focus;
- the rivals are parts of one thing (the legs of one reservation: "change the flight");
- a qualifier or a word of the turn fits exactly one ("the reservation from ATL"; "on Tuesday" fits
  the one dated 2026-12-08), or a qualifier fits none of what is known of them (it may still pick one: unsure);
- a bare "it" could be of several kinds (a reservation or its flights: unsure, precision first).

Cost is bounded and linear: of the user's turn its head and tail (``USER_CHARS`` in all); the
earlier messages within the caps of ``inception.candidates`` (what is past a cap is not read).
"""
from __future__ import annotations

import itertools
import re
from collections import OrderedDict

from inception.base import Detection
from inception.candidates import (DATE_WORDS, KINDS, NOUNS, OTHER, SHAPE, STOP, content_words, date_words,
                                  ids_in_text, kind_of)
from inception.context import Context, Said, read_context
from inception.dialogue import Dialogue
from policies.messages import AssistantMessage, UserMessage, text_of

USER_CHARS = 2_000
MAX_RIVALS = 50         # fitted against the turn's words
MAX_PRONOUNS = 12       # pronouns of the turn weighed as referents
TURNS = 256             # user turns whose finding is remembered (a tool loop re-sends its turn each step)

# "reservation HATHAT", "booking ID: K2BX9Q": a code after its noun, even one without digits.
NAMED = re.compile(rf"\b({NOUNS})\s+(?:id|number|code)?[\s:#*]*(?-i:[A-Z0-9]{{5,10}})\b", re.I)
# Words are matched as a set, not by a regex alternation: that costs ~250 ns a character of a long turn.
VERBS = frozenset("""cancel return refund change modify update exchange delete remove track reschedule upgrade
book downgrade ship reorder resend check pause renew move postpone fix rebook switch status where""".split())
# Verbs whose object is a thing, never a statement: after them a bare "that" is an entity ("cancel that"),
# after others it is usually what was just said ("could you confirm that?", "double-check that for me").
THING_VERBS = frozenset("""cancel return refund exchange delete track reschedule book rebook ship reorder resend
pause renew postpone""".split())
# "the order", "that flight", "my flight reservation" (the head is the last noun); not "the reservation ID",
# "the flight change" or "the order status" (a noun that modifies another is no referent).
# "the order numbers", "my booking codes": a mention about ids, not of one thing ("I don't remember the
# order numbers" refers to no order).
NOUN_REF = re.compile(rf"\b(?:the|that|this|my)\s+(?:same\s+)?(?:(?:{NOUNS})\s+)?({NOUNS})\b(?!s\b|-|\s+(?:id|ids|"
                      rf"numbers?|codes?|class|details|change|changes|status|date|time|price|cost|fees?|history|info|"
                      rf"information|confirmation|type|policy|references?|names?|list)\b)", re.I)
# An antecedent for "it" in the same sentence: a thing the user names with a determiner ("For the
# bicycle, I'd like to exchange it"), which is not itself one of the kinds weighed here.
ANTECEDENT = re.compile(r"\b(?:the|my|this|your|our)\s+(?:[a-z-]+\s+)?([a-z][a-z-]{2,})\b", re.I)
_NOT_THINGS = frozenset("""one ones time times day days week month year moment way case reason same other first
last next end rest option options issue problem money amount refund""".split())
_SENTENCE_START = re.compile(r"[.!?;\n]\s*")
# (one whitespace before the conjunction: "\s+and" backtracks over a long run of blanks, quadratic)
_CLAUSE = re.compile(r"[,;.!?\n]\s+|\s(?:and|but|while|whereas)\s", re.I)
NOUN_ANY = re.compile(rf"\b({NOUNS})s?\b", re.I)
PRONOUN = re.compile(r"\b(?:it|that|this)\b(?:\s+one\b)?", re.I)
_AFTER_IT = re.compile(r"'s|\s+(?:is|was|would|will)\b", re.I)
# "update it on my pending order", "add it to the order": the noun phrase after "it" names where "it" is
# acted on, so "it" is something else (an address, an item), not a thing of that kind.
_IT_AT = re.compile(rf"\s+(?:on|in|to|for|from|of|with|under)\s+(?:the|my|this|that|your|our)\s+"
                    rf"(?:[a-z-]+\s+){{0,2}}(?:{NOUNS})\b", re.I)
_AFTER_THAT = re.compile(r"\s*(?:[.,!?;]|$|(?:for|please|now|too|instead|as)\b)", re.I)
_WORD_BEFORE = re.compile(r"([a-z]+)\W{0,3}$", re.I)
# What makes a noun phrase pick one ("the flight from Atlanta", "the order with the lamp"); "to my card" does not.
QUALIFIER = re.compile(r"\s*(?:from|on|at|with|departing|leaving|arriving|returning|going|that|which|booked|"
                       r"scheduled|between|(?:to|for)\s+(?-i:[A-Z][a-z]))\b", re.I)
POSITION = frozenset("""first second third fourth last latest newest oldest earlier later older newer cheaper
cheapest faster fastest shorter both all every each""".split())
# The agent asked the user to choose, or put one thing to the user for a yes.
WHICH = re.compile(r"\b(?:which|either|one of (?:these|those|them|the))\b[^?]{0,200}\?", re.I)
PROPOSAL = re.compile(r"\b(?:would you like (?:me )?to (?:proceed|go ahead|book|cancel|make|confirm|change|modify)|"
                      r"shall I|should I (?:proceed|go ahead)|do you want me to|please confirm|"
                      r"confirm (?:if|that|whether)|"
                      r"(?:can|may) I proceed|ready to proceed)\b", re.I)
PICK = re.compile(r"\b(?:most recent|other one|(?:option|number|choice|no\.?)\s*#?\d)", re.I)
YES = re.compile(r"^\W*(?:yes|yeah|yep|yup|sure|ok|okay|correct|confirm(?:ed)?|absolutely|definitely|please do|"
                 r"go ahead|(?:please )?proceed|sounds good|that works|perfect|great|let'?s do)\b", re.I)


def _antecedent(request: str, at: int) -> bool:
    """The sentence before ``at`` names a thing that is not one of the weighed kinds (a product: "the
    bicycle", "my blue backpack"): "it" is that thing."""
    start = 0
    for m in _SENTENCE_START.finditer(request, 0, at):
        start = m.end()
    return any(kind_of(n.group(1)) is None and n.group(1).lower() not in STOP | _NOT_THINGS
               for n in ANTECEDENT.finditer(request, start, at))


def _one_fits(asked: set[str], sets: list[set[str]]) -> bool:
    """A word asked is found in the words of exactly one rival (less the words they all share)."""
    shared = set.intersection(*sets) if sets else set()
    return sum(1 for w in sets if asked & (w - shared)) == 1


class VagueReference:
    name = "vague_reference"

    def __init__(self) -> None:
        # What follows the referents depends only on the dialogue up to the user's message, which
        # every request of the turn's tool loop sends again: its finding, by the content of that prefix.
        self._turns: OrderedDict[bytes, list[Detection]] = OrderedDict()

    def detect(self, d: Dialogue) -> list[Detection]:
        text = d.last_user
        # The head and the tail of a long turn: the ask is usually at one end.
        request = text if len(text) <= USER_CHARS else text[:USER_CHARS // 2] + " … " + text[-USER_CHARS // 2:]
        words = set(re.findall(r"[a-z]+", request.lower()))
        if not request or not words & VERBS or words & POSITION or PICK.search(request):
            return []
        refs = self._referents(request)
        if not refs:
            return []
        key = d.turn_key()
        found = self._turns.get(key)
        if found is None:
            found = self._weigh(d, request, refs)
        try:  # (each step atomic; a detector shared by threads may lose an entry, never fail)
            if key not in self._turns:
                self._turns[key] = found
                while len(self._turns) > TURNS:
                    self._turns.popitem(last=False)
            else:
                self._turns.move_to_end(key)
        except KeyError:
            pass
        return [f.model_copy() for f in found]

    def _weigh(self, d: Dialogue, request: str, refs: list[tuple[str, str | None, str]]) -> list[Detection]:
        said_last = self._last_agent_text(d)
        which = bool(WHICH.search(said_last))
        if YES.search(request) and not which:
            return []   # a reply to the agent's own proposal: "it" is what the agent proposed
        proposal = not which and bool(PROPOSAL.search(said_last[-400:]))
        ctx = read_context(d)
        named = None   # the ids the turn names (read once a referent has rivals)
        for phrase, kind, rest in refs:
            found = self._open(ctx, kind)
            if found is None:
                continue
            kind, ids, where = found
            if proposal and where is next((s for s in ctx.newest() if s.agent), None):
                continue   # the legs of the one thing the agent just proposed ("book it", "that flight")
            if named is None:
                named = ids_in_text(request, {c.ident: c.kind for s in ctx.said for c in s.cands}, {})
            if any(c.kind == kind or c.kind.startswith(SHAPE) for c in named) or any(
                    kind_of(n.group(1)) == kind for n in NAMED.finditer(request)):
                continue   # the user names one (an id not known as another kind)
            arounds = [ctx.around.get(i, "") for i in ids[:MAX_RIVALS]]
            if self._fits_one(request, rest, arounds):
                continue
            if phrase.lower() == "it" and self._last_exchange_fits(d, said_last, ids, arounds):
                continue   # the last exchange was about one of them ("my bicycle?" ... "return it")
            listed = ", ".join(sorted(ids)[:6]) + (" …" if len(ids) > 6 else "")
            what = "candidates" if kind.startswith(SHAPE) else f"{kind}s"
            return [Detection(type="ambiguous_request", subtype="vague_reference",
                              evidence=f'"{phrase}" in "{" ".join(request.split())[:120]}" could be any of '
                                       f'{len(ids)} {what}: {listed} (no id, option, yes or focus singles one out)')]
        return []

    @staticmethod
    def _referents(request: str) -> list[tuple[str, str | None, str]]:
        """(phrase, kind or None for a bare pronoun, what follows it)."""
        out = [(m.group(0), KINDS[m.group(1).lower()], request[m.end(): m.end() + 80])
               for m in NOUN_REF.finditer(request)]
        # The first MAX_PRONOUNS only: each reads the turn before it ("it it it ..." cost 0.25 s unbounded).
        for m in itertools.islice(PRONOUN.finditer(request), MAX_PRONOUNS):
            phrase = m.group(0)
            if phrase.lower() == "it" and _IT_AT.match(request, m.end()):
                continue   # "update it on my order": the order is where it is acted on, not what it is
            # "if my reservation can't be changed, could we cancel it": the antecedent of "it" is in the
            # turn; "this one" points at what the agent showed.
            before = [KINDS[n.group(1).lower()] for n in NOUN_ANY.finditer(request, 0, m.start())]
            if phrase.lower() == "it" and _antecedent(request, m.start()):
                continue   # "For the bicycle, I'd like to exchange it": the sentence says what "it" is
            if " " not in phrase:   # "that one" is a referent wherever it stands; "it" and "that" as an object
                verb = _WORD_BEFORE.search(request, max(0, m.start() - 24), m.start())
                verb = verb.group(1).lower() if verb else ""
                if phrase.lower() == "it":
                    if verb not in VERBS or _AFTER_IT.match(request, m.end()):
                        continue
                elif verb not in THING_VERBS or not _AFTER_THAT.match(request, m.end()):
                    continue
            out.append((phrase, before[-1] if before and phrase.lower() == "it" else None, ""))
        return out

    @staticmethod
    def _open(ctx: Context, kind: str | None) -> tuple[str, list[str], Said] | None:
        """The rivals a referent may point at: the candidates of its kind in the newest message that
        speaks of that kind (for a bare pronoun, of any kind), or None when that message is about
        one of them, they are all parts of one thing, or the kind of a bare pronoun is unsure."""
        for s in ctx.newest():
            of = [c for c in s.cands if c.kind != OTHER and (kind is None or c.kind == kind)]
            if not of:
                continue
            kinds = {c.kind for c in of}
            if len(kinds) != 1:
                return None   # "it" could be a reservation or one of its flights: unsure
            ids = list(dict.fromkeys(c.ident for c in of))
            if len(ids) < 2 or len(s.tail & set(ids)) == 1:
                return None   # in focus: the message (or the agent's last sentence) is about one
            owners = {ctx.owner.get(i) for i in ids}
            if len(owners) == 1 and None not in owners:
                return None   # the legs of one reservation: "change the flight" means that trip
            return kinds.pop(), ids, s
        return None

    @staticmethod
    def _fits_one(request: str, rest: str | None, arounds: list[str]) -> bool:
        """A word of the turn found around exactly one rival picks it. A qualifier of the noun that
        fits none ("the flight from Atlanta" when the candidates say ATL) may still pick one: unsure."""
        sets = [content_words(a) for a in arounds]
        qualifier = QUALIFIER.match(rest) if rest else None
        asked = content_words(rest if qualifier else request)
        if _one_fits(asked, sets):
            return True
        # "I can't make it on Tuesday": the weekday (or month) of a date the records write as 2026-12-08.
        # Only ever picks one: a day that fits several or none leaves the test below as it was.
        if asked & DATE_WORDS and _one_fits(asked, [w | date_words(a) for w, a in zip(sets, arounds)]):
            return True
        return bool(qualifier) and not (asked & set().union(*sets))

    @classmethod
    def _last_exchange_fits(cls, d: Dialogue, said_last: str, ids: list[str], arounds: list[str]) -> bool:
        """The user's previous message names what one rival is: by the rival's own values, or by the
        clause of the agent's answer that holds it alone ("Your bicycle is in order #W1, and order #W2 ...")."""
        # What the user asked about, less the kind nouns ("my reservations" names no one of them).
        asked = {w for w in content_words(cls._last_user_before(d)) if kind_of(w) is None}
        if not asked:
            return False
        clauses = [c for c in _CLAUSE.split(said_last) if c.strip()]
        own = []
        for i in ids[:MAX_RIVALS]:
            alone = [c for c in clauses if i in c and not any(j in c for j in ids if j != i)]
            own.append(" ".join(alone))
        return _one_fits(asked, [content_words(t) for t in arounds]) or (
            any(own) and _one_fits(asked, [content_words(t) for t in own]))

    @staticmethod
    def _last_user_before(d: Dialogue) -> str:
        """The user's previous message: with the agent's answer, the last exchange "it" may point into."""
        for m in reversed(d.messages[:d.turn_start]):
            if isinstance(m, UserMessage):
                return text_of(m)[:USER_CHARS]
        return ""

    @staticmethod
    def _last_agent_text(d: Dialogue) -> str:
        for m in reversed(d.messages[:d.turn_start]):
            text = text_of(m)[-2000:].strip() if isinstance(m, AssistantMessage) else ""
            if text:
                return text
        return ""
