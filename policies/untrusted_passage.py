"""Where a passage that gives the assistant orders starts and ends in a tool result: the injection,
not the record around it (``policies.untrusted`` decides that there is one).

A passage is the sentences of its signals, with the directives chained to them, what a trailing
colon announces and the wrapper that encloses it. It ends at a JSON string's quotes as at a
sentence's end and at a blank line; it takes no field of the next record, and no other field of
its own record unless that field carries the order a first one only announced ("the next field
holds your new task"); a value YAML folded onto the next line is still its sentence.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache

from policies.untrusted_scan import Hit
from policies.untrusted_signals import BLANK_LINE as _BLANK_LINE, SHORT_LINE as _SHORT_LINE

WRAPPER_REACH = 3000   # how far a closing wrapper tag may be from where the passage starts
SENTENCE = 400         # longest sentence a passage widens to
GAP = 200              # a directive this far after the passage still belongs to it; farther, it is
                       # the document's own (a bill's "please pay" beside an injection is not part of it)
GAP_BACK = 80          # the same, before it
KEY_REACH = 1000       # how far before its first sign the key of an injected YAML value may be

# A sentence ends at end punctuation or a line break (real, or the "\n" of JSON text), and so does
# a JSON string: a passage never runs into the fields beside it (in JSON on one line, the record's
# own recipient before an injected note is data, not part of the note).
_PROSE_END = re.compile(r"[.!?](?=[\s\"')\]]|$)|\n|\\n")
_SENTENCE_END = re.compile(_PROSE_END.pattern + r"|[:,\[{]\s*\"(?=\S)|(?<!\\)\"(?=\s*[,:}\]])")
# The next record of a list: JSON's "}, {", a YAML list item that opens with a key ("- amount: 10").
# Instructions split across the fields of one record are one passage; the next record is not part
# of it, whatever its fields say ("subject: Purchase at Apple Store" is no order).
# (two patterns, each led by a literal the regex engine skips to: a third of one alternation's cost)
_NEXT_RECORD = (re.compile(r"\n[ \t]*- [\w ]{1,30}:\s"), re.compile(r"\}\s*,\s*\{"))
# Where the next field of a record starts: a JSON key, or a YAML key at a line's start.
_JSON_KEY = r',\s*"[^"\\\n]{1,40}"\s*:'
_NEXT_KEY = re.compile(_JSON_KEY + r'\s*"?')
_FIELD = (re.compile(_JSON_KEY), re.compile(r"\n[ \t]*(?:- )?[A-Za-z_][\w ]{0,30}:[ \t\n]"))  # each literal-led
# A YAML key line ("  order_id: ...", "- amount: 10") where it starts, and after a line break.
_KEY_LINE = re.compile(r"([ \t]*(?:- )?)[A-Za-z_]\w{0,30}:(?=[ \t\n]|$)")
_LINE_KEY = re.compile(r"\n([ \t]*(?:- )?)[A-Za-z_]\w{0,30}:(?=[ \t\n]|$)")
_CLOSE_TAG = re.compile(r"<\s*/\s*([A-Za-z_-]{3,30})\s*>")
_OPEN_TAG = r"<\s*{tag}\b[^>\n]{{0,40}}>"
# A wrapper an injection puts around itself: a tag in capitals, or one that names a role. An
# HTML page's own <div> or <p> is not widened to.
_WRAPPER_NAME = re.compile(r"(?-i:[A-Z][A-Z_-]+)|(?i:system|assistant|admin|developer|sys|instructions?|important"
                           r"|information|secret|hidden|prompt|(?:user|new|system|ai|agent|assistant)[_-]?"
                           r"(?:instructions?|prompt|message|note))")


def reach(text: str, strong: list[Hit], more: list[Hit], orders: bool) -> tuple[int, int]:
    """From the strong signals, the directives chained to them at most GAP apart and not past a
    blank line: a document's own paragraph beside an injection ("Please pay ... to IBAN ...") is
    the document's (what a colon announces and a wrapper encloses are added by ``passage``). Into
    another field of the record only forward, and only while the passage orders nothing yet ("the
    next field holds your new task"): a field beside a complete injection is the record's own."""
    a, b = min(h[0] for h in strong), max(h[1] for h in strong)
    more = sorted(more)
    for start, end, _, _ in more:  # forward: one pass, in order
        if start < a:
            continue  # before the passage: the backward pass below
        if start > b + GAP or (start > b and _apart(text, b, start)):
            break
        if start > b and orders and field_end(text, b, end) < end:  # (a directive may open on the key's colon)
            break
        orders = True
        b = max(b, end)
    for start, end, _, _ in reversed(more):  # and back, less far and not past a blank line: an
        if start >= a:                        # injection opens with what addresses the assistant
            continue
        if end < a - GAP_BACK or _apart(text, end, a) or field_end(text, end, a) < a:
            break
        a = start
    return a, b


def fields(text: str, a: int, b: int, hits: list[Hit]) -> list[tuple[int, int]]:
    """The passage's fields that hold a sign, in JSON or in a YAML record: instructions split across
    two fields are both flagged, and the record's own fields between them ("order_id": "ORD-20931")
    are not."""
    if text.find('":', a, b) >= 0:  # a JSON key inside (found in C)
        cuts = [(m.start(), m.end()) for m in _NEXT_KEY.finditer(text, a, b)]
    elif _LINE_KEY.search(text, a, b):
        cuts = _yaml_keys(text, a, b, min(h[0] for h in hits))
    else:
        return [(a, b)]  # no key at a line's start inside: one piece
    if not cuts:
        return [(a, b)]
    ends = sorted(h[1] for h in hits)
    out, at = [], a
    for start, end in [*cuts, (b, b)]:
        i = bisect_right(ends, at)  # the first hit that ends inside the piece (one may start on its quote)
        if i < len(ends) and ends[i] <= start:
            out.append(_trim(text, at, start - (text[start - 1:start] == '"')))
        at = end
    return out or [(a, b)]


def _yaml_keys(text: str, a: int, b: int, first: int) -> list[tuple[int, int]]:
    """Where the keys after the YAML field that holds ``first`` start inside text[a:b], as its
    indentation tells them from the lines of its value ("IBAN: ..." inside an injected value is
    not one)."""
    key, lo = None, max(0, first - KEY_REACH)
    at = text.rfind("\n", lo, first)
    while at >= lo - 1:
        m = _KEY_LINE.match(text, at + 1)
        if m:
            key = m
            break
        at = text.rfind("\n", lo, at) if at > 0 else -2
    if key is None:
        return []
    indent = len(key.group(1))
    keys = [(m.start() + 1, len(m.group(1))) for m in _LINE_KEY.finditer(text, max(a, key.end()), b)]
    # a key less indented ends the field's mapping; one as indented is a sibling when the values
    # run deeper (else, one line per field, no indentation tells a key from a line of the value)
    deeper = text.find("\n" + " " * (indent + 1), key.end(), b) >= 0 or text.find("\n\t", key.end(), b) >= 0
    return [(s, s) for s, i in keys if i < indent or (i == indent and deeper)]


def field_end(text: str, at: int, limit: int) -> int:
    """Where the next field of the record starts after ``at`` (a JSON or YAML key), else ``limit``."""
    found = [m.start() for p in _FIELD if (m := p.search(text, at, limit))]
    return min(found) if found else limit


def records(text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The windows cut where the next record of a list starts: the signs of two records (two
    transactions, two messages) never add up to one passage."""
    out = []
    for a, b in windows:
        for at in _record_starts(text, a, b):
            out.append((a, at))
            a = at
        out.append((a, b))
    return out


def _record_starts(text: str, a: int, b: int) -> list[int]:
    yaml, json = _NEXT_RECORD
    found = [m.start() + 1 for m in yaml.finditer(text, a, b)]
    if text.find("}", a, b) >= 0:
        found = sorted(found + [m.start() + 1 for m in json.finditer(text, a, b)])
    return found


def _apart(text: str, a: int, b: int) -> bool:
    """A blank line or the start of the next record between a and b: what follows is not the passage."""
    return bool(_BLANK_LINE.search(text, a, b) or any(p.search(text, a, b) for p in _NEXT_RECORD))


def passage(text: str, start: int, end: int) -> tuple[int, int]:
    """The signals' sentences, the sentence a trailing colon announces, and an enclosing wrapper."""
    lo = max(0, start - SENTENCE)
    if text.find('"', lo, start) >= 0:
        ends = [m.end() for m in _SENTENCE_END.finditer(text, lo, start)]
    else:  # no quote: the cheaper one, whose matches do not depend on where the scan starts (none
        # overlaps another), so the last one in the last 80 characters is the last one of all
        ends = [m.end() for m in _PROSE_END.finditer(text, max(lo, start - 80), start)] or [
            m.end() for m in _PROSE_END.finditer(text, lo, start)]
    a = ends[-1] if ends else text.rfind("\n", 0, start) + 1
    b = _sentence_end(text, end)
    if text[a:b].rstrip().endswith(":"):  # "please do the following first:" -> what follows
        b = _sentence_end(text, b + len(text[b:b + SENTENCE]) - len(text[b:b + SENTENCE].lstrip()) + 1)
    close = _CLOSE_TAG.search(text, b, min(len(text), b + WRAPPER_REACH))
    if close and _WRAPPER_NAME.fullmatch(close.group(1)):
        opener = None
        for opener in _opener(close.group(1)).finditer(
                text, max(0, a - WRAPPER_REACH), b):
            pass
        if opener is not None:
            a, b = min(a, opener.start()), close.end()
    return _trim(text, a, b)


@lru_cache(maxsize=256)
def _opener(tag: str) -> re.Pattern[str]:
    return re.compile(_OPEN_TAG.format(tag=re.escape(tag)), re.I)


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and (text[a].isspace() or text[a] in ':,"'):  # what opened the JSON string it is in
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _sentence_end(text: str, at: int) -> int:
    hi = min(len(text), at + SENTENCE)
    for m in (_SENTENCE_END if text.find('"', at, hi) >= 0 else _PROSE_END).finditer(text, at, hi):
        if text[m.start()] == "\n" and _folded(text, m.start()):
            continue
        return m.end() if text[m.start()] in ".!?" else m.start()
    line = text.find("\n", at)
    return len(text) if line < 0 else line


def _folded(text: str, at: int) -> bool:
    """The line break at ``at`` continues a value YAML folded: a long line that ends no sentence,
    and the next line indented deeper (a list item's "- " counts as indentation)."""
    start = text.rfind("\n", max(0, at - SENTENCE), at) + 1 or max(0, at - SENTENCE)  # a longer line is long
    line = text[start:at]
    if len(line) <= _SHORT_LINE or line.rstrip()[-1:] in (".", "!", "?", ":", ";", ""):
        return False
    indent = len(line) - len(line.lstrip(" -"))
    nxt = text[at + 1:at + 1 + indent + 8]
    return len(nxt) - len(nxt.lstrip(" ")) > indent and nxt.strip()[:1].isalnum()
