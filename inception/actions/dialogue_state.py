"""The dialogue as the action checks read it, kept from one request to the next by its content.

A tool loop re-sends the whole dialogue with every request, and a proxy builds new message objects
each time: pairing every call with its result again, and indexing every record again, for each
draft made a check's cost grow with the dialogue's length. Here each message is reduced to a key
of what the checks read of it (its kind; its text, or its calls' ids, names and arguments, or the
call id it answers); the state after a prefix of messages is found again by those keys, compared in
full (by content, never by an object's identity), and a request reads only the messages past the
longest prefix already seen. States are never changed once built: a longer one copies what it
changes, so two dialogues that share a prefix share its state and nothing else.

>>> from policies.messages import parse_messages
>>> states = States()
>>> first = parse_messages([{"role": "user", "content": "hi"}])
>>> a = states.of(first)
>>> b = states.of(parse_messages([{"role": "user", "content": "hi"}, {"role": "user", "content": "yes"}]))
>>> states.read, a.users, b.users, states.of(parse_messages([{"role": "user", "content": "hi"}])) is a
(2, ('hi',), ('hi', 'yes'), True)
"""
from __future__ import annotations

import threading
from typing import Any, Hashable

from inception.dialogue import CallRecord
from policies.messages import AssistantMessage, DeveloperMessage, Message, SystemMessage, ToolMessage, UserMessage, text_of

_USER, _SYSTEM, _ASSISTANT, _TOOL, _OTHER = range(5)
_KINDS = {UserMessage: _USER, SystemMessage: _SYSTEM, DeveloperMessage: _SYSTEM, AssistantMessage: _ASSISTANT,
          ToolMessage: _TOOL}


def message_key(m: Message) -> tuple[Hashable, ...]:
    """What the checks read of a message, as a hashable value. An assistant's text is not read
    (only its calls), so it is not part of the key."""
    kind = _KINDS.get(type(m))
    if kind is None:  # a subclass, or a message of another shape
        kind = next((k for cls, k in _KINDS.items() if isinstance(m, cls)), _OTHER)
    if kind == _ASSISTANT:
        calls = m.tool_calls  # type: ignore[union-attr]
        return (kind, tuple((c.id, c.function.name, c.function.arguments) for c in calls) if calls else ())
    if kind == _TOOL:
        return (kind, m.tool_call_id, text_of(m))  # type: ignore[union-attr]
    if kind == _OTHER:
        return (kind,)
    return (kind, text_of(m))


class State:
    """The dialogue after ``len(keys)`` messages: its user turns, system text and calls paired with
    their results (as ``inception.dialogue.pair_calls`` pairs them). ``memo`` holds what checks work
    out from it (facts, record indexes): the same content, the same answers."""

    __slots__ = ("keys", "users", "user_at", "system", "calls", "open", "step", "memo", "parent", "results", "at_msg")

    def __init__(self, keys: tuple, users: tuple[str, ...], user_at: tuple[int, ...], system: tuple[str, ...],
                 calls: list[CallRecord], open_: dict[str, list[int]], step: tuple[int, ...], parent: "State | None",
                 results: list[str | None] | None = None, at_msg: list[int] | None = None):
        self.keys, self.users, self.user_at, self.system = keys, users, user_at, system
        self.calls = calls            # never changed once the state is built
        self.results = results if results is not None else [c.result for c in calls]  # calls[p].result
        self.at_msg = at_msg if at_msg is not None else [c.index for c in calls]      # calls[p].index
        self.open = open_             # call id -> positions in ``calls`` of calls not answered by that id yet
        self.step = step              # positions of the calls of the latest assistant message that made any
        self.memo: dict[Hashable, Any] = {}
        # the state this one extended, or None: what a check works out from the calls (a record
        # index) is extended from the nearest state before that has it, not worked out afresh.
        # The chain is bounded with the states (States.max_keys): a cleared store starts new chains
        self.parent = parent

    @property
    def turn_start(self) -> int:
        return self.user_at[-1] if self.user_at else 0

    def extend(self, messages: list[Message], keys: tuple) -> "State":
        """This state followed by ``messages[len(self.keys):]`` (whose keys end ``keys``). The new
        state keeps this one's keys for the prefix: a dialogue's states share its texts, one copy."""
        start = len(self.keys)
        keys = self.keys + keys[start:]
        users, user_at, system = list(self.users), list(self.user_at), list(self.system)
        calls: list[Any] = list(self.calls)   # a CallRecord, or a new call's ToolCall until the end
        known = len(calls)
        results, at_msg = list(self.results), list(self.at_msg)  # each call's result and message, by position
        open_ = {k: list(v) for k, v in self.open.items()}
        step = self.step
        answered: list[int] = []
        for i in range(start, len(messages)):
            key = keys[i]
            kind = key[0]
            if kind == _USER:
                users.append(key[1])
                user_at.append(i)
            elif kind == _SYSTEM:
                system.append(key[1])
            elif kind == _ASSISTANT and key[1]:
                step = tuple(range(len(calls), len(calls) + len(key[1])))
                for call in messages[i].tool_calls:  # type: ignore[union-attr]
                    open_.setdefault(call.id, []).append(len(calls))
                    calls.append(call)
                    results.append(None)
                    at_msg.append(i)
            elif kind == _TOOL:
                at = _open_with_id(open_.get(key[1]), results, at_msg)
                if at is None:
                    at = next((p for p in step if results[p] is None), None)
                if at is not None:  # else a result with no call left to answer: nothing to pair
                    results[at] = key[2]
                    answered.append(at)
        for p in answered:
            if p < known:  # a record of the state before, answered now: a new record, this state's own
                calls[p] = CallRecord(calls[p].call, results[p], at_msg[p])
        for p in range(known, len(calls)):
            calls[p] = CallRecord(calls[p], results[p], at_msg[p])
        if open_:
            open_ = {k: v for k, v in open_.items() if any(results[p] is None for p in v)}
        return State(keys, tuple(users), tuple(user_at), tuple(system), calls, open_, step, self, results, at_msg)


