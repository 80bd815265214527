"""Checks that need no rule from the operator, only which tools are writes (the pack's ``tools``,
else the write verbs of ``policies.actions.WRITE_VERBS``). Each returns the evidence of a
violation, or None. Their precision on real trajectories is measured by bench/real_actions.py.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from inception.actions.facts import Facts, _TextMemo, parse_args
from inception.dialogue import CallRecord
from inception.tool_results import failure_in, transient_failure
from inception.actions.plans import ToolPlans

_ID_KEY = re.compile(r"(?:^|_)ids?$|[a-z]Ids?$", re.I)
_MIN_ID = 4  # shorter values ("1", "no") say too little to be judged
# A sentence saying an action is done: "I've cancelled", "has been added", "successfully booked".
_DONE = re.compile(
    r"\b(?:i\s+have|i'?ve|we\s+have|we'?ve|has\s+(?:now\s+)?been|have\s+(?:now\s+)?been|(?:was|were|is|are)\s+(?:now\s+)?"
    r"|successfully)\s+(?:successfully\s+)?"
    r"(?:cancel+ed|added|updated|upgraded|downgraded|booked|changed|modified|sent|issued|refunded|processed|transferred"
    r"|scheduled|created|deleted|removed|reserved|paid|submitted|placed|applied|credited)\b", re.I)
_NEGATED = re.compile(r"\b(?:not|n't|never|cannot|unable|once|after|if|when|until|before)\b|\?", re.I)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def unconfirmed_write(name: str, facts: Facts, tools: ToolPlans, confirmation: re.Pattern[str]) -> str | None:
    """A call the pack marks ``confirm: true`` with no yes in the user's turn right before it, nor
    an earlier yes that no write has used yet (the user said yes, the call failed, the agent asked
    which card: that yes still stands; once a write succeeded after it, it is spent)."""
    if not tools.of(name).confirm or confirmed(facts, tools, confirmation):
        return None
    said = " ".join(facts.last_user.split())[:160]
    return f"{name} needs the user's explicit yes; their last turn was: {said!r}" if said else \
        f"{name} needs the user's explicit yes; the user has said nothing yet"


def confirmed(facts: Facts, tools: ToolPlans, confirmation: re.Pattern[str]) -> bool:
    """Whether a yes of the user stands for the next write (whatever the write: read ahead of the
    draft by ``ActionChecker.prepare``, kept with the facts)."""
    key = ("confirmed", confirmation.pattern)
    found = facts.memo.get(key)
    if found is None:
        # the latest yes only: searched from the last turn back, most often found at once
        yes = next((at for text, at in zip(reversed(facts.user_texts), reversed(facts.user_at))
                    if _says_yes(confirmation.pattern, text)), None)
        found = facts.memo[key] = yes is not None and (yes == facts.turn_start or not any(
            c.result is not None and tools.is_write(c.name) and not failure_in(c.result)
            for c in _after(facts.calls, yes)))
    return found


def _after(calls: list[CallRecord], index: int):
    """The calls made after message ``index``, newest first (calls are in the dialogue's order)."""
    for c in reversed(calls):
        if c.index <= index:
            return
        yield c


def unknown_id(name: str, args: dict[str, Any], facts: Facts, tools: ToolPlans) -> str | None:
    """An id argument of a write that nobody showed: not said by the user, not in any tool result."""
    if not tools.is_write(name):
        return None
    values: list[str] = []
    _id_values(args, values)  # the ids alone first: the paths only for the one written in the evidence
    for n, value in enumerate(values):
        if len(value) < _MIN_ID or facts.shows(value):
            continue
        path, value = _ids(args, "")[n]
        return f"{name} sends {path}={value!r}, which neither the user nor any tool result mentioned"
    return None


def _id_values(value: Any, out: list[str]) -> None:
    """The values ``_ids`` gives, in its order, without their paths."""
    known = _id_keys  # _is_id_key's answers, looked up here: this walk runs on every write draft
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                is_id = known.get(k)
                if is_id or (is_id is None and _is_id_key(k)):
                    out.append(v.strip())
            elif isinstance(v, list):
                is_id = known.get(k)
                if is_id or (is_id is None and _is_id_key(k)):
                    out += [x.strip() for x in v if isinstance(x, str)]
                else:
                    _id_values(v, out)
            elif isinstance(v, dict):
                _id_values(v, out)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                _id_values(v, out)


def _ids(value: Any, path: str) -> list[tuple[str, str]]:
    """Every (path, value) of an id argument, in the order of the arguments: a string at an id key
    (``order_id``, ``recipientIds``), or each string of a list at one."""
    out: list[tuple[str, str]] = []
    _collect_ids(value, path, out)
    return out


def _collect_ids(value: Any, path: str, out: list[tuple[str, str]]) -> None:
    # a plain walk that writes a path only for a value kept or walked into (most are neither):
    # it runs on every write draft
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                if _is_id_key(k):
                    out.append(((f"{path}.{k}" if path else str(k)), v.strip()))
            elif isinstance(v, list):
                sub = f"{path}.{k}" if path else str(k)
                if _is_id_key(k):
                    out += [(f"{sub}[{i}]", x.strip()) for i, x in enumerate(v) if isinstance(x, str)]
                else:
                    _collect_ids(v, sub, out)
            elif isinstance(v, dict):
                _collect_ids(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, (dict, list)):
                _collect_ids(v, f"{path}[{i}]", out)


_ID_KEYS = 4096  # key names remembered by _is_id_key; emptied when full (a bound, not an LRU)
_id_keys: dict[str, bool] = {}
# whether a user's turn says yes, remembered by the turn's text: a dialogue's turns are searched
# again for every write it drafts
_says_yes = _TextMemo(lambda pattern, text: re.search(pattern, text, re.I) is not None)


def _is_id_key(key: Any) -> bool:
    found = _id_keys.get(key) if type(key) is str and len(key) <= 64 else None
    if found is None:
        found = _ID_KEY.search(str(key)) is not None
        if type(key) is str and len(key) <= 64:
            if len(_id_keys) >= _ID_KEYS:
                _id_keys.clear()
            _id_keys[key] = found
    return found


def repeated_failed_write(name: str, args: dict[str, Any], facts: Facts, tools: ToolPlans) -> str | None:
    """The same write (name and arguments) that already failed in this user turn, sent again."""
    if not tools.is_write(name):
        return None
    failed = failed_in_turn(facts).get(name)
    result = failed.get(_canonical(args)) if failed else None
    if result is None:
        return None
    return f"{name} with these arguments already failed in this turn: {' '.join(result.split())[:160]!r}"


def failed_in_turn(facts: Facts) -> dict[str, dict[bytes, str]]:
    """The calls that failed since the user's last turn: name -> arguments (canonical) -> the
    result of the latest such call. A failure that says a retry may pass (a 503, a time-out) is left
    out: sending the same call again after it is a retry. Read ahead of the draft
    (``ActionChecker.prepare``)."""
    found = facts.memo.get("failed_in_turn")
    if found is None:
        found = {}
        for rec in reversed(facts.calls):
            if rec.index < facts.turn_start:
                break
            if rec.result is not None and failure_in(rec.result) and not transient_failure(rec.result):
                found.setdefault(rec.name, {}).setdefault(_canonical(parse_args(rec.call.function.arguments)), rec.result)
        facts.memo["failed_in_turn"] = found
    return found


def _canonical(args: dict[str, Any] | None) -> bytes:
    return orjson.dumps(args, option=orjson.OPT_SORT_KEYS) if args is not None else b""


def claimed_action(reply: str, facts: Facts, tools: ToolPlans) -> str | None:
    """A reply that says an action was done while no matching write succeeded since the user's last
    turn. A claim that names a write by a word only that write's name has ("address" for
    update_order_address, "cancelled" for cancel_order), in its verb or in what the verb acts on,
    needs that write; any other claim needs some write."""
    claims = [s.strip() for s in _SENTENCE.findall(reply) if _DONE.search(s) and not _NEGATED.search(s)]
    if not claims:
        return None
    # what may have done it: a write, or a tool nothing says only reads (a pack that does not list
    # refuel_data: its success still supports "I've added 1 GB"); precision first
    done = {c.name for c in facts.calls if c.index > facts.turn_start and _succeeded(c) and tools.settings.may_write(c.name)}
    writes = tools.named_writes | {c.name for c in facts.calls if tools.is_write(c.name)}
    marks = _distinctive(writes)
    for claim in claims:
        words = _acted_on(claim)
        named = {tool for tool, tokens in marks.items() if any(_same_word(w, t) for w in words for t in tokens)}
        # Supported when one write it names (or, naming none, any write) succeeded: a claim
        # often names more than the action ("placed ... items"), and precision comes first.
        if (named and not named & done) or (not named and not done):
            what = " or ".join(sorted(named)) if named else "no write"
            return f"the reply says {claim[:160]!r}, but {what} did not succeed in this turn" if named \
                else f"the reply says {claim[:160]!r}, but no write succeeded in this turn"
    return None


_WORD = re.compile(r"[a-z]{3,}")
# the irregular verbs of _DONE, as a tool's name writes them: "sent" names send_money
_BASE_FORM = {"sent": "send", "paid": "pay"}
_ACTIVE = re.compile(r"^(?:i|we)\b|(?:^|\W)(?:i|we)\s+$")
_CLAUSE = re.compile(r"[,;:()]|\b(?:and|but|so|then|also|while)\b")
_PREP = re.compile(r"\b(?:of|per|for|to|on|in|with|from|at|by|into|onto|via|which|that|as|after|before)\b")


def _acted_on(claim: str) -> set[str]:
    """The words of what a claim says was done: its verb and the phrase the verb acts on, which is
    the words right before a passive verb ("one checked bag has been added") or right after an
    active one ("I've added a checked bag"), up to a clause break or a preposition. "The refund of
    $38 per passenger has been credited" says a refund was credited; it says nothing done to the
    passengers."""
    low = claim.lower()
    m = _DONE.search(low)
    if m is None:
        return set(_WORD.findall(low))
    verb = [_BASE_FORM.get(v, v) for v in _WORD.findall(m.group())[-1:]]
    if _ACTIVE.search(m.group()) or _ACTIVE.search(low[:m.start()]):
        phrase = _PREP.split(_CLAUSE.split(low[m.end():])[0])[0]
    else:
        phrase = _PREP.split(_CLAUSE.split(low[:m.start()])[-1])[0]
    return {*verb, *_WORD.findall(phrase)}


def _distinctive(tools: set[str]) -> dict[str, set[str]]:
    """Each write's name words that no other write's name has (update_order_address: address)."""
    words = {t: set(_WORD.findall(t.lower().replace("_", " "))) for t in tools}
    return {t: {w for w in ws if not any(w in other for o, other in words.items() if o != t)} for t, ws in words.items()}


def _same_word(word: str, token: str) -> bool:
    # "item" names "items", "cancelled" names "cancel"; three letters at least on the shorter side
    return word == token or (len(word) >= 3 and token.startswith(word)) or (len(token) >= 4 and word.startswith(token))


def _succeeded(rec: CallRecord) -> bool:
    return rec.result is not None and not failure_in(rec.result)
