"""Where the signals of ``policies.untrusted_signals`` occur in a text: the scanning half of
``policies.untrusted`` (which decides from them whether a passage gives the assistant orders).

Linear in the text: the words of the text are read once, as a set, and one scan finds the marks
(``<|``, ``##``, ...); a pattern runs only around the places of its keys, and only when the other
words it needs are in the text, so most tool results cost those two passes and nothing more.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

from policies.untrusted_signals import BULLET as _BULLET, IMPERATIVE as _IMPERATIVE, IMPERATIVE_AFTER as _IMPERATIVE_AFTER
from policies.untrusted_signals import MARKS as _MARKS, SHORT_LINE as _SHORT_LINE, STRONG as _STRONG, WEAK as _WEAK
from policies.untrusted_signals import WORD_BYTES as _WORD_BYTES

MAX_HITS = 200         # signals read per text: a text made of nothing else is flagged long before

# Patterns run on the lowercased text without re.I (a third faster), but for the few that read
# case themselves ("(?-i:": a "System:" line), which run on the text as written.
_CASED = "(?-i:"
_QUOTES = set("'\"‘’“”")
_STRONG_PATTERNS = [re.compile(s.pattern, re.I) if _CASED in s.pattern else re.compile(s.pattern) for s in _STRONG]
_WEAK_PATTERNS = [re.compile(s.pattern) for s in _WEAK]
_HOLDS = {id(p): re.compile(s.holds) for s, p in zip(_STRONG, _STRONG_PATTERNS) if s.holds}
_READS_CASE = {id(p) for p in _STRONG_PATTERNS if _CASED in p.pattern}
_AI_WORD = re.compile(r"ai(?![a-z])")
_NAME_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_ESCAPES = ("\\n", "\\t")  # JSON's line break and tab: the letter after them starts a word
# "an attack tells the model to ignore ...", "tricks the assistant into ignoring": what someone
# else makes a model do is told about, not ordered (an order says "ignore", "you must ignore").
_REPORTED = re.compile(r"\b(?:tell|ask|instruct|trick|get|make|convince|persuade|cause|lead|force|want)(?:s|ed|ing)?"
                       r"\s+(?:(?!you\b)[\w'-]+\s+){0,4}(?:to|into)\s+$")
_LABEL_END = ("\"", "'", ":")  # after a verb: the word was a JSON or YAML key, or a one-word value
Hit = tuple[int, int, str, int]  # start, end, kind, weight


def _keyed(table: list) -> dict[str, list[int]]:
    keys: dict[str, list[int]] = {}
    for i, signal in enumerate(table):
        for word in signal.keys:
            keys.setdefault(word, []).append(i)
    return keys


_STRONG_KEYS = _keyed(_STRONG)
STRONG_KINDS = {s.kind for s in _STRONG}
_STRONG_WORDS = {k.encode(): k for k in _STRONG_KEYS if k.isalpha()}
_STRONG_WORD_SET = frozenset(_STRONG_WORDS)  # (a set with a set: the smaller one is walked)
_STRONG_KEY_SET = frozenset(_STRONG_KEYS)
_NEEDS = [frozenset(w.encode() for w in s.needs) for s in _STRONG]
_WEAK_KEYS = _keyed(_WEAK)


def lower(text: str) -> str:
    low = text.lower()
    # A few letters lower to two characters ("İ"): lower ASCII only, so positions stay exact.
    return low if len(low) == len(text) else text.translate(_ASCII_LOWER)


def _scan(text: str, low: str, table: list, patterns: list[re.Pattern[str]], keys: dict[str, list[int]],
          lo: int, hi: int, present: Iterable[str] | None = None, runnable: set[int] | None = None) -> list[Hit]:
    """The table's matches in text[lo:hi]: each pattern runs only around the places of its keys
    (``present``: the keys known to occur; else each key is looked for), and only the ``runnable``
    ones (whose other needed words the text holds)."""
    near: dict[int, list[tuple[int, int]]] = {}  # pattern -> stretches of text around its keys
    for key in (keys if present is None else present):
        which = keys[key] if runnable is None else [i for i in keys[key] if i in runnable]
        if not which:
            continue
        at = low.find(key, lo, hi)
        if at < 0:
            continue
        places = _positions(low, key, at, hi)
        size = len(key)
        for i in which:
            before, after = table[i].reach
            after += size
            stretches = near.setdefault(i, [])
            for at in places:
                a, b = at - before, at + after
                stretches.append((a if a > lo else lo, b if b < hi else hi))
    found: dict[tuple[int, int], Hit] = {}
    for i, stretches in near.items():
        kind, weight = table[i].kind, table[i].weight
        pattern = patterns[i]
        source = text if id(pattern) in _READS_CASE else low
        holds = _HOLDS.get(id(pattern))
        for a, b in (merge(stretches) if len(stretches) > 1 else stretches):
            if holds is not None and holds.search(source, a, b) is None:
                continue  # what every match holds is not there: the pattern cannot match
            for m in pattern.finditer(source, a, b):
                s, e = m.span()
                if s and low[s].isalpha() and low[s - 1].isalnum() and low[s - 2:s] not in _ESCAPES:
                    continue  # the patterns leave out a leading \b (it costs a regex its fast skip)
                if kind == "override" and (low[s - 1:s] in _QUOTES and low[e:e + 1] in _QUOTES
                                           or _reported(low, s)):
                    continue  # quoted, or reported ("tells the model to ignore ..."): a text about injections
                if (s, e) not in found:
                    found[s, e] = (s, e if e > s else s + 1, kind, weight)
    return sorted(found.values()) if len(found) > 1 else list(found.values())


def _reported(low: str, s: int) -> bool:
    """What comes before ``s`` reports an order (``_REPORTED``); it ends in "to" and a space, or it cannot."""
    before = low[max(0, s - 60):s]
    bare = before.rstrip()
    return len(bare) < len(before) and bare.endswith("to") and _REPORTED.search(low, max(0, s - 60), s) is not None


def _in_word(low: str, at: int) -> bool:
    """``at`` continues a word: a letter or digit before it, but for the "n" of a JSON "\\n"."""
    return at > 0 and low[at - 1].isalnum() and low[at - 2:at] not in _ESCAPES


def _positions(low: str, key: str, first: int, hi: int) -> list[int]:
    """Where ``key`` occurs from ``first`` (at most MAX_HITS places)."""
    if key != "ai":
        out = [first]
        size = len(key)
        last = first
        at = low.find(key, first + size, hi)
        while at >= 0 and len(out) < MAX_HITS:
            if at - last > size:  # a key right after the last one ("####") adds no place
                out.append(at)
                last = at
            at = low.find(key, at + size, hi)
        return out
    out: list[int] = []
    # only as a word: not the "ai" of "email" or "paid"
    places = (m.start() for m in _AI_WORD.finditer(low, first, hi) if not _in_word(low, m.start()))
    for at in places:
        if not out or at - out[-1] > len(key):
            out.append(at)
            if len(out) >= MAX_HITS:
                break
    return out


def imperatives(low: str, lo: int, hi: int) -> list[Hit]:
    """Imperatives at a sentence start in low[lo:hi]: one regex pass that skips, in C, every place
    that is not a sentence's end. A line break starts a sentence after end punctuation, a blank or
    short line (a heading, "<|im_start|>system") or before a bullet, not inside a paragraph: an email
    wrapped at 72 columns puts any word at a line's start ("...adjust your standing / order it")."""
    out: list[Hit] = []
    first = _IMPERATIVE.match(low, lo, hi) if lo == 0 else None  # elsewhere a start follows a mark
    if first and low[first.end():first.end() + 1] not in _LABEL_END:
        out.append((lo, first.end(), "directive", 1))
    for m in _IMPERATIVE_AFTER.finditer(low, lo, hi):
        at = m.start()
        if low[m.end():m.end() + 1] in _LABEL_END:
            continue  # the verb is the whole string or a key ("message": ..., send: ...), not an order
        if low[at] == "\n" and not _BULLET.match(low, at + 1, hi):
            j = at - 1
            while j >= lo and low[j] in " \t":
                j -= 1
            if j >= lo and low[j] not in ".!?:;>\n" and j - low.rfind("\n", lo, j) > _SHORT_LINE:
                continue  # a long line that does not end a sentence: the text is wrapped, not new
        out.append((m.start(1), m.end(), "directive", 1))
        if len(out) >= MAX_HITS:
            break
    return out


