"""What inception reads from a text is kept by that text, and reads the same as a fresh read."""
from __future__ import annotations

import json
import random
import re

from inception.candidates import ID, JSON_NODES, KINDS, NOUNS, _from_json, _mentions, _walk, ids_in_text, kind_of
from inception.memo import TextMemo


def test_a_memo_builds_once_per_text_and_is_bounded_by_characters():
    memo: TextMemo[int] = TextMemo(100)
    built = []
    build = lambda t: built.append(t) or len(t)  # noqa: E731
    assert memo.get("a" * 10, build) == 10 and memo.get("a" * 10, build) == 10 and built == ["a" * 10]
    for i in range(20):
        memo.get(str(i) * 10, build)
    assert sum(map(len, memo._data)) <= 100 and len(memo) <= 10
    memo.get("x" * 30, build)          # over a quarter of the bound: read each time, never kept
    memo.get("x" * 30, build)
    assert built.count("x" * 30) == 2


def _fresh(text: str, budget: list[int]):
    """The walk as it was before the memo: from what is left of the budget."""
    if budget[0] <= 0:
        return []
    out: list = []
    _walk(json.loads(text), None, None, out, budget)
    return [c for _, c in out]


def _record(rng: random.Random, depth: int):
    if depth > 3 or rng.random() < 0.2:
        return rng.choice(["W1001", "HAT002", "x", 5, None, ["A1B2C", "D3E4F"]])
    if rng.random() < 0.4:
        return [_record(rng, depth + 1) for _ in range(rng.randint(0, 6))]
    keys = ["order_id", "reservation_id", "flight_number", "orders", "user_id", "id", "items", "name", "legs"]
    return {k: _record(rng, depth + 1) for k in rng.sample(keys, rng.randint(1, 5))}


def test_a_remembered_json_walk_is_the_walk_from_any_budget():
    rng = random.Random(7)
    texts = [t for t in (json.dumps(_record(rng, 0)) for _ in range(200)) if t[0] in "{["]
    # more nodes than the whole budget: the ids past it are never read
    texts.append(json.dumps({"orders": [{"order_id": "W10001"}, *[[]] * 5000, {"order_id": "W10002"}]}))
    for text in texts:
        for left in sorted({JSON_NODES, 1, 2, 3, 5, 8, 13, 40, 700, 2999, 3001}):
            a, b = [left], [left]
            got = _from_json(text, a)
            want = _fresh(text, b)
            assert [(c.ident, c.kind, c.around, c.owner) for c in got] == \
                   [(c.ident, c.kind, c.around, c.owner) for c in want], (text[:80], left)
            assert (a[0] > 0) == (b[0] > 0) and (a[0] == b[0] or b[0] < 0), (text[:80], left, a, b)


def test_ids_in_text_reads_the_same_with_other_known_ids():
    text = "Orders #W1001 and #W1002, reservation ABCDE and NUMBER 12 for HAT002."
    first = ids_in_text(text, {}, {})
    again = ids_in_text(text, {"ABCDE": "order", "NUMBER": "item"}, {})
    assert [(c.ident, c.kind) for c in first] == [("W1001", "order"), ("W1002", "order"), ("HAT002", "shape:AAA999")]
    assert [(c.ident, c.kind) for c in again] == [("W1001", "order"), ("W1002", "order"), ("ABCDE", "order"),
                                                  ("NUMBER", "item"), ("HAT002", "shape:AAA999")]


# What MENTION means, read plainly: a code or a noun of a kind, not inside a word.
PLAIN = re.compile(rf"(?<![\w#-])(#?[A-Z0-9][A-Z0-9-]{{3,15}}|#\d{{4,}})(?![\w-])|(?i:\b({NOUNS})(?:s|es)?\b)")


def test_mentions_are_the_plain_patterns_matches():
    rng = random.Random(11)
    nouns = sorted(KINDS)
    parts = [*"aAsSiIkKoO#-_ 0123\n.\t", "ſ", "ı", "İ", "K", "é", "\u00a0", "٣", "\u2028", *nouns,
             *(n.upper() for n in nouns), *(n.title() for n in nouns), "es", "s", "W1001", "HAT123", "#12345"]
    texts = ["".join(rng.choice(parts) for _ in range(rng.randint(0, 12))) for _ in range(20_000)]
    texts += ["Orders #W1001 and #W1002: the reservation ABC123 (flight HAT002), item-level ids W-1-2-3-4."]
    for text in texts:
        want = [(m.start(), m.end(), True, kind_of(m.group(2)), False) if m.group(2) else
                (m.start(), m.end(), False, m.group(1).lstrip("#"), ID.fullmatch(m.group(1)) is not None)
                for m in PLAIN.finditer(text)]
        assert _mentions(text) == want, text


def test_the_last_sentence_is_the_last_piece_of_the_split():
    from inception.context import last_sentence

    rng = random.Random(2)
    parts = [*"ab.!?\n \t\r", "\u2028", "\xa0", "\x1c", "W1001", "x.y"]
    for _ in range(30_000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 15))).strip()
        pieces = [x for x in re.split(r"(?<=[.!?])\s+|\n+", text) if x.strip()]
        assert last_sentence(text) == (pieces[-1] if pieces else ""), repr(text)