def _open_with_id(positions: list[int] | None, results: list[str | None], at_msg: list[int]) -> int | None:
    # inception.dialogue._open_with_id over positions: the latest step holding an unanswered call
    # with this id; inside that step, its first such call. Answered calls are dropped as met.
    while positions and results[positions[-1]] is not None:
        positions.pop()
    if not positions:
        return None
    j = len(positions) - 1
    while j > 0 and at_msg[positions[j - 1]] == at_msg[positions[j]] and results[positions[j - 1]] is None:
        j -= 1
    return positions.pop(j)


MAX_KEYS = 200_000  # message keys the states hold in all (a state holds one per message of its prefix)


class States:
    """States by content, bounded: each request finds the longest prefix it shares with a dialogue
    seen before and reads only the messages after it. ``read`` counts the messages read (tests)."""

    def __init__(self, max_keys: int = MAX_KEYS):
        self.max_keys = max_keys
        self._by_hash: dict[int, State] = {}   # by the hash of every prefix's keys (a longer dialogue finds its prefix)
        self._by_keys: dict[tuple, State] = {}  # the same states, by their keys: a dialogue seen whole
        self._empty = State((), (), (), (), [], {}, (), None)  # its memo is this checker's: not shared
        self._held = 0
        self._lock = threading.Lock()
        self.read = 0

    def of(self, messages: list[Message]) -> State:
        keys = []
        for m in messages:  # message_key, inlined for the common kinds: this runs per draft
            cls = type(m)
            if cls is ToolMessage:
                content = m.content
                key = (_TOOL, m.tool_call_id, content if type(content) is str else text_of(m))
            elif cls is AssistantMessage:
                calls = m.tool_calls
                key = (_ASSISTANT, tuple([(c.id, c.function.name, c.function.arguments) for c in calls]) if calls else ())
            elif cls is UserMessage and type(m.content) is str:
                key = (_USER, m.content)
            else:
                key = message_key(m)
            keys.append(key)
        whole = tuple(keys)
        # a dialogue seen whole (read ahead while the agent wrote, or checked before): one lookup,
        # hashed and compared in full by the dict
        state = self._by_keys.get(whole)
        if state is not None:
            return state
        hashes = []
        h = 0
        for key in keys:
            h = hash((h, key))
            hashes.append(h)
        n = len(keys)
        found, at = self._empty, 0
        by_hash = self._by_hash
        for t in range(n, 0, -1):
            state = by_hash.get(hashes[t - 1])
            if state is not None and len(state.keys) == t and state.keys == tuple(keys[:t]):  # content, in full
                found, at = state, t
                break
        if at == n:
            return found
        state = found.extend(messages, tuple(keys))
        self.read += n - at
        with self._lock:
            if self._held + n > self.max_keys:
                by_hash.clear()
                self._by_keys.clear()
                self._held = 0
            by_hash[hashes[-1]] = state
            self._by_keys[state.keys] = state
            self._held += n
        return state