def strong(text: str, low: str, tools: Iterable[str] = ()) -> list[Hit]:
    # JSON text writes a line break as "\\n": "\\nUser:" holds the word "user", not "nuser"
    plain = low.replace("\\n", "  ").replace("\\t", "  ") if "\\" in low else low
    words = set(plain.encode("utf-8", "surrogatepass").translate(_WORD_BYTES).split())
    named = _tools_named(low, words, tools)
    present = [_STRONG_WORDS[w] for w in words & _STRONG_WORD_SET]
    if "<" in low or "#" in low or "!" in low or "[" in low:  # (a mark needs one of these)
        present += set(_MARKS.findall(low)) & _STRONG_KEY_SET
    if not present:  # most tool results: the words of the text and one scan for marks, in C
        return named
    runnable = {i for i in _keyed_by(present) if not _NEEDS[i] or not _NEEDS[i].isdisjoint(words)}
    found = _scan(text, low, _STRONG, _STRONG_PATTERNS, _STRONG_KEYS, 0, len(text), present, runnable)
    return sorted(found + named) if named else found


def _keyed_by(present: list[str]) -> set[int]:
    return {i for key in present for i in _STRONG_KEYS[key]}


def _tools_named(low: str, words: set[bytes], tools: Iterable[str]) -> list[Hit]:
    """The client's own tools named inside data ("call send_money"): weight 2, so it counts beside
    another sign only (an API reference names its functions too). Only names of two words or more
    ("send_money", "getBalance"): "search" or "post" alone is a word, not a name."""
    out: list[Hit] = []
    given = tools if type(tools) is tuple else tuple(tools)
    try:  # a tuple of names (as the proxy and the bench pass them) is the cache's key as it is
        names = _names(given)
    except TypeError:  # something unhashable among them
        names = _names(tuple(t for t in given if isinstance(t, str)))
    for key, parts in names:
        if not parts <= words:
            continue  # a part missing from the words: the name cannot be there (a set lookup each)
        at = low.find(key)
        while at >= 0 and len(out) < MAX_HITS:
            if not _in_word(low, at) and not low[at + len(key):at + len(key) + 1].isalnum():
                out.append((at, at + len(key), "tool", 2))
            at = low.find(key, at + len(key))
    return out


def weak(text: str, low: str, lo: int, hi: int) -> list[Hit]:
    """The context signals (``WEAK``: "you must", urgency, "the user", exfiltration) in text[lo:hi]."""
    return _scan(text, low, _WEAK, _WEAK_PATTERNS, _WEAK_KEYS, lo, hi)


def names_any(low: str, tools: tuple) -> bool:
    """Whether the text (lowered) may name one of the tools (``strong`` reads a ``"tool"`` sign only
    where this is True): a name of two words or more occurs in it."""
    try:
        names = _names(tools)
    except TypeError:  # something unhashable among them
        names = _names(tuple(t for t in tools if isinstance(t, str)))
    return any(key in low for key, _ in names)


@lru_cache(maxsize=256)
def _names(tools: tuple[str, ...]) -> list[tuple[str, frozenset[bytes]]]:
    """Each tool name of two words or more, lowercased, with its words: one parse per tool list."""
    out = []
    for name in tools:
        if not isinstance(name, str):
            continue
        parts = _NAME_PARTS.findall(name)
        if len(parts) >= 2:
            out.append((name.lower(), frozenset(p.lower().encode() for p in parts if not p.isdigit())))
    return out

def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
