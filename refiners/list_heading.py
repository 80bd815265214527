"""A reply's layout as factuality reads it: the record a line of a list is about, read from the
lines that head it (a Markdown list under "Order #W123:", a field "Flight Number: HAT110" among its
siblings), and the cell of a Markdown table a value sits in, with its column's header."""
from __future__ import annotations

import re
from typing import Callable

from refiners.text import REACH, key_words

# Characters of a line read for the record it names: a reply written as one long line is not
# re-read from its start for every value in it (linear in the reply, as a stream is checked).
LINE_READ = 2 * REACH
_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


def heading(text: str, s: int, entities: Callable[[str], list[str]], walks: dict | None = None) -> list[str]:
    """The records (``entities`` of a piece of text) the list item holding ``s`` is about: the nearest
    line above, in the same paragraph, that heads it — less indented, or a heading that is not a list
    item, or a sibling field naming the id ("Flight Number: HAT110"). A sibling item about something
    else ends the search."""
    line_start = text.rfind("\n", 0, s) + 1
    own = text[max(line_start, s - LINE_READ):s]
    if own.strip():
        found = entities(own)  # earlier in the same line ("Your order A1 ... It arrives on ...")
        if found:
            return found
    if text[line_start:line_start + LINE_READ].lstrip().startswith("|"):
        # A table row: its rows are siblings, none heads another; its record is named above the table.
        top = _table_top(text, line_start)
        return _walk(text, top, lambda t: [] if t.lstrip().startswith("|") else entities(t), None)[0] if top else []
    if walks is None:
        return _walk(text, line_start, entities, None)[0]
    found = walks.get(line_start)
    if found is None:
        found = walks[line_start] = _walk(text, line_start, entities, walks)
    return found[0]


_STEPS = 12  # lines read up at most


def _walk(text: str, line_start: int, entities: Callable[[str], list[str]],
          walks: dict | None) -> tuple[list[str], int | None]:
    """(the records the nearest line above ``line_start`` heading it names, the step it was found at,
    None past the last). ``walks``, when given, holds the walks from lines above (by their start): a
    walk that reaches a sibling item naming nothing goes on as that item's own walk did, in the steps
    left (a list reply's lines do not each re-read the lines above the list)."""
    indent = _indent(text[line_start:line_start + LINE_READ].partition("\n")[0])
    end = line_start - 1
    for k in range(1, _STEPS + 1):
        if end < 0:
            return [], k
        start = text.rfind("\n", 0, end) + 1
        line = text[start:min(end, start + LINE_READ)]  # a heading names its record early
        end = start - 1
        if not line.strip():
            return [], k  # a blank line ends the paragraph
        found = entities(line)
        depth, item = _indent(line), bool(_ITEM.match(line))
        if depth < indent or (depth == indent and not item):
            return found, k  # the line that heads this one: its record, or none
        if depth == indent and found:
            # a sibling field that is the id itself ("Flight Number: HAT110"), not an item about it
            upper = line.upper()
            return (found if any(after_colon(upper, i) for i in found) else []), k
        if depth == indent and walks is not None and (got := walks.get(start)) is not None:
            rest, j = got
            return (rest, k + j) if j is not None and k + j <= _STEPS else ([], None)
    return [], None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def after_colon(line: str, ident: str) -> bool:
    r"""``ident`` is the value of a field on ``line`` (":", "**" of bold, spaces, "#", then it):
    ``re.search(r":\**\s*#?" + re.escape(ident), line)`` without a pattern per id to compile."""
    at = line.find(ident)
    while at >= 0:
        i = at - 1 if at and line[at - 1] == "#" else at
        while i and line[i - 1].isspace():
            i -= 1
        while i and line[i - 1] == "*":
            i -= 1
        if i and line[i - 1] == ":":
            return True
        at = line.find(ident, at + 1)
    return False


_LABEL_COLON = re.compile(r":(?=[\s*_]|$)")  # "Departure: 10:00": the colon of a label, not of a time


def label(head: str) -> str:
    """The label a value on this line follows ("Departure" in "- Departure: 10:00 PM"), when nothing
    with a digit (another value) stands between the label and the value; else ""."""
    parts = _LABEL_COLON.split(head)
    return parts[-2] if len(parts) >= 2 and not any(ch.isdigit() for ch in parts[-1]) else ""


_NOT_WORD = re.compile(r"[^\w\s]")
_TABLE_ROWS = 200  # rows read up for a table's header: a longer table's header is not looked for


def table_cell(text: str, start: int, end: int) -> tuple[int, int, frozenset[str]] | None:
    """Where the cell of the Markdown table row holding ``text[start:end]`` begins and ends, and the
    key words of its column's header ("Price/month" -> price, month); None off a table row. The
    other cells of the row name other values ("| 5 GB | $77 | $5.00/GB |": GB is not the price's)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    if not text[line_start:line_end].lstrip().startswith("|"):
        return None
    lo = text.rfind("|", line_start, start) + 1
    hi = text.find("|", end, line_end)
    hi = line_end if hi < 0 else hi
    column = text.count("|", line_start, start)
    top = _table_top(text, line_start)
    header = frozenset()
    if top != line_start:
        cells = text[top:text.find("\n", top)].split("|")
        if column < len(cells):
            header = key_words(_NOT_WORD.sub(" ", cells[column]))
    cells = text[line_start:lo].split("|")
    if len(cells) >= 3 and not any(ch.isdigit() for ch in cells[1]):
        # the row's first cell, a label ("| Per night | 95 € | 89,00 € |"), names its values too
        header = header | key_words(_NOT_WORD.sub(" ", cells[1]))
    return lo, hi, header


def _table_top(text: str, line_start: int) -> int:
    """The start of the first line (its header) of the table holding the line at ``line_start``."""
    top = line_start
    for _ in range(_TABLE_ROWS):
        if top <= 0:
            break
        above = text.rfind("\n", 0, top - 1) + 1
        if not text[above:top - 1].lstrip().startswith("|"):
            break
        top = above
    return top

